"""Who may change what, and taking a correction back.

Two roles. The bot's operators (`MEMEBOT_SUPER_ADMINS` and the console's admin token) own what
every chat shares: the model (/retrain, /rollback), the labels (/addlabel) and which chats are
trusted (/trust) or delegated to (/delegate). A chat's admins own their chat: corrections and
its settings; in a delegated chat they may also use the operators' commands (all but
/delegate). A correction from a chat that is not trusted is stored and shown, and trains only
once an operator trusts the chat or approves it (`storage.review`).

An admin may undo their correction (the Undo button, or removing the reaction that made it)
until a retrain used it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.core import formatting as fmt
from bot.core.messages import Actor, Button, ChatRef, Command, PlatformAdminCheck, Reply
from bot.core.moderation import button_post, invalid
from bot.core.operators import is_operator
from bot.core.outcomes import (
    CommandResult,
    CommandStatus,
    CorrectionOutcome,
    CorrectionStatus,
    TrustChanged,
)
from bot.core.permissions import CONSOLE_OPERATOR
from storage.errors import AlreadyTrainedError, InvalidInputError, NotFoundError, StorageError
from storage.records import AuditAction, Correction, CorrectionKind, TrustLevel
from storage.validation import check_id, check_platform

if TYPE_CHECKING:
    from bot.core.commands import CommandSpec
    from bot.core.service import MemeService

log = logging.getLogger(__name__)

UNDO_PREFIX = "u"
CONFIRM_REACTION = "+"  # the reaction label meaning "the model is right" (service.CONFIRM)
# What every undo payload matches (Discord routes persistent buttons by such a pattern).
UNDO_PAYLOAD_PATTERN = rf"{UNDO_PREFIX}:[0-9]+"


def undo_payload(correction_id: int) -> str:
    return f"{UNDO_PREFIX}:{correction_id}"


def parse_undo_payload(payload: str) -> int | None:
    prefix, _, rest = payload.partition(":")
    return int(rest) if prefix == UNDO_PREFIX and rest.isdigit() and len(rest) < 19 else None


def undo_button(correction_id: int) -> Button:
    return Button(fmt.UNDO_BUTTON, undo_payload(correction_id))


def operators_of(super_admins: Collection[str]) -> frozenset[str]:
    """The configured super-admins and the console's admin-token holder."""
    return frozenset(super_admins) | {CONSOLE_OPERATOR}


# ---------------------------------------------------------------------------------- roles


async def may_use_shared(service: MemeService, spec: CommandSpec, command: Command,
                         platform_check: PlatformAdminCheck | None) -> bool:
    """An operator, or (for a command operators may delegate) an admin of a delegated chat."""
    actor, chat = command.actor, command.chat
    if is_operator(actor, service.policy.super_admins):
        return True
    if not spec.delegable or chat.is_private:
        return False
    trust = await service.storage.chat_trust(chat.platform, chat.chat_id)
    if trust.level is not TrustLevel.delegated:
        return False
    return await service.is_admin(actor, chat, platform_check)


def may_set_server(service: MemeService, actor: Actor) -> bool:
    """A Discord server's own settings (which every channel inherits): Manage Server, or an
    operator. A channel's are any of its admins'."""
    return actor.manages_server or is_operator(actor, service.policy.super_admins)


def refusal(spec: CommandSpec) -> CommandResult:
    return spec.result(CommandStatus.refused,
                       fmt.operators_only_text(spec.name, delegable=spec.delegable),
                       private=True)


async def audit_command(service: MemeService, command: Command, action: AuditAction, *,
                        from_value: object = None, to_value: object = None,
                        detail: str | None = None) -> None:
    """Log an operator's command; a log that cannot be written does not undo the action
    (it is reported in the bot's log instead)."""
    chat = command.chat
    try:
        await service.storage.record_audit(
            action.value, actor_id=command.actor.qualified_id, platform=chat.platform,
            chat_id=chat.chat_id, from_value=from_value, to_value=to_value, detail=detail,
        )
    except StorageError as exc:
        log.warning("audit of %s by %s not written: %s", action.value,
                    command.actor.qualified_id, exc)


# -------------------------------------------------------------------------- /trust, /delegate


@dataclass(frozen=True)
class ChatArg:
    platform: str
    chat_id: str

    def __str__(self) -> str:
        return f"{self.platform}:{self.chat_id}"


def parse_chat(text: str, here: ChatRef) -> ChatArg | None:
    """"-100123" (a chat of the platform asked on) or "platform:id"."""
    platform, sep, chat_id = text.partition(":")
    if not sep:
        platform, chat_id = here.platform, text
    try:
        return ChatArg(check_platform(platform.lower()), check_id(chat_id, "chat id"))
    except InvalidInputError:
        return None


async def trust_command(service: MemeService, command: Command, me: CommandSpec,
                        *, delegate: bool) -> CommandResult:
    """/trust [CHAT] [off], /trust list; /delegate [CHAT] [off]."""
    words = [a for a in command.args if a.strip()]
    if not delegate and [w.lower() for w in words] == ["list"]:
        chats = await service.storage.trusted_chats()
        return me.done(fmt.trusted_chats_text(
            [(f"{c.platform}:{c.chat_id}", c.level.value) for c in chats]))
    off = bool(words) and words[-1].lower() == "off"
    if off:
        words = words[:-1]
    if len(words) > 1:
        return me.usage_error()
    here = command.chat
    target = parse_chat(words[0], here) if words else ChatArg(here.platform, here.chat_id)
    if target is None:
        return me.rejected(fmt.bad_chat_text(words[0]))
    current = await service.storage.chat_trust(target.platform, target.chat_id)
    if delegate:
        level = TrustLevel.trusted if off else TrustLevel.delegated
        if off and current.level is not TrustLevel.delegated:
            level = current.level  # nothing delegated: nothing to take back
    else:
        level = TrustLevel.untrusted if off else TrustLevel.trusted
        if not off and current.level is TrustLevel.delegated:
            level = TrustLevel.delegated  # /trust keeps a delegation
    before = await service.storage.set_chat_trust(target.platform, target.chat_id, level,
                                                  by=command.actor.qualified_id)
    service.recall.refresh()  # a trusted chat's decisions count in every chat, at once
    log.info("chat %s: %s -> %s by %s", target, before.level.value, level.value,
             command.actor.qualified_id)
    return me.done(fmt.trust_changed_text(str(target), before.level.value, level.value),
                   TrustChanged(target.platform, target.chat_id, level.value))


# ------------------------------------------------------------------------------------ undo


async def undo_button_pressed(service: MemeService, chat: ChatRef, actor: Actor,
                              correction_id: int) -> CorrectionOutcome:
    try:
        correction = await service.storage.get_correction(correction_id)
    except (NotFoundError, InvalidInputError):
        return invalid(fmt.ALREADY_DONE)  # undone before (a double click, another admin)
    post = await button_post(service.storage, correction.post_id, chat)
    if isinstance(post, CorrectionOutcome):
        return post
    if actor.qualified_id != correction.admin_id and not is_operator(
            actor, service.policy.super_admins):
        return CorrectionOutcome(CorrectionStatus.refused, fmt.undo_refused_notice())
    return await undo(service, correction, actor)


async def reaction_removed(service: MemeService, chat: ChatRef, actor: Actor, message_id: str,
                           emojis: Collection[str]) -> CorrectionOutcome | None:
    """An admin took back a reaction: undo the correction it made, if it is still the post's
    label decision and no retrain used it. Anyone else's reaction is just a reaction."""
    mapping = service.policy.reaction_labels or {}
    if not any(e in mapping for e in emojis):
        return None
    post = await service.storage.find_post(chat.platform, chat.chat_id, message_id)
    if post is None:
        return None
    decisions = await service.storage.corrections_for(post.id)
    if not decisions:
        return None
    latest = decisions[-1]
    labels = set()
    for emoji in emojis:
        wanted = mapping.get(emoji)
        if wanted == CONFIRM_REACTION:  # took back a confirmation
            if latest.kind is CorrectionKind.confirmation:
                labels.add(latest.new_label)
        elif wanted is not None:
            labels.add(wanted)
    if latest.admin_id != actor.qualified_id or latest.new_label not in labels:
        return None
    return await undo(service, latest, actor)


async def undo(service: MemeService, correction: Correction, actor: Actor
               ) -> CorrectionOutcome:
    async with service.label_lock:
        try:
            admin_label = await service.storage.undo_correction(correction.id,
                                                                by=actor.qualified_id)
        except AlreadyTrainedError:
            return CorrectionOutcome(CorrectionStatus.refused, fmt.ALREADY_TRAINED,
                                     post_id=correction.post_id)
        except NotFoundError:
            return invalid(fmt.ALREADY_DONE)
    service.recall.refresh()  # the memory forgets the undone label at once
    log.info("correction %s of post %s undone by %s", correction.id, correction.post_id,
             actor.qualified_id)
    predictions = await service.storage.predictions_for(correction.post_id)
    latest = predictions[-1] if predictions else None
    shown = (service.prediction_text(latest.label, latest.confidence,
                                     remembered=latest.remembered) if latest
             else fmt.display_name(admin_label or correction.previous_label or ""))
    current = admin_label or (latest.label if latest else None)
    reply = Reply(fmt.undone_text(shown, admin_label),
                  await service.label_buttons_for(correction.post_id, current),
                  correction.post_id)
    return CorrectionOutcome(CorrectionStatus.undone, fmt.UNDONE, reply,
                             post_id=correction.post_id,
                             changed=current != correction.new_label, label=current)
