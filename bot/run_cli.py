"""`memebot run`: start the bot(s) configured in Settings. Never imports torch."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bot.errors import ConfigError, SwitchError
from inference.errors import ModelError
from storage.errors import StorageError

ERRORS: tuple[type[BaseException], ...] = (ConfigError, SwitchError, ModelError, StorageError)


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


def _run(args: argparse.Namespace) -> int:
    from bot.process import serve
    from config.settings import Settings

    asyncio.run(serve(Settings()))
    return 0
