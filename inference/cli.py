"""`memebot predict PATHS...`: one line per image or clip, or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from inference.errors import ModelError

ERRORS: tuple[type[Exception], ...] = (ModelError,)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("predict", help="classify image files and clips (MP4, WebM, GIF, ...)")
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument(
        "--model", type=Path, default=None, help="model folder (default: the active one)"
    )
    p.add_argument("--precision", choices=("auto", "int8", "fp32"), default="auto")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    words = p.add_mutually_exclusive_group()
    words.add_argument("--caption", default=None, help="the words posted with the image(s)")
    words.add_argument("--captions", type=Path, default=None, metavar="CSV",
                       help="a CSV with columns path,caption (a MANIFEST.csv works too)")
    p.set_defaults(func=_predict)


def _expand(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p])
    return out


def _predict(args: argparse.Namespace) -> int:
    from config.settings import Settings
    from inference.captions import read_captions
    from inference.classifier import Classifier, PredictionError

    files = _expand(args.paths)
    captions: list[str | None] | None = None
    if args.caption is not None:
        captions = [args.caption] * len(files)
    elif args.captions is not None:
        try:
            known = read_captions(args.captions)
        except ValueError as exc:
            print(f"memebot predict: {exc}", file=sys.stderr)
            return 2
        captions = [known.get(f.resolve()) for f in files]
        matched = sum(c is not None for c in captions)
        if not matched:
            print(
                f"memebot predict: none of the {len(files)} image(s) has a row in "
                f"{args.captions} ({len(known)} rows); its relative paths are read from "
                f"{args.captions.resolve().parent}, or write absolute paths",
                file=sys.stderr,
            )
            return 2
        # A partial match is legitimate (a manifest of a larger set), but never silent.
        print(
            f"captions: {matched} of {len(files)} image(s) matched a row of {args.captions}",
            file=sys.stderr,
        )
    clf = Classifier(args.model or Settings().model_dir, precision=args.precision)
    failed = 0
    for path, media in zip(files, clf.predict_media(files, captions=captions), strict=True):
        result = media.result
        if isinstance(result, PredictionError):
            failed += 1
            if args.json:
                print(json.dumps({"path": str(path), "error": result.error}))
            else:
                print(f"{path}\tERROR\t{result.error}", file=sys.stderr)
            continue
        if args.json:
            # The embedding (1280 floats) is not for a terminal.
            row = {k: v for k, v in asdict(result).items() if k != "embedding"}
            unsure = clf.meta.is_unsure(result.label, result.confidence)
            clip = {"kind": media.kind.value, "duration_s": media.duration_s,
                    "frames_used": media.frames_used} if media.kind != "still" else {}
            print(json.dumps({"path": str(path), **row, **clip, "unsure": unsure}))
        else:
            suffix = " (unlike known memes)" if result.is_ood else ""
            if clf.meta.is_unsure(result.label, result.confidence):
                suffix = " (not sure)"
            if media.kind != "still":
                suffix += f" ({media.kind}, {media.frames_used} frames)"
            print(f"{path}\t{result.label}\t{result.confidence:.1%}{suffix}")
    return 1 if failed and failed == len(files) else 0



