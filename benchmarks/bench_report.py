r"""The model report and the walkthrough notebook on the shared memes (issue 14).

Needs a model trained on ../shared/data/memes (embeddings and OCR cached by that training):

    .venv/bin/memebot train ../shared/data/memes --model-dir /tmp/models --cache-dir var/cache
    .venv/bin/python benchmarks/bench_report.py --models /tmp/models --cache-dir var/cache \
        [--skip-notebook]

Prints: report generation time (embeddings cached) and the permutation test's share, each step's
time, the file size, the notebook's run time, and the four answers with their numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.metadata import resolve_model_dir  # noqa: E402
from model_training.report.build import build_report  # noqa: E402
from model_training.report.context import ReportOptions  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "doom_vs_animal_crossing.ipynb"


def run_notebook(models: Path, data: Path, cache: Path, permutations: int) -> float:
    import nbclient
    import nbformat

    os.environ |= {"MEMEBOT_NOTEBOOK_DATA": str(data), "MEMEBOT_NOTEBOOK_MODELS": str(models),
                   "MEMEBOT_NOTEBOOK_CACHE": str(cache),
                   "MEMEBOT_NOTEBOOK_PERMUTATIONS": str(permutations)}
    nb = nbformat.read(NOTEBOOK, as_version=4)
    t0 = time.perf_counter()
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=1800,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, default=ROOT / "models")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "memes")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "var" / "cache")
    ap.add_argument("--out", type=Path, default=None,
                    help="where report.html goes (default: the model folder)")
    ap.add_argument("--permutations", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-notebook", action="store_true")
    args = ap.parse_args()
    args.models, args.data, args.cache_dir = (
        p.resolve() for p in (args.models, args.data, args.cache_dir)
    )
    import torch

    torch.set_num_threads(args.threads)
    folder = resolve_model_dir(args.models)
    r = build_report(folder, dataset_dir=args.data, cache_dir=args.cache_dir, out_dir=args.out,
                     options=ReportOptions(permutations=args.permutations))
    s = r.summary
    perm = s.get("permutation_seconds", 0.0)
    print(f"\nmodel report of {s['version']} on {args.data} ({args.threads} threads)")
    print(f"{'measure':<44} {'value':>12}")
    print(f"{'report generation (embeddings cached)':<44} {r.seconds:>10.1f} s")
    print(f"{'  of which the permutation test':<44} {perm:>10.1f} s ({perm / r.seconds:.0%}, "
          f"{s.get('permutations')} refits)")
    for step, seconds in r.timings.items():
        print(f"{'  ' + step:<44} {seconds:>10.1f} s")
    print(f"{'report.html size':<44} {r.bytes / 1e6:>10.2f} MB")
    if not args.skip_notebook:
        seconds = run_notebook(args.models, args.data, args.cache_dir, args.permutations)
        print(f"{'notebook, top to bottom (nbclient)':<44} {seconds:>10.1f} s")
    n_test = s.get("n_wrong", 0)
    print("\nThe four answers:")
    top = max(((k, v) for k, v in s.get("mistakes", {}).items() if k != "none of these"),
              key=lambda kv: kv[1], default=("none", 0))
    print(f"1. wrong: {n_test} test memes; accuracy {s['accuracy']:.1%} "
          f"(95% CI {s['accuracy_ci95'][0]:.1%}-{s['accuracy_ci95'][1]:.1%}); "
          f"most common measured cause '{top[0]}' ({top[1]} mistakes)")
    if "permutation_p" in s:
        print(f"2. learned: head {s['permutation_observed']:.3f} "
              f"vs shuffled max {s['permutation_null_max']:.3f} "
              f"(mean {s['permutation_null_mean']:.3f}), permutation p = {s['permutation_p']:.3g}, "
              f"binomial p = {s['binomial_p']:.2g}")
    print(f"3. neither game: other AUROC {s['other_auroc']:.3f}, "
          f"FPR at 95% TPR {s['other_fpr_at_95tpr']:.1%}, "
          f"other caught {s['other_recall']:.1%}, game memes kept {s['games_kept']:.1%}; "
          f"leave-one-source-out AUROC "
          f"{ {k: round(v, 3) for k, v in s.get('leave_one_source_out', {}).items()} }")
    nc = s.get("new_class")
    print("4. new class: "
          + (f"{nc}" if nc else "this version added none (see bench_retrain.py for genshin)"))


if __name__ == "__main__":
    main()
