"""Stand-ins for the core's fast tests: a classifier that needs no model file's weights (it labels
a picture by its dominant colour), and a chat port that keeps what it was asked to send.

The classifier is handed to `open_runtime(loader=...)`, so everything else is real: storage
(SQLite), the classify queue, repost detection, the service and delivery.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bot.core.messages import Actor, ChatRef, ForwardCopy, ForwardError, Reply
from config.settings import Settings
from inference.classifier import ClipPrediction, Prediction, PredictionError
from inference.frame_votes import Rule, combine
from inference.metadata import FP32_FILE, ModelMeta
from inference.preprocess import ImageSource, PreprocessConfig, load_image
from inference.sentence import EMBEDDING_DIM as WORDS_DIM
from inference.text import VECTOR_MIN_WORDS, TextModel, words

LABELS = ["animal_crossing", "doom", "other"]
EMBEDDING_DIM = 256  # projected to the stored size, as a real backbone's is


def colour_image(rgb: tuple[int, int, int], size: tuple[int, int] = (64, 64), *,
                 stripe: int = 0) -> Image.Image:
    """A flat picture of one colour; `stripe` adds a distinct bar so that pictures differ."""
    img = Image.new("RGB", size, rgb)
    if stripe:
        for x in range(size[0]):
            for y in range((stripe * 7) % size[1], (stripe * 7) % size[1] + 6):
                img.putpixel((x, y % size[1]), ((x * stripe) % 256, 255 - rgb[1], y * 9 % 256))
    return img


def word_vector(text: str) -> np.ndarray | None:
    """The fake's sentence vector: the sum of a fixed random vector per distinct word (texts
    sharing words are close); None with too few words, as the classifier's."""
    found = sorted(words(text))
    if len(found) < VECTOR_MIN_WORDS:
        return None
    rows = [np.random.default_rng(int.from_bytes(hashlib.sha256(w.encode()).digest()[:8], "big"))
            .standard_normal(WORDS_DIM) for w in found]
    total = np.sum(rows, axis=0).astype(np.float32)
    unit: np.ndarray = total / np.linalg.norm(total)
    return unit


def png(img: Image.Image) -> bytes:
    import io

    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


class FakeClassifier:
    """Red pictures are Doom, green ones Animal Crossing, anything else other; `confidence`
    is what every answer claims. Reads no model: the folder only has to exist."""

    def __init__(self, folder: Path, *, version: str = "fake-1", confidence: float = 0.9,
                 known_words: Sequence[str] = ()) -> None:
        """`known_words`: the training memes' words (the model's text bank); with them the
        fake reads captions as the classifier reads words (game labels only)."""
        self.folder = folder
        self.onnx_file = folder / FP32_FILE
        if not self.onnx_file.exists():
            folder.mkdir(parents=True, exist_ok=True)
            self.onnx_file.write_bytes(b"not a real model: the fast tests never run it")
        self.version = version
        self.labels = list(LABELS)
        self.confidence = confidence
        self.preprocess = PreprocessConfig()
        self.meta = ModelMeta(version=version, labels=self.labels, preprocess={},
                              backbone="fake", embedding_dim=EMBEDDING_DIM)
        self.batches: list[list[tuple[int, int]]] = []  # each batch: the pictures' sizes
        self.seen_captions: list[list[str | None]] = []
        self.gate = threading.Event()  # cleared, it holds the worker (to fill the queue)
        self.gate.set()
        bank = [v for v in map(word_vector, known_words) if v is not None]
        self.text_model = TextModel("doom", "animal_crossing", encoder_name="fake-words",
                                    bank=np.stack(bank)) if bank else None

    def predict(self, images: Sequence[ImageSource], *, batch_size: int = 16,
                captions: Sequence[str | None] | None = None) -> list[Prediction | PredictionError]:
        self.gate.wait(10)
        results = [self._one(image, caption)
                   for image, caption in zip(images, captions or [None] * len(images),
                                             strict=True)]
        self.batches.append([image.size if isinstance(image, Image.Image) else (0, 0)
                             for image in images])
        self.seen_captions.append(list(captions or [None] * len(images)))
        return results

    def predict_clip(self, frames: Sequence[Image.Image], caption: str | None = None,
                     rule: Rule = "mean_logprob") -> ClipPrediction:
        """Each frame labelled by its colour, combined by the real rule (frame_votes)."""
        self.gate.wait(10)
        per_frame = [self._one(frame) for frame in frames]
        preds = [p for p in per_frame if isinstance(p, Prediction)]
        self.batches.append([frame.size for frame in frames])
        self.seen_captions.append([caption])
        logits = np.log(np.asarray([[p.probabilities[n] for n in LABELS] for p in preds]))
        embeddings = np.stack([np.asarray(p.embedding) for p in preds])
        clip_logits, embedding, _ = combine(logits, embeddings, np.zeros(len(preds)), 1.0, rule)
        probs = np.exp(clip_logits[0]) / np.exp(clip_logits[0]).sum()
        best = int(np.argmax(probs))
        prediction = Prediction(
            label=LABELS[best], confidence=float(probs[best]),
            probabilities={n: float(v) for n, v in zip(LABELS, probs, strict=True)},
            ood_score=0.0, is_ood=False, model_version=self.version, embedding=embedding[0])
        return ClipPrediction(prediction, embeddings)

    def _one(self, image: ImageSource, caption: str | None = None
             ) -> Prediction | PredictionError:
        try:
            img = load_image(image)
        except Exception as exc:  # the real classifier words it the same way
            return PredictionError(str(exc))
        r, g, b = (float(c) for c in np.asarray(img, dtype=np.float32).mean(axis=(0, 1)))
        label = "doom" if r > g + 40 and r > b + 40 else (
            "animal_crossing" if g > r + 40 and g > b + 40 else "other")
        rest = (1 - self.confidence) / 2
        probabilities = {name: self.confidence if name == label else rest for name in LABELS}
        small = np.asarray(img.convert("L").resize((16, 16)), dtype=np.float32).ravel()
        small = small - small.mean()  # the picture's pattern, not its brightness
        embedding = small / (np.linalg.norm(small) or 1.0)
        read = self.text_model is not None and caption is not None and label != "other"
        return Prediction(label=label, confidence=self.confidence, probabilities=probabilities,
                          ood_score=0.0, is_ood=False, model_version=self.version,
                          embedding=embedding,
                          text_embedding=word_vector(caption or "") if read else None)


@dataclass
class Sent:
    chat_id: str
    message_id: str
    reply: Reply
    reply_to: str | None = None
    mention: Actor | None = None
    edits: list[Reply] = field(default_factory=list)


class MemoryPort:
    """A `ChatPort` that keeps every message in memory; `deletable` says whether the bot may
    delete memes here, `refuse` makes every send fail as a chat the bot left would."""

    platform = "telegram"

    def __init__(self, *, deletable: bool = True) -> None:
        self.deletable = deletable
        self.refuse = False
        self.sent: list[Sent] = []
        self.deleted: list[tuple[str, str]] = []
        self.copies: list[ForwardCopy] = []
        self.images: list[Sent] = []  # send_image: the reply's post_id names the image
        self.reactions: list[tuple[str, str, str]] = []  # (chat, message, emoji)
        self._ids = itertools.count(5000)

    def link(self, chat: ChatRef, message_id: str) -> str | None:
        return f"https://chat.example/{chat.chat_id}/{message_id}"

    async def send_copy(self, copy: ForwardCopy) -> str:
        if copy.place == "nowhere":
            raise ForwardError("no such place")
        self.copies.append(copy)
        return f"copy-{len(self.copies)}"

    async def delete_copy(self, chat: ChatRef, place: str, copy_id: str) -> bool:
        return True

    async def reply(self, chat: ChatRef, message_id: str, reply: Reply) -> str | None:
        return await self.send(chat.chat_id, reply, reply_to=message_id)

    async def send(self, chat_id: str, reply: Reply, *, reply_to: str | None = None,
                   mention: Actor | None = None) -> str | None:
        if self.refuse:
            return None
        sent = Sent(chat_id, str(next(self._ids)), reply, reply_to, mention)
        self.sent.append(sent)
        return sent.message_id

    async def send_image(self, chat_id: str, reply: Reply) -> str | None:
        if self.refuse or reply.post_id is None:
            return None
        sent = Sent(chat_id, str(next(self._ids)), reply)
        self.images.append(sent)
        return sent.message_id

    async def react(self, chat: ChatRef, message_id: str, emoji: str) -> bool:
        self.reactions.append((chat.chat_id, message_id, emoji))
        return True

    async def edit(self, chat: ChatRef, message_id: str, reply: Reply) -> bool:
        for sent in self.sent:
            if (sent.chat_id, sent.message_id) == (chat.chat_id, message_id):
                sent.edits.append(reply)
                return True
        return False

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        if self.deletable:
            self.deleted.append((chat.chat_id, message_id))
        return self.deletable

    def replies_to(self, message_id: str) -> list[Sent]:
        return [s for s in self.sent if s.reply_to == message_id]


def fast_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data",
        model_dir=tmp_path / "model",
        super_admins=["telegram:1"],
        trainer="off",
        read_text=False,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]
