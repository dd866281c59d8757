"""The setup check (issue 23): what a platform must allow before the bot can do what it is
configured to do, found at start (logged) and by an admin's /check (answered in the chat).

Each adapter registers a `SetupProbe` while it runs; the core decides what is needed (the
`Needs`) and `bot.core.formatting` words each `Finding` with how to fix it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from bot.core.messages import ChatRef
from config.settings import RepostMode

if TYPE_CHECKING:
    from bot.core.service import MemeService

log = logging.getLogger(__name__)


class Problem(StrEnum):
    telegram_privacy = "telegram_privacy"  # privacy mode on and not an admin: memes unseen
    telegram_privacy_on = "telegram_privacy_on"  # at start: it matters where not an admin
    telegram_reactions = "telegram_reactions"  # not an admin: reactions never arrive
    telegram_delete = "telegram_delete"  # deletes configured, no right to delete
    discord_intent = "discord_intent"  # the Message Content intent is off
    discord_permission = "discord_permission"  # a channel permission is missing
    discord_unseen = "discord_unseen"  # a configured channel the bot cannot see


@dataclass(frozen=True)
class Finding:
    problem: Problem
    where: str = ""  # a channel or chat name ("" where it is about the whole bot)
    detail: str = ""  # the permission missing, for discord_permission


@dataclass(frozen=True)
class Needs:
    """What the configuration asks of the platform."""

    reactions: bool  # admins label with emoji reactions
    deletes: bool  # reposts are removed
    places: tuple[str, ...] = ()  # where memes are sorted to (/sort), as the admins named them


class SetupProbe(Protocol):
    async def check_chat(self, chat: ChatRef, needs: Needs) -> list[Finding]:
        """What is missing in one chat (and for the bot as a whole)."""
        ...

    async def check_all(self, needs: Needs) -> list[Finding]:
        """What is missing for the bot as a whole and in every chat it knows to check."""
        ...


async def needs_in(service: MemeService, chat: ChatRef | None) -> Needs:
    """What the settings ask for in `chat` (None: the process-wide settings)."""
    mode = service.policy.moderation.repost_mode
    places: tuple[str, ...] = ()
    if chat is not None:
        settings = await service.storage.chat_settings(chat.platform, chat.chat_id)
        mode = RepostMode(settings.repost_mode) if settings.repost_mode else mode
        places = tuple(sorted(set(settings.sort_places.values())))
    return Needs(reactions=bool(service.policy.reaction_labels),
                 deletes=mode is RepostMode.delete, places=places)


async def log_start_check(platform: str, probe: SetupProbe, service: MemeService) -> None:
    """At start: each thing missing as a warning with its fix; a failure to check is only
    noted (the bot serves anyway)."""
    from bot.core import formatting as fmt

    try:
        findings = await probe.check_all(await needs_in(service, None))
    except Exception as exc:  # a platform hiccup must not stop the start
        log.warning("%s setup check failed: %s", platform, exc)
        return
    for finding in findings:
        log.warning("%s setup: %s", platform, fmt.setup_finding_text(finding))
    if not findings:
        log.info("%s setup check: nothing missing", platform)
