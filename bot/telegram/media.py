"""Which Telegram messages carry an image we classify, and how to fetch it."""

from __future__ import annotations

from telegram import Bot, Message
from telegram.error import BadRequest, TelegramError

from bot.core.downloads import DownloadError
from bot.core.media import is_readable_image
from bot.core.messages import Attachment, UrlResolver


def _resolver(bot: Bot, file_id: str) -> UrlResolver:
    async def resolve() -> str:
        try:
            file = await bot.get_file(file_id)
        except BadRequest as exc:  # e.g. "File is too big" for files over the API's 20 MB
            raise DownloadError(f"Telegram refused to hand out the file ({exc.message})") from None
        except TelegramError as exc:
            reason = type(exc).__name__
            raise DownloadError(f"Telegram did not provide the file ({reason})") from None
        if not file.file_path:
            raise DownloadError("Telegram did not provide the file")
        return file.file_path

    return resolve


def image_attachment(message: Message, bot: Bot) -> Attachment | None:
    """The image of a photo, image document (JPEG/PNG/WebP/GIF) or static sticker; else None."""
    if message.photo:
        largest = message.photo[-1]  # Telegram lists the sizes smallest first
        return Attachment("photo", _resolver(bot, largest.file_id), largest.file_size,
                          "image/jpeg")
    if message.sticker:
        sticker = message.sticker
        if sticker.is_animated or sticker.is_video:
            return None
        return Attachment("sticker", _resolver(bot, sticker.file_id), sticker.file_size,
                          "image/webp")
    # A GIF sent as an animation also fills `document`; Telegram usually converts GIFs to
    # MP4 animations, which are not images and are skipped by the MIME check.
    document = message.document
    if document and is_readable_image(document.mime_type, document.file_name):
        return Attachment("image", _resolver(bot, document.file_id), document.file_size,
                          document.mime_type)
    return None
