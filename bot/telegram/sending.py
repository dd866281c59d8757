"""Calls to the Bot API that respect Telegram's flood control instead of losing the reply."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TypeVar

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import BadRequest, RetryAfter

from bot.core.messages import Button, Reply
from bot.core.service import parse_payload

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 4
MAX_WAIT_S = 60.0
BUTTONS_PER_ROW = 3
SHORT_BUTTON = 20  # characters


def _post_of(button: Button) -> int | None:
    parsed = parse_payload(button.payload)
    return parsed[0] if parsed is not None else None


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's buttons, BUTTONS_PER_ROW a row; an album's items each start a new row."""
    if not reply.buttons:
        return None
    rows: list[list[InlineKeyboardButton]] = []
    for _, group in itertools.groupby(reply.buttons, key=_post_of):
        buttons = [InlineKeyboardButton(b.text, callback_data=b.payload) for b in group]
        # Labels share a row; longer texts (the settings menu) get a row each to stay readable.
        per_row = (BUTTONS_PER_ROW if all(len(b.text) <= SHORT_BUTTON for b in buttons)
                   else 1)
        rows += [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]
    return InlineKeyboardMarkup(rows)


async def with_flood_retry(call: Callable[[], Awaitable[T]]) -> T:
    """Run `call`, waiting out Telegram's RetryAfter (a busy group gets ~20 messages/min)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return await call()
        except RetryAfter as exc:
            if attempt == MAX_ATTEMPTS:
                raise
            wait = exc.retry_after
            seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
            log.warning("flood control: waiting %.1f s (attempt %d)", seconds, attempt)
            await asyncio.sleep(min(seconds, MAX_WAIT_S))
    raise AssertionError("unreachable")


def is_not_modified(exc: BadRequest) -> bool:
    """Editing a message to the text it already has is harmless, but Telegram reports it."""
    return "not modified" in exc.message.lower()


def is_caption_only(exc: BadRequest) -> bool:
    """Editing the text of a message that has a caption instead (a photo)."""
    return "no text in the message" in exc.message.lower()
