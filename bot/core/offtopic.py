"""Off-topic memes (a label the chat has not made on-topic) and the admins' desk: what the
chat's action asks for (note, hold, delete), the held meme posted to the admins' chat with its
image and buttons, and the admins' answers there (Allow re-posts it with credit, Keep removed,
or a corrected label). Allowing or keeping is a moderation decision: never a training label."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from bot.core import formatting as fmt
from bot.core.chat_rules import ChatRules
from bot.core.messages import Actor, Button, ChatRef, Outbox, Reply
from bot.core.outcomes import (
    CorrectionOutcome,
    CorrectionStatus,
    OffTopicAction,
    OffTopicVerdict,
)
from storage.api import Storage
from storage.audit import BOT_ACTOR
from storage.errors import InvalidInputError, NotFoundError
from storage.records import AuditAction, HoldState

if TYPE_CHECKING:
    from bot.core.service import MemeService

log = logging.getLogger(__name__)

ADMIN_PREFIX = "a"
ALLOW, KEEP, LABEL = "y", "n", "l"
# What every admins'-desk payload matches (Discord routes persistent buttons by pattern).
ADMIN_PAYLOAD_PATTERN = rf"{ADMIN_PREFIX}:(?:[{ALLOW}{KEEP}]:[0-9]+|{LABEL}:[0-9]+:[a-z0-9_]+)"


def admin_buttons(post_id: int, labels: Iterable[str], current: str | None, *, held: bool
                  ) -> tuple[Button, ...]:
    """Label buttons for the admins' chat (a correction from there), and for a held meme
    Allow / Keep removed first."""
    buttons = [Button(fmt.ALLOW, f"{ADMIN_PREFIX}:{ALLOW}:{post_id}"),
               Button(fmt.KEEP_REMOVED, f"{ADMIN_PREFIX}:{KEEP}:{post_id}")] if held else []
    buttons += [Button(fmt.button_text(name, current=name == current),
                       f"{ADMIN_PREFIX}:{LABEL}:{post_id}:{name}", current=name == current)
                for name in labels]
    return tuple(buttons)


def decide(rules: ChatRules, label: str, confidence: float, *, chat: ChatRef, post_id: int,
           labels: Iterable[str], label_reply: Reply, author: str
           ) -> tuple[Reply, OffTopicVerdict | None]:
    """The chat's answer to a meme labelled `label`: its label reply (with the off-topic note
    when the chat wants one) and, when the meme is to be removed, the verdict. Below the
    chat's threshold an off-topic meme is only noted."""
    action = rules.offtopic_action
    if not rules.acts_on(label):
        return label_reply, None
    note = Reply(f"{label_reply.text}\n{fmt.offtopic_note_text(label)}", label_reply.buttons,
                 label_reply.post_id)
    if action is OffTopicAction.note or confidence < rules.confidence_threshold:
        return note, None
    held = action is OffTopicAction.hold
    notice = Reply(fmt.offtopic_removed_text(author, label, held=held))
    admin_post = Reply(fmt.held_text(chat.platform, chat.chat_id, author, label_reply.text),
                       admin_buttons(post_id, labels, label, held=True),
                       post_id) if held else None
    return note, OffTopicVerdict(action, post_id, note, notice, admin_post, author,
                                 label)


def _parse(payload: str) -> tuple[str, int, str | None] | None:
    parts = payload.split(":")
    if len(parts) < 3 or parts[0] != ADMIN_PREFIX or not parts[2].isdigit():
        return None
    if parts[1] in (ALLOW, KEEP) and len(parts) == 3:
        return parts[1], int(parts[2]), None
    if parts[1] == LABEL and len(parts) == 4 and parts[3]:
        return LABEL, int(parts[2]), parts[3]
    return None


def decision_payload(post_id: int, *, allow: bool) -> str:
    """The Allow / Keep removed button's payload (the console's desk decides through it)."""
    return f"{ADMIN_PREFIX}:{ALLOW if allow else KEEP}:{post_id}"


def is_admin_chat(admin_chats: Mapping[str, str], chat: ChatRef) -> bool:
    return admin_chats.get(chat.platform) == chat.chat_id


async def removed(storage: Storage, chat: ChatRef, verdict: OffTopicVerdict) -> None:
    """An off-topic meme was removed from `chat`: a held one waits for the admins. Either is
    audited as the bot's action (the chat's rule)."""
    detail = f"off-topic {verdict.label}, posted by {verdict.author}"
    if verdict.action is OffTopicAction.hold:
        await storage.hold_post(verdict.post_id, verdict.author, detail=detail)
    else:
        await storage.record_audit(AuditAction.delete.value, actor_id=BOT_ACTOR,
                                   platform=chat.platform, chat_id=chat.chat_id,
                                   post_id=verdict.post_id, to_value="deleted", detail=detail)
    log.info("off-topic post %s removed (%s)", verdict.post_id, verdict.action.value)


async def admin_press(service: MemeService, actor: Actor, payload: str,
                      outbox: Outbox | None) -> CorrectionOutcome:
    """A button under a meme in the admins' chat (the caller checked chat and actor)."""
    parsed = _parse(payload)
    if parsed is None:
        return CorrectionOutcome(CorrectionStatus.invalid, fmt.STALE_BUTTON)
    kind, post_id, label = parsed
    try:
        post = await service.storage.get_post(post_id)
    except (NotFoundError, InvalidInputError):
        return CorrectionOutcome(CorrectionStatus.invalid, fmt.UNKNOWN_MEME)
    hold = await service.storage.held_post(post.id)
    author = hold.author_name if hold else await service.author_name(post)
    if kind == LABEL and label is not None:
        outcome = await service.apply_label(post, label, actor, outbox)
        if outcome.reply is None:
            return outcome
        still_held = hold is not None and hold.state is HoldState.held
        labels = [lb.name for lb in await service.storage.list_labels()]
        head = (fmt.held_text(post.platform, post.chat_id, author, outcome.reply.text)
                if hold else fmt.admin_log_text(post.platform, post.chat_id, post.message_id,
                                                author, outcome.reply.text))
        return CorrectionOutcome(outcome.status, outcome.notice,
                                 Reply(head, admin_buttons(post.id, labels, label,
                                                           held=still_held), post.id),
                                 post_id=post.id, changed=outcome.changed, label=label)
    state = HoldState.allowed if kind == ALLOW else HoldState.kept
    decided = await service.storage.decide_hold(post.id, state, actor.qualified_id)
    if decided is None:
        return CorrectionOutcome(CorrectionStatus.unchanged, fmt.NOT_HELD, post_id=post.id)
    log.info("held post %s %s by %s", post.id, state.value, actor.qualified_id)
    label_now = await service.current_label(post) or "other"
    notice = fmt.KEPT
    if state is HoldState.allowed:
        credit = Reply(fmt.allowed_repost_text(decided.author_name, label_now,
                                               actor.display_name),
                       await service.label_buttons_for(post.id, label_now), post.id)
        sent = await outbox.send_image(post.chat_id, credit) if outbox is not None else None
        notice = fmt.ALLOWED if sent is not None else fmt.NOT_REPOSTED
    head = fmt.held_text(post.platform, post.chat_id, decided.author_name,
                         fmt.display_name(label_now))
    return CorrectionOutcome(CorrectionStatus.hold_decided, notice,
                             Reply(fmt.decided_text(head, state.value, actor.display_name),
                                   (), post.id), post_id=post.id, changed=True)
