"""`memebot train | evaluate | export-check | data fetch`: thin entry points over model_training."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from inference.errors import ImageError, ModelError

log = logging.getLogger(__name__)

ERRORS: tuple[type[Exception], ...] = (ModelError, ImageError, FileNotFoundError)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune and export a model from a folder of class folders")
    p.add_argument("data", type=Path, help="DATA/<label>/*.jpg (or DATA/train/<label>/...)")
    p.add_argument("--model-dir", type=Path, default=None, help="where model versions go (default: settings)")
    p.add_argument("--cache-dir", type=Path, default=None)
    p.add_argument("--backbone", default="tf_efficientnet_lite0", help="any timm model name")
    p.add_argument("--checkpoint", type=Path, help="local weights for --backbone (no download)")
    p.add_argument("--epochs", type=int, default=None, help="fine-tuning epochs (0: head only)")
    p.add_argument("--finetune-blocks", type=int, default=None)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--holdout-source", help="an 'other' source (MANIFEST.csv) kept out to test OOD")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-int8", action="store_true", help="skip the int8 export")
    p.add_argument("--no-text", action="store_true", help="do not read memes' text (Tesseract OCR)")
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="metrics and plots of a model on a labelled folder")
    e.add_argument("data", type=Path)
    e.add_argument("--model", type=Path, default=None, help="model folder (default: active)")
    e.add_argument("--out", type=Path, default=Path("reports/evaluation"))
    e.set_defaults(func=_evaluate)

    d = sub.add_parser("data", help="datasets")
    dsub = d.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    f = dsub.add_parser("fetch", help="download the Kaggle doom-crossing dataset (needs internet)")
    f.add_argument("--out", type=Path, default=Path("data/memes"))
    f.set_defaults(func=_fetch)


def _settings():  # lazily: settings read the environment
    from config.settings import Settings

    return Settings()


def _train(args: argparse.Namespace) -> int:
    from model_training.pipeline import TrainConfig, train

    s = _settings()
    cfg = TrainConfig(
        data_dir=args.data,
        model_dir=args.model_dir or s.model_dir,
        cache_dir=args.cache_dir or s.data_dir / "cache",
        backbone=args.backbone,
        checkpoint=args.checkpoint,
        input_size=args.input_size,
        holdout_source=args.holdout_source,
        seed=args.seed,
        int8=not args.no_int8,
        read_text=not args.no_text,
        threads=args.threads,
    )
    if args.epochs is not None:
        cfg.finetune_epochs = args.epochs
    if args.finetune_blocks is not None:
        cfg.finetune_blocks = args.finetune_blocks
    result = train(cfg)
    test = result.meta.metrics.get("test", {})
    print(f"model {result.meta.version} -> {result.model_path}")
    for key in ("accuracy", "game_accuracy", "games_kept", "other_auroc"):
        if key in test:
            print(f"  test {key}: {test[key]:.4f}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from model_training.evaluate import evaluate_folder

    model = args.model or _settings().model_dir
    result = evaluate_folder(model, args.data, args.out)
    m = result.metrics
    print(json.dumps({k: v for k, v in m.items() if k not in ("confusion_matrix", "per_class", "failures")}, indent=2))
    if result.failures:
        print(f"{len(result.failures)} file(s) could not be classified (see {args.out / 'metrics.json'})")
    print(f"report: {args.out}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from model_training.fetch import fetch_kaggle

    path = fetch_kaggle(args.out)
    print(f"dataset ready: {path}")
    return 0
