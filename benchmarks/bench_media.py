"""Clips: time to a label and memory beside a still, and accuracy of clips made from the test
split's memes against the same memes as stills, in one run.

Timing (the classify worker's whole path: decode, classify, read text, fingerprint, poster):
a 10 s 720p H.264 clip, a ~3 MB GIF, an album of 10 photos (one batch) and a still; peak RSS
growth while the 720p clip is decoded and labelled. Accuracy: every test-split meme (its
model's splits.json) as a 3 s clip with a slow zoom and pan, in turn MP4 / WebM / GIF, plain,
with a black fade-in or with a blank end card; labelled from N frames by each combining rule
(image model only, so that rules and frame counts are compared on equal terms), by the
production setting (text read too), and by today's first-frame rule, beside the stills.

    python benchmarks/bench_media.py [--model /work/main/models] [--limit 30] [--repeat 5]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.classify_queue import classify_decoded  # noqa: E402
from inference.classifier import Classifier, RawOutput  # noqa: E402
from inference.clips import ClipLimits, load_media  # noqa: E402
from inference.frame_votes import RULES, combine  # noqa: E402
from inference.metadata import resolve_model_dir  # noqa: E402
from inference.preprocess import load_image, normalize, resize  # noqa: E402
from tests.support.clipgen import encode_clip  # noqa: E402

KINDS = ("mp4", "webm", "gif")
VARIANTS = ("plain", "fade-in", "end card")
FRAME_COUNTS = (2, 4, 8, 16)
PRODUCTION = 8  # Settings.clip_frames


def test_split(model: Path, data: Path) -> list[tuple[Path, str]]:
    """The test split's memes (by sha256, through the dataset's MANIFEST.csv)."""
    shas = set(json.loads((resolve_model_dir(model) / "splits.json").read_text())["test"])
    with (data / "MANIFEST.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["sha256"] in shas]
    return [(data / r["path"], r["label"]) for r in sorted(rows, key=lambda r: r["sha256"])]


def even(img: Image.Image, side: int) -> Image.Image:
    img = img.convert("RGB")
    img.thumbnail((side, side))
    return img.resize((img.width - img.width % 2, img.height - img.height % 2))


def moving(img: Image.Image, count: int, variant: str = "plain", zoom: float = 0.15
           ) -> list[Image.Image]:
    """A slow zoom and pan over the meme; a black fade-in or a blank end card on request."""
    w, h = img.size
    frames = []
    for i in range(count):
        t = i / max(count - 1, 1)
        s = 1 - zoom * t
        cw, ch = w * s, h * s
        x, y = (w - cw) * t, (h - ch) * 0.5 * t
        frames.append(img.resize((w, h), Image.Resampling.BILINEAR,
                                 box=(x, y, x + cw, y + ch)))
    fade = count // 4
    if variant == "fade-in":
        black = Image.new("RGB", (w, h))
        frames = [Image.blend(black, f, i / fade) if i < fade else f
                  for i, f in enumerate(frames)]
    elif variant == "end card":
        frames = frames[:-fade] + [Image.new("RGB", (w, h), (255, 255, 255))] * fade
    return frames


def first_frame(data: bytes) -> Image.Image:
    """Today's rule: a GIF's first frame as Pillow reads it, a video's first decoded frame."""
    if data[:3] == b"GIF":
        return load_image(data)
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        return Image.fromarray(frame.to_ndarray(format="rgb24"))


# ------------------------------------------------------------------------------ timing


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def peak_growth_mb(fn: Callable[[], object]) -> float:
    """Peak RSS above the level before `fn`, sampled every millisecond."""
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = base
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.001)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        fn()
    finally:
        done.set()
        sampler.join()
    return (peak - base) / 2**20


def timing(clf: Classifier, memes: list[tuple[Path, str]], repeat: int) -> None:
    meme = Image.open(memes[0][0]).convert("RGB")
    hd = moving(meme.resize((1280, 720)), 300)
    clip = encode_clip(hd, "mp4", fps=30)
    del hd
    gif_frames = moving(even(meme, 480), 60)
    per_frame = len(encode_clip(gif_frames[:6], "gif")) / 6
    gif = encode_clip(moving(even(meme, 480), int(3 * 2**20 / per_frame)), "gif", fps=10)
    photos = [p.read_bytes() for p, _ in memes[:10]]
    limits = ClipLimits(frames=PRODUCTION)

    def label(items: list[bytes]) -> Callable[[], object]:
        return lambda: classify_decoded(clf, items, [None] * len(items), limits)

    decode_mb = peak_growth_mb(lambda: load_media(clip, limits=limits))
    label_mb = peak_growth_mb(label([clip]))
    cases = [("10 s 720p H.264 clip", clip, [clip]), (f"GIF {len(gif) / 2**20:.1f} MB", gif, [gif]),
             ("album of 10 photos", b"".join(photos), photos), ("one still", photos[0], photos[:1])]
    print(f"\n## Time to a label (classify worker path, {repeat} runs after a warm-up)\n")
    print("| input | bytes | p50 s | max s | vs still |")
    print("|---|---:|---:|---:|---:|")
    rows = [(name, len(size), timed(label(items), repeat)) for name, size, items in cases]
    still = statistics.median(rows[-1][2])
    for name, size, runs in rows:
        p50 = statistics.median(runs)
        print(f"| {name} | {size:,} | {p50:.2f} | {max(runs):.2f} | {p50 / still:.1f}x |")
    print(f"\nPeak RSS growth, 720p clip: decoding {decode_mb:.0f} MB, "
          f"decoding and labelling {label_mb:.0f} MB (target <= 150 MB)")


# ------------------------------------------------------------------------------ accuracy


def accuracy(clf: Classifier, plain: Classifier, memes: list[tuple[Path, str]]) -> None:
    labels, reject = plain.labels, plain.meta.reject_label
    names = ["still", "still, text read", "first frame (today)", "clip, text read (N=8)"]
    names += [f"{rule} N={n}" for rule in RULES if rule != "first" for n in FRAME_COUNTS]
    truth: list[str] = []
    said: dict[str, list[str]] = {name: [] for name in names}
    seconds: dict[int, list[float]] = {n: [] for n in FRAME_COUNTS}
    used: dict[int, list[int]] = {n: [] for n in FRAME_COUNTS}
    per_kind: dict[str, list[bool]] = {}
    cfg = plain.preprocess
    for i, (path, label) in enumerate(memes):
        kind, variant = KINDS[i % 3], VARIANTS[(i // 3) % 3]
        data = encode_clip(moving(even(Image.open(path), 320), 24, variant), kind, fps=8)
        truth.append(label)
        said["still"].append(plain.predict_one(path).label)
        said["still, text read"].append(clf.predict_one(path).label)
        said["first frame (today)"].append(clf.predict_one(first_frame(data)).label)
        media = load_media(data, limits=ClipLimits(frames=PRODUCTION))
        got = clf.predict_clip(media.frames).prediction.label
        said["clip, text read (N=8)"].append(got)
        per_kind.setdefault(f"{kind}, {variant}", []).append(got == label)
        for n in FRAME_COUNTS:
            start = time.perf_counter()
            frames = load_media(data, limits=ClipLimits(frames=n)).frames
            raw = plain.run(np.stack([normalize(resize(f, cfg), cfg) for f in frames]))
            scores = plain.ood.score(raw.logits, raw.embedding)
            seconds[n].append(time.perf_counter() - start)
            used[n].append(len(frames))
            for rule in RULES:
                if rule == "first":
                    continue
                logits, emb, score = combine(raw.logits, raw.embedding, scores,
                                             plain.meta.temperature, rule)
                verdict = plain.decide(RawOutput(logits, emb, {"ood_score": score}))[0]
                said[f"{rule} N={n}"].append(verdict.label)
        if (i + 1) % 25 == 0:
            print(f"  {i + 1}/{len(memes)} memes", file=sys.stderr)

    def score(pred: list[str]) -> tuple[float, float, float]:
        ok = np.mean([p == t for p, t in zip(pred, truth, strict=True)])
        games = [(p, t) for p, t in zip(pred, truth, strict=True) if t != reject]
        game = np.mean([p == t for p, t in games]) if games else float("nan")
        others = [p for p, t in zip(pred, truth, strict=True) if t == reject]
        caught = np.mean([p == reject for p in others]) if others else float("nan")
        return float(ok), float(game), float(caught)

    base = score(said["still"])[0]
    print(f"\n## Accuracy: {len(memes)} test-split memes as clips ({', '.join(KINDS)}; "
          f"{', '.join(VARIANTS)}), labels {labels}\n")
    print("| rule | accuracy | vs still (image only) | doom vs AC (of games) | other caught "
          "| frames used | decode + classify s |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        acc, game, caught = score(said[name])
        n = int(name.rsplit("=", 1)[1]) if name.split(" N=")[0] in RULES else None
        frames = f"{np.mean(used[n]):.1f}" if n else ""
        secs = f"{statistics.median(seconds[n]):.3f}" if n else ""
        print(f"| {name} | {acc:.1%} | {100 * (acc - base):+.1f} pts | {game:.1%} | "
              f"{caught:.1%} | {frames} | {secs} |")
    print("\nProduction setting by format and variant: " + "; ".join(
        f"{k} {np.mean(v):.0%} (n={len(v)})" for k, v in sorted(per_kind.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=Path("/work/main/models"),
                        help="models folder; copied to a temporary folder, never written")
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/memes"))
    parser.add_argument("--limit", type=int, default=None, help="test memes used (all: none)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per input")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "models"
        shutil.copytree(args.model, model)
        clf = Classifier(model, threads=args.threads)
        plain = Classifier(model, threads=args.threads, read_text=False)
        memes = test_split(model, args.data)[: args.limit]
        print(f"model {clf.version} ({clf.onnx_file.name}), {psutil.cpu_count()} cores, "
              f"load average {psutil.getloadavg()[0]:.1f}")
        if not args.skip_timing:
            timing(clf, memes, args.repeat)
        if not args.skip_accuracy:
            accuracy(clf, plain, memes)


if __name__ == "__main__":
    main()
