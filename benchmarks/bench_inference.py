"""Inference speed: onnxruntime (fp32, int8) vs torch eager, in one run, on real memes.

Prints batch-1 latency p50/p95, batch-16 throughput, the ratios against torch, model load
time and the peak RSS of an inference-only process (one that never imports torch). Each
engine is timed in a process of its own, one after the other, within this one run.

    python benchmarks/bench_inference.py [--model models/] [--data ../shared/data/memes]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.classifier import Classifier  # noqa: E402
from inference.metadata import ModelMeta, resolve_model_dir  # noqa: E402
from inference.preprocess import to_array  # noqa: E402

# VmHWM, not getrusage: ru_maxrss survives exec, so a child of this torch-laden process
# would report the parent's peak.
RSS_PROBE = """
import json, sys, time
t = time.perf_counter()
from inference.classifier import Classifier
clf = Classifier(sys.argv[1], precision=sys.argv[2], memory_arena=sys.argv[3] == "arena")
load = time.perf_counter() - t
files = sys.argv[4:]
clf.predict(files)
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps({"load_s": load, "rss_mb": int(hwm) / 1024, "torch": "torch" in sys.modules}))
"""


def percentiles(samples: list[float]) -> tuple[float, float]:
    return float(np.percentile(samples, 50)), float(np.percentile(samples, 95))


def time_calls(fn, x, repeat: int) -> list[float]:
    fn(x)  # warm-up
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t) * 1000)
    return out


ENGINES = {  # name -> (runtime, precision, memory arena)
    "torch eager fp32": ("torch", "fp32", True),
    "onnxruntime fp32": ("ort", "fp32", True),
    "ort fp32, no arena": ("ort", "fp32", False),
    "onnxruntime int8": ("ort", "int8", True),
    "ort int8, no arena": ("ort", "int8", False),
}


def measure(engine: str, folder: Path, files: list[Path], threads: int, repeat: int
            ) -> dict[str, float]:
    """One engine's latency and throughput; run in a process of its own (see main)."""
    runtime, precision, arena = ENGINES[engine]
    clf = Classifier(folder, precision=precision, threads=threads, memory_arena=arena)
    x = np.stack([to_array(f, clf.preprocess) for f in files])
    if runtime == "torch":
        import torch

        from model_training.pipeline import load_checkpoint

        torch.set_num_threads(threads)
        model, _, _ = load_checkpoint(folder)

        def fn(batch: np.ndarray) -> None:
            with torch.inference_mode():
                model(torch.from_numpy(batch))
    else:
        fn = clf.run
    lat = time_calls(fn, x[:1], repeat)
    thr = time_calls(fn, x[:16], max(10, repeat // 8))
    p50, p95 = percentiles(lat)
    return {"engine": engine, "b1_p50": p50, "b1_p95": p95,
            "b16_img_s": 16000 / float(np.median(thr))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=ROOT / "models")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "memes")
    ap.add_argument("--repeat", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", choices=sorted(ENGINES), help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = resolve_model_dir(args.model)
    files = sorted(p for p in args.data.rglob("*")
                   if p.suffix.lower() in {".jpg", ".png", ".webp"})[::50][:32]
    if args.worker:
        print(json.dumps(measure(args.worker, folder, files, args.threads, args.repeat)))
        return
    # Each engine in a fresh process, one after the other: in one process, the idle thread pools
    # of the engines timed before (torch's OpenMP, each onnxruntime session's) spin and steal the
    # 2 cores from the engine being timed (measured: fp32 14 ms in-process vs 6 ms alone).
    engines = [e for e, (_, precision, _) in ENGINES.items()
               if precision == "fp32" or (folder / "model.int8.onnx").is_file()]
    rows = []
    for engine in engines:
        out = subprocess.run([sys.executable, __file__, "--worker", engine,
                              "--model", str(args.model), "--data", str(args.data),
                              "--repeat", str(args.repeat), "--threads", str(args.threads)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    input_size = ModelMeta.load(folder).preprocess_config().input_size
    base = rows[0]
    print(f"model {folder.name}, {args.threads} threads, input {input_size}px")
    print(f"{'engine':<20} {'b1 p50 ms':>10} {'b1 p95 ms':>10} {'x torch':>8} {'b16 img/s':>10}"
          f" {'x torch':>8}")
    for r in rows:
        print(f"{r['engine']:<20} {r['b1_p50']:>10.1f} {r['b1_p95']:>10.1f}"
              f" {base['b1_p50'] / r['b1_p50']:>8.2f}"
              f" {r['b16_img_s']:>10.1f} {r['b16_img_s'] / base['b16_img_s']:>8.2f}")
    print()
    print(f"{'inference-only process':<30} {'load s':>8} {'peak RSS MB':>12} {'torch loaded':>13}")
    for precision in ("fp32", "int8") if "onnxruntime int8" in engines else ("fp32",):
        for arena in ("arena", "no-arena"):
            out = subprocess.run(
                [sys.executable, "-c", RSS_PROBE, str(folder), precision, arena,
                 *map(str, files[:16])],
                capture_output=True, text=True, check=True, cwd=ROOT,
            )
            probe = json.loads(out.stdout.strip().splitlines()[-1])
            name = f"ort {precision} {arena}, batch 16"
            print(f"{name:<30} {probe['load_s']:>8.2f} {probe['rss_mb']:>12.0f}"
                  f" {probe['torch']!s:>13}")


if __name__ == "__main__":
    main()
