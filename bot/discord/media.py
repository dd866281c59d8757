"""Which parts of a Discord message carry a meme we classify: attachments (pictures and clips),
stickers, link previews (embeds) whose picture or clip is on an allowed host (Discord's CDN,
and Tenor and Giphy for gifv and video embeds), and the same inside forwarded messages.

Indexes are stable: attachments, stickers, embeds, then each forwarded snapshot's, so that
the embeds Discord adds later (MESSAGE_UPDATE) get the index they would have had at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import discord

from bot.core.downloads import DownloadError
from bot.core.media import is_other_image, is_other_video, is_readable_media
from bot.core.messages import Attachment, UrlResolver
from config.settings import Settings

# Raises `DownloadError` for a URL the bot may not fetch (`Downloader.check_url`).
UrlCheck = Callable[[str], None]
# Discord's vector stickers (its own packs); their JSON is not a picture or a clip.
LOTTIE_REASON = "Lottie stickers are vector animations, which I do not read"


def download_origins(settings: Settings) -> list[str]:
    """Every origin the Discord adapter downloads from (for the core's `Downloader`)."""
    return [*settings.discord_file_origins, *settings.discord_embed_origins]


def _known(url: str) -> UrlResolver:
    async def resolve() -> str:  # Discord hands out attachment URLs up front
        return url

    return resolve


def _refused(reason: str) -> UrlResolver:
    async def resolve() -> str:
        raise DownloadError(reason)

    return resolve


@dataclass(frozen=True)
class Found:
    """One meme of a message, and whether it came with a link preview (MESSAGE_UPDATE adds
    those later)."""

    attachment: Attachment
    from_embed: bool


@dataclass(frozen=True)
class MessageParts:
    """The parts of one message (or forwarded snapshot) the bot reads."""

    attachments: Sequence[discord.Attachment]
    stickers: Sequence[discord.StickerItem]
    embeds: Sequence[discord.Embed]


def parts_of(message: discord.Message) -> list[MessageParts]:
    """The message's own parts, then those of each message it forwards."""
    own = MessageParts(message.attachments, message.stickers, message.embeds)
    forwarded = [MessageParts(s.attachments, s.stickers, s.embeds)
                 for s in message.message_snapshots]
    return [own, *forwarded]


def media_attachments(message: discord.Message, check_url: UrlCheck, sticker_url: str
                      ) -> list[Found]:
    """The memes to classify, in message order. Pictures and clips in formats the bot cannot
    read are included (the core explains why it cannot); other files are not memes."""
    found: list[Found] = []

    def add(kind: str, resolve: UrlResolver, size: int | None, mime: str | None,
            from_embed: bool = False) -> None:
        found.append(Found(Attachment(kind, resolve, size, mime, index=len(found)), from_embed))

    for parts in parts_of(message):
        for attachment in parts.attachments:
            mime = attachment.content_type
            if (is_readable_media(mime, attachment.filename) or is_other_image(mime)
                    or is_other_video(mime)):
                add("image" if (mime or "").startswith("image/") else "clip",
                    _known(attachment.url), attachment.size, mime)
        for sticker in parts.stickers:
            if sticker.format is discord.StickerFormatType.lottie:
                add("sticker", _refused(LOTTIE_REASON), None, None)
            else:
                extension = "gif" if sticker.format is discord.StickerFormatType.gif else "png"
                add("sticker", _known(f"{sticker_url.rstrip('/')}/{sticker.id}.{extension}"),
                    None, None)
        for embed in parts.embeds:
            url = embed_url(embed, check_url)
            if url is not None:
                kind = "image" if embed.type == "image" else "clip"
                add(kind, _known(url), None, None, from_embed=True)
    return found


def embed_url(embed: discord.Embed, check_url: UrlCheck) -> str | None:
    """A link preview's clip or picture when it is on an allowed host: the clip of a gifv or
    video embed (Tenor and Giphy send MP4s), else its still; an image embed's picture. Other
    sites' previews are not ours to download (and Discord's proxy copy would fetch from
    them), so every URL must pass `check_url` (https to an allowed origin)."""
    if embed.type in ("gifv", "video"):
        candidates: Iterable[str | None] = (embed.video.url, embed.thumbnail.url)
    elif embed.type == "image":
        candidates = (embed.url, embed.thumbnail.url)
    else:
        return None
    for url in candidates:
        if not url:
            continue
        try:
            check_url(url)
        except DownloadError:
            continue
        return url
    return None
