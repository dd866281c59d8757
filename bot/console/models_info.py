"""What the models page shows about each version: status, metrics from its meta.json, and the
report files found next to it (served only by name from a fixed pattern)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from bot.core import formatting as fmt
from storage.records import ModelVersion

META_FILE = "meta.json"
# Report files a version folder may hold (plots, training curves, evaluation reports).
REPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.(png|svg|html|md|txt|csv)")
CONTENT_TYPES = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "html": "text/html; charset=utf-8",
    "md": "text/plain; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "csv": "text/plain; charset=utf-8",
}
MAX_REPORT_FILES = 30


def read_meta(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def report_files(folder: Path) -> list[str]:
    try:
        names = sorted(p.name for p in folder.iterdir() if p.is_file())
    except OSError:
        return []
    return [n for n in names if REPORT_NAME.fullmatch(n)][:MAX_REPORT_FILES]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _dict(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    value = mapping.get(key)
    return value if isinstance(value, dict) else {}


def _list(mapping: dict[str, Any], key: str) -> list[Any]:
    value = mapping.get(key)
    return value if isinstance(value, list) else []


def key_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    test = _dict(metrics, "test")
    per_class = _dict(test, "per_class")
    f1s = [_number(c.get("f1")) for c in per_class.values() if isinstance(c, dict)]
    known = [f1 for f1 in f1s if f1 is not None]
    retrain = _dict(metrics, "retrain")
    return {
        "accuracy": _number(test.get("accuracy")),
        "macro_f1": sum(known) / len(known) if f1s and len(known) == len(f1s) else None,
        "ece": _number(test.get("ece")),
        "n": test.get("n") if isinstance(test.get("n"), int) else None,
        "per_class": {
            str(k): {"f1": _number(v.get("f1")), "support": v.get("support")}
            for k, v in per_class.items()
            if isinstance(v, dict)
        },
        "promoted": retrain.get("promoted") if isinstance(retrain.get("promoted"), bool) else None,
        "reason": retrain.get("reason") if isinstance(retrain.get("reason"), str) else None,
    }


def describe(version: ModelVersion, serving: str) -> dict[str, Any]:
    """Blocking (reads files): call in a thread."""
    folder = Path(version.path)
    meta = read_meta(folder)
    metrics = _dict(meta, "metrics")
    training = _dict(meta, "training")
    labels = _list(meta, "labels")
    return {
        "version": version.version,
        "status": version.status.value,
        "serving": version.version == serving,
        "created_at": version.created_at.isoformat(),
        "promoted_at": version.promoted_at.isoformat() if version.promoted_at else None,
        "labels": [str(label) for label in labels],
        "summary": fmt.metrics_summary(metrics),
        "metrics": key_metrics(metrics),
        "kind": training.get("kind") if isinstance(training.get("kind"), str) else None,
        "retrained_from": training.get("retrained_from")
        if isinstance(training.get("retrained_from"), str) else None,
        "reports": report_files(folder),
        "available": (folder / META_FILE).is_file(),
    }
