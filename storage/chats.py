"""Per-chat settings: enabled, admin user/role ids, reply mode, confidence threshold, repost
mode and window, the places memes are sorted into, which labels are on-topic, the off-topic
action and whether reactions correct labels. A Discord server's own settings are stored under
`server_scope(guild id)`; its channels' rows override them field by field."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import convert
from storage.audit import MAX_VALUE as MAX_AUDIT_VALUE
from storage.audit import add_audit, audit_row
from storage.base import StorageBase, require_labels
from storage.errors import InvalidInputError
from storage.models import ChatSettingsRow
from storage.records import (
    OFFTOPIC_ACTIONS,
    REPLY_MODES,
    REPOST_MODES,
    AuditAction,
    ChatSettings,
)
from storage.validation import check_id, check_label, check_platform, check_probability

SERVER_PREFIX = "server:"


def server_scope(server_id: str | int) -> str:
    """The chat id a whole server's settings are stored under (its channels inherit them)."""
    return f"{SERVER_PREFIX}{server_id}"


class _Unset(Enum):
    """The default of a setting the call leaves as it is (None means "inherit", not this)."""

    token = "unset"


_UNSET: Final = _Unset.token


class ChatSettingsAPI(StorageBase):
    # --------------------------------------------------------------------------- chat settings

    async def chat_settings(self, platform: str, chat_id: str | int) -> ChatSettings:
        """This chat's settings, or the defaults (nothing is written for a chat never changed)."""
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        async with self._db.read() as session:
            row = await session.get(ChatSettingsRow, (platform, chat))
            return convert.chat_settings(row) if row else ChatSettings(platform, chat)

    async def chat_settings_layers(self, platform: str, chat_id: str | int,
                                   server_id: str | int | None) -> tuple[ChatSettings, ...]:
        """The chat's settings, then its server's (when it has one): one read, nearest first."""
        platform = check_platform(platform)
        keys = [check_id(chat_id, "chat id")]
        if server_id is not None:
            keys.append(server_scope(check_id(server_id, "server id")))
        async with self._db.read() as session:
            rows = [await session.get(ChatSettingsRow, (platform, key)) for key in keys]
        return tuple(convert.chat_settings(row) if row else ChatSettings(platform, key)
                     for row, key in zip(rows, keys, strict=True))

    async def update_chat_settings(
        self,
        platform: str,
        chat_id: str | int,
        *,
        enabled: bool | _Unset | None = _UNSET,
        admin_ids: Iterable[str | int] | None = None,
        reply_mode: str | _Unset | None = _UNSET,
        confidence_threshold: float | _Unset | None = _UNSET,
        repost_mode: str | _Unset | None = _UNSET,
        repost_window_days: int | _Unset | None = _UNSET,
        sort_places: Mapping[str, str] | None = None,
        on_topic_labels: Iterable[str] | _Unset | None = _UNSET,
        offtopic_action: str | _Unset | None = _UNSET,
        reaction_corrections: bool | _Unset | None = _UNSET,
        by: str | None = None,
    ) -> ChatSettings:
        """Change the given fields, all in one transaction after every value is checked (a bad
        one raises InvalidInputError and changes nothing). For every field but `admin_ids` and
        `sort_places`, None means inherit (the server's, then the process-wide setting).
        `sort_places` replaces the whole mapping; `on_topic_labels` must name known labels.
        `by` ("platform:user_id"): each field that changed is audited (from, to) with it."""
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        actor = check_id(by, "actor id") if by is not None else None
        admins = None
        if admin_ids is not None:
            if isinstance(admin_ids, (str, bytes)):
                raise InvalidInputError("admin_ids must be a list of ids, not one string")
            admins = sorted({check_id(a, "admin id") for a in admin_ids})
        if reply_mode is not _UNSET and reply_mode is not None and reply_mode not in REPLY_MODES:
            raise InvalidInputError(f"reply mode must be one of {', '.join(REPLY_MODES)}")
        if confidence_threshold is not _UNSET and confidence_threshold is not None:
            confidence_threshold = check_probability(confidence_threshold, "confidence threshold")
        if enabled is not _UNSET and enabled is not None and not isinstance(enabled, bool):
            raise InvalidInputError("enabled must be true or false")
        if (reaction_corrections is not _UNSET and reaction_corrections is not None
                and not isinstance(reaction_corrections, bool)):
            raise InvalidInputError("reaction corrections must be on or off")
        if (offtopic_action is not _UNSET and offtopic_action is not None
                and offtopic_action not in OFFTOPIC_ACTIONS):
            raise InvalidInputError(
                f"the off-topic action must be one of {', '.join(OFFTOPIC_ACTIONS)}")
        on_topic: list[str] | _Unset | None = _UNSET
        if on_topic_labels is not _UNSET and on_topic_labels is not None:
            if isinstance(on_topic_labels, (str, bytes)):
                raise InvalidInputError("on-topic labels must be a list of labels")
            on_topic = sorted({check_label(label) for label in on_topic_labels})
            if not on_topic:
                raise InvalidInputError("name at least one on-topic label")
        elif on_topic_labels is None:
            on_topic = None
        if (
            repost_mode is not _UNSET
            and repost_mode is not None
            and repost_mode not in REPOST_MODES
        ):
            raise InvalidInputError(f"repost mode must be one of {', '.join(REPOST_MODES)}")
        if repost_window_days is not _UNSET and repost_window_days is not None:
            repost_window_days = check_window_days(repost_window_days)
        places = check_places(sort_places) if sort_places is not None else None
        async with self._db.write() as session:
            if isinstance(on_topic, list):
                await require_labels(session, on_topic)
            row = await self._locked_settings(session, platform, chat)
            given: dict[str, object] = {
                "enabled": enabled, "admin_ids": admins if admins is not None else _UNSET,
                "reply_mode": reply_mode, "confidence_threshold": confidence_threshold,
                "repost_mode": repost_mode, "repost_window_days": repost_window_days,
                "sort_places": places if places is not None else _UNSET,
                "on_topic_labels": on_topic, "offtopic_action": offtopic_action,
                "reaction_corrections": reaction_corrections,
            }
            now = self._clock()
            for name, value in given.items():
                if value is _UNSET:
                    continue
                before = getattr(row, name)
                setattr(row, name, value)
                if actor is not None and before != value:
                    await add_audit(session, audit_row(
                        AuditAction.settings.value, actor_id=actor, at=now, platform=platform,
                        chat_id=chat, from_value=audit_value(before),
                        to_value=audit_value(value), detail=name,
                    ))
            row.updated_at = now
            await session.flush()
            return convert.chat_settings(row)

    async def set_sort_place(self, platform: str, chat_id: str | int, label: str,
                             place: str | None) -> ChatSettings:
        """Sort `label`'s memes to `place` (None: stop sorting them), leaving the other labels'
        places alone: the mapping is read and written under one row lock, so concurrent /sort
        commands for different labels all keep their change."""
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        label = check_label(label)
        checked = check_places({label: place})[label] if place is not None else None
        async with self._db.write() as session:
            row = await self._locked_settings(session, platform, chat)
            places = dict(row.sort_places or {})
            if checked is None:
                places.pop(label, None)
            else:
                places[label] = checked
            row.sort_places = places  # a new dict: SQLAlchemy sees a JSON change by identity
            row.updated_at = self._clock()
            await session.flush()
            return convert.chat_settings(row)

    async def _locked_settings(self, session: AsyncSession, platform: str, chat: str
                               ) -> ChatSettingsRow:
        """The chat's settings row (created with the defaults if missing), locked for update."""
        defaults = ChatSettings(platform, chat)
        await session.execute(
            self._db.insert_ignore(ChatSettingsRow).values(
                platform=platform,
                chat_id=chat,
                enabled=defaults.enabled,
                admin_ids=list(defaults.admin_ids),
                reply_mode=defaults.reply_mode,
                confidence_threshold=defaults.confidence_threshold,
                updated_at=self._clock(),
            )
        )
        row = await session.scalar(
            select(ChatSettingsRow)
            .where(ChatSettingsRow.platform == platform, ChatSettingsRow.chat_id == chat)
            .with_for_update()
        )
        assert row is not None
        return row


def audit_value(value: object) -> str:
    """A setting's value as the audit log shows it ("default": inherited)."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, Mapping):
        text = ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    elif isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    return text if len(text) <= MAX_AUDIT_VALUE else text[: MAX_AUDIT_VALUE - 1] + "…"


MAX_WINDOW_DAYS = 36_500
MAX_PLACE_LENGTH = 128


def check_window_days(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_WINDOW_DAYS:
        raise InvalidInputError(
            f"the repost window must be 1-{MAX_WINDOW_DAYS} days, got {value!r}"
        )
    return value


def check_places(places: Mapping[str, str]) -> dict[str, str]:
    """label -> place; a place is whatever the platform's adapter names a destination by."""
    checked: dict[str, str] = {}
    for label, place in places.items():
        if not isinstance(place, str) or not place.strip() or len(place) > MAX_PLACE_LENGTH:
            raise InvalidInputError(f"a place must be 1-{MAX_PLACE_LENGTH} characters")
        checked[check_label(label)] = place.strip()
    return checked
