"""Moderation beyond labels, decided for `MemeService`: repost checks and the admins' marks on
them, and sorting memes into the places their labels map to (copied once, moved by a
correction). The adapters only render `Reply`s and implement `Outbox`."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from bot.core import formatting as fmt
from bot.core.messages import (
    Actor,
    Button,
    ChatRef,
    Command,
    CorrectionOutcome,
    ForwardCopy,
    ForwardError,
    ImagePost,
    Outbox,
    Reply,
)
from bot.core.model_holder import ModelHolder
from bot.core.reposts import RepostDetector, RepostThresholds
from config.settings import RepostMode
from inference.classifier import Prediction
from inference.errors import ImageError
from inference.fingerprint import embedding_space, image_hashes
from storage.api import Storage
from storage.errors import InvalidInputError, NotFoundError
from storage.records import ChatSettings, Post, RepostMarkKind

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
    thresholds: RepostThresholds = RepostThresholds()


@dataclass(frozen=True)
class RepostVerdict:
    reply: Reply  # "Repost: first posted by ..." with the admins' buttons
    removed: Reply | None  # what to post once the meme is deleted (delete mode only)


class Moderation:
    def __init__(self, storage: Storage, models: ModelHolder, policy: ModerationPolicy) -> None:
        self.storage = storage
        self.models = models
        self.policy = policy
        self.detector = RepostDetector(storage, policy.thresholds)

    # ------------------------------------------------------------------------------ reposts

    async def check_repost(
        self, post: ImagePost, stored: Post, data: bytes, prediction: Prediction,
        chat: ChatSettings, outbox: Outbox | None,
    ) -> RepostVerdict | None:
        """Remember what the post looks like; the verdict when it copies an earlier post."""
        try:
            hashes = await asyncio.to_thread(image_hashes, data)
        except ImageError as exc:  # the classifier read it; a hash failure must not cost it
            log.warning("post %s not fingerprinted: %s", stored.id, exc)
            return None
        embedding, space = self._embedding(prediction)
        await self.detector.remember(stored, hashes, embedding, space, post.author.display_name)
        mode = RepostMode(chat.repost_mode) if chat.repost_mode else self.policy.repost_mode
        if mode is RepostMode.off:
            return None
        days = chat.repost_window_days or self.policy.repost_window_days
        match = await self.detector.find_original(
            stored, hashes, embedding, space, since=stored.posted_at - timedelta(days=days)
        )
        if match is None:
            return None
        original = match.original
        log.info("post %s copies post %s (hash distance %s, cosine %s)", stored.id,
                 original.post_id, match.hash_distance, match.cosine)
        link = outbox.link(ChatRef(original.platform, original.chat_id), original.message_id
                           ) if outbox else None
        buttons = (
            Button("Not a repost", repost_payload(NOT_REPOST, stored.id, original.post_id)),
            Button("Exempt this image", repost_payload(EXEMPT, stored.id, original.post_id)),
        )
        reply = Reply(fmt.repost_text(original.author_name, original.posted_at, link,
                                      removed_from=None), buttons, stored.id)
        removed = None
        if mode is RepostMode.delete:
            removed = Reply(fmt.repost_text(original.author_name, original.posted_at, link,
                                            removed_from=post.author.display_name),
                            buttons, stored.id)
        return RepostVerdict(reply, removed)

    def _embedding(self, prediction: Prediction) -> tuple[np.ndarray | None, str | None]:
        classifier = self.models.current
        # An embedding is only comparable with others of its model's space.
        if prediction.embedding is None or prediction.model_version != classifier.version:
            return None, None
        return prediction.embedding, embedding_space(classifier.meta)

    async def repost_button(self, payload: str, chat: ChatRef, actor: Actor
                            ) -> CorrectionOutcome | tuple[Post, RepostMarkKind]:
        """Check a repost button press (the caller has checked the actor is an admin) and
        store the mark; returns the post and the mark stored, or the refusal."""
        parsed = parse_repost_payload(payload)
        if parsed is None:
            return CorrectionOutcome(notice="This button is no longer valid.", alert=True)
        kind, post_id, original_id = parsed
        try:
            post = await self.storage.get_post(post_id)
        except (NotFoundError, InvalidInputError):
            return CorrectionOutcome(notice="I no longer know this meme.", alert=True)
        if (post.platform, post.chat_id) != (chat.platform, chat.chat_id):
            return CorrectionOutcome(notice="This button belongs to another chat.", alert=True)
        mark = RepostMarkKind.not_repost if kind == NOT_REPOST else RepostMarkKind.exempt
        # "exempt" is about the image first posted; "not a repost" about this pair of posts.
        target = original_id if mark is RepostMarkKind.exempt else post_id
        earlier = await self.storage.repost_marks([target])
        if any(m.kind is mark for m in earlier):
            return CorrectionOutcome(notice="Already done.", post_id=post.id)
        await self.storage.add_repost_mark(
            target, mark, admin_id=actor.qualified_id,
            original_post_id=original_id if mark is RepostMarkKind.not_repost else None,
        )
        log.info("post %s marked %s by %s", target, mark.value, actor.qualified_id)
        return post, mark

    # ------------------------------------------------------------------------------ sorting

    async def sort(self, post: Post, label: str, outbox: Outbox | None, author: str | None = None
                   ) -> str | None:
        """Copy the post to its label's place once; after a correction, move the copy (or say
        where it went). Returns a sentence for the admins, or None when nothing happened."""
        if outbox is None:
            return None
        if author is None:  # a correction: the name the post was fingerprinted with
            known = await self.storage.fingerprints([post.id])
            author = known[0].author_name if known else None
        chat = await self.storage.chat_settings(post.platform, post.chat_id)
        place = chat.sort_places.get(label)
        existing = await self.storage.forward_for(post.id)
        ref = ChatRef(post.platform, post.chat_id)
        if existing is None:
            if place is None or await self.storage.claim_forward(post.id, label, place) is None:
                return None
            return (await self._send(post, label, place, outbox, author, ref))[1]
        if place is None or existing.place == place:
            if existing.place != place:
                return f"It was copied to {existing.place} before."
            return None
        if await self.storage.move_forward(post.id, label, place, expected=existing.place) is None:
            return None  # another process moved it meanwhile
        removed = existing.copy_id is not None and await outbox.delete_copy(
            ref, existing.place, existing.copy_id
        )
        ok, sent = await self._send(post, label, place, outbox, author, ref)
        if removed:
            return (f"Moved its copy from {existing.place} to {place}." if ok
                    else f"Removed its copy from {existing.place}. {sent}")
        return f"{sent} The copy in {existing.place} stays."

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
            return False, f"I could not copy it to {place}: {exc}."
        await self.storage.confirm_forward(post.id, copy_id)
        log.info("post %s copied to %s as %s", post.id, place, copy_id)
        return True, f"Copied to {place}."

    # ----------------------------------------------------------------------------- commands

    async def reposts_command(self, command: Command) -> Reply:
        usage = "Usage: /reposts [off|note|delete|window DAYS|window default]"
        chat = command.chat
        args = [a.lower() for a in command.args]
        if not args:
            settings = await self.storage.chat_settings(chat.platform, chat.chat_id)
            mode = settings.repost_mode or self.policy.repost_mode.value
            days = settings.repost_window_days or self.policy.repost_window_days
            return Reply(f"Reposts: {mode}, looking back {days} days.")
        if args[0] in ("off", "note", "delete") and len(args) == 1:
            await self.storage.update_chat_settings(chat.platform, chat.chat_id,
                                                    repost_mode=args[0])
            extra = (" I remove a repost only where I may delete messages; elsewhere I note it."
                     if args[0] == "delete" else "")
            return Reply(f"Reposts: {args[0]}.{extra}")
        if args[0] == "window" and len(args) == 2:
            days = None if args[1] == "default" else args[1]
            if days is not None and not days.isdigit():
                return Reply(usage)
            try:
                await self.storage.update_chat_settings(
                    chat.platform, chat.chat_id,
                    repost_window_days=int(days) if days is not None else None,
                )
            except InvalidInputError as exc:
                return Reply(f"Cannot set the window: {exc}.")
            shown = days or f"{self.policy.repost_window_days} (the default)"
            return Reply(f"Reposts: looking back {shown} days.")
        return Reply(usage)

    async def sort_command(self, command: Command) -> Reply:
        usage = "Usage: /sort LABEL PLACE, /sort LABEL off, /sort off, or /sort to list"
        chat = command.chat
        settings = await self.storage.chat_settings(chat.platform, chat.chat_id)
        places = dict(settings.sort_places)
        args = list(command.args)
        if not args:
            return Reply(fmt.places_text(places))
        if len(args) == 1 and args[0].lower() == "off":
            places = {}
        elif len(args) >= 2:
            label = args[0].strip().lower().replace("-", "_")
            known = {lb.name for lb in await self.storage.list_labels()}
            if label not in known:
                return Reply(f"There is no label {label!r}; /labels lists them.")
            place = " ".join(args[1:]).strip()
            if place.lower() == "off":
                places.pop(label, None)
            else:
                places[label] = place
        else:
            return Reply(usage)
        try:
            updated = await self.storage.update_chat_settings(
                chat.platform, chat.chat_id, sort_places=places
            )
        except InvalidInputError as exc:
            return Reply(f"Cannot sort there: {exc}.")
        return Reply(fmt.places_text(updated.sort_places))
