"""Other views of the image for doom vs Animal Crossing (issue 24's 95% goal): does a higher
input size, a mirrored copy or their average move image-only accuracy?

Frozen tf_efficientnet_lite0 embeddings of the shared doom/AC memes (n=1434) per view, the
issue's baseline head (standardised logistic regression), 5-fold stratified CV; each view
against the served one (224 px, squashed) with a paired McNemar test. The images are all
300x300, so a letterbox view equals the squashed one and is not listed.

    python benchmarks/bench_views.py [--data ../shared/data/memes] [--cache-dir var/cache]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_predict  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from benchmarks.bench_model import mcnemar_p  # noqa: E402
from inference.preprocess import PreprocessConfig  # noqa: E402
from model_training.backbone import DEFAULT_BACKBONE, create_backbone  # noqa: E402
from model_training.data import scan_folder  # noqa: E402
from model_training.embeddings import EmbeddingCache, cache_key, embed  # noqa: E402


class Mirrored(torch.nn.Module):
    """The backbone on the left-right mirror of its input."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(torch.flip(x, dims=[3]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/memes")
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "var/cache")
    args = ap.parse_args()
    samples = [s for s in scan_folder(args.data, progress=False).samples
               if s.label in ("doom", "animal_crossing")]
    y = np.array([s.label == "doom" for s in samples], int)
    backbone = create_backbone(DEFAULT_BACKBONE)
    served = PreprocessConfig()
    bigger = replace(served, input_size=288)

    def vectors(model: torch.nn.Module, cfg: PreprocessConfig, tag: str = "") -> np.ndarray:
        start = time.perf_counter()
        cache = EmbeddingCache(args.cache_dir, tag + cache_key(DEFAULT_BACKBONE, cfg))
        x = embed(model, samples, cfg, cache, progress=True)
        print(f"  {tag or 'plain '}{cfg.input_size}px: {time.perf_counter() - start:.0f} s",
              file=sys.stderr)
        return x

    x224, x288 = vectors(backbone, served), vectors(backbone, bigger)
    xflip = vectors(Mirrored(backbone), served, "mirrored-")
    views = {"224 px squashed (served)": x224, "288 px": x288, "224 px mirrored": xflip,
             "mean(224, mirrored)": (x224 + xflip) / 2, "mean(224, 288)": (x224 + x288) / 2,
             "mean(224, mirrored, 288)": (x224 + xflip + x288) / 3}
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    right: dict[str, np.ndarray] = {}
    print(f"doom vs AC, image alone, 5-fold CV (n={len(y)})")
    print(f"{'view':<26} {'accuracy':>9} {'fixed':>6} {'broken':>7} {'McNemar p':>10}  cost")
    for name, x in views.items():
        head = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
        p = cross_val_predict(head, x, y, cv=folds, method="predict_proba")[:, 1]
        right[name] = (p > 0.5) == y
        base = next(iter(right.values()))
        fixed, broken = int(np.sum(right[name] & ~base)), int(np.sum(~right[name] & base))
        # backbone compute against the served view ((288/224)^2 = 1.65)
        cost = {"288 px": "1.65x", "mean(224, mirrored)": "2x", "mean(224, 288)": "2.65x",
                "mean(224, mirrored, 288)": "3.65x"}.get(name, "1x")
        print(f"{name:<26} {right[name].mean():>9.4f} {fixed:>6} {broken:>7} "
              f"{mcnemar_p(right[name], base):>10.2f}  {cost} backbone runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
