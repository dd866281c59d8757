"""Who counts as a chat's admin: an operator (a configured super-admin or the console's
admin-token holder), an admin listed in the chat's stored settings, or whoever the platform
says administers the chat. What operators alone may do is in `bot.core.governance`."""

from __future__ import annotations

from collections.abc import Collection

from bot.core.messages import Actor, ChatRef, PlatformAdminCheck
from bot.core.operators import is_operator
from storage.records import ChatSettings

# The console's actor once it has checked the admin token (bot/console/app.py's ADMIN).
CONSOLE_OPERATOR = "console:admin"


async def is_admin(
    actor: Actor,
    chat: ChatRef,
    *,
    super_admins: Collection[str],
    chat_settings: ChatSettings,
    platform_check: PlatformAdminCheck | None,
) -> bool:
    if is_operator(actor, super_admins):
        return True
    if actor.user_id in chat_settings.admin_ids:
        return True
    # In a private chat everyone "administers" their own chat, which must not grant /retrain.
    if chat.is_private or platform_check is None:
        return False
    return await platform_check()
