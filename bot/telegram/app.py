"""The PTB `Application`: handlers for memes (pictures, clips, albums), buttons, reactions and
commands."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from telegram import (
    BotCommand,
    Chat,
    InlineKeyboardMarkup,
    Message,
    ReactionTypeEmoji,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    JobQueue,
    MessageHandler,
    MessageReactionHandler,
    filters,
)

from bot.core import formatting as fmt
from bot.core.albums import AlbumDelivery, AlbumItem
from bot.core.chat_rules import move_chat
from bot.core.commands import COMMANDS
from bot.core.delivery import Delivery
from bot.core.messages import Actor, Button, ChatRef, Command, ImagePost, PlatformAdminCheck, Reply
from bot.core.service import MemeService
from bot.telegram.albums import AlbumCollector
from bot.telegram.media import media_attachment
from bot.telegram.port import TelegramPort
from config.settings import Settings

log = logging.getLogger(__name__)

PLATFORM = TelegramPort.platform
# Reactions are only delivered when asked for explicitly.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MESSAGE_REACTION,
                   Update.MY_CHAT_MEMBER]  # the bot added to or removed from a chat
GONE_STATUSES = frozenset({ChatMemberStatus.LEFT, ChatMemberStatus.BANNED})
MEDIA_FILTER = (
    filters.PHOTO | filters.ANIMATION | filters.VIDEO | filters.VIDEO_NOTE
    | filters.Document.ALL | filters.Sticker.ALL
) & filters.UpdateType.MESSAGE
ADMIN_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})
# What `Application.builder()...build()` makes: PTB's default type parameters.
TelegramApplication: TypeAlias = Application[
    ExtBot[None],
    ContextTypes.DEFAULT_TYPE,
    dict[Any, Any],
    dict[Any, Any],
    dict[Any, Any],
    JobQueue[ContextTypes.DEFAULT_TYPE],
]


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    api_url: str = "https://api.telegram.org/bot"
    file_url: str = "https://api.telegram.org/file/bot"
    admin_chat_id: str | None = None
    concurrent_updates: int = 64
    album_window_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramConfig:
        return cls(
            token=settings.token_for("telegram"),
            api_url=settings.telegram_api_url,
            file_url=settings.telegram_file_url,
            admin_chat_id=settings.admin_chat_id,
            concurrent_updates=settings.concurrent_updates,
            album_window_s=settings.telegram_album_window_s,
        )


def chat_ref(chat: Chat) -> ChatRef:
    return ChatRef(PLATFORM, str(chat.id), is_private=chat.type == ChatType.PRIVATE)


def actor(user: User) -> Actor:
    name = f"@{user.username}" if user.username else user.full_name
    return Actor(PLATFORM, str(user.id), name)


def shown_reply(markup: InlineKeyboardMarkup | None, text: str | None) -> Reply:
    """A message of the bot's as the core's `Reply` (text and buttons)."""
    rows = markup.inline_keyboard if markup is not None else ()
    buttons = tuple(Button(b.text, str(b.callback_data)) for row in rows for b in row
                    if isinstance(b.callback_data, str))
    return Reply(text or "", buttons)


class TelegramHandlers:
    """The PTB callbacks: platform events in, the core's outcomes out through `delivery`."""

    def __init__(self, service: MemeService, config: TelegramConfig, port: TelegramPort) -> None:
        self.service = service
        self.config = config
        self.port = port
        self.delivery = Delivery(port, config.admin_chat_id, service.storage)
        self.albums = AlbumDelivery(self.delivery)
        self.collector = AlbumCollector(config.album_window_s, self.on_album)

    def admin_check(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, user_id: int
                    ) -> PlatformAdminCheck:
        async def check() -> bool:
            try:
                member = await context.bot.get_chat_member(chat_id, user_id)
            except TelegramError as exc:
                log.warning("getChatMember failed in chat %s: %s", chat_id, exc)
                return False
            return member.status in ADMIN_STATUSES

        return check

    async def on_media(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        if message.media_group_id is not None:
            await self.collector.add(message)
            return
        post = self._post(message, message.caption)
        if post is None:  # a document that is no picture or clip
            return
        outcome = await self.service.handle_post(post, self.port)
        await self.delivery.post_outcome(post.chat, post.message_id, outcome)

    def _post(self, message: Message, caption: str | None) -> ImagePost | None:
        attachment = media_attachment(message, self.port.bot)
        if attachment is None or message.from_user is None:
            return None
        return ImagePost(
            chat=chat_ref(message.chat),
            message_id=str(message.message_id),
            author=actor(message.from_user),
            attachment=attachment,
            posted_at=message.date,
            caption=caption,
        )

    async def on_album(self, messages: list[Message]) -> None:
        """The items of one album, classified side by side and answered with one reply; the
        album's caption (Telegram keeps it on one item) applies to every item."""
        caption = next((m.caption for m in messages if m.caption), None)
        numbered = [(n, self._post(m, caption)) for n, m in enumerate(messages, 1)]
        posts = [(n, post) for n, post in numbered if post is not None]
        if not posts:
            return
        outcomes = await asyncio.gather(*(self.service.handle_post(post, self.port)
                                          for _, post in posts))
        items = [AlbumItem(n, post.message_id, outcome)
                 for (n, post), outcome in zip(posts, outcomes, strict=True)]
        await self.albums.album_outcome(posts[0][1].chat, items)

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        message = query.message
        if message is None or not isinstance(message, Message):
            await query.answer(fmt.TOO_OLD, show_alert=True)
            return
        chat = chat_ref(message.chat)
        outcome = await self.service.handle_button(
            chat,
            actor(query.from_user),
            query.data or "",
            self.admin_check(context, message.chat_id, query.from_user.id),
            self.port,
        )
        shown = shown_reply(message.reply_markup, message.text)
        new = self.albums.pressed(chat, str(message.message_id), shown, outcome)
        if new is not None:
            await self.port.edit(chat, str(message.message_id), new)
        await query.answer(outcome.notice, show_alert=outcome.alert)

    async def on_reaction(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        reaction = update.message_reaction
        if reaction is None or reaction.user is None:  # anonymous reactions carry no admin
            return
        if reaction.user.is_bot:  # our own (reaction mode) is no admin's correction
            return
        chat = chat_ref(reaction.chat)
        emojis = [r.emoji for r in reaction.new_reaction if isinstance(r, ReactionTypeEmoji)]
        before = {r.emoji for r in reaction.old_reaction if isinstance(r, ReactionTypeEmoji)}
        meme_id = self.delivery.meme_for(chat, str(reaction.message_id))
        removed = [e for e in before if e not in emojis]
        if removed and not set(emojis) - before:  # taken back: undo what it set
            undone = await self.service.handle_reaction_removed(
                chat, actor(reaction.user), meme_id, removed)
            await self.delivery.correction(chat, meme_id, undone)
            return
        outcome = await self.service.handle_reaction(
            chat,
            actor(reaction.user),
            meme_id,
            emojis,
            self.admin_check(context, reaction.chat.id, reaction.user.id),
            self.port,
        )
        await self.albums.correction(chat, meme_id, outcome)

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None or not message.text:
            return
        chat = chat_ref(message.chat)
        command = Command(
            chat=chat,
            actor=actor(message.from_user),
            name=message.text.split()[0][1:].split("@")[0].lower(),
            args=tuple(context.args or ()),
            message_id=str(message.message_id),
        )
        result = await self.service.handle_command(
            command, self.admin_check(context, message.chat_id, message.from_user.id)
        )
        if result is None:
            return
        # A private answer (a refusal) goes to the asker's own chat with the bot; where they
        # never started one, Telegram refuses, and it is answered in the group instead.
        if result.reply.private and not chat.is_private and await self.port.send(
                str(message.from_user.id), result.reply) is not None:
            return
        await self.port.reply(chat, str(message.message_id), result.reply)

    async def on_migrate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group became a supergroup: Telegram says so in both (old: migrate_to_chat_id,
        new: migrate_from_chat_id); whichever comes first moves the chat, the other finds
        nothing left to move."""
        message = update.effective_message
        if message is None:
            return
        if message.migrate_to_chat_id is not None:
            old, new = message.chat_id, message.migrate_to_chat_id
        elif message.migrate_from_chat_id is not None:
            old, new = message.migrate_from_chat_id, message.chat_id
        else:
            return
        await move_chat(self.service.storage, PLATFORM, str(old), str(new))
        # A correction after the move edits the label reply there (twice: nothing left).
        self.delivery.replies.move_chat(str(old), str(new))

    async def on_my_chat_member(self, update: Update, context: ContextTypes.DEFAULT_TYPE
                                ) -> None:
        """The bot left or was removed (its data is purged some days later), or is back."""
        change = update.my_chat_member
        if change is None:
            return
        left = change.new_chat_member.status in GONE_STATUSES
        await self.service.storage.set_chat_left(PLATFORM, str(change.chat.id), left)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("update %s failed", update_id, exc_info=context.error)


def bot_commands() -> list[BotCommand]:
    """The list BotFather shows in the chat's command menu."""
    return [BotCommand(spec.name, spec.description[:256]) for spec in COMMANDS if not spec.alias]


def build(service: MemeService, config: TelegramConfig
          ) -> tuple[TelegramApplication, TelegramHandlers]:
    """A PTB Application wired to `service` (not yet initialized), and its handlers (the runner
    subscribes them to job reports)."""
    application = (
        Application.builder()
        .token(config.token)
        .base_url(config.api_url)
        .base_file_url(config.file_url)
        .concurrent_updates(config.concurrent_updates)
        .build()
    )
    async def image_of(post_id: int) -> Path:
        # A clip is shown by its poster frame.
        return (await service.storage.get_post(post_id)).picture.path

    port = TelegramPort(application.bot, image_of, gone=service.storage.mark_deleted)
    handlers = TelegramHandlers(service, config, port)
    application.add_handler(CommandHandler([c.name for c in COMMANDS], handlers.on_command))
    application.add_handler(MessageHandler(filters.StatusUpdate.MIGRATE, handlers.on_migrate))
    application.add_handler(MessageHandler(MEDIA_FILTER, handlers.on_media))
    application.add_handler(CallbackQueryHandler(handlers.on_button))
    application.add_handler(MessageReactionHandler(handlers.on_reaction))
    application.add_handler(ChatMemberHandler(handlers.on_my_chat_member,
                                              ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_error_handler(handlers.on_error)
    return application, handlers
