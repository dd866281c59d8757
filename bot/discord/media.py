"""Which parts of a Discord message carry an image we classify: attachments, and image embeds
whose picture is on Discord's own CDN (a link Discord previews)."""

from __future__ import annotations

from collections.abc import Callable

import discord

from bot.core.downloads import DownloadError
from bot.core.media import is_other_image, is_readable_image
from bot.core.messages import Attachment, UrlResolver

# Raises `DownloadError` for a URL the bot may not fetch (`Downloader.check_url`).
UrlCheck = Callable[[str], None]


def _known(url: str) -> UrlResolver:
    async def resolve() -> str:  # Discord hands out attachment URLs up front
        return url

    return resolve


def image_attachments(message: discord.Message, check_url: UrlCheck) -> list[Attachment]:
    """The images to classify, in message order; images in formats the bot cannot read are
    included (the core explains why it cannot), other files are not memes and are skipped."""
    found: list[Attachment] = []
    for attachment in message.attachments:
        mime = attachment.content_type
        if is_readable_image(mime, attachment.filename) or is_other_image(mime):
            found.append(Attachment("image", _known(attachment.url), attachment.size, mime,
                                    index=len(found)))
    for embed in message.embeds:
        url = _cdn_image_url(embed, check_url)
        if url is not None:
            found.append(Attachment("image", _known(url), None, None, index=len(found)))
    return found


def _cdn_image_url(embed: discord.Embed, check_url: UrlCheck) -> str | None:
    """An image link's picture when it is on Discord's CDN; a preview of another site's image
    is not ours to download (and the proxy copy would fetch it from that site)."""
    if embed.type != "image":
        return None
    for url in (embed.url, embed.thumbnail.url):
        if not url:
            continue
        try:
            check_url(url)
        except DownloadError:
            continue
        return url
    return None
