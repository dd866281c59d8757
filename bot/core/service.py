"""`MemeService`: what the bot does, whatever the chat platform.

Adapters call `handle_post` (or `handle_upload` for bytes they already hold), `handle_button`,
`handle_reaction` and `handle_command`; what comes back (`bot.core.outcomes`) says what was
decided, with the words to show beside it. Nothing here knows about Telegram, Discord or the
console.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from bot.core import commands
from bot.core import formatting as fmt
from bot.core.classify_queue import Classified, ClassifyQueue, QueueClosedError, QueueFullError
from bot.core.commands import Role
from bot.core.downloads import Downloader, DownloadError, TooLargeError
from bot.core.job_watcher import JobWatcher
from bot.core.media import READABLE, READABLE_CLIPS, is_other_image, is_other_video
from bot.core.messages import (
    Actor,
    Button,
    ChatRef,
    Command,
    ImagePost,
    Outbox,
    PlatformAdminCheck,
    Reply,
)
from bot.core.model_holder import ModelHolder
from bot.core.model_switch import ModelSwitcher
from bot.core.moderation import (
    REPOST_PREFIX,
    Moderation,
    ModerationPolicy,
    button_post,
    invalid,
)
from bot.core.outcomes import (
    CommandResult,
    CommandStatus,
    CorrectionOutcome,
    CorrectionStatus,
    PostOutcome,
    PostStatus,
    RepostVerdict,
)
from bot.core.permissions import is_admin
from bot.core.trainer_process import TrainerStatus
from config.settings import ReplyMode
from inference.classifier import Prediction
from inference.clips import MediaError, MediaFacts, MediaKind
from inference.errors import ImageError
from storage.api import Storage
from storage.errors import BlobError, InvalidInputError, UnknownLabelError
from storage.intake import (
    ClipMedia,
    IntakeResult,
    LabelledFingerprint,
    NewPost,
    PostContext,
    PostKey,
    PredictionValues,
)
from storage.records import ChatSettings, Post, RepostMarkKind
from storage.validation import check_caption

log = logging.getLogger(__name__)

BUTTON_PREFIX = "c"
CONFIRM = "+"  # a reaction meaning "the model is right"


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
        """context -> download -> classify and fingerprint -> repost check -> store -> sort.

        `outbox` (the adapter) links to messages and sends sorted copies; without it there
        are no links and no sorting."""
        attachment = post.attachment
        if attachment is None:
            raise ValueError("handle_post downloads the attachment: use handle_upload for bytes")
        key = PostKey.checked(post.chat.platform, post.chat.chat_id, post.message_id,
                              attachment.index)
        context = await self.storage.post_context(key)
        refused = self._refusal(context, attachment.kind)
        if refused is not None:
            return refused
        if is_other_image(attachment.mime_type) or is_other_video(attachment.mime_type):
            kind = (attachment.mime_type or "").split(";")[0].strip()  # said before any download
            readable = READABLE_CLIPS if kind.startswith("video/") else READABLE
            return self._unlabelled(PostStatus.unsupported, attachment.kind,
                                    f"{kind} is not a format I read ({readable})")
        try:
            self.downloader.check_size(attachment.declared_size)
            download = await self.downloader.fetch(await attachment.resolve_url())
        except TooLargeError as exc:
            return self._unlabelled(PostStatus.too_large, attachment.kind, str(exc))
        except DownloadError as exc:
            log.info("image not downloaded: %s (chat %s)", exc, post.chat.chat_id)
            return self._unlabelled(PostStatus.not_downloaded, attachment.kind, str(exc))
        return await self._label(post, key, download.data, context, outbox)

    async def handle_upload(
        self, post: ImagePost, data: bytes, outbox: Outbox | None = None
    ) -> PostOutcome:
        """The same path as `handle_post` for an image whose bytes the adapter already holds
        (the console's uploads)."""
        key = PostKey.checked(post.chat.platform, post.chat.chat_id, post.message_id)
        context = await self.storage.post_context(key)
        refused = self._refusal(context, "image")
        if refused is not None:
            return refused
        try:
            self.downloader.check_size(len(data))
        except DownloadError as exc:
            return self._unlabelled(PostStatus.too_large, "image", str(exc))
        return await self._label(post, key, data, context, outbox)

    def _refusal(self, context: PostContext, kind: str) -> PostOutcome | None:
        if not context.settings.enabled:
            return PostOutcome(PostStatus.disabled)
        if context.answered_post_id is not None:  # a redelivered update
            return PostOutcome(PostStatus.redelivered, post_id=context.answered_post_id)
        if self.queue.is_full:  # answer at once rather than download what cannot be queued
            return self._busy()
        return None

    def _busy(self) -> PostOutcome:
        return PostOutcome(PostStatus.busy, reply=Reply(fmt.busy_text(self.queue.pending)))

    @staticmethod
    def _unlabelled(status: PostStatus, kind: str, reason: str) -> PostOutcome:
        return PostOutcome(status, reason=reason, reply=Reply(fmt.unreadable_text(kind, reason)))

    async def _label(self, post: ImagePost, key: PostKey, data: bytes, context: PostContext,
                     outbox: Outbox | None) -> PostOutcome:
        caption = check_caption(post.caption)
        try:
            classified = await self.queue.classify(data, caption)
        except QueueFullError:
            return self._busy()
        except QueueClosedError:
            return PostOutcome(PostStatus.shutting_down)
        except MediaError as exc:
            return self._unlabelled(PostStatus.unreadable, "clip", str(exc))
        except ImageError as exc:
            return self._unlabelled(PostStatus.unreadable, "image", str(exc))
        verdict = await self.moderation.find_repost(post, context.settings, classified, outbox)
        try:
            stored = await self._store(post, key, data, classified, caption)
        except BlobError as exc:
            return self._unlabelled(PostStatus.unreadable, "image", str(exc))
        if stored.answered_before:
            return PostOutcome(PostStatus.redelivered, post_id=stored.post.id)
        outcome = dataclasses.replace(
            self._outcome(post, stored.post, classified.prediction, context, verdict),
            post=stored.post, prediction_id=stored.prediction_id,
        )
        threshold = self._threshold(context.settings)
        if verdict is None and classified.prediction.confidence >= threshold:
            # A repost is not sorted again.
            await self.moderation.sort(stored.post, classified.prediction.label, outbox,
                                       post.author.display_name, context.settings)
        return outcome

    async def _store(self, post: ImagePost, key: PostKey, data: bytes, classified: Classified,
                     caption: str | None) -> IntakeResult:
        p = classified.prediction
        fingerprint = self.moderation.fingerprint(classified)
        return await self.storage.record_labelled_post(
            NewPost(key, post.author.user_id, data, post.posted_at, caption,
                    clip_media(classified.media,
                               post.attachment.kind if post.attachment else None)),
            PredictionValues(p.model_version, p.label, p.confidence, dict(p.probabilities),
                             p.latency_ms, p.ood_score),
            LabelledFingerprint(fingerprint, post.author.display_name,
                                self.moderation.frame_fingerprints(classified))
            if fingerprint else None,
        )

    def _outcome(self, post: ImagePost, stored: Post, prediction: Prediction,
                 context: PostContext, verdict: RepostVerdict | None) -> PostOutcome:
        chat = context.settings
        text = self.prediction_text(prediction.label, prediction.confidence)
        mode = ReplyMode(chat.reply_mode) if chat.reply_mode else self.policy.reply_mode
        reply, admin_log = None, None
        if mode is ReplyMode.silent:
            admin_log = fmt.admin_log_text(post.chat.platform, post.chat.chat_id,
                                           post.message_id, post.author.display_name, text)
        elif mode is ReplyMode.every or prediction.confidence >= self._threshold(chat):
            buttons = label_buttons(stored.id, context.labels, prediction.label)
            reply = Reply(text, buttons, stored.id)
        repost_note = removed_note = None
        if verdict is not None:
            buttons = self.moderation.repost_buttons(stored.id, verdict)
            repost_note = Reply(fmt.repost_text(verdict, removed_from=None), buttons, stored.id)
            if verdict.remove:
                removed_note = Reply(fmt.repost_text(verdict,
                                                     removed_from=post.author.display_name),
                                     buttons, stored.id)
        return PostOutcome(PostStatus.labelled, stored.id, prediction, repost=verdict,
                           reply=reply, repost_note=repost_note, removed_note=removed_note,
                           admin_log=admin_log)

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
        return label_buttons(post_id, labels, current)

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
            return invalid(fmt.STALE_BUTTON)
        post_id, label = parsed
        post = await button_post(self.storage, post_id, chat)
        if isinstance(post, CorrectionOutcome):
            return post
        if not await self.is_admin(actor, chat, platform_check):
            return refused(fmt.admins_only_notice("change labels"))
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
            return refused(fmt.admins_only_notice("judge reposts"))
        result = await self.moderation.repost_button(payload, chat, actor)
        if isinstance(result, CorrectionOutcome):
            return result
        post, mark = result
        judged = CorrectionStatus.repost_judged
        if mark is RepostMarkKind.exempt:
            text = fmt.exempted_text(actor.display_name)
            return CorrectionOutcome(judged, fmt.EXEMPTED, Reply(text, (), post.id),
                                     post_id=post.id, changed=True)
        text = fmt.not_repost_text(actor.display_name)
        # A flagged post was not sorted: now that it is no repost, its label may sort it.
        label = await self._sortable_label(post)
        sorted_note = await self.moderation.sort(post, label, outbox) if label else None
        notice = fmt.not_repost_notice(sorted_note)
        return CorrectionOutcome(judged, notice, Reply(text, (), post.id), post_id=post.id,
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
                return CorrectionOutcome(CorrectionStatus.unchanged,
                                         fmt.already_labelled_notice(label),
                                         post_id=post.id, label=label)
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
        confirmed = latest is not None and label == latest.label
        try:
            if latest is not None and confirmed:
                await self.storage.confirm_prediction(latest.id, admin_id=actor.qualified_id)
            else:
                await self.storage.record_correction(
                    post.id, admin_id=actor.qualified_id, label=label
                )
        except (UnknownLabelError, InvalidInputError):
            return invalid(fmt.unknown_label_notice(label))
        text = fmt.corrected_text(label, actor.display_name, confirmed=confirmed)
        reply = Reply(text, await self._buttons(post.id, label), post.id)
        log.info("post %s labelled %s by %s", post.id, label, actor.qualified_id)
        return CorrectionOutcome(
            CorrectionStatus.confirmed if confirmed else CorrectionStatus.corrected,
            fmt.label_set_notice(label),
            reply,
            post_id=post.id,
            changed=label != previous,
            label=label,
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
    ) -> CommandResult | None:
        """The result of a command, or None for a command that is not ours."""
        spec = commands.find(command.name)
        if spec is None:
            return None
        if spec.role is Role.admin and not await self.is_admin(
            command.actor, command.chat, platform_check
        ):
            return spec.result(CommandStatus.refused, fmt.admins_only_text(spec.name),
                               private=True)
        return await spec.handler(self, command)


def clip_media(media: MediaFacts, posted_as: str | None = None) -> ClipMedia | None:
    """What storage records of a clip (None for a still). A clip the platform posted as a
    sticker (Telegram's WebM stickers) is recorded as one; its bytes only say it is a video."""
    if media.poster is None:
        return None
    kind = MediaKind.sticker if posted_as == "sticker" else media.kind
    return ClipMedia(kind.value, media.container, media.width, media.height,
                     media.duration_s, media.frames_used, media.poster)


def refused(notice: str) -> CorrectionOutcome:
    return CorrectionOutcome(CorrectionStatus.refused, notice)


def label_buttons(post_id: int, labels: Iterable[str], current: str | None
                  ) -> tuple[Button, ...]:
    return tuple(
        Button(fmt.button_text(name, current=name == current), button_payload(post_id, name),
               current=name == current)
        for name in labels
    )
