"""`MemeService`: what the bot does, whatever the chat platform.

Adapters call `handle_post` (or `handle_upload` for bytes they already hold), `handle_button`,
`handle_reaction` and `handle_command` and render what comes back; nothing here knows about
Telegram, Discord or the console.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from bot.core import formatting as fmt
from bot.core.classify_queue import ClassifyQueue, QueueClosedError, QueueFullError
from bot.core.downloads import Downloader, DownloadError
from bot.core.job_watcher import JobWatcher, RetrainRequest
from bot.core.media import READABLE, is_other_image
from bot.core.messages import (
    Actor,
    Button,
    ChatRef,
    Command,
    CorrectionOutcome,
    ImagePost,
    Outbox,
    PlatformAdminCheck,
    PostOutcome,
    Reply,
)
from bot.core.model_holder import ModelHolder
from bot.core.model_switch import ModelSwitcher
from bot.core.moderation import REPOST_PREFIX, Moderation, ModerationPolicy
from bot.core.permissions import is_admin
from bot.core.trainer_process import TrainerStatus
from bot.errors import SwitchError
from config.settings import ReplyMode
from inference.classifier import Prediction
from model_training.report.names import REPORT_FILE
from inference.errors import ImageError
from storage.api import Storage
from storage.errors import (
    BlobError,
    InvalidInputError,
    LabelExistsError,
    NotFoundError,
    UnknownLabelError,
)
from storage.records import ChatSettings, Post, RepostMarkKind

log = logging.getLogger(__name__)

BUTTON_PREFIX = "c"
CONFIRM = "+"  # a reaction meaning "the model is right"
ADMIN_ONLY = "Only admins of this chat can do that."


@dataclass(frozen=True)
class ServicePolicy:
    """The parts of `Settings` the service decides with (per-chat settings may override)."""

    reply_mode: ReplyMode = ReplyMode.every
    confidence_threshold: float = 0.6
    super_admins: Collection[str] = ()
    reaction_labels: Mapping[str, str] | None = None  # emoji -> label, or CONFIRM
    moderation: ModerationPolicy = field(default_factory=ModerationPolicy)  # reposts, sorting


# What every `button_payload` matches (Discord routes persistent buttons by such a pattern).
PAYLOAD_PATTERN = rf"{BUTTON_PREFIX}:[0-9]+:[a-z0-9_]+"


def button_payload(post_id: int, label: str) -> str:
    # Telegram allows 64 bytes of callback data: "c:" + 19 digits + ":" + 32 chars fits.
    return f"{BUTTON_PREFIX}:{post_id}:{label}"


def parse_payload(payload: str) -> tuple[int, str] | None:
    prefix, _, rest = payload.partition(":")
    post, _, label = rest.partition(":")
    if prefix != BUTTON_PREFIX or not post.isdigit() or not label:
        return None
    return int(post), label


class MemeService:
    def __init__(
        self,
        *,
        storage: Storage,
        models: ModelHolder,
        queue: ClassifyQueue,
        downloader: Downloader,
        switcher: ModelSwitcher,
        policy: ServicePolicy,
        jobs: JobWatcher | None = None,
        trainer: TrainerStatus | None = None,
    ) -> None:
        self.storage = storage
        self.models = models
        self.queue = queue
        self.downloader = downloader
        self.switcher = switcher
        self.policy = policy
        self.jobs = jobs  # answers the admins who asked when their retrain ends
        self.trainer = trainer or TrainerStatus("external")
        self._label_lock = asyncio.Lock()
        self.moderation = Moderation(storage, models, policy.moderation)

    # ------------------------------------------------------------------------- image posts

    async def handle_post(self, post: ImagePost, outbox: Outbox | None = None) -> PostOutcome:
        """download -> store -> classify -> record -> repost check -> sort -> the replies.

        `outbox` (the adapter) links to messages and sends sorted copies; without it there
        are no links and no sorting."""
        attachment = post.attachment
        if attachment is None:
            raise ValueError("handle_post downloads the attachment: use handle_upload for bytes")
        chat_settings = await self.storage.chat_settings(post.chat.platform, post.chat.chat_id)
        if not chat_settings.enabled:
            return PostOutcome(reply=None)
        if is_other_image(attachment.mime_type):  # said before any download
            kind = (attachment.mime_type or "").split(";")[0].strip()
            return PostOutcome(reply=Reply(
                f"Sorry, I can't read this {attachment.kind}: {kind} is not a format I read "
                f"({READABLE})."
            ))
        if self.queue.is_full:  # answer at once rather than download what cannot be queued
            return PostOutcome(reply=Reply(self._busy_text()))
        try:
            self.downloader.check_size(attachment.declared_size)
            download = await self.downloader.fetch(await attachment.resolve_url())
        except DownloadError as exc:
            log.info("image not downloaded: %s (chat %s)", exc, post.chat.chat_id)
            return PostOutcome(reply=Reply(f"Sorry, I can't read this {attachment.kind}: {exc}."))
        return await self._classify_and_record(post, download.data, chat_settings, outbox)

    async def handle_upload(
        self, post: ImagePost, data: bytes, outbox: Outbox | None = None
    ) -> PostOutcome:
        """The same path as `handle_post` for an image whose bytes the adapter already holds
        (the console's uploads): size check -> store -> classify -> record -> reply."""
        chat_settings = await self.storage.chat_settings(post.chat.platform, post.chat.chat_id)
        if not chat_settings.enabled:
            return PostOutcome(reply=None)
        if self.queue.is_full:
            return PostOutcome(reply=Reply(self._busy_text()))
        try:
            self.downloader.check_size(len(data))
        except DownloadError as exc:
            return PostOutcome(reply=Reply(f"Sorry, I can't read this image: {exc}."))
        return await self._classify_and_record(post, data, chat_settings, outbox)

    async def _classify_and_record(
        self, post: ImagePost, data: bytes, chat_settings: ChatSettings, outbox: Outbox | None
    ) -> PostOutcome:
        try:
            stored = await self.storage.add_post(
                platform=post.chat.platform,
                chat_id=post.chat.chat_id,
                message_id=post.message_id,
                author_id=post.author.user_id,
                image=data,
                attachment_index=post.attachment.index if post.attachment else 0,
                posted_at=post.posted_at,
                caption=post.caption,
            )
        except BlobError as exc:
            return PostOutcome(reply=Reply(f"Sorry, I can't read this image: {_reason(exc)}."))
        if not stored.created and await self.storage.predictions_for(stored.id):
            return PostOutcome(reply=None, post_id=stored.id)  # a redelivered update
        try:
            prediction = await self.queue.classify(data, stored.caption)
        except QueueFullError:
            return PostOutcome(reply=Reply(self._busy_text()), post_id=stored.id)
        except QueueClosedError:
            return PostOutcome(reply=None, post_id=stored.id)
        except ImageError as exc:
            return PostOutcome(
                reply=Reply(f"Sorry, I can't read this image: {exc}."), post_id=stored.id
            )
        await self._record(stored, prediction)
        outcome = await self._post_outcome(post, stored, prediction, chat_settings)
        verdict = await self.moderation.check_repost(
            post, stored, data, prediction, chat_settings, outbox
        )
        if verdict is not None:  # a repost is not sorted again
            return dataclasses.replace(outcome, repost=verdict.reply, removed=verdict.removed)
        if prediction.confidence >= self._threshold(chat_settings):
            await self.moderation.sort(stored, prediction.label, outbox, post.author.display_name)
        return outcome

    def _busy_text(self) -> str:
        return (
            f"I'm busy: {self.queue.pending} memes are waiting to be labelled. "
            "Please post this one again in a minute."
        )

    async def _record(self, post: Post, prediction: Prediction) -> None:
        await self.storage.record_prediction(
            post.id,
            model_version=prediction.model_version,
            label=prediction.label,
            confidence=prediction.confidence,
            probabilities=prediction.probabilities,
            latency_ms=prediction.latency_ms,
            ood_score=prediction.ood_score,
        )

    async def _post_outcome(
        self, post: ImagePost, stored: Post, prediction: Prediction, chat: ChatSettings
    ) -> PostOutcome:
        text = self.prediction_text(prediction.label, prediction.confidence)
        mode = ReplyMode(chat.reply_mode) if chat.reply_mode else self.policy.reply_mode
        threshold = self._threshold(chat)
        base = PostOutcome(reply=None, post_id=stored.id, label=prediction.label)
        if mode is ReplyMode.silent:
            log_line = (
                f"{post.chat.platform} chat {post.chat.chat_id}, message {post.message_id} "
                f"by {post.author.display_name}: {text}"
            )
            return PostOutcome(reply=None, admin_log=log_line, post_id=stored.id,
                               label=prediction.label)
        if mode is ReplyMode.confident and prediction.confidence < threshold:
            return base
        reply = Reply(text, await self._buttons(stored.id, prediction.label), stored.id)
        return PostOutcome(reply=reply, post_id=stored.id, label=prediction.label)

    def _threshold(self, chat: ChatSettings) -> float:
        if chat.confidence_threshold is not None:
            return chat.confidence_threshold
        return self.policy.confidence_threshold

    def prediction_text(self, label: str, confidence: float) -> str:
        classifier = self.models.current
        return fmt.prediction_text(
            label,
            confidence,
            reject_label=classifier.meta.reject_label,
            model_labels=classifier.labels,
        )

    async def _buttons(self, post_id: int, current: str | None) -> tuple[Button, ...]:
        labels = [label.name for label in await self.storage.list_labels()]
        return tuple(
            Button(fmt.button_text(name, current=name == current), button_payload(post_id, name),
                   current=name == current)
            for name in labels
        )

    # ------------------------------------------------------------------------- corrections

    async def handle_button(
        self,
        chat: ChatRef,
        actor: Actor,
        payload: str,
        platform_check: PlatformAdminCheck | None,
        outbox: Outbox | None = None,
    ) -> CorrectionOutcome:
        if payload.startswith(f"{REPOST_PREFIX}:"):
            return await self._repost_button(chat, actor, payload, platform_check, outbox)
        parsed = parse_payload(payload)
        if parsed is None:
            return CorrectionOutcome(notice="This button is no longer valid.", alert=True)
        post_id, label = parsed
        try:
            post = await self.storage.get_post(post_id)
        except (NotFoundError, InvalidInputError):
            return CorrectionOutcome(notice="I no longer know this meme.", alert=True)
        if (post.platform, post.chat_id) != (chat.platform, chat.chat_id):
            return CorrectionOutcome(notice="This button belongs to another chat.", alert=True)
        if not await self.is_admin(actor, chat, platform_check):
            return CorrectionOutcome(notice="Only admins can change labels.", alert=True)
        return await self._apply_label(post, label, actor, outbox)

    async def _repost_button(
        self,
        chat: ChatRef,
        actor: Actor,
        payload: str,
        platform_check: PlatformAdminCheck | None,
        outbox: Outbox | None,
    ) -> CorrectionOutcome:
        if not await self.is_admin(actor, chat, platform_check):
            return CorrectionOutcome(notice="Only admins can judge reposts.", alert=True)
        result = await self.moderation.repost_button(payload, chat, actor)
        if isinstance(result, CorrectionOutcome):
            return result
        post, mark = result
        if mark is RepostMarkKind.exempt:
            text = f"Copies of this image are not flagged any more (exempted by {actor.display_name})."
            return CorrectionOutcome(notice="Exempted.", reply=Reply(text, (), post.id),
                                     post_id=post.id, changed=True)
        text = f"Not a repost (marked by {actor.display_name})."
        # A flagged post was not sorted: now that it is no repost, its label may sort it.
        label = await self._sortable_label(post)
        sorted_note = await self.moderation.sort(post, label, outbox) if label else None
        notice = f"Marked not a repost. {sorted_note}" if sorted_note else "Marked not a repost."
        return CorrectionOutcome(notice=notice, reply=Reply(text, (), post.id), post_id=post.id,
                                 changed=True)

    async def _sortable_label(self, post: Post) -> str | None:
        """The label an admin decided, else the model's when it is confident."""
        decided = await self.storage.corrections_for(post.id)
        if decided:
            return decided[-1].new_label
        predictions = await self.storage.predictions_for(post.id)
        if not predictions:
            return None
        chat = await self.storage.chat_settings(post.platform, post.chat_id)
        latest = predictions[-1]
        return latest.label if latest.confidence >= self._threshold(chat) else None

    async def handle_reaction(
        self,
        chat: ChatRef,
        actor: Actor,
        message_id: str,
        emojis: Collection[str],
        platform_check: PlatformAdminCheck | None,
        outbox: Outbox | None = None,
    ) -> CorrectionOutcome | None:
        """An admin's emoji on a meme may set its label; anyone else's is just a reaction."""
        mapping = self.policy.reaction_labels or {}
        wanted = [mapping[e] for e in emojis if e in mapping]
        if not wanted:
            return None
        post = await self.storage.find_post(chat.platform, chat.chat_id, message_id)
        if post is None or not await self.is_admin(actor, chat, platform_check):
            return None
        label = wanted[-1]
        if label == CONFIRM:
            predictions = await self.storage.predictions_for(post.id)
            if not predictions:
                return None
            label = predictions[-1].label
        return await self._apply_label(post, label, actor, outbox)

    async def _apply_label(
        self, post: Post, label: str, actor: Actor, outbox: Outbox | None = None
    ) -> CorrectionOutcome:
        # One at a time, so that a double click cannot store the same decision twice.
        async with self._label_lock:
            decisions = await self.storage.corrections_for(post.id)
            if decisions and decisions[-1].new_label == label:  # pressed again: nothing new
                return CorrectionOutcome(
                    notice=f"It is already {fmt.display_name(label)}.", post_id=post.id
                )
            outcome = await self._store_label(post, label, actor)
            if outcome.alert:  # refused: nothing to sort
                return outcome
            # Confirmed or corrected by an admin: copy it to the label's place, or move it.
            sorted_note = await self.moderation.sort(post, label, outbox)
            if sorted_note:
                outcome = dataclasses.replace(outcome, notice=f"{outcome.notice} {sorted_note}")
            return outcome

    async def _store_label(self, post: Post, label: str, actor: Actor) -> CorrectionOutcome:
        predictions = await self.storage.predictions_for(post.id)
        latest = predictions[-1] if predictions else None
        previous = await self.storage.effective_label(post.image.sha256)
        previous = previous or (latest.label if latest else None)
        try:
            if latest is not None and label == latest.label:
                await self.storage.confirm_prediction(latest.id, admin_id=actor.qualified_id)
            else:
                await self.storage.record_correction(
                    post.id, admin_id=actor.qualified_id, label=label
                )
        except (UnknownLabelError, InvalidInputError):
            return CorrectionOutcome(notice=f"There is no label {label!r}.", alert=True)
        confirmed = latest is not None and label == latest.label
        text = fmt.corrected_text(label, actor.display_name, confirmed=confirmed)
        reply = Reply(text, await self._buttons(post.id, label), post.id)
        log.info("post %s labelled %s by %s", post.id, label, actor.qualified_id)
        return CorrectionOutcome(
            notice=f"Label set to {fmt.display_name(label)}.",
            reply=reply,
            post_id=post.id,
            changed=label != previous,
        )

    async def is_admin(
        self, actor: Actor, chat: ChatRef, platform_check: PlatformAdminCheck | None
    ) -> bool:
        return await is_admin(
            actor,
            chat,
            super_admins=self.policy.super_admins,
            chat_settings=await self.storage.chat_settings(chat.platform, chat.chat_id),
            platform_check=platform_check,
        )

    # ---------------------------------------------------------------------------- commands

    async def handle_command(
        self, command: Command, platform_check: PlatformAdminCheck | None
    ) -> Reply | None:
        """The reply to a command, or None for a command that is not ours."""
        public = {
            "help": self._help,
            "start": self._help,
            "stats": self._stats,
            "labels": self._labels,
            "model": self._model,
        }
        admin_only = {
            "retrain": self._retrain,
            "addlabel": self._addlabel,
            "rollback": self._rollback,
            "reposts": self.moderation.reposts_command,
            "sort": self.moderation.sort_command,
        }
        if command.name in public:
            return await public[command.name](command)
        if command.name not in admin_only:
            return None
        if not await self.is_admin(command.actor, command.chat, platform_check):
            return Reply(f"Only admins of this chat can use /{command.name}.", private=True)
        return await admin_only[command.name](command)

    async def _help(self, command: Command) -> Reply:
        return Reply(fmt.HELP_TEXT)

    async def _stats(self, command: Command) -> Reply:
        classifier = self.models.current
        stats = await self.storage.stats()
        return Reply(fmt.stats_text(stats, classifier.version, classifier.meta.metrics))

    async def _labels(self, command: Command) -> Reply:
        labels = [label.name for label in await self.storage.list_labels()]
        return Reply(fmt.labels_text(labels, self.models.current.labels))

    async def _model(self, command: Command) -> Reply:
        classifier = self.models.current
        versions = await self.storage.list_model_versions()
        # The trainer wrote the report beside the model; the bot only points to the file.
        report = classifier.folder / REPORT_FILE
        shown = str(report.resolve()) if await asyncio.to_thread(report.is_file) else None
        return Reply(fmt.model_text(classifier.version, classifier.meta.metrics, versions, shown))

    async def _retrain(self, command: Command) -> Reply:
        # Only queued here: a separate trainer process claims the job, so the bot never
        # blocks on (or imports) the training code.
        # Fast: a new head on cached embeddings (minutes on a CPU); full: a fine-tune.
        kind = command.args[0].lower() if command.args else "fast"
        if kind not in ("fast", "full"):
            return Reply("Usage: /retrain [fast|full]")
        queued = await self.storage.enqueue_retrain(command.actor.qualified_id, kind)
        job = queued.job
        if self.jobs is not None:  # told the numbers when the job ends
            self.jobs.track(job.id, RetrainRequest(command.chat, command.actor, command.message_id))
        if queued.created:
            text = (
                f"Retraining ({kind}) queued (job #{job.id}). I keep using "
                f"{self.models.current.version} until the new model passes its checks."
            )
        else:
            text = f"A retrain is already {job.status.value} (job #{job.id})."
        if self.jobs is not None:
            text += " I'll post the results here when it ends."
        note = self.trainer.queued_note() if job.status.value == "queued" else None
        return Reply(f"{text} {note}" if note else text)

    async def _addlabel(self, command: Command) -> Reply:
        if len(command.args) != 1:
            return Reply("Usage: /addlabel NAME (lowercase letters, digits, underscores)")
        name = command.args[0].strip().lower().replace("-", "_")
        try:
            await self.storage.add_label(name, added_by=command.actor.qualified_id)
        except LabelExistsError:
            return Reply(f"The label {name} already exists.")
        except InvalidInputError:
            return Reply(
                f"{name!r} cannot be a label: use 1-32 lowercase letters, digits or underscores."
            )
        return Reply(
            f"Added the label {fmt.display_name(name)}. Label some memes with it, "
            "then /retrain so that I learn it."
        )

    async def _rollback(self, command: Command) -> Reply:
        if len(command.args) > 1:
            return Reply("Usage: /rollback [VERSION]")
        try:
            version = await self.switcher.rollback(command.args[0] if command.args else None)
        except SwitchError as exc:
            return Reply(f"Cannot roll back: {exc}.")
        return Reply(f"Now serving model {version.version}.")


def _reason(exc: Exception) -> str:
    return str(exc).rstrip(".")
