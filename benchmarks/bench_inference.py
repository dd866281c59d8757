"""Inference speed: onnxruntime (fp32, int8) vs torch eager, in one run, on real memes.

Prints batch-1 latency p50/p95, batch-16 throughput, the ratios against torch, model load
time and the peak RSS of an inference-only process (one that never imports torch).

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
from inference.metadata import resolve_model_dir  # noqa: E402
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=ROOT / "models")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "memes")
    ap.add_argument("--repeat", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    folder = resolve_model_dir(args.model)
    files = sorted(p for p in args.data.rglob("*") if p.suffix.lower() in {".jpg", ".png", ".webp"})[::50][:32]
    fp32 = Classifier(folder, precision="fp32", threads=args.threads, memory_arena=True)
    x = np.stack([to_array(f, fp32.preprocess) for f in files])
    x1, x16 = x[:1], x[:16]

    rows = []
    import torch

    from model_training.pipeline import load_checkpoint

    torch.set_num_threads(args.threads)
    model, _, _ = load_checkpoint(folder)

    def torch_run(batch: np.ndarray) -> None:
        with torch.inference_mode():
            model(torch.from_numpy(batch))

    engines = {"torch eager fp32": torch_run, "onnxruntime fp32": fp32.run}
    engines["ort fp32, no arena"] = Classifier(folder, precision="fp32", threads=args.threads).run
    if (folder / "model.int8.onnx").is_file():
        engines["onnxruntime int8"] = Classifier(folder, precision="int8", threads=args.threads, memory_arena=True).run
        engines["ort int8, no arena"] = Classifier(folder, precision="int8", threads=args.threads).run
    for name, fn in engines.items():
        lat = time_calls(fn, x1, args.repeat)
        thr = time_calls(fn, x16, max(10, args.repeat // 8))
        p50, p95 = percentiles(lat)
        rows.append({"engine": name, "b1_p50": p50, "b1_p95": p95, "b16_img_s": 16000 / float(np.median(thr))})
    base = rows[0]
    print(f"model {folder.name}, {args.threads} threads, input {fp32.preprocess.input_size}px")
    print(f"{'engine':<20} {'b1 p50 ms':>10} {'b1 p95 ms':>10} {'x torch':>8} {'b16 img/s':>10} {'x torch':>8}")
    for r in rows:
        print(f"{r['engine']:<20} {r['b1_p50']:>10.1f} {r['b1_p95']:>10.1f} {base['b1_p50'] / r['b1_p50']:>8.2f}"
              f" {r['b16_img_s']:>10.1f} {r['b16_img_s'] / base['b16_img_s']:>8.2f}")
    print()
    print(f"{'inference-only process':<30} {'load s':>8} {'peak RSS MB':>12} {'torch loaded':>13}")
    for precision in ("fp32", "int8") if "onnxruntime int8" in engines else ("fp32",):
        for arena in ("arena", "no-arena"):
            out = subprocess.run(
                [sys.executable, "-c", RSS_PROBE, str(folder), precision, arena, *map(str, files[:16])],
                capture_output=True, text=True, check=True, cwd=ROOT,
            )
            probe = json.loads(out.stdout.strip().splitlines()[-1])
            name = f"ort {precision} {arena}, batch 16"
            print(f"{name:<30} {probe['load_s']:>8.2f} {probe['rss_mb']:>12.0f} {str(probe['torch']):>13}")


if __name__ == "__main__":
    main()
