"""`memebot trainer`: the retrain job loop. Imports nothing heavy until it runs (`memebot run`
builds its parser too, and the bot process never imports torch)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Any

from inference.errors import ModelError
from model_training.promotion import RetrainError
from storage.errors import StorageError

ERRORS: tuple[type[BaseException], ...] = (
    RetrainError,
    ModelError,
    StorageError,
    FileNotFoundError,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "trainer",
        help="run retrain jobs queued by /retrain (needs the [train] extra)",
        description="Claim retrain jobs from the database (MEMEBOT_DATABASE_URL), retrain from the "
        "admins' corrections, and promote the new model when it passes the gate. Polls until "
        "stopped unless --once.",
    )
    p.add_argument("--once", action="store_true", help="process at most one queued job, then exit")
    p.add_argument("--poll", type=float, default=5.0, help="seconds between queue polls")
    p.add_argument(
        "--worker", default=None, help="worker name in the job record (default host:pid)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument(
        "--nice", type=int, default=10, help="lower CPU priority so bots keep answering (0: off)"
    )
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--dataset-dir", type=Path, default=None)
    p.set_defaults(func=_trainer)


def _trainer(args: argparse.Namespace) -> int:
    from config.settings import Settings
    from model_training.trainer import run_trainer, worker_name

    settings = Settings()
    if args.model_dir is not None:
        settings.model_dir = args.model_dir
    if args.dataset_dir is not None:
        settings.dataset_dir = args.dataset_dir
    if args.nice:
        with contextlib.suppress(OSError):
            os.nice(args.nice)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        outcomes = await run_trainer(
            settings,
            once=args.once,
            stop=stop,
            worker=args.worker or worker_name(),
            poll_interval_s=args.poll,
            threads=args.threads,
        )
        for o in outcomes:
            print(f"job {o.job.id}: {o.job.status}" + (f" ({o.error})" if o.error else ""))
            if o.result is not None:
                print(o.result.summary())
        return 1 if any(o.error for o in outcomes) else 0

    return asyncio.run(main())
