"""`ChatPort` for Discord: replies, edits, deletes and sends (discord.py waits out rate limits
itself), jump URLs to messages, and sorted copies posted into another channel or thread (the
image re-uploaded from storage: CDN links of the original expire)."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import discord

from bot.core.messages import Actor, ChatRef, ForwardCopy, ForwardError, Reply
from bot.discord.views import label_view

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


def _view(reply: Reply) -> discord.ui.View:
    return label_view(reply) or discord.utils.MISSING


class DiscordPort:
    platform = "discord"

    def __init__(self, client: discord.Client, image_of: Callable[[int], Awaitable[Path]]) -> None:
        self.client = client
        self.image_of = image_of  # post id -> the stored image file

    def _cached(self, chat_id: str) -> discord.abc.Messageable | None:
        channel = self.client.get_channel(int(chat_id)) if chat_id.isdigit() else None
        # Another shard's guild, or a channel the bot cannot see.
        return channel if isinstance(channel, discord.abc.Messageable) else None

    async def reply(self, chat: ChatRef, message_id: str, reply: Reply) -> str | None:
        return await self.send(chat.chat_id, reply, reply_to=message_id)

    async def send(self, chat_id: str, reply: Reply, *, reply_to: str | None = None,
                   mention: Actor | None = None) -> str | None:
        channel = self._cached(chat_id)
        if channel is None:
            return None
        text, mentions = reply.text, NO_MENTIONS
        if mention is not None:
            text, mentions = f"<@{mention.user_id}>: {text}", discord.AllowedMentions(users=True)
        reference = discord.MessageReference(
            message_id=int(reply_to), channel_id=int(chat_id), fail_if_not_exists=False
        ) if reply_to is not None and reply_to.isdigit() else None
        try:
            # discord.py's overloads omit the None its implementation takes (and defaults to)
            sent = await channel.send(text, view=_view(reply), allowed_mentions=mentions,
                                      reference=reference)  # type: ignore[arg-type]
        except discord.HTTPException as exc:  # e.g. no Send Messages in this channel
            log.warning("message not sent to channel %s: %s", chat_id, exc)
            return None
        return str(sent.id)

    async def edit(self, chat: ChatRef, message_id: str, reply: Reply) -> bool:
        channel = self._cached(chat.chat_id)
        if channel is None or not message_id.isdigit():
            return False
        try:
            await channel.get_partial_message(int(message_id)).edit(  # type: ignore[attr-defined]
                content=reply.text, view=label_view(reply))
        except discord.HTTPException as exc:
            log.warning("message %s in channel %s not edited: %s", message_id, chat.chat_id, exc)
            return False
        return True

    async def send_image(self, chat_id: str, reply: Reply) -> str | None:
        channel = self._cached(chat_id)
        if channel is None or reply.post_id is None:
            return None
        try:
            path = await self.image_of(reply.post_id)
            image = discord.File(path, filename=f"meme{path.suffix}")
            sent = await channel.send(reply.text, file=image, view=_view(reply),
                                      allowed_mentions=NO_MENTIONS)
        except (discord.HTTPException, OSError) as exc:  # e.g. no Attach Files there
            log.warning("image of post %s not sent to channel %s: %s", reply.post_id, chat_id,
                        exc)
            return None
        return str(sent.id)

    async def react(self, chat: ChatRef, message_id: str, emoji: str) -> bool:
        channel = self._cached(chat.chat_id)
        if channel is None or not message_id.isdigit():
            return False
        try:
            await channel.get_partial_message(int(message_id)).add_reaction(  # type: ignore[attr-defined]
                emoji)
        except discord.HTTPException as exc:  # e.g. no Add Reactions in this channel
            log.info("no reaction on message %s in channel %s: %s", message_id, chat.chat_id,
                     exc)
            return False
        return True

    async def delete(self, chat: ChatRef, message_id: str) -> bool:
        channel = self._cached(chat.chat_id)
        if channel is None or not message_id.isdigit():
            return False
        try:
            await channel.get_partial_message(int(message_id)).delete()  # type: ignore[attr-defined]
        except discord.HTTPException as exc:
            log.info("message %s in channel %s not removed: %s", message_id, chat.chat_id, exc)
            return False
        return True

    def link(self, chat: ChatRef, message_id: str) -> str | None:
        if not (chat.chat_id.isdigit() and message_id.isdigit()):
            return None
        channel = self.client.get_channel(int(chat.chat_id))
        guild = getattr(channel, "guild", None)
        place = guild.id if guild else "@me"
        return f"https://discord.com/channels/{place}/{chat.chat_id}/{message_id}"

    async def _channel(self, channel_id: int) -> discord.abc.Messageable:
        channel = self.client.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self.client.fetch_channel(channel_id)
            except discord.HTTPException as exc:
                raise ForwardError(
                    f"channel {channel_id} is not one I can see ({exc.text or exc.status})"
                ) from exc
        if not isinstance(channel, discord.abc.Messageable):
            raise ForwardError(f"channel {channel_id} takes no messages")
        return channel

    async def send_copy(self, copy: ForwardCopy) -> str:
        channel = await self._channel(parse_place(copy.place))
        path = await self.image_of(copy.post_id)
        try:
            image = discord.File(path, filename=f"meme{path.suffix}")
            sent = await channel.send(copy.text, file=image, allowed_mentions=NO_MENTIONS)
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
