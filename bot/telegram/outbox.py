"""`Outbox` for Telegram: t.me links to messages, sorted copies via copyMessage into a forum
topic or another chat, and their removal."""

from __future__ import annotations

import logging

from telegram import Bot
from telegram.error import TelegramError

from bot.core.messages import ChatRef, ForwardCopy, ForwardError
from bot.telegram.sending import with_flood_retry

log = logging.getLogger(__name__)


def parse_place(place: str, chat_id: str) -> tuple[int, int | None]:
    """(chat, topic) for a place: "12" is topic 12 of this (forum) chat, "-100555" another
    chat, "-100555:12" topic 12 of another chat."""
    chat, sep, topic = place.strip().partition(":")
    try:
        if not sep and not chat.startswith("-"):
            return int(chat_id), int(chat)
        return int(chat), int(topic) if sep else None
    except ValueError:
        raise ForwardError(
            f"{place!r} is not a Telegram place (a topic id, a chat id, or chat:topic)"
        ) from None


class TelegramOutbox:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def link(self, chat: ChatRef, message_id: str) -> str | None:
        # Supergroups and channels (ids -100...) have t.me/c links, visible to their members.
        if chat.chat_id.startswith("-100") and message_id.isdigit():
            return f"https://t.me/c/{chat.chat_id[4:]}/{message_id}"
        return None

    async def send_copy(self, copy: ForwardCopy) -> str:
        target, topic = parse_place(copy.place, copy.chat.chat_id)
        try:
            sent = await with_flood_retry(lambda: self.bot.copy_message(
                chat_id=target, from_chat_id=int(copy.chat.chat_id),
                message_id=int(copy.message_id), message_thread_id=topic, caption=copy.text,
            ))
        except TelegramError as exc:
            raise ForwardError(exc.message) from exc
        return f"{target}:{sent.message_id}"

    async def delete_copy(self, chat: ChatRef, place: str, copy_id: str) -> bool:
        target, _, message_id = copy_id.rpartition(":")
        try:
            return bool(await self.bot.delete_message(int(target), int(message_id)))
        except (TelegramError, ValueError) as exc:
            log.info("copy %s in %s not removed: %s", copy_id, place, exc)
            return False
