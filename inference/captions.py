"""The words posted with images, from a CSV (`path,caption`; a dataset's MANIFEST.csv works)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_captions(csv_path: Path) -> dict[Path, str]:
    """path -> caption from a CSV with `path` and `caption` columns; relative paths are taken
    relative to the CSV's folder (as in a dataset's MANIFEST.csv)."""
    try:
        with csv_path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"path", "caption"} <= set(reader.fieldnames):
                raise ValueError(
                    f"{csv_path} needs the columns path,caption (has {reader.fieldnames})"
                )
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read captions from {csv_path}: {exc}") from exc
    out: dict[Path, str] = {}
    for row in rows:
        path = Path(row["path"])
        full = path if path.is_absolute() else csv_path.parent / path
        out[full.resolve()] = row["caption"] or ""
    return out


def dataset_captions(manifest: Path) -> dict[Path, str]:
    """A dataset's captions, or none: a folder without a MANIFEST.csv, or one whose manifest
    has no `caption` column (sources only), simply has no words posted with its images."""
    if not manifest.is_file():
        return {}
    with manifest.open(newline="", encoding="utf-8", errors="replace") as fh:
        header = next(csv.reader(fh), [])
    return read_captions(manifest) if {"path", "caption"} <= set(header) else {}
