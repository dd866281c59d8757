"""The fixed split every retrain scores on: the base dataset split exactly as the active version
was trained (its splits.json), inherited unchanged by each new version."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from inference.metadata import ModelMeta, file_sha256
from inference.preprocess import load_image
from model_training.data import Sample, Splits, list_labelled, scan_folder, split

log = logging.getLogger(__package__)

SPLITS_FILE = "splits.json"
PARTS = ("train", "val", "test", "holdout")


def load_base_splits(dataset_dir: Path, active: Path, meta: ModelMeta, cache_dir: Path) -> Splits:
    """The base dataset split exactly as the active version was trained (its splits.json).

    Files added to the dataset since then join the training part; files gone are dropped.
    Without a splits.json (an old export) the dataset is re-split with the recorded seed.
    """
    splits_file = active / SPLITS_FILE
    if not splits_file.is_file():
        log.warning("%s has no %s: re-splitting the base dataset", active.name, SPLITS_FILE)
        tr = meta.training
        scan = scan_folder(dataset_dir, progress=False)
        return split(
            scan.samples,
            val_fraction=tr.get("val_fraction", 0.15),
            test_fraction=tr.get("test_fraction", 0.15),
            seed=tr.get("seed", 0),
            holdout_source=tr.get("holdout_source"),
        )
    parts: dict[str, list[str]] = json.loads(splits_file.read_text())
    files = _hash_files(list_labelled(dataset_dir), cache_dir)
    where = {sha: part for part in PARTS for sha in parts.get(part, [])}
    out: dict[str, list[Sample]] = {part: [] for part in PARTS}
    fresh = 0
    for sha, (path, label) in sorted(files.items()):
        part = where.get(sha)
        if part is None:  # a file added since the active model was trained: check it decodes
            try:
                load_image(path)
            except Exception as exc:  # any decode failure: leave the file out, say why
                log.warning("skipping %s: %s", path, exc)
                continue
            part, fresh = "train", fresh + 1
        out[part].append(Sample(path=path, label=label, sha256=sha, phash=0, source=label))
    if fresh:
        log.info("%d base image(s) are new since %s: added to training", fresh, active.name)
    return Splits(out["train"], out["val"], out["test"], out["holdout"])


def _hash_files(files: list[tuple[Path, str]], cache_dir: Path) -> dict[str, tuple[Path, str]]:
    """sha256 -> (path, label) for the dataset; a (path, size, mtime) index on disk spares
    hashing every file again at each retrain."""
    index_path = Path(cache_dir) / "file-sha256.json"
    try:
        index: dict[str, str] = json.loads(index_path.read_text())
    except (OSError, ValueError):
        index = {}
    out: dict[str, tuple[Path, str]] = {}
    changed = False
    for path, label in files:
        try:
            st = path.stat()
        except OSError:
            continue
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        sha = index.get(key)
        if sha is None:
            sha = file_sha256(path)
            index[key] = sha
            changed = True
        out.setdefault(sha, (path, label))
    if changed:
        index_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = index_path.with_name(index_path.name + ".tmp")
        tmp.write_text(json.dumps(index))
        tmp.replace(index_path)
    return out


def write_splits(
    folder: Path, base: Splits, corr_train: list[Sample], corr_val: list[Sample]
) -> None:
    """The base split is inherited unchanged so every later retrain scores on the same images."""
    data: dict[str, Any] = {part: [s.sha256 for s in getattr(base, part)] for part in PARTS}
    data["corrections_train"] = [s.sha256 for s in corr_train]
    data["corrections_val"] = [s.sha256 for s in corr_val]
    # Labels of the corrections (their blobs live in storage): the report's new-class curve.
    data["corrections_labels"] = {s.sha256: s.label for s in corr_train + corr_val}
    tmp = folder / (SPLITS_FILE + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(folder / SPLITS_FILE)


def dataset_fingerprint(train: list[Sample], val: list[Sample]) -> str:
    h = hashlib.sha256()
    for name, part in (("train", train), ("val", val)):
        for s in sorted(part, key=lambda s: s.sha256):
            h.update(f"{name}:{s.label}:{s.sha256}\n".encode())
    return h.hexdigest()[:16]
