"""The dataclasses adapters hand to `MemeService`: who did what, where; and the `Reply` it words.
What the core decided is in `bot.core.outcomes`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# Asks the platform whether the actor administers the chat (Telegram: getChatMember).
PlatformAdminCheck = Callable[[], Awaitable[bool]]
# Asks the platform where an attachment can be downloaded; only called once the size is known
# to be acceptable, because Telegram's getFile refuses big files with an unhelpful error.
UrlResolver = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Actor:
    platform: str
    user_id: str
    display_name: str
    # The platform says they may manage the whole server (Discord: Manage Server): a server's
    # own settings are theirs (and the operators'), a channel's are every chat admin's.
    manages_server: bool = False

    @property
    def qualified_id(self) -> str:
        """`platform:user_id`, the form of `Settings.super_admins` and of recorded admin ids."""
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class ChatRef:
    platform: str
    chat_id: str
    is_private: bool = False
    # The server a channel belongs to (Discord guild): its settings are the channel's defaults.
    server_id: str | None = None


@dataclass(frozen=True)
class Attachment:
    kind: str  # "photo", "document", "sticker", ... (for logs and messages)
    resolve_url: UrlResolver
    declared_size: int | None = None  # what the platform says; the download still enforces it
    mime_type: str | None = None
    index: int = 0  # position among the attachments of one message


@dataclass(frozen=True)
class ImagePost:
    chat: ChatRef
    message_id: str
    author: Actor
    # What to download; None for bytes handed over directly (`MemeService.handle_upload`).
    attachment: Attachment | None = None
    posted_at: datetime | None = None
    # The words posted with the image (Telegram caption, Discord message text, console title):
    # stored with the post, and weighed with the words read from the image.
    caption: str | None = None


@dataclass(frozen=True)
class Button:
    text: str
    payload: str  # opaque to adapters; handed back to `MemeService.handle_button`
    current: bool = False  # the post's label now (an adapter may style it)


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()
    post_id: int | None = None  # the stored post this reply is about, if any
    # For the asker's eyes only where the platform can do that (Discord: ephemeral), e.g. a
    # refusal; elsewhere an ordinary reply.
    private: bool = False


@dataclass(frozen=True)
class Command:
    chat: ChatRef
    actor: Actor
    name: str  # without the slash, lower case
    args: tuple[str, ...] = field(default_factory=tuple)
    message_id: str | None = None  # the command's own message (a later answer replies to it)


@dataclass(frozen=True)
class ForwardCopy:
    """A meme to copy into the place its label is sorted to, with a link back to it."""

    post_id: int
    chat: ChatRef  # where the meme was posted
    message_id: str  # the meme's message there
    place: str  # as the admins named it in /sort (the adapter knows what it means)
    label: str
    text: str  # caption for the copy: label, author and the link back


class ForwardError(Exception):
    """The adapter could not send a copy (unknown place, no right to post there, ...)."""


class Outbox(Protocol):
    """What the core asks of an adapter beyond replying: links to messages, and sending or
    removing the sorted copies of memes. The core decides and keeps the books (each post is
    copied once, also across restarts); the adapter only sends."""

    def link(self, chat: ChatRef, message_id: str) -> str | None:
        """A URL that opens this message (Telegram t.me link, Discord jump URL), if any."""
        ...

    async def send_copy(self, copy: ForwardCopy) -> str:
        """Copy the meme to `copy.place`; return the copy's message id. Raise ForwardError."""
        ...

    async def delete_copy(self, chat: ChatRef, place: str, copy_id: str) -> bool:
        """Remove an earlier copy (a correction moved the meme); False when it cannot."""
        ...

    async def send_image(self, chat_id: str, reply: Reply) -> str | None:
        """Post the stored image of post `reply.post_id` with `reply` as its caption and
        buttons (a held meme to the admins, an allowed one back to its chat); the new
        message's id, or None when it could not be sent."""
        ...
