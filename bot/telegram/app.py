"""The PTB `Application`: handlers for images, buttons, reactions and commands."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telegram import (
    Bot,
    Chat,
    Message,
    ReactionTypeEmoji,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    MessageReactionHandler,
    filters,
)

from bot.core.job_watcher import JobReport
from bot.core.messages import Actor, ChatRef, Command, ImagePost, PlatformAdminCheck, Reply
from bot.core.service import MemeService
from config.settings import Settings
from bot.telegram.media import image_attachment
from bot.telegram.outbox import TelegramOutbox
from bot.core.replies import ReplyIndex, SentReply
from bot.telegram.sending import is_not_modified, keyboard, with_flood_retry

log = logging.getLogger(__name__)

PLATFORM = "telegram"
# Reactions are only delivered when asked for explicitly.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.MESSAGE_REACTION]
COMMANDS = ("start", "help", "stats", "labels", "model", "retrain", "addlabel", "rollback",
            "reposts", "sort")
IMAGE_FILTER = (
    filters.PHOTO | filters.Document.ALL | filters.Sticker.ALL
) & filters.UpdateType.MESSAGE
ADMIN_STATUSES = frozenset({ChatMemberStatus.OWNER, ChatMemberStatus.ADMINISTRATOR})


@dataclass(frozen=True)
class TelegramConfig:
    token: str
    api_url: str = "https://api.telegram.org/bot"
    file_url: str = "https://api.telegram.org/file/bot"
    admin_chat_id: str | None = None
    concurrent_updates: int = 64
    model_check_interval_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramConfig:
        if settings.telegram_token is None:
            raise ValueError("no Telegram token: set MEMEBOT_TELEGRAM_TOKEN")
        return cls(
            token=settings.telegram_token.get_secret_value(),
            api_url=settings.telegram_api_url,
            file_url=settings.telegram_file_url,
            admin_chat_id=settings.admin_chat_id,
            concurrent_updates=settings.concurrent_updates,
            model_check_interval_s=settings.model_check_interval_s,
        )


def chat_ref(chat: Chat) -> ChatRef:
    return ChatRef(PLATFORM, str(chat.id), is_private=chat.type == ChatType.PRIVATE)


def actor(user: User) -> Actor:
    name = f"@{user.username}" if user.username else user.full_name
    return Actor(PLATFORM, str(user.id), name)


class TelegramHandlers:
    """The PTB callbacks; state is only the in-memory reply index."""

    def __init__(self, service: MemeService, config: TelegramConfig) -> None:
        self.service = service
        self.config = config
        self.replies = ReplyIndex()

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

    # ------------------------------------------------------------------------------ images

    async def on_image(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None:
            return
        attachment = image_attachment(message, context.bot)
        if attachment is None:  # a non-image document or an animated sticker
            return
        post = ImagePost(
            chat=chat_ref(message.chat),
            message_id=str(message.message_id),
            author=actor(message.from_user),
            attachment=attachment,
            posted_at=message.date,
            caption=message.caption,
        )
        outcome = await self.service.handle_post(post, TelegramOutbox(context.bot))
        if outcome.removed is not None and await self._delete(message):
            removed = outcome.removed
            await with_flood_retry(lambda: context.bot.send_message(
                message.chat_id, removed.text, reply_markup=keyboard(removed)
            ))
            return
        if outcome.repost is not None:  # not remembered: corrections edit the label reply
            repost = outcome.repost
            await with_flood_retry(
                lambda: message.reply_text(repost.text, reply_markup=keyboard(repost),
                                           do_quote=True)
            )
        if outcome.reply is not None:  # last: once it is there, the meme is fully answered
            await self._reply(message, outcome.reply)
        if outcome.admin_log and self.config.admin_chat_id:
            admin_chat = self.config.admin_chat_id
            await with_flood_retry(lambda: context.bot.send_message(admin_chat, outcome.admin_log))

    async def _delete(self, meme: Message) -> bool:
        """Remove a repost; False where the bot has no right to (then it is only noted)."""
        try:
            return bool(await meme.delete())
        except TelegramError as exc:
            log.info("repost %s in chat %s not removed: %s", meme.message_id, meme.chat_id, exc)
            return False

    async def _reply(self, meme: Message, reply: Reply) -> None:
        sent = await with_flood_retry(
            lambda: meme.reply_text(reply.text, reply_markup=keyboard(reply), do_quote=True)
        )
        if reply.post_id is not None:
            self.replies.remember(
                reply.post_id, SentReply(meme.chat_id, sent.message_id, meme.message_id)
            )

    # ------------------------------------------------------------------- buttons, reactions

    async def on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        message = query.message
        if message is None or not isinstance(message, Message):
            await query.answer("This message is too old to change.", show_alert=True)
            return
        outcome = await self.service.handle_button(
            chat_ref(message.chat),
            actor(query.from_user),
            query.data or "",
            self.admin_check(context, message.chat_id, query.from_user.id),
            TelegramOutbox(context.bot),
        )
        if outcome.reply is not None:
            try:
                await with_flood_retry(
                    lambda: query.edit_message_text(
                        outcome.reply.text, reply_markup=keyboard(outcome.reply)
                    )
                )
            except BadRequest as exc:
                if not is_not_modified(exc):
                    raise
        await query.answer(outcome.notice, show_alert=outcome.alert)

    async def on_reaction(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        reaction = update.message_reaction
        if reaction is None or reaction.user is None:  # anonymous reactions carry no admin
            return
        chat_id = reaction.chat.id
        emojis = [r.emoji for r in reaction.new_reaction if isinstance(r, ReactionTypeEmoji)]
        meme_id = self.replies.meme_for_reply(chat_id, reaction.message_id)
        meme_id = meme_id or reaction.message_id
        outcome = await self.service.handle_reaction(
            chat_ref(reaction.chat),
            actor(reaction.user),
            str(meme_id),
            emojis,
            self.admin_check(context, chat_id, reaction.user.id),
            TelegramOutbox(context.bot),
        )
        if outcome is None or outcome.reply is None or outcome.post_id is None:
            return
        new = outcome.reply
        sent = self.replies.reply_for(outcome.post_id)
        if sent is None:  # the reply is older than this process: answer the meme anew
            message = await with_flood_retry(
                lambda: context.bot.send_message(
                    chat_id, new.text, reply_markup=keyboard(new),
                    reply_to_message_id=meme_id,
                )
            )
            self.replies.remember(outcome.post_id, SentReply(chat_id, message.message_id, meme_id))
            return
        try:
            await with_flood_retry(
                lambda: context.bot.edit_message_text(
                    new.text, chat_id=sent.chat_id, message_id=sent.message_id,
                    reply_markup=keyboard(new),
                )
            )
        except BadRequest as exc:
            if not is_not_modified(exc):
                raise

    # ---------------------------------------------------------------------------- commands

    async def on_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.effective_message
        if message is None or message.from_user is None or not message.text:
            return
        name = message.text.split()[0][1:].split("@")[0].lower()
        command = Command(
            chat=chat_ref(message.chat),
            actor=actor(message.from_user),
            name=name,
            args=tuple(context.args or ()),
            message_id=str(message.message_id),
        )
        reply = await self.service.handle_command(
            command, self.admin_check(context, message.chat_id, message.from_user.id)
        )
        if reply is not None:
            await with_flood_retry(lambda: message.reply_text(reply.text, do_quote=True))

    # ---------------------------------------------------------------------- jobs and errors

    async def check_model(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.service.switcher.sync()

    async def on_job_finished(self, bot: Bot, report: JobReport) -> None:
        """A retrain ended: the numbers to the admin chat, and a reply to each admin who asked
        on Telegram (in the admin chat itself, one message that is also the reply)."""
        admin_chat = self.config.admin_chat_id
        replied_in_admin_chat = False
        for request in report.requests:
            if request.chat.platform != PLATFORM:
                continue
            in_admin_chat = admin_chat is not None and request.chat.chat_id == str(admin_chat)
            if in_admin_chat and replied_in_admin_chat:
                continue
            replied_in_admin_chat |= in_admin_chat
            await self._send_report(bot, request.chat.chat_id, report.text, request.message_id,
                                    mention=request.actor.display_name)
        if admin_chat is not None and not replied_in_admin_chat:
            await self._send_report(bot, admin_chat, report.text, None, mention=None)

    async def _send_report(self, bot: Bot, chat_id: str, text: str, reply_to: str | None,
                           mention: str | None) -> None:
        body = f"{mention}: {text}" if mention else text
        try:
            await with_flood_retry(lambda: bot.send_message(
                chat_id, body,
                reply_parameters=ReplyParameters(int(reply_to), allow_sending_without_reply=True)
                if reply_to is not None and reply_to.isdigit() else None,
            ))
        except TelegramError as exc:  # a chat the bot left: the other recipients still hear
            log.warning("retrain report not sent to chat %s: %s", chat_id, exc)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("update %s failed", update_id, exc_info=context.error)


def build_application(service: MemeService, config: TelegramConfig) -> Application:
    """A ready-to-start PTB Application wired to `service` (not yet initialized)."""
    return build(service, config)[0]


def build(service: MemeService, config: TelegramConfig
          ) -> tuple[Application, TelegramHandlers]:
    """`build_application`, and its handlers (the runner subscribes them to job reports)."""
    application = (
        Application.builder()
        .token(config.token)
        .base_url(config.api_url)
        .base_file_url(config.file_url)
        .concurrent_updates(config.concurrent_updates)
        .build()
    )
    handlers = TelegramHandlers(service, config)
    application.add_handler(CommandHandler(list(COMMANDS), handlers.on_command))
    application.add_handler(MessageHandler(IMAGE_FILTER, handlers.on_image))
    application.add_handler(CallbackQueryHandler(handlers.on_button))
    application.add_handler(MessageReactionHandler(handlers.on_reaction))
    application.add_error_handler(handlers.on_error)
    if application.job_queue is not None:
        interval = config.model_check_interval_s
        application.job_queue.run_repeating(
            handlers.check_model, interval=interval, first=interval, name="model-check"
        )
    return application, handlers
