"""Which precision serves a model on this machine: decided once, remembered beside the model.

int8 and fp32 disagree on about 1 in 160 unseen memes, so a choice re-timed at every load
(where the two are often within noise of each other) could change a meme's label after a
restart. The first load times both; int8 serves only when clearly faster, and the choice is
written to `precision.json` beside the model, keyed by a fingerprint of the machine, so every
later load on the same machine serves the same file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

PRECISION_FILE = "precision.json"
# int8 must be at least this much faster than fp32 to be served (timing noise on a shared
# host is ~5-10%; a smaller gain is not worth a second numeric behaviour).
INT8_MIN_SPEEDUP = 0.15

Timer = Callable[[Path], float]  # milliseconds of one single-image run of that ONNX file


@dataclass(frozen=True)
class PrecisionChoice:
    file: str  # the ONNX file name that serves
    timings_ms: dict[str, float]  # as measured when the choice was made (empty when remembered)
    remembered: bool  # read from precision.json rather than measured now


def machine_fingerprint() -> str:
    """What decides int8 vs fp32 speed: the processor (model and vector extensions), the number
    of cores and the onnxruntime build; not the host name, so identical containers agree."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")) and line.split(":", 1)[1] not in cpu:
                cpu += line.split(":", 1)[1].strip() + "|"
            if cpu.count("|") >= 2:
                break
    except OSError:
        cpu = platform.processor()
    parts = [platform.machine(), cpu, str(os.cpu_count()), ort.__version__]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def choose_precision(
    folder: Path, int8: Path, fp32: Path, timer: Timer, fingerprint: str | None = None
) -> PrecisionChoice:
    """The file to serve for `folder` on this machine: the remembered choice, else int8 only
    when it is at least INT8_MIN_SPEEDUP faster than fp32 (then remembered)."""
    key = fingerprint or machine_fingerprint()
    path = folder / PRECISION_FILE
    known = _read(path)
    if known.get(key) in (int8.name, fp32.name):
        return PrecisionChoice(file=known[key], timings_ms={}, remembered=True)
    timings = {fp32.name: timer(fp32), int8.name: timer(int8)}
    faster = timings[int8.name] <= (1 - INT8_MIN_SPEEDUP) * timings[fp32.name]
    chosen = int8.name if faster else fp32.name
    log.info(
        "precision measured once for this machine: %s; serving %s",
        ", ".join(f"{n} {ms:.1f} ms" for n, ms in timings.items()),
        chosen,
    )
    tmp = path.with_name(f".{PRECISION_FILE}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({**known, key: chosen}, indent=2))
        tmp.replace(path)
    except OSError as exc:
        # A read-only model folder cannot remember: fp32 then, the one choice that never
        # changes between loads.
        log.warning("cannot remember the precision in %s (%s): serving fp32", path, exc)
        tmp.unlink(missing_ok=True)
        return PrecisionChoice(file=fp32.name, timings_ms=timings, remembered=False)
    return PrecisionChoice(file=chosen, timings_ms=timings, remembered=False)
