"""`ChatPort` for Telegram: replies, edits, deletes, reactions and sends (text, or a stored
image with its buttons) through the Bot API (waiting out flood control), t.me links to
messages, and sorted copies via copyMessage into a forum topic or another chat."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from telegram import Bot, ReplyParameters
from telegram.constants import MessageLimit
from telegram.error import BadRequest, TelegramError

from bot.core.messages import Actor, ChatRef, ForwardCopy, ForwardError, Reply
from bot.telegram.sending import is_caption_only, is_not_modified, keyboard, with_flood_retry

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


# Called with (platform, chat id, message id) when a meme turns out to be deleted.
GoneCallback = Callable[[str, str, str], Awaitable[object]]


def _answering(message_id: str | None, *, without_it: bool = True) -> ReplyParameters | None:
    if message_id is None or not message_id.isdigit():
        return None
    return ReplyParameters(int(message_id), allow_sending_without_reply=without_it)


def is_reply_target_gone(exc: TelegramError) -> bool:
    """"Message to reply to not found": the message was deleted."""
    return isinstance(exc, BadRequest) and "reply" in exc.message.lower() and (
        "not found" in exc.message.lower())


class TelegramPort:
    platform = "telegram"

    def __init__(self, bot: Bot, image_of: Callable[[int], Awaitable[Path]],
                 gone: GoneCallback | None = None) -> None:
        self.bot = bot
        self.image_of = image_of  # post id -> the stored image file
        self._gone = gone

    async def send_image(self, chat_id: str, reply: Reply) -> str | None:
        if reply.post_id is None:
            return None
        try:
            path = await self.image_of(reply.post_id)
            data = await asyncio.to_thread(path.read_bytes)
            sent = await with_flood_retry(lambda: self.bot.send_photo(
                chat_id, data, caption=reply.text[:MessageLimit.CAPTION_LENGTH],
                reply_markup=keyboard(reply),
            ))
        except (TelegramError, OSError) as exc:
            log.warning("image of post %s not sent to chat %s: %s", reply.post_id, chat_id, exc)
            return None
        return str(sent.message_id)

    async def react(self, chat: ChatRef, message_id: str, emoji: str) -> bool:
        try:
            return bool(await with_flood_retry(lambda: self.bot.set_message_reaction(
                chat.chat_id, int(message_id), emoji)))
        except TelegramError as exc:  # reactions off in the chat, an emoji not allowed, ...
            log.info("no reaction on message %s in chat %s: %s", message_id, chat.chat_id, exc)
            return False

    async def reply(self, chat: ChatRef, message_id: str, reply: Reply) -> str | None:
        """Answer a meme; a meme deleted meanwhile gets no answer and is marked deleted."""
        try:
            sent = await with_flood_retry(lambda: self.bot.send_message(
                chat.chat_id, reply.text, reply_markup=keyboard(reply),
                reply_parameters=_answering(message_id, without_it=False),
            ))
        except TelegramError as exc:
            if is_reply_target_gone(exc) and self._gone is not None:
                log.info("message %s in chat %s was deleted", message_id, chat.chat_id)
                await self._gone(self.platform, chat.chat_id, message_id)
            else:  # a chat the bot left, no right to post, ...
                log.warning("message not sent to chat %s: %s", chat.chat_id, exc)
            return None
        return str(sent.message_id)

    async def send(self, chat_id: str, reply: Reply, *, reply_to: str | None = None,
                   mention: Actor | None = None) -> str | None:
        if mention is not None:
            reply = Reply(f"{mention.display_name}: {reply.text}", reply.buttons, reply.post_id)
        return await self._send(chat_id, reply, _answering(reply_to))

    async def _send(self, chat_id: str, reply: Reply, answering: ReplyParameters | None
                    ) -> str | None:
        try:
            sent = await with_flood_retry(lambda: self.bot.send_message(
                chat_id, reply.text, reply_markup=keyboard(reply), reply_parameters=answering,
            ))
        except TelegramError as exc:  # a chat the bot left, no right to post, ...
            log.warning("message not sent to chat %s: %s", chat_id, exc)
            return None
        return str(sent.message_id)

    async def edit(self, chat: ChatRef, message_id: str, reply: Reply) -> bool:
        try:
            try:
                await with_flood_retry(lambda: self.bot.edit_message_text(
                    reply.text, chat_id=chat.chat_id, message_id=int(message_id),
                    reply_markup=keyboard(reply),
                ))
            except BadRequest as exc:
                if not is_caption_only(exc):
                    raise
                # An image the bot posted (a held meme, silent mode's log): its caption.
                await with_flood_retry(lambda: self.bot.edit_message_caption(
                    chat_id=chat.chat_id, message_id=int(message_id),
                    caption=reply.text[:MessageLimit.CAPTION_LENGTH],
                    reply_markup=keyboard(reply),
                ))
        except BadRequest as exc:
            if is_not_modified(exc):
                return True
            log.info("message %s in chat %s not edited: %s", message_id, chat.chat_id, exc)
            return False
        except TelegramError as exc:
            log.info("message %s in chat %s not edited: %s", message_id, chat.chat_id, exc)
            return False
        return True

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        try:
            return bool(await self.bot.delete_message(chat.chat_id, int(message_id)))
        except TelegramError as exc:
            log.info("message %s in chat %s not removed: %s", message_id, chat.chat_id, exc)
            return False

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
