"""`memebot data fetch`: the Kaggle doom-crossing dataset as class folders (needs internet)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

KAGGLE_DATASET = "andrewmvd/doom-crossing"
# Folder names in the Kaggle archive -> our labels.
_FOLDERS = {
    "doom": "doom",
    "animal_crossing": "animal_crossing",
    "doom_small": "doom",
    "acnh_small": "animal_crossing",
}


def fetch_kaggle(out: Path) -> Path:
    try:
        import kagglehub
    except ImportError as exc:
        raise FileNotFoundError("kagglehub is not installed: pip install 'memebot[train]'") from exc
    try:
        src = Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as exc:  # network, credentials, rate limits: all mean "no dataset"
        raise FileNotFoundError(
            f"could not download {KAGGLE_DATASET} ({exc}); without internet, point "
            "`memebot train` at your own folder of <label>/ image folders"
        ) from exc
    copied = 0
    for folder in sorted(p for p in src.rglob("*") if p.is_dir() and p.name in _FOLDERS):
        target = Path(out) / _FOLDERS[folder.name]
        target.mkdir(parents=True, exist_ok=True)
        for f in folder.iterdir():
            if f.is_file():
                shutil.copy2(f, target / f.name)
                copied += 1
    if not copied:
        raise FileNotFoundError(f"no doom/animal_crossing folders found in the download at {src}")
    log.info(
        "copied %d images to %s (add an other/ folder of non-game images for the 'other' class)",
        copied,
        out,
    )
    return Path(out)
