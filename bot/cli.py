"""The `memebot` command: a thin dispatcher; each package registers its own subcommands.

Subcommand modules import their heavy dependencies (torch, SQLAlchemy engines) lazily so
that `memebot predict` or `memebot run` never pay for torch.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from bot.logs import quiet_libraries

# Each module exposes `register(subparsers) -> None` (a parser's `func(args) -> int` runs it)
# and may expose `ERRORS`, exception types whose message is shown without a traceback.
_COMMAND_MODULES = (
    "model_training.cli",
    "model_training.trainer_cli",
    "inference.cli",
    "storage.cli",
    "bot.run_cli",
)


def _command_modules() -> list[ModuleType]:
    return [importlib.import_module(name) for name in _COMMAND_MODULES]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="memebot", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    quiet_libraries()
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    user_errors = tuple(e for m in _command_modules() for e in getattr(m, "ERRORS", ()))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except user_errors as exc:
        print(f"memebot: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
