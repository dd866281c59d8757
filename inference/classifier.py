"""The classifier every part of memebot uses: an exported ONNX model run by onnxruntime."""

from __future__ import annotations

import bisect
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from PIL import Image

from inference.clips import ClipLimits, MediaKind, is_moving, load_media
from inference.errors import ImageError, ModelError
from inference.frame_votes import Rule, combine, frames_to_read
from inference.metadata import FP32_FILE, INT8_FILE, OOD_FILE, ModelMeta, resolve_model_dir
from inference.ood import OODScorer
from inference.precision import Timer, choose_precision
from inference.preprocess import ImageSource, load_image, normalize, resize, to_array
from inference.text import TextModel, read_text, tesseract_available, vector_of

Precision = Literal["auto", "int8", "fp32"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float  # calibrated probability of `label` (for an OOD rejection: how unusual)
    probabilities: dict[str, float]
    ood_score: float
    is_ood: bool  # "other" because the image is unlike anything the model knows
    model_version: str
    latency_ms: float = 0.0
    # The model's image embedding (repost detection compares it instead of running a second
    # model); not part of a prediction's identity.
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    # The sentence encoder's vector of the words read (OCR + caption) when there are enough
    # (inference/text.py VECTOR_MIN_WORDS): the correction memory's second space.
    text_embedding: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class PredictionError:
    """A batch item that could not be classified, with the reason to show the user."""

    error: str
    latency_ms: float = 0.0


@dataclass(frozen=True)
class MediaResult:
    """A file's verdict (or why there is none), and what the file was."""

    result: Prediction | PredictionError
    kind: MediaKind = MediaKind.still
    duration_s: float | None = None
    frames_used: int = 1


@dataclass(frozen=True)
class ClipPrediction:
    """A clip's one verdict, and what its frames looked like to the model (repost detection
    keeps a few frames' embeddings)."""

    prediction: Prediction
    frame_embeddings: np.ndarray  # one row per classified frame, in time order
    read_frames: tuple[int, ...] = ()  # the frames whose text was read


@dataclass
class RawOutput:
    logits: np.ndarray
    embedding: np.ndarray
    extra: dict[str, np.ndarray] = field(default_factory=dict)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / max(temperature, 1e-6)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True), np.float32)


def decide(
    raw: RawOutput, meta: ModelMeta, ood: OODScorer, latency_ms: float = 0.0
) -> list[Prediction]:
    """Calibrated probabilities plus the OOD rule turn raw outputs into labels.

    The best game label stands unless P(other) reaches its calibrated threshold, or the image
    scores above the calibrated OOD threshold (unlike any meme the model knows); then the label
    is "other", and for an OOD rejection the confidence is how unusual the image is among
    validation memes.
    """
    probs = softmax(raw.logits, meta.temperature)
    # The meme's words (inference/text.py) only move the choice between game labels and the
    # probabilities shown; "other" and the OOD rule are decided on the image alone.
    shown = (
        softmax(raw.logits + raw.extra["text_shift"], meta.temperature)
        if "text_shift" in raw.extra
        else probs
    )
    # A clip's score is combined from its frames' (inference/frame_votes.py).
    scores = raw.extra["ood_score"] if "ood_score" in raw.extra else ood.score(raw.logits,
                                                                              raw.embedding)
    reference = sorted(meta.ood.reference_scores)
    reject = meta.labels.index(meta.reject_label) if meta.reject_label in meta.labels else None
    games = [i for i in range(len(meta.labels)) if i != reject]
    out = []
    for p, q, s, emb in zip(probs, shown, scores, raw.embedding, strict=True):
        top = games[int(np.argmax(q[games]))]
        label, conf, is_ood = meta.labels[top], float(q[top]), False
        if reject is not None and p[reject] >= meta.ood.other_threshold:
            label, conf = meta.reject_label, float(p[reject])
        elif float(s) > meta.ood.threshold:
            label, is_ood = meta.reject_label, True
            conf = bisect.bisect_left(reference, float(s)) / len(reference) if reference else 1.0
        out.append(
            Prediction(
                label=label,
                confidence=conf,
                probabilities={lab: float(v) for lab, v in zip(meta.labels, q, strict=True)},
                ood_score=float(s),
                is_ood=is_ood,
                model_version=meta.version,
                latency_ms=latency_ms,
                embedding=emb,
            )
        )
    return out


def _time_session(session: ort.InferenceSession, input_size: int, runs: int = 5) -> float:
    """Median milliseconds of one single-image run (after a warm-up run), on a fixed input."""
    x = np.random.default_rng(0).standard_normal((1, 3, input_size, input_size)).astype(np.float32)
    name = session.get_inputs()[0].name
    session.run(None, {name: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1000)
    return float(np.median(times))


class Classifier:
    """Loads one model version; thread-safe for concurrent `predict` calls (onnxruntime is)."""

    def __init__(
        self,
        model_path: Path,
        *,
        precision: Precision = "auto",
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        memory_arena: bool = False,
        read_text: bool = True,
        text_lookup: Callable[[ImageSource], str | None] | None = None,
        timer: Timer | None = None,
    ) -> None:
        self.folder = resolve_model_dir(Path(model_path))
        self.meta = ModelMeta.load(self.folder)
        self.preprocess = self.meta.preprocess_config()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Without the arena, batch buffers go back to the OS after each run: ~250 MB less peak
        # RSS for a batch of 16 at a few percent of speed (benchmarks/bench_inference.py).
        options.enable_cpu_mem_arena = memory_arena
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        chosen = [p for p in (providers or available) if p in available] or ["CPUExecutionProvider"]

        def load(onnx_file: Path) -> ort.InferenceSession:
            try:
                return ort.InferenceSession(str(onnx_file), options, providers=chosen)
            except Exception as exc:  # onnxruntime raises its own untyped errors
                raise ModelError(f"cannot load {onnx_file}: {exc}") from exc

        # Which precision is faster depends on the processor: int8 was 2x faster than fp32 on
        # one Xeon and no faster (slower at batch 16) on another with AMX/VNNI. "auto" decides
        # once per model and machine and remembers it (inference/precision.py), so a restart
        # never changes a label.
        files = self._candidate_files(precision)
        sessions: dict[Path, ort.InferenceSession] = {}

        def session_for(onnx_file: Path) -> ort.InferenceSession:
            if onnx_file not in sessions:
                sessions[onnx_file] = load(onnx_file)
            return sessions[onnx_file]

        def default_timer(onnx_file: Path) -> float:
            return _time_session(session_for(onnx_file), self.preprocess.input_size)

        self.load_timings_ms: dict[str, float] = {}
        if len(files) > 1:
            int8, fp32 = files
            choice = choose_precision(self.folder, int8, fp32, timer or default_timer)
            self.load_timings_ms = choice.timings_ms
            self.onnx_file = self.folder / choice.file
        else:
            self.onnx_file = files[0]
        self.session = session_for(self.onnx_file)
        sessions.clear()  # the timed-and-refused session is freed
        self.input_name = self.session.get_inputs()[0].name
        self.ood = OODScorer.load(self.folder / OOD_FILE)
        # The model's word model weighs the words read from the image (Tesseract) and the words
        # posted with it (a caption); without Tesseract only the caption speaks, and a model
        # trained without text decides on the image alone.
        self.text_model = TextModel.load(self.folder) if read_text else None
        self._ocr = self.text_model is not None and (
            text_lookup is not None or tesseract_available()
        )
        if self.text_model is not None and not self._ocr:
            log.warning(
                "tesseract is not installed: memes are classified without reading their text"
            )
        self._text_lookup = text_lookup  # known readings (evaluation reuses training's OCR cache)

    def _candidate_files(self, precision: Precision) -> list[Path]:
        int8, fp32 = self.folder / INT8_FILE, self.folder / FP32_FILE
        # "auto" considers int8 only if training found it as accurate as fp32 (int8_accepted).
        int8_ok = int8.is_file() and self.meta.metrics.get("int8_accepted", True) is not False
        if precision == "int8" and not int8.is_file():
            raise ModelError(f"no int8 model in {self.folder}")
        if precision == "int8" or (precision == "auto" and int8_ok and not fp32.is_file()):
            return [int8]
        if not fp32.is_file():
            raise ModelError(f"no ONNX model in {self.folder}")
        return [int8, fp32] if precision == "auto" and int8_ok else [fp32]

    @property
    def version(self) -> str:
        return self.meta.version

    @property
    def labels(self) -> list[str]:
        return list(self.meta.labels)

    def run(self, batch: np.ndarray) -> RawOutput:
        """Raw model outputs for a preprocessed float32 NCHW batch."""
        logits, embedding = self.session.run(["logits", "embedding"], {self.input_name: batch})
        return RawOutput(logits=logits, embedding=embedding)

    def decide(self, raw: RawOutput, latency_ms: float = 0.0) -> list[Prediction]:
        return decide(raw, self.meta, self.ood, latency_ms)

    def predict_arrays(self, batch: np.ndarray) -> list[Prediction]:
        start = time.perf_counter()
        raw = self.run(batch)
        per_image = (time.perf_counter() - start) * 1000 / max(len(batch), 1)
        return self.decide(raw, per_image)

    def predict(
        self,
        images: Sequence[ImageSource],
        *,
        batch_size: int = 16,
        captions: Sequence[str | None] | None = None,
    ) -> list[Prediction | PredictionError]:
        """Classify images (bytes, paths or PIL images); a bad image yields a PredictionError.

        `captions`: the words posted with each image (None or "" for none). Like the words read
        from the image they only move the choice between game labels; an image without a
        caption is classified exactly as before.
        """
        if captions is not None and len(captions) != len(images):
            raise ValueError(f"{len(captions)} captions for {len(images)} images")
        results: list[Prediction | PredictionError] = []
        for i in range(0, len(images), batch_size):
            chunk = images[i : i + batch_size]
            chunk_captions = (
                list(captions[i : i + batch_size]) if captions is not None else [None] * len(chunk)
            )
            start = time.perf_counter()
            arrays: list[np.ndarray] = []
            decoded: list[tuple[ImageSource, Image.Image]] = []
            posted: list[str] = []  # the caption of each decoded image
            slots: list[int | str] = []
            for item, caption in zip(chunk, chunk_captions, strict=True):
                try:
                    cfg = self.preprocess
                    img = load_image(item, background=cfg.background, max_pixels=cfg.max_pixels)
                    arrays.append(to_array(img, cfg))  # the decoded picture is kept for OCR
                    decoded.append((item, img))
                    posted.append(caption or "")
                    slots.append(len(arrays) - 1)
                except ImageError as exc:
                    slots.append(str(exc))
            preds: list[Prediction] = []
            if arrays:
                raw = self.run(np.stack(arrays))
                preds = self.decide(raw)
                # Words only move the choice between game labels: memes the image already calls
                # "other" are not read (OCR is the costliest step of a prediction).
                games = [i for i, p in enumerate(preds) if p.label != self.meta.reject_label]
                if self.text_model is not None and games:
                    texts = [""] * len(preds)
                    read = (
                        self._read_all([decoded[i] for i in games])
                        if self._ocr
                        else [""] * len(games)
                    )
                    for i, text in zip(games, read, strict=True):
                        texts[i] = " ".join(t for t in (text, posted[i]) if t)
                    if any(texts):
                        vectors = self.text_model.sentence_vectors(texts)
                        raw.extra["text_shift"] = self.text_model.logit_shift(
                            texts, self.labels, self.meta.temperature, vectors
                        )
                        preds = [dataclasses.replace(p, text_embedding=vector_of(t, vectors, i))
                                 for i, (p, t) in enumerate(zip(self.decide(raw), texts,
                                                                strict=True))]
            elapsed = (time.perf_counter() - start) * 1000 / max(len(chunk), 1)
            for slot in slots:
                if isinstance(slot, str):
                    results.append(PredictionError(error=slot, latency_ms=elapsed))
                else:
                    results.append(dataclasses.replace(preds[slot], latency_ms=elapsed))
        return results

    def _read_all(self, decoded: list[tuple[ImageSource, Image.Image]]) -> list[str]:
        def one(pair: tuple[ImageSource, Image.Image]) -> str:
            known = self._text_lookup(pair[0]) if self._text_lookup else None
            return known if known is not None else read_text(pair[1])

        if len(decoded) == 1:
            return [one(decoded[0])]
        # Tesseract runs as a process per image: two at a time use both cores of a small host.
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(one, decoded))

    def predict_clip(
        self, frames: Sequence[Image.Image], caption: str | None = None,
        rule: Rule = "mean_logprob",
    ) -> ClipPrediction:
        """Label a clip from its chosen frames (`inference.clips.load_media`): the frames are
        classified as one batch and combined (`inference.frame_votes`); the words of the frame
        or two that hold the most writing, and the caption, count as for a still."""
        if not frames:
            raise ImageError("the clip has no frames to classify")
        start = time.perf_counter()
        cfg = self.preprocess
        batch = np.stack([normalize(resize(frame, cfg), cfg) for frame in frames])
        frame_raw = self.run(batch)
        scores = self.ood.score(frame_raw.logits, frame_raw.embedding)
        logits, embedding, score = combine(frame_raw.logits, frame_raw.embedding, scores,
                                           self.meta.temperature, rule)
        raw = RawOutput(logits=logits, embedding=embedding, extra={"ood_score": score})
        prediction = self.decide(raw)[0]
        read: list[int] = []
        if self.text_model is not None and prediction.label != self.meta.reject_label:
            read = frames_to_read(list(frames)) if self._ocr else []
            with ThreadPoolExecutor(max_workers=2) as pool:  # one Tesseract per core
                texts = list(pool.map(read_text, [frames[i] for i in read]))
            text = " ".join(t for t in (*texts, caption or "") if t)
            if text:
                vectors = self.text_model.sentence_vectors([text])
                raw.extra["text_shift"] = self.text_model.logit_shift(
                    [text], self.labels, self.meta.temperature, vectors
                )
                prediction = dataclasses.replace(self.decide(raw)[0],
                                                 text_embedding=vector_of(text, vectors, 0))
        elapsed = (time.perf_counter() - start) * 1000
        return ClipPrediction(dataclasses.replace(prediction, latency_ms=elapsed),
                              frame_raw.embedding, tuple(read))

    def predict_media(
        self,
        sources: Sequence[bytes | str | Path],
        *,
        captions: Sequence[str | None] | None = None,
        limits: ClipLimits | None = None,
    ) -> list[MediaResult]:
        """`predict` for files that may be clips (`memebot predict`, evaluation): stills are
        classified as by `predict` (as one batch, from their own source, so known readings
        still apply), each clip from its frames. Each result says what the file was."""
        if captions is not None and len(captions) != len(sources):
            raise ValueError(f"{len(captions)} captions for {len(sources)} files")
        posted = list(captions) if captions is not None else [None] * len(sources)
        cfg = self.preprocess
        results: list[MediaResult | None] = [None] * len(sources)
        stills: list[int] = []
        for i, source in enumerate(sources):
            try:
                data = Path(source).read_bytes() if isinstance(source, (str, Path)) else source
            except OSError as exc:
                results[i] = MediaResult(PredictionError(f"cannot read {source!s}: "
                                                         f"{exc.strerror or exc}"))
                continue
            if not is_moving(bytes(data)):
                stills.append(i)
                continue
            try:
                media = load_media(bytes(data), background=cfg.background,
                                   max_pixels=cfg.max_pixels, limits=limits)
            except ImageError as exc:
                results[i] = MediaResult(PredictionError(str(exc)))
                continue
            clip = self.predict_clip(media.frames, posted[i])
            results[i] = MediaResult(clip.prediction, media.kind, media.duration_s,
                                     len(media.frames))
        if stills:
            found = self.predict([sources[i] for i in stills],
                                 captions=[posted[i] for i in stills])
            for i, result in zip(stills, found, strict=True):
                results[i] = MediaResult(result)
        return [r if r is not None else MediaResult(PredictionError("not classified"))
                for r in results]

    def predict_one(self, image: ImageSource, caption: str | None = None) -> Prediction:
        """Classify one image; raises ImageError for a bad one."""
        result = self.predict([image], captions=[caption])[0]
        if isinstance(result, PredictionError):
            raise ImageError(result.error)
        return result
