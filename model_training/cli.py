"""`memebot train | evaluate | export-check | data fetch`: thin entry points over model_training."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from inference.errors import ImageError, ModelError
from model_training.report.errors import ReportError

log = logging.getLogger(__name__)

ERRORS: tuple[type[Exception], ...] = (ModelError, ImageError, FileNotFoundError, ReportError)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fine-tune and export a model from a folder of class folders")
    p.add_argument("data", type=Path, help="DATA/<label>/*.jpg (or DATA/train/<label>/...)")
    p.add_argument(
        "--model-dir", type=Path, default=None, help="where model versions go (default: settings)"
    )
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
    p.add_argument("--no-encoder", action="store_true",
                   help="weigh the words with the bag of words only (no sentence encoder)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--no-report", action="store_true", help="do not write report.html into the model folder"
    )
    p.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="metrics and plots of a model on a labelled folder")
    e.add_argument("data", type=Path)
    e.add_argument("--model", type=Path, default=None, help="model folder (default: active)")
    e.add_argument("--out", type=Path, default=Path("reports/evaluation"))
    e.set_defaults(func=_evaluate)

    r = sub.add_parser(
        "report",
        help="the model report: one self-contained HTML file (metrics, mistakes, "
        "learned or lucky, neither game, a new class)",
    )
    r.add_argument(
        "--model",
        default=None,
        help="a version name in --model-dir, or a model folder (default: active)",
    )
    r.add_argument(
        "--model-dir", type=Path, default=None, help="folder of model versions (default: settings)"
    )
    r.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for report.html (default: the model's folder)",
    )
    r.add_argument(
        "--data", type=Path, default=None, help="the base dataset (default: recorded at training)"
    )
    r.add_argument("--cache-dir", type=Path, default=None)
    r.add_argument(
        "--permutations", type=int, default=200, help="label-permutation refits (default 200)"
    )
    r.add_argument("--no-gradcam", action="store_true", help="leave out the Grad-CAM heat maps")
    r.add_argument("--threads", type=int, default=None)
    r.set_defaults(func=_report)

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
        text_encoder=not args.no_encoder,
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
    if not args.no_report:
        from model_training.report.build import build_report
        from model_training.report.context import ReportOptions

        try:
            report = build_report(
                result.model_path,
                dataset_dir=cfg.data_dir,
                cache_dir=cfg.cache_dir,
                options=ReportOptions(progress=cfg.progress),
            )
            print(f"report: {report.path} ({report.seconds:.0f} s)")
        except ReportError as exc:  # the model is written and usable either way
            log.warning("no report: %s", exc)
    return 0


def _report(args: argparse.Namespace) -> int:
    from inference.metadata import resolve_model_dir
    from model_training.report.build import build_report
    from model_training.report.context import ReportOptions

    s = _settings()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model_dir = Path(args.model_dir or s.model_dir)
    if args.model and (Path(args.model) / "meta.json").is_file():
        folder = Path(args.model)  # a model folder given by path
    else:  # a version name, or the active version
        folder = resolve_model_dir(model_dir / args.model if args.model else model_dir)
    result = build_report(
        folder,
        dataset_dir=args.data or s.dataset_dir,
        cache_dir=args.cache_dir or s.data_dir / "cache",
        out_dir=args.out,
        options=ReportOptions(
            permutations=max(args.permutations, 0), gradcam=not args.no_gradcam, progress=True
        ),
    )
    print(f"report: {result.path} ({result.bytes / 1e6:.1f} MB, {result.seconds:.0f} s)")
    for step, seconds in result.timings.items():
        print(f"  {step}: {seconds:.1f} s")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from model_training.evaluate import evaluate_folder

    model = args.model or _settings().model_dir
    result = evaluate_folder(model, args.data, args.out)
    m = result.metrics
    print(
        json.dumps(
            {k: v for k, v in m.items() if k not in ("confusion_matrix", "per_class", "failures")},
            indent=2,
        )
    )
    if result.failures:
        print(
            f"{len(result.failures)} file(s) could not be classified (see "
            f"{args.out / 'metrics.json'})"
        )
    print(f"report: {args.out}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from model_training.fetch import fetch_kaggle

    path = fetch_kaggle(args.out)
    print(f"dataset ready: {path}")
    return 0
