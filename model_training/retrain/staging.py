"""Where a candidate is written: a temporary folder the bot never serves, renamed into place
only once it is complete."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from model_training.promotion import RetrainError

TMP_PREFIX = ".tmp-"  # model folders being written; never served, removed by the trainer


def new_version(kind: str, fingerprint: str) -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + f"-{kind}-{fingerprint[:6]}"


def staging_folder(model_dir: Path, version: str) -> Path:
    return Path(model_dir) / f"{TMP_PREFIX}{version}"


def swap_in(tmp: Path, final: Path) -> None:
    if final.exists():
        raise RetrainError(f"{final} already exists")
    os.replace(tmp, final)  # atomic on one filesystem: the folder appears complete or not at all


def cleanup_temp_folders(model_dir: Path) -> list[Path]:
    """Remove folders a killed trainer left half-written (call only while holding the trainer
    lock)."""
    removed = []
    root = Path(model_dir)
    if root.is_dir():
        for p in root.iterdir():
            if p.is_dir() and p.name.startswith(TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed
