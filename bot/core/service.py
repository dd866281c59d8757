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
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bot.core import commands, governance, offtopic, settings_menu
from bot.core import formatting as fmt
from bot.core.chat_rules import ChatRules, RuleDefaults, resolve
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
from bot.core.operators import is_operator
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
from bot.core.platform_registry import PlatformRegistry
from bot.core.recall import CorrectionRecall
from bot.core.setup_check import SetupProbe
from bot.core.trainer_process import TrainerStatus
from bot.observability.metrics import BotMetrics
from config.settings import ReplyMode
from inference.classifier import Prediction
from inference.clip_records import clip_media
from inference.clips import MediaError
from inference.errors import ImageError
from storage.api import Storage
from storage.chats import server_scope
from storage.errors import BlobError, InvalidInputError, UnknownLabelError
from storage.intake import (
    IntakeResult,
    LabelledFingerprint,
    NewPost,
    PostContext,
    PostKey,
    PredictionValues,
)
from storage.records import Post, RepostMarkKind
from storage.validation import check_caption

log = logging.getLogger(__name__)

BUTTON_PREFIX = "c"
CONFIRM = governance.CONFIRM_REACTION  # a reaction meaning "the model is right"


@dataclass(frozen=True)
class ServicePolicy:
    """The parts of `Settings` the service decides with (per-chat settings may override)."""

    reply_mode: ReplyMode = ReplyMode.every
    confidence_threshold: float = 0.6
    super_admins: Collection[str] = ()  # the operators (see bot.core.governance)
    reaction_labels: Mapping[str, str] | None = None  # emoji -> label, or CONFIRM
    moderation: ModerationPolicy = field(default_factory=ModerationPolicy)  # reposts, sorting
    # platform -> the admins' chat there (held memes and silent mode's log go to it)
    admin_chats: Mapping[str, str] = field(default_factory=dict)
    retention_days: int | None = None  # /privacy says how long posts are kept
    purge_after_leave_days: int | None = None
    quiet_after: timedelta | None = None  # older posts are labelled without a reply


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
        metrics: BotMetrics | None = None,
    ) -> None:
        self.storage = storage
        self.models = models
        self.queue = queue
        self.downloader = downloader
        self.switcher = switcher
        self.policy = policy
        self.jobs = jobs  # answers the admins who asked when their retrain ends
        self.trainer = trainer or TrainerStatus("external")
        self.metrics = metrics
        self.setup = PlatformRegistry[SetupProbe]()  # each running adapter's, for /check
        self.outboxes = PlatformRegistry[Outbox]()  # to act in a platform's chats from elsewhere
        self.label_lock = asyncio.Lock()
        self.moderation = Moderation(storage, models, policy.moderation)
        self.recall = CorrectionRecall(storage, models)  # admins' corrections count at once

    # ------------------------------------------------------------------------- image posts

    async def handle_post(self, post: ImagePost, outbox: Outbox | None = None) -> PostOutcome:
        """context -> download -> classify and fingerprint -> repost check -> store -> sort.

        `outbox` (the adapter) links to messages and sends sorted copies; without it there
        are no links and no sorting."""
        started = time.perf_counter()
        return self._observed(post, started, await self._handle_post(post, outbox))

    def _observed(self, post: ImagePost, started: float, outcome: PostOutcome) -> PostOutcome:
        if self.metrics is not None:
            self.metrics.post(post.chat.platform, outcome, time.perf_counter() - started)
        return outcome

    async def _handle_post(self, post: ImagePost, outbox: Outbox | None) -> PostOutcome:
        attachment = post.attachment
        if attachment is None:
            raise ValueError("handle_post downloads the attachment: use handle_upload for bytes")
        key = PostKey.checked(post.chat.platform, post.chat.chat_id, post.message_id,
                              attachment.index)
        context = await self._context(key, post.chat)
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
        started = time.perf_counter()
        return self._observed(post, started, await self._handle_upload(post, data, outbox))

    async def _handle_upload(self, post: ImagePost, data: bytes, outbox: Outbox | None
                             ) -> PostOutcome:
        key = PostKey.checked(post.chat.platform, post.chat.chat_id, post.message_id)
        context = await self._context(key, post.chat)
        refused = self._refusal(context, "image")
        if refused is not None:
            return refused
        try:
            self.downloader.check_size(len(data))
        except DownloadError as exc:
            return self._unlabelled(PostStatus.too_large, "image", str(exc))
        return await self._label(post, key, data, context, outbox)

    async def _context(self, key: PostKey, chat: ChatRef) -> PostContext:
        server = server_scope(chat.server_id) if chat.server_id is not None else None
        return await self.storage.post_context(key, server)

    @property
    def rule_defaults(self) -> RuleDefaults:
        return RuleDefaults(self.policy.reply_mode, self.policy.confidence_threshold)

    def _rules(self, context: PostContext) -> ChatRules:
        layers = (context.settings,) if context.server is None else (context.settings,
                                                                      context.server)
        return resolve(layers, self.rule_defaults)

    async def rules_for(self, chat: ChatRef) -> ChatRules:
        """What applies in `chat` now (its own settings, its server's, the defaults)."""
        return resolve(await self.storage.chat_settings_layers(
            chat.platform, chat.chat_id, chat.server_id), self.rule_defaults)

    def _refusal(self, context: PostContext, kind: str) -> PostOutcome | None:
        if not self._rules(context).enabled:
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
        recalled, remembered = await self.recall.recall(classified.prediction, post.chat)
        classified = dataclasses.replace(classified, prediction=recalled)
        verdict = await self.moderation.find_repost(post, context.settings, classified, outbox,
                                                    data)
        try:
            stored = await self._store(post, key, data, classified, caption,
                                       remembered=remembered is not None)
        except BlobError as exc:
            return self._unlabelled(PostStatus.unreadable, "image", str(exc))
        if stored.answered_before:
            return PostOutcome(PostStatus.redelivered, post_id=stored.post.id)
        outcome = dataclasses.replace(
            self._outcome(post, stored.post, classified.prediction, context, verdict,
                          remembered=remembered is not None),
            post=stored.post, prediction_id=stored.prediction_id,
        )
        if self._is_old(post):  # caught up long after: stored and sorted, not answered
            outcome = dataclasses.replace(outcome, reply=None, repost_note=None,
                                          removed_note=None, admin_log=None, admin_post=None,
                                          reaction=None, quiet=True)
        prediction = classified.prediction
        threshold = self._rules(context).confidence_threshold
        confident = remembered is not None or self._confident(
            prediction.label, prediction.confidence, threshold)
        if outcome.offtopic is None and verdict is None and confident:
            # A repost is not sorted again.
            await self.moderation.sort(stored.post, classified.prediction.label, outbox,
                                       post.author.display_name, context.settings)
        return outcome

    def _is_old(self, post: ImagePost) -> bool:
        limit = self.policy.quiet_after
        if limit is None or post.posted_at is None:
            return False
        return datetime.now(UTC) - post.posted_at > limit

    async def _store(self, post: ImagePost, key: PostKey, data: bytes, classified: Classified,
                     caption: str | None, *, remembered: bool) -> IntakeResult:
        p = classified.prediction
        fingerprint = self.moderation.fingerprint(classified)
        return await self.storage.record_labelled_post(
            NewPost(key, post.author.user_id, data, post.posted_at, caption,
                    clip_media(classified.media,
                               post.attachment.kind if post.attachment else None)),
            PredictionValues(p.model_version, p.label, p.confidence, dict(p.probabilities),
                             p.latency_ms, p.ood_score, remembered),
            LabelledFingerprint(fingerprint, post.author.display_name,
                                self.moderation.frame_fingerprints(classified))
            if fingerprint else None,
        )

    def _outcome(self, post: ImagePost, stored: Post, prediction: Prediction,
                 context: PostContext, verdict: RepostVerdict | None, *, remembered: bool
                 ) -> PostOutcome:
        rules = self._rules(context)
        text = self.prediction_text(prediction.label, prediction.confidence,
                                    remembered=remembered)
        mode = rules.reply_mode
        confident = remembered or self._confident(prediction.label, prediction.confidence,
                                                  rules.confidence_threshold)
        buttons = label_buttons(stored.id, context.labels, prediction.label)
        reply: Reply | None
        reply, offtopic_verdict = offtopic.decide(
            rules, prediction.label, prediction.confidence, chat=post.chat, post_id=stored.id,
            labels=context.labels, label_reply=Reply(text, buttons, stored.id),
            author=post.author.display_name,
        )
        noted = rules.acts_on(prediction.label)  # the reply says it is off-topic here
        admin_log = admin_post = reaction = None
        if mode is ReplyMode.silent:
            admin_log = fmt.admin_log_text(post.chat.platform, post.chat.chat_id,
                                           post.message_id, post.author.display_name,
                                           reply.text if reply is not None else text)
            admin_post = Reply(admin_log, offtopic.admin_buttons(
                stored.id, context.labels, prediction.label, held=False), stored.id)
            reply = None
        elif mode is ReplyMode.react and not noted:
            reaction = self.reaction_for(prediction.label)
            reply = None
        elif mode is ReplyMode.confident and not confident and not noted:
            reply = None
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
                           admin_log=admin_log, admin_post=admin_post, reaction=reaction,
                           offtopic=offtopic_verdict, remembered=remembered)

    def reaction_for(self, label: str) -> str:
        """The emoji the bot reacts with for `label` (reaction mode): the one admins react
        with to set it, else a neutral one."""
        mapping = self.policy.reaction_labels or {}
        return next((emoji for emoji, target in mapping.items() if target == label),
                    fmt.UNMAPPED_REACTION)

    def _confident(self, label: str, confidence: float, threshold: float) -> bool:
        """Confident enough to reply in "confident" mode and to sort: over the chat's threshold
        and not a guess by the model's own calibration. (A label from the correction memory
        is confident: an admin gave it to a close image.)"""
        unsure = self.models.current.meta.is_unsure(label, confidence)
        return not unsure and confidence >= threshold

    def prediction_text(self, label: str, confidence: float, *, remembered: bool = False) -> str:
        classifier = self.models.current
        return fmt.prediction_text(
            label,
            confidence,
            reject_label=classifier.meta.reject_label,
            model_labels=classifier.labels,
            unsure=classifier.meta.is_unsure(label, confidence),
            remembered=remembered,
        )

    async def label_buttons_for(self, post_id: int, current: str | None
                                ) -> tuple[Button, ...]:
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
        outcome = await self._handle_button(chat, actor, payload, platform_check, outbox)
        if self.metrics is not None:
            self.metrics.correction(chat.platform, outcome)
        return outcome

    async def _handle_button(self, chat: ChatRef, actor: Actor, payload: str,
                             platform_check: PlatformAdminCheck | None, outbox: Outbox | None
                             ) -> CorrectionOutcome:
        if payload.startswith(f"{REPOST_PREFIX}:"):
            return await self._repost_button(chat, actor, payload, platform_check, outbox)
        undo = governance.parse_undo_payload(payload)
        if undo is not None:
            return await governance.undo_button_pressed(self, chat, actor, undo)
        if payload.startswith(f"{settings_menu.SETTINGS_PREFIX}:"):
            if not await self.is_admin(actor, chat, platform_check):
                return refused(fmt.admins_only_notice("change settings"))
            return await settings_menu.press(self, chat, actor, payload)
        if payload.startswith(f"{offtopic.ADMIN_PREFIX}:"):
            if not offtopic.is_admin_chat(self.policy.admin_chats, chat):
                return invalid(fmt.ADMIN_CHAT_ONLY)
            if not await self.is_admin(actor, chat, platform_check):
                return refused(fmt.admins_only_notice("decide this"))
            return await offtopic.admin_press(self, actor, payload, outbox)
        parsed = parse_payload(payload)
        if parsed is None:
            return invalid(fmt.STALE_BUTTON)
        post_id, label = parsed
        post = await button_post(self.storage, post_id, chat)
        if isinstance(post, CorrectionOutcome):
            return post
        if not await self.is_admin(actor, chat, platform_check):
            return refused(fmt.admins_only_notice("change labels"))
        return await self.apply_label(post, label, actor, outbox)

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
        rules = await self.rules_for(ChatRef(post.platform, post.chat_id))
        latest = predictions[-1]
        return latest.label if self._confident(latest.label, latest.confidence,
                                               rules.confidence_threshold) else None

    async def current_label(self, post: Post) -> str | None:
        """The label an admin decided, else the model's latest."""
        return (await self.storage.current_labels([post.id])).get(post.id)

    async def author_name(self, post: Post) -> str:
        """The poster's name as the post was fingerprinted with, else their id."""
        known = await self.storage.fingerprints([post.id])
        return known[0].author_name if known else post.author_id

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
        outcome = await self._handle_reaction(chat, actor, message_id, emojis, platform_check,
                                              outbox)
        if self.metrics is not None:
            self.metrics.correction(chat.platform, outcome)
        return outcome

    async def _handle_reaction(self, chat: ChatRef, actor: Actor, message_id: str,
                               emojis: Collection[str],
                               platform_check: PlatformAdminCheck | None, outbox: Outbox | None
                               ) -> CorrectionOutcome | None:
        mapping = self.policy.reaction_labels or {}
        wanted = [mapping[e] for e in emojis if e in mapping]
        if not wanted or not (await self.rules_for(chat)).reaction_corrections:
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
        return await self.apply_label(post, label, actor, outbox)

    async def handle_reaction_removed(
        self, chat: ChatRef, actor: Actor, message_id: str, emojis: Collection[str]
    ) -> CorrectionOutcome | None:
        """An admin removed the reaction that set a label: the correction is taken back (until
        a retrain used it). No admin check: only the admin who made it matches."""
        return await governance.reaction_removed(self, chat, actor, message_id, emojis)

    async def apply_label(
        self, post: Post, label: str, actor: Actor, outbox: Outbox | None = None
    ) -> CorrectionOutcome:
        # One at a time, so that a double click cannot store the same decision twice.
        async with self.label_lock:
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
        # An operator's own decision trains whichever chat it is taken in.
        approved = is_operator(actor, self.policy.super_admins)
        try:
            if latest is not None and confirmed:
                decision = await self.storage.confirm_prediction(
                    latest.id, admin_id=actor.qualified_id, approved=approved)
            else:
                decision = await self.storage.record_correction(
                    post.id, admin_id=actor.qualified_id, label=label, approved=approved
                )
        except (UnknownLabelError, InvalidInputError):
            return invalid(fmt.unknown_label_notice(label))
        self.recall.refresh()
        text = fmt.corrected_text(label, actor.display_name, confirmed=confirmed)
        buttons = await self.label_buttons_for(post.id, label)
        reply = Reply(text, (*buttons, governance.undo_button(decision.id)), post.id)
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
        if spec.role is Role.operator and not await governance.may_use_shared(
            self, spec, command, platform_check
        ):
            log.info("/%s refused to %s in %s:%s", spec.name, command.actor.qualified_id,
                     command.chat.platform, command.chat.chat_id)
            return governance.refusal(spec)
        return await spec.handler(self, command)


def refused(notice: str) -> CorrectionOutcome:
    return CorrectionOutcome(CorrectionStatus.refused, notice)


def label_buttons(post_id: int, labels: Iterable[str], current: str | None
                  ) -> tuple[Button, ...]:
    return tuple(
        Button(fmt.button_text(name, current=name == current), button_payload(post_id, name),
               current=name == current)
        for name in labels
    )
