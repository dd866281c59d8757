"""The labelled set as an ImageFolder tree (`<folder>/<label>/<sha256>.<ext>`), the layout
torchvision and the trainer read, and the format for moving labels between machines."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from storage.blobs import SHA256_NAME, inspect_image
from storage.clip_formats import STORED_EXTENSIONS as CLIP_EXTENSIONS
from storage.clip_formats import sniff
from storage.errors import BlobError, InvalidInputError, StorageError
from storage.intake import ClipMedia
from storage.records import ExportReport, TrainingExample
from storage.validation import check_label


@dataclass(frozen=True)
class TreeItem:
    label: str
    path: Path
    sha256: str
    media: ClipMedia | None = None  # what a clip is stored with (None for a still)


# Decodes a file that may move: what storage records of a clip, or None for a still picture;
# raises BlobError for a clip that does not decode. Storage decodes no video itself: the caller
# (`memebot db import`) passes `inference.clip_records.read_clip`.
ClipReader = Callable[[bytes], ClipMedia | None]


def write_tree(examples: Iterable[TrainingExample], folder: Path) -> ExportReport:
    """Copy every example's blob under its label; re-exporting updates the tree in place.

    An image relabelled since the last export is removed from its old label folder, else the
    tree would hold it twice and an import could not tell which label is current.
    """
    folder.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, Path] = {}
    written = unchanged = 0
    per_label: dict[str, int] = {}
    for example in examples:
        if not example.path.is_file():
            raise StorageError(f"blob of {example.sha256} is missing at {example.path}")
        target = folder / example.label / example.path.name
        wanted[example.sha256] = target
        per_label[example.label] = per_label.get(example.label, 0) + 1
        if target.is_file() and target.stat().st_size == example.path.stat().st_size:
            unchanged += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
        os.close(fd)
        try:
            shutil.copyfile(example.path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written += 1
    for label_dir in (p for p in folder.iterdir() if p.is_dir()):
        for file in label_dir.iterdir():
            sha = file.name.split(".", 1)[0]
            if SHA256_NAME.fullmatch(sha) and sha in wanted and wanted[sha] != file:
                file.unlink()
    return ExportReport(
        folder=folder,
        written=written,
        unchanged=unchanged,
        per_label=dict(sorted(per_label.items())),
    )


def read_tree(folder: Path, read_clip: ClipReader | None = None) -> list[TreeItem]:
    """Read and check a whole tree, clips decoded with `read_clip`; raise before the caller
    writes anything."""
    if not folder.is_dir():
        raise InvalidInputError(f"{folder} is not a folder")
    items: list[TreeItem] = []
    seen: dict[str, str] = {}
    for label_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not _hidden(p)):
        label = check_label(label_dir.name)
        for path in sorted(p for p in label_dir.iterdir() if p.is_file() and not _hidden(p)):
            try:
                sha256, media = _inspect(path.read_bytes(), read_clip)
            except BlobError as exc:
                raise BlobError(f"{path}: {exc}") from exc
            if seen.get(sha256, label) != label:
                raise InvalidInputError(
                    f"{path} is the same image as one under {seen[sha256]!r}: one label each"
                )
            if sha256 in seen:
                continue
            seen[sha256] = label
            items.append(TreeItem(label=label, path=path, sha256=sha256, media=media))
    return items


def _inspect(data: bytes, read_clip: ClipReader | None) -> tuple[str, ClipMedia | None]:
    media = read_clip(data) if read_clip is not None else None
    if media is not None:
        return hashlib.sha256(data).hexdigest(), media
    if read_clip is None and sniff(data) in CLIP_EXTENSIONS:
        raise BlobError("the file is a clip, and this import reads pictures only")
    return inspect_image(data).sha256, None


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")
