"""Moderation beyond labels, decided for `MemeService`: repost checks and the admins' marks on
them, and sorting memes into the places their labels map to (copied once, moved by a
correction). The adapters only render `Reply`s and implement `Outbox`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from bot.core import formatting as fmt
from bot.core.classify_queue import Classified
from bot.core.messages import (
    Actor,
    Button,
    ChatRef,
    Command,
    ForwardCopy,
    ForwardError,
    ImagePost,
    Outbox,
)
from bot.core.model_holder import ModelHolder
from bot.core.outcomes import (
    CommandResult,
    CorrectionOutcome,
    CorrectionStatus,
    MatchKind,
    RepostSettings,
    RepostVerdict,
    SortPlaces,
)
from bot.core.reposts import RepostDetector, RepostThresholds
from config.settings import RepostMode
from inference.classifier import Prediction
from inference.clips import MediaKind
from inference.fingerprint import embedding_space, pack
from inference.matching import NewPicture
from storage.api import Storage
from storage.errors import InvalidInputError, NotFoundError
from storage.records import ChatSettings, Fingerprint, Post, RepostMarkKind

if TYPE_CHECKING:
    from bot.core.commands import CommandSpec

log = logging.getLogger(__name__)

REPOST_PREFIX = "r"
NOT_REPOST, EXEMPT = "n", "x"
# What every repost button payload matches (Discord routes persistent buttons by pattern).
REPOST_PAYLOAD_PATTERN = rf"{REPOST_PREFIX}:[{NOT_REPOST}{EXEMPT}]:[0-9]+:[0-9]+"


def repost_payload(kind: str, post_id: int, original_id: int) -> str:
    return f"{REPOST_PREFIX}:{kind}:{post_id}:{original_id}"


def parse_repost_payload(payload: str) -> tuple[str, int, int] | None:
    parts = payload.split(":")
    if (len(parts) != 4 or parts[0] != REPOST_PREFIX or parts[1] not in (NOT_REPOST, EXEMPT)
            or not parts[2].isdigit() or not parts[3].isdigit()):
        return None
    return parts[1], int(parts[2]), int(parts[3])


@dataclass(frozen=True)
class ModerationPolicy:
    repost_mode: RepostMode = RepostMode.note
    repost_window_days: int = 365
    thresholds: RepostThresholds = field(default_factory=RepostThresholds)


class Moderation:
    def __init__(self, storage: Storage, models: ModelHolder, policy: ModerationPolicy) -> None:
        self.storage = storage
        self.models = models
        self.policy = policy
        self.detector = RepostDetector(storage, policy.thresholds)

    # ------------------------------------------------------------------------------ reposts

    async def find_repost(
        self, post: ImagePost, chat: ChatSettings, classified: Classified, outbox: Outbox | None,
        data: bytes | None = None,
    ) -> RepostVerdict | None:
        """The verdict when a new post (not stored yet) copies an earlier one of its chat.
        `data`: the post's file, whose picture a still's candidates are compared with."""
        mode = RepostMode(chat.repost_mode) if chat.repost_mode else self.policy.repost_mode
        if mode is RepostMode.off or classified.hashes is None:
            return None
        days = chat.repost_window_days or self.policy.repost_window_days
        posted = post.posted_at or datetime.now(UTC)
        embedding = self.embedding(classified.prediction)
        # A clip is looked up by its poster and a few more frames; the earliest original wins.
        picture = (NewPicture(data) if data is not None
                   and classified.media.kind is MediaKind.still else None)
        looks = [(classified.hashes, embedding, picture)] + [
            (frame.hashes, (frame.embedding, embedding[1]) if embedding else None, None)
            for frame in classified.frames
        ]
        matches = [
            found for hashes, vector, pic in looks
            if (found := await self.detector.find_original(
                post.chat.platform, post.chat.chat_id, hashes, vector,
                since=posted - timedelta(days=days), picture=pic,
            )) is not None
        ]
        if not matches:
            return None
        match = min(matches, key=lambda m: (m.original.posted_at, m.original.post_id))
        original = match.original
        log.info("message %s copies post %s (hash distance %s, cosine %s)", post.message_id,
                 original.post_id, match.hash_distance, match.cosine)
        link = outbox.link(ChatRef(original.platform, original.chat_id), original.message_id
                           ) if outbox else None
        return RepostVerdict(
            original_post_id=original.post_id,
            original_author=original.author_name,
            original_posted_at=original.posted_at,
            original_link=link,
            matched_by=MatchKind.picture if match.hash_distance is not None
            else MatchKind.embedding,
            hash_distance=match.hash_distance,
            cosine=match.cosine,
            remove=mode is RepostMode.delete,
        )

    @staticmethod
    def repost_buttons(post_id: int, verdict: RepostVerdict) -> tuple[Button, ...]:
        return (
            Button("Not a repost", repost_payload(NOT_REPOST, post_id, verdict.original_post_id)),
            Button("Exempt this image", repost_payload(EXEMPT, post_id,
                                                       verdict.original_post_id)),
        )

    def fingerprint(self, classified: Classified) -> Fingerprint | None:
        """What the post is stored with so that later copies find it."""
        hashes = classified.hashes
        if hashes is None:
            return None
        embedding = self.embedding(classified.prediction)
        blob = pack(embedding[0]) if embedding else None
        words = classified.prediction.text_embedding
        return Fingerprint(hashes.phash, hashes.dhash, blob, embedding[1] if embedding else None,
                           hashes.thumbnail or None,
                           pack(words, projected=False) if words is not None else None)

    def frame_fingerprints(self, classified: Classified) -> tuple[Fingerprint, ...]:
        """A clip's other frames as stored, so that a screenshot of any of them finds it."""
        embedding = self.embedding(classified.prediction)
        return tuple(
            Fingerprint(f.hashes.phash, f.hashes.dhash,
                        pack(f.embedding) if embedding else None,
                        embedding[1] if embedding else None, f.hashes.thumbnail or None)
            for f in classified.frames
        )

    def embedding(self, prediction: Prediction) -> tuple[np.ndarray, str] | None:
        classifier = self.models.current
        # An embedding is only comparable with others of its model's space.
        if prediction.embedding is None or prediction.model_version != classifier.version:
            return None
        return prediction.embedding, embedding_space(classifier.meta)

    async def repost_button(self, payload: str, chat: ChatRef, actor: Actor
                            ) -> CorrectionOutcome | tuple[Post, RepostMarkKind]:
        """Check a repost button press (the caller has checked the actor is an admin) and
        store the mark; returns the post and the mark stored, or the refusal."""
        parsed = parse_repost_payload(payload)
        if parsed is None:
            return invalid(fmt.STALE_BUTTON)
        kind, post_id, original_id = parsed
        post = await button_post(self.storage, post_id, chat)
        if isinstance(post, CorrectionOutcome):
            return post
        mark = RepostMarkKind.not_repost if kind == NOT_REPOST else RepostMarkKind.exempt
        # "exempt" is about the image first posted; "not a repost" about this pair of posts.
        target = original_id if mark is RepostMarkKind.exempt else post_id
        earlier = await self.storage.repost_marks([target])
        if any(m.kind is mark for m in earlier):
            return CorrectionOutcome(CorrectionStatus.unchanged, fmt.ALREADY_DONE, post_id=post.id)
        await self.storage.add_repost_mark(
            target, mark, admin_id=actor.qualified_id,
            original_post_id=original_id if mark is RepostMarkKind.not_repost else None,
        )
        log.info("post %s marked %s by %s", target, mark.value, actor.qualified_id)
        return post, mark

    # ------------------------------------------------------------------------------ sorting

    async def sort(self, post: Post, label: str, outbox: Outbox | None, author: str | None = None,
                   chat: ChatSettings | None = None) -> str | None:
        """Copy the post to its label's place once; after a correction, move the copy (or say
        where it went). Returns a sentence for the admins, or None when nothing happened.
        `chat`: the chat's settings when the caller has them (a new post, never copied)."""
        if outbox is None:
            return None
        if chat is not None and post.created and label not in chat.sort_places:
            return None  # a new post has no copy yet, and its label is not sorted here
        if author is None:  # a correction: the name the post was fingerprinted with
            known = await self.storage.fingerprints([post.id])
            author = known[0].author_name if known else None
        chat = chat or await self.storage.chat_settings(post.platform, post.chat_id)
        place = chat.sort_places.get(label)
        # A post stored just now has no copy yet: only a correction needs to look.
        existing = None if post.created else await self.storage.forward_for(post.id)
        ref = ChatRef(post.platform, post.chat_id)
        if existing is None:
            if place is None or await self.storage.claim_forward(post.id, label, place) is None:
                return None
            return (await self._send(post, label, place, outbox, author, ref))[1]
        if place is None or existing.place == place:
            if existing.place != place:
                return fmt.copied_before_text(existing.place)
            return None
        if await self.storage.move_forward(post.id, label, place, expected=existing.place) is None:
            return None  # another process moved it meanwhile
        removed = existing.copy_id is not None and await outbox.delete_copy(
            ref, existing.place, existing.copy_id
        )
        ok, sent = await self._send(post, label, place, outbox, author, ref)
        if removed:
            return fmt.moved_copy_text(existing.place, place, ok, sent)
        return fmt.copy_stays_text(existing.place, sent)

    async def _send(self, post: Post, label: str, place: str, outbox: Outbox,
                    author: str | None, ref: ChatRef) -> tuple[bool, str]:
        copy = ForwardCopy(
            post_id=post.id, chat=ref, message_id=post.message_id, place=place, label=label,
            text=fmt.copy_text(label, author or "a member", outbox.link(ref, post.message_id)),
        )
        try:
            copy_id = await outbox.send_copy(copy)
        except ForwardError as exc:
            # The claim is released so that a later decision can try again.
            await self.storage.release_forward(post.id)
            log.warning("post %s not copied to %s: %s", post.id, place, exc)
            return False, fmt.copy_failed_text(place, str(exc))
        await self.storage.confirm_forward(post.id, copy_id)
        log.info("post %s copied to %s as %s", post.id, place, copy_id)
        return True, fmt.copied_text(place)

    # ----------------------------------------------------------------------------- commands

    async def reposts_command(self, command: Command, me: CommandSpec) -> CommandResult:
        chat = command.chat
        args = [a.lower() for a in command.args]
        settings = await self.storage.chat_settings(chat.platform, chat.chat_id)
        mode = settings.repost_mode or self.policy.repost_mode.value
        days = settings.repost_window_days or self.policy.repost_window_days
        if not args:
            return me.done(fmt.reposts_text(mode, days),
                           RepostSettings(mode, days))
        if args[0] in ("off", "note", "delete") and len(args) == 1:
            await self.storage.update_chat_settings(chat.platform, chat.chat_id,
                                                    repost_mode=args[0])
            return me.done(fmt.reposts_mode_text(args[0]), RepostSettings(args[0], days))
        if args[0] == "window" and len(args) == 2:
            wanted = None if args[1] == "default" else args[1]
            if wanted is not None and not wanted.isdigit():
                return me.usage_error()
            try:
                await self.storage.update_chat_settings(
                    chat.platform, chat.chat_id,
                    repost_window_days=int(wanted) if wanted is not None else None,
                )
            except InvalidInputError as exc:
                return me.rejected(fmt.refused_text("set the window", str(exc)))
            shown = wanted or f"{self.policy.repost_window_days} (the default)"
            return me.done(fmt.reposts_window_text(shown), RepostSettings(
                mode, int(wanted) if wanted else self.policy.repost_window_days))
        return me.usage_error()

    async def sort_command(self, command: Command, me: CommandSpec) -> CommandResult:
        chat = command.chat
        args = list(command.args)
        if not args:
            settings = await self.storage.chat_settings(chat.platform, chat.chat_id)
            places = dict(settings.sort_places)
            return me.done(fmt.places_text(places), SortPlaces(places))
        try:
            if len(args) == 1 and args[0].lower() == "off":
                updated = await self.storage.update_chat_settings(
                    chat.platform, chat.chat_id, sort_places={})
            elif len(args) >= 2:
                label = args[0].strip().lower().replace("-", "_")
                known = {lb.name for lb in await self.storage.list_labels()}
                if label not in known:
                    return me.rejected(fmt.unknown_label_notice(label, hint=True))
                place = " ".join(args[1:]).strip()
                # One label's place changes in storage's own transaction: concurrent /sort
                # commands for different labels all keep their change.
                updated = await self.storage.set_sort_place(
                    chat.platform, chat.chat_id, label, None if place.lower() == "off" else place)
            else:
                return me.usage_error()
        except InvalidInputError as exc:
            return me.rejected(fmt.refused_text("sort there", str(exc)))
        return me.done(fmt.places_text(updated.sort_places), SortPlaces(updated.sort_places))


def invalid(notice: str) -> CorrectionOutcome:
    return CorrectionOutcome(CorrectionStatus.invalid, notice)


async def button_post(storage: Storage, post_id: int, chat: ChatRef) -> Post | CorrectionOutcome:
    """The post a button is about, or why the press is refused (a button from another chat
    must not change this one's memes)."""
    try:
        post = await storage.get_post(post_id)
    except (NotFoundError, InvalidInputError):
        return invalid(fmt.UNKNOWN_MEME)
    if (post.platform, post.chat_id) != (chat.platform, chat.chat_id):
        return invalid(fmt.FOREIGN_BUTTON)
    return post
