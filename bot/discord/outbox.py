"""`Outbox` for Discord: jump URLs to messages, sorted copies posted into another channel or
thread (the image re-uploaded from storage: CDN links of the original expire), and their
removal."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import discord

from bot.core.messages import ChatRef, ForwardCopy, ForwardError

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
# "<#123>" is what Discord puts in a text option when an admin picks a channel with '#'.
PLACE = re.compile(r"^\s*(?:<#(\d{15,22})>|(\d{15,22}))\s*$")


def parse_place(place: str) -> int:
    """The channel or thread id of a place: an id, or a channel mention `<#id>`."""
    found = PLACE.match(place)
    if not found:
        raise ForwardError(f"{place!r} is not a Discord channel: pick one with # or give its id")
    return int(found.group(1) or found.group(2))


class DiscordOutbox:
    def __init__(self, client: discord.Client, image_of: Callable[[int], Awaitable[Path]]) -> None:
        self.client = client
        self.image_of = image_of  # post id -> the stored image file

    def link(self, chat: ChatRef, message_id: str) -> str | None:
        if not (chat.chat_id.isdigit() and message_id.isdigit()):
            return None
        channel = self.client.get_channel(int(chat.chat_id))
        guild = getattr(channel, "guild", None)
        return f"https://discord.com/channels/{guild.id if guild else '@me'}/{chat.chat_id}/{message_id}"

    async def _channel(self, channel_id: int) -> discord.abc.Messageable:
        channel = self.client.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.client.fetch_channel(channel_id)
            except discord.HTTPException as exc:
                raise ForwardError(f"channel {channel_id} is not one I can see ({exc.text or exc.status})") from exc
        if not isinstance(channel, discord.abc.Messageable):
            raise ForwardError(f"channel {channel_id} takes no messages")
        return channel

    async def send_copy(self, copy: ForwardCopy) -> str:
        channel = await self._channel(parse_place(copy.place))
        path = await self.image_of(copy.post_id)
        try:
            sent = await channel.send(copy.text, file=discord.File(path, filename=f"meme{path.suffix}"),
                                      allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:  # e.g. no Send Messages / Attach Files there
            raise ForwardError(exc.text or str(exc.status)) from exc
        except OSError as exc:
            raise ForwardError(f"the stored image is unreadable: {exc}") from exc
        return f"{sent.channel.id}:{sent.id}"

    async def delete_copy(self, chat: ChatRef, place: str, copy_id: str) -> bool:
        channel_id, _, message_id = copy_id.partition(":")
        try:
            channel = await self._channel(int(channel_id))
            await channel.get_partial_message(int(message_id)).delete()  # type: ignore[attr-defined]
        except (ForwardError, discord.HTTPException, ValueError, AttributeError) as exc:
            log.info("copy %s in %s not removed: %s", copy_id, place, exc)
            return False
        return True
