"""`memebot run`: start the bot(s) configured in Settings. Never imports torch."""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import sys
from typing import Any

from bot.errors import ConfigError, SwitchError
from inference.errors import ModelError
from storage.errors import StorageError

ERRORS: tuple[type[BaseException], ...] = (ConfigError, SwitchError, ModelError, StorageError)

# mallopt(3) parameters (glibc's malloc.h).
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8
MMAP_THRESHOLD = 128 * 1024  # glibc's initial value, kept from growing


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="start the bot(s) for every configured token",
        description="Start the Telegram bot (MEMEBOT_TELEGRAM_TOKEN), the Discord bot "
        "(MEMEBOT_DISCORD_TOKEN), both in one process when both are set, the web console (no "
        "token, or MEMEBOT_CONSOLE_ENABLED) and, with SQLite (MEMEBOT_TRAINER=subprocess), the "
        "retrain trainer as a supervised subprocess; settings come from MEMEBOT_* environment "
        "variables and .env. Telegram polls unless MEMEBOT_TELEGRAM_WEBHOOK_URL is set.",
    )
    p.set_defaults(func=_run)


def tune_malloc(arena_max: int) -> None:
    """Keep glibc malloc from holding on to freed memory (bot peak RSS, issue 20).

    The bot frees large buffers all the time: onnxruntime's activations (no memory arena, see
    inference/classifier.py), decoded images, numpy batches. glibc serves blocks over its mmap
    threshold with mmap and unmaps them on free, but raises the threshold to the size of each
    such block freed (up to 32 MiB): from then on they come from the heap, where freed memory
    stays resident. And each of the ~20 threads (classification, OCR, to_thread, aiosqlite,
    onnxruntime) may get its own arena (up to 8 a core), each keeping its own free memory.
    Measured with benchmarks/bench_bot.py (burst of 100, 2 shared cores, before and after side
    by side): peak RSS 406 -> 277 MB (Telegram), 337 -> 265 MB (Discord); idle 245 -> 200 MB
    and 240 -> 190 MB. The threshold does most of it (peak 276 MB alone; the arena cap alone
    363 MB): an int8 session kept 55-96 MB after six batch-2 runs, 18 MB with it pinned. The
    price: the pages of each large buffer are faulted in again, +5-15 ms a batch-2 model run
    (of ~15-25 ms; OCR, ~140 ms a meme, dominates a reply). Called before the libraries load;
    MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ win when set.
    """
    if arena_max <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: its allocator keeps its own defaults
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(_M_ARENA_MAX, arena_max)
    if not any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def _run(args: argparse.Namespace) -> int:
    from config.settings import Settings

    settings = Settings()
    tune_malloc(settings.malloc_arena_max)
    from bot.process import serve  # the heavy libraries load after tune_malloc

    asyncio.run(serve(settings))
    return 0
