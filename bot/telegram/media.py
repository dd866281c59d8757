"""Which Telegram messages carry a meme we classify (a picture or a clip), and how to fetch it."""

from __future__ import annotations

from telegram import Bot, Message
from telegram.error import BadRequest, TelegramError

from bot.core.downloads import DownloadError, TooLargeError, megabytes
from bot.core.media import is_other_video, is_readable_clip, is_readable_image
from bot.core.messages import Attachment, UrlResolver

# The Bot API's getFile hands out files up to this size, whatever the bot's own limit.
GETFILE_MAX_BYTES = 20 * 1024 * 1024
# What Telegram declares for its own formats (a video note and a sticker carry no MIME type).
MP4, WEBM, TGS, WEBP = "video/mp4", "video/webm", "application/x-tgsticker", "image/webp"


def _too_large(size: int) -> TooLargeError:
    return TooLargeError(f"the file is too large ({megabytes(size)}; Telegram lets bots "
                         f"download files up to {megabytes(GETFILE_MAX_BYTES)})")


def _resolver(bot: Bot, file_id: str, size: int | None) -> UrlResolver:
    async def resolve() -> str:
        if size is not None and size > GETFILE_MAX_BYTES:  # getFile would refuse it
            raise _too_large(size)
        try:
            file = await bot.get_file(file_id)
        except BadRequest as exc:
            if "too big" in exc.message.lower():  # a file with no declared size
                raise _too_large(GETFILE_MAX_BYTES + 1) from None
            raise DownloadError(f"Telegram refused to hand out the file ({exc.message})") from None
        except TelegramError as exc:
            reason = type(exc).__name__
            raise DownloadError(f"Telegram did not provide the file ({reason})") from None
        if not file.file_path:
            raise DownloadError("Telegram did not provide the file")
        return file.file_path

    return resolve


def _attachment(bot: Bot, kind: str, file_id: str, size: int | None, mime: str | None
                ) -> Attachment:
    return Attachment(kind, _resolver(bot, file_id, size), size, mime)


def media_attachment(message: Message, bot: Bot) -> Attachment | None:
    """The picture or clip of a message: a photo, an animation (Telegram turns GIFs into MP4
    animations), a video or video note, a sticker (static WebP, animated TGS, video WebM), or
    a document of an image or clip type; else None (text, audio, other files)."""
    if message.photo:
        largest = message.photo[-1]  # Telegram lists the sizes smallest first
        return _attachment(bot, "photo", largest.file_id, largest.file_size, "image/jpeg")
    if message.sticker:
        sticker = message.sticker
        mime = TGS if sticker.is_animated else WEBM if sticker.is_video else WEBP
        return _attachment(bot, "sticker", sticker.file_id, sticker.file_size, mime)
    # An animation also fills `document` (with the same file): it is checked first.
    if message.animation:
        animation = message.animation
        return _attachment(bot, "animation", animation.file_id, animation.file_size,
                           animation.mime_type or MP4)
    if message.video:
        video = message.video
        return _attachment(bot, "video", video.file_id, video.file_size,
                           video.mime_type or MP4)
    if message.video_note:
        note = message.video_note
        return _attachment(bot, "video message", note.file_id, note.file_size, MP4)
    document = message.document
    if document is None:
        return None
    if is_readable_image(document.mime_type, document.file_name):
        return _attachment(bot, "image", document.file_id, document.file_size,
                           document.mime_type)
    # A video in a container the bot does not read is passed too: the core says why.
    if is_readable_clip(document.mime_type, document.file_name) or is_other_video(
            document.mime_type):
        return _attachment(bot, "video", document.file_id, document.file_size,
                           document.mime_type)
    return None
