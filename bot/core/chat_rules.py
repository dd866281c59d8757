"""Each chat's rules, resolved: a Discord channel's own settings, then its server's, then the
process-wide defaults; and the one way to change them (`apply_changes`: every value checked,
then all stored in one transaction, or none).

The names people type (`/settings replies silent`) and the console's fields are the keys of
`SETTINGS`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.core import formatting as fmt
from bot.core.messages import Actor, ChatRef
from bot.core.outcomes import OffTopicAction
from config.settings import ReplyMode
from storage.api import Storage
from storage.chats import server_scope
from storage.errors import InvalidInputError, UnknownLabelError
from storage.records import ChatMove, ChatSettings

log = logging.getLogger(__name__)

CHAT, SERVER = "chat", "server"
DEFAULT = "default"  # the value that clears a setting: inherit the server's or the default


@dataclass(frozen=True)
class RuleDefaults:
    """The process-wide values a chat inherits (from `Settings`)."""

    reply_mode: ReplyMode = ReplyMode.every
    confidence_threshold: float = 0.6


@dataclass(frozen=True)
class ChatRules:
    """What applies in one chat now."""

    enabled: bool = True
    reply_mode: ReplyMode = ReplyMode.every
    confidence_threshold: float = 0.6
    on_topic: frozenset[str] | None = None  # None: every label is on-topic
    offtopic_action: OffTopicAction = OffTopicAction.off
    reaction_corrections: bool = True

    def is_off_topic(self, label: str) -> bool:
        return self.on_topic is not None and label not in self.on_topic

    def acts_on(self, label: str) -> bool:
        """The chat does something about `label` being off-topic (at least a note)."""
        return self.offtopic_action is not OffTopicAction.off and self.is_off_topic(label)


def _first(layers: Sequence[ChatSettings], field: str) -> Any:
    return next((getattr(layer, field) for layer in layers
                 if getattr(layer, field) is not None), None)


def resolve(layers: Sequence[ChatSettings], defaults: RuleDefaults) -> ChatRules:
    """`layers`: the chat's own settings first, then its server's."""
    enabled = _first(layers, "enabled")
    mode = _first(layers, "reply_mode")
    threshold = _first(layers, "confidence_threshold")
    topics = _first(layers, "on_topic_labels")
    action = _first(layers, "offtopic_action")
    reactions = _first(layers, "reaction_corrections")
    return ChatRules(
        enabled=True if enabled is None else bool(enabled),
        reply_mode=ReplyMode(mode) if mode else defaults.reply_mode,
        confidence_threshold=(defaults.confidence_threshold if threshold is None
                              else float(threshold)),
        on_topic=frozenset(topics) if topics is not None else None,
        offtopic_action=OffTopicAction(action) if action else OffTopicAction.off,
        reaction_corrections=True if reactions is None else bool(reactions),
    )


# ------------------------------------------------------------------------------ changing

@dataclass(frozen=True)
class Setting:
    name: str  # as typed after /settings
    field: str  # the storage field
    title: str
    values: tuple[str, ...]  # the fixed choices ("" for free values: threshold, topics)


ON_OFF = ("on", "off")
SETTINGS: tuple[Setting, ...] = (
    Setting("enabled", "enabled", "Enabled", ON_OFF),
    Setting("replies", "reply_mode", "Replies", tuple(m.value for m in ReplyMode)),
    Setting("threshold", "confidence_threshold", "Confidence threshold",
            ("0.5", "0.6", "0.7", "0.8", "0.9")),
    Setting("topics", "on_topic_labels", "On-topic labels", ()),
    Setting("offtopic", "offtopic_action", "Off-topic memes",
            tuple(a.value for a in OffTopicAction)),
    Setting("reactions", "reaction_corrections", "Reaction corrections", ON_OFF),
)
BY_NAME = {s.name: s for s in SETTINGS}


class SettingsError(ValueError):
    """A value that does not fit: the message says what would."""


def parse_value(setting: Setting, raw: str, labels: Sequence[str]) -> object:
    """The storage value for what someone typed or picked (None: inherit)."""
    value = raw.strip().lower()
    if value == DEFAULT:
        return None
    if setting.name in ("enabled", "reactions"):
        if value not in ON_OFF:
            raise SettingsError(fmt.setting_choices_text(setting.name, ON_OFF))
        return value == "on"
    if setting.name == "threshold":
        try:
            number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
        except ValueError:
            raise SettingsError(fmt.threshold_refused_text(raw)) from None
        if not 0.0 <= number <= 1.0:
            raise SettingsError(fmt.threshold_refused_text(raw))
        return round(number, 4)
    if setting.name == "topics":
        if value == "all":
            return None
        names = [n.strip().replace("-", "_") for n in value.replace(",", " ").split()]
        unknown = [n for n in names if n not in labels]
        if unknown or not names:
            raise SettingsError(fmt.topics_refused_text(unknown, labels))
        return sorted(set(names))
    if value not in setting.values:
        raise SettingsError(fmt.setting_choices_text(setting.name, setting.values))
    return value


def parse_words(words: Sequence[str], labels: Sequence[str]) -> tuple[str, dict[str, object]]:
    """`[server|channel] NAME VALUE [NAME VALUE ...]` -> (scope, storage field -> value).
    A value may be several words (topics: doom animal_crossing)."""
    tokens = [w for w in words if w.strip()]
    scope = CHAT
    for end in (0, -1):
        if tokens and tokens[end].lower() in (SERVER, "channel"):
            scope = SERVER if tokens.pop(end).lower() == SERVER else CHAT
    changes: dict[str, object] = {}
    current: Setting | None = None
    collected: list[str] = []

    def close() -> None:
        if current is None:
            return
        if not collected:
            raise SettingsError(fmt.setting_needs_value_text(current.name))
        changes[current.field] = parse_value(current, " ".join(collected), labels)

    for token in tokens:
        known = BY_NAME.get(token.lower())
        if known is not None and (current is None or collected):
            close()
            current, collected = known, []
        elif current is None:
            raise SettingsError(fmt.unknown_setting_text(token, [s.name for s in SETTINGS]))
        else:
            collected.append(token)
    close()
    return scope, changes


def scope_key(chat: ChatRef, scope: str) -> str:
    """The chat id settings of `scope` are stored under."""
    if scope == SERVER:
        if chat.server_id is None:
            raise SettingsError(fmt.NO_SERVER_HERE)
        return server_scope(chat.server_id)
    return chat.chat_id


async def apply_changes(storage: Storage, chat: ChatRef, scope: str,
                        changes: Mapping[str, Any], actor: Actor) -> ChatSettings:
    """Store `changes` (storage field -> value) for the chat or its server in one transaction,
    with an audit row per field that changed (from, to); a value storage refuses raises
    SettingsError and nothing changes."""
    key = scope_key(chat, scope)
    try:
        updated = await storage.update_chat_settings(chat.platform, key, **changes,
                                                     by=actor.qualified_id)
    except (InvalidInputError, UnknownLabelError) as exc:
        raise SettingsError(fmt.settings_refused_text(str(exc))) from None
    log.info("settings of %s %s:%s changed by %s: %s", scope, chat.platform, key,
             actor.qualified_id, ", ".join(f"{k}={v!r}" for k, v in changes.items()))
    return updated


async def move_chat(storage: Storage, platform: str, old_chat_id: str, new_chat_id: str
                    ) -> ChatMove:
    """A chat got a new id (a Telegram group became a supergroup): its settings (rules,
    stored admins, sort places), posts, repost fingerprints and trust follow, once (audited
    as the bot's action)."""
    moved = await storage.move_chat(platform, old_chat_id, new_chat_id)
    if moved.settings or moved.posts or moved.trust:
        log.info("%s chat %s moved to %s: settings %s, %d posts, %d fingerprints, trust %s "
                 "(%d left: their message ids are taken there)", platform, old_chat_id,
                 new_chat_id, "moved" if moved.settings else "none", moved.posts,
                 moved.fingerprints, "moved" if moved.trust else "none", moved.left_behind)
    return moved
