"""Who operates this bot (all chats): the configured super-admins (MEMEBOT_SUPER_ADMINS). One
function, so that a richer notion of operator replaces it in one place."""

from __future__ import annotations

from collections.abc import Collection

from bot.core.messages import Actor


def is_operator(actor: Actor, super_admins: Collection[str]) -> bool:
    return actor.qualified_id in super_admins
