"""From a folder of class folders to checked, de-duplicated, leakage-free splits."""

from __future__ import annotations

import csv
import hashlib
import logging
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from inference.errors import ImageError
from inference.preprocess import load_image
from storage.clip_formats import FORMATS as CLIP_FORMATS

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}
# Evaluation also takes clips (judged from their frames, as the bot judges them).
MEDIA_SUFFIXES = IMAGE_SUFFIXES | {e for f in CLIP_FORMATS for e in f.file_extensions}
NEAR_DUPLICATE_BITS = 6  # pHash Hamming distance under which two images are one picture


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str
    sha256: str
    phash: int
    source: str
    group: str = ""  # samples that must stay together in splits (the frames of one clip)


@dataclass
class ScanResult:
    samples: list[Sample]
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return sorted({s.label for s in self.samples})

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(s.label for s in self.samples).items()))


@dataclass
class Splits:
    train: list[Sample]
    val: list[Sample]
    test: list[Sample]
    holdout: list[Sample] = field(default_factory=list)  # an "other" source never trained on

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for name, part in (("train", self.train), ("val", self.val), ("test", self.test)):
            for s in sorted(part, key=lambda s: s.sha256):
                h.update(f"{name}:{s.label}:{s.sha256}\n".encode())
        return h.hexdigest()[:16]


def class_root(root: Path) -> Path:
    """Accept DATA/<label>/* or DATA/train/<label>/*."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    if (root / "train").is_dir() and not any(
        p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir()
    ):
        return root / "train"
    return root


def manifest_sources(root: Path) -> dict[str, str]:
    manifest = root / "MANIFEST.csv"
    if not manifest.is_file():
        return {}
    with manifest.open(newline="", encoding="utf-8") as fh:
        return {row["path"]: row.get("source") or row["label"] for row in csv.DictReader(fh)}


def scan_folder(root: Path, labels: list[str] | None = None, progress: bool = True) -> ScanResult:
    """Read every image once: skip (with a reason) what cannot be classified, hash the rest."""
    root = class_root(root)
    sources = manifest_sources(root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if labels is not None:
        folders = [p for p in folders if p.name in labels]
    if not folders:
        raise FileNotFoundError(f"no class folders in {root} (expected {root}/<label>/*.jpg)")
    files = [(f, d.name) for d in folders for f in sorted(d.rglob("*")) if f.is_file()]
    result = ScanResult(samples=[])
    for path, label in tqdm(files, desc="scanning images", unit="img", disable=not progress):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            result.skipped.append((path, "not an image file type"))
            continue
        try:
            data = path.read_bytes()
            img = load_image(data)
        except (ImageError, OSError) as exc:
            result.skipped.append((path, str(exc)))
            continue
        rel = path.relative_to(root).as_posix()
        result.samples.append(
            Sample(
                path=path,
                label=label,
                sha256=hashlib.sha256(data).hexdigest(),
                phash=_phash(img),
                source=sources.get(rel, label),
            )
        )
    if result.skipped:
        log.warning("skipped %d unusable file(s):", len(result.skipped))
        for path, reason in result.skipped[:20]:
            log.warning("  %s: %s", path, reason)
    return result


def duplicate_groups(samples: list[Sample], max_bits: int = NEAR_DUPLICATE_BITS) -> list[int]:
    """Group id per sample: exact (sha256) and near (pHash) duplicates share one group."""
    n = len(samples)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    by_sha: dict[str, int] = {}
    for i, s in enumerate(samples):
        if s.sha256 in by_sha:
            union(by_sha[s.sha256], i)
        else:
            by_sha[s.sha256] = i
    hashes = np.array([s.phash for s in samples], dtype=np.uint64)
    bits = np.unpackbits(hashes.view(np.uint8).reshape(n, 8), axis=1).astype(np.uint8)
    for start in range(0, n, 512):
        block = bits[start : start + 512]
        dist = (block[:, None, :] != bits[None, :, :]).sum(axis=2)
        for a, b in zip(*np.nonzero(dist <= max_bits), strict=False):
            if start + a < b:
                union(int(start + a), int(b))
    return [find(i) for i in range(n)]


def split(
    samples: list[Sample],
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    holdout_source: str | None = None,
) -> Splits:
    """Stratified split by label over duplicate groups, so no picture straddles two parts."""
    holdout = [s for s in samples if holdout_source and s.source == holdout_source]
    rest = [s for s in samples if not (holdout_source and s.source == holdout_source)]
    if holdout_source and not holdout:
        raise ValueError(f"no image has source {holdout_source!r} (see MANIFEST.csv)")
    groups: dict[int, list[Sample]] = defaultdict(list)
    for gid, s in zip(duplicate_groups(rest), rest, strict=False):
        groups[gid].append(s)
    by_label: dict[str, list[list[Sample]]] = defaultdict(list)
    for members in groups.values():
        label = Counter(s.label for s in members).most_common(1)[0][0]
        by_label[label].append(members)
    rng = random.Random(seed)
    parts: dict[str, list[Sample]] = {"train": [], "val": [], "test": []}
    for label in sorted(by_label):
        label_groups = sorted(by_label[label], key=lambda g: min(s.sha256 for s in g))
        rng.shuffle(label_groups)
        total = sum(len(g) for g in label_groups)
        want = {"test": test_fraction * total, "val": val_fraction * total}
        taken = {"test": 0, "val": 0}
        for g in label_groups:
            for part in ("test", "val"):
                if taken[part] + len(g) / 2 <= want[part]:
                    parts[part].extend(g)
                    taken[part] += len(g)
                    break
            else:
                parts["train"].extend(g)
    return Splits(parts["train"], parts["val"], parts["test"], holdout)


def _phash(img: Image.Image) -> int:
    import imagehash  # only scanning a training set needs it

    return int(str(imagehash.phash(img)), 16)


def list_labelled(root: Path) -> list[tuple[Path, str]]:
    """(file, label) for every image or clip under the class folders, readable or not
    (evaluation input)."""
    root = class_root(root)
    return [
        (f, d.name)
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for f in sorted(d.rglob("*"))
        if f.is_file() and f.suffix.lower() in MEDIA_SUFFIXES
    ]
