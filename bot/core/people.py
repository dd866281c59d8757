"""People's data commands (issue 23): /forgetme, /purgechat and /privacy. What each keeps and
removes is decided in `storage.lifecycle`; the words are in `bot.core.formatting`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.core import formatting as fmt
from bot.core.messages import Command
from bot.core.outcomes import CommandResult
from storage.errors import InvalidInputError

if TYPE_CHECKING:
    from bot.core.commands import CommandSpec
    from bot.core.service import MemeService

log = logging.getLogger(__name__)
CONFIRM = "confirm"


async def forget_me(service: MemeService, command: Command, me: CommandSpec) -> CommandResult:
    actor = command.actor
    removed = await service.storage.forget_user(actor.platform, actor.user_id)
    log.info("forgot a %s user: %d posts, %d images, %d decisions anonymized",
             actor.platform, removed.posts, removed.images, removed.anonymized)
    return me.done(fmt.forgotten_text(removed))


async def purge_chat(service: MemeService, command: Command, me: CommandSpec) -> CommandResult:
    """`/purgechat confirm` (this chat) or `/purgechat CHAT_ID confirm`: operators only."""
    args = list(command.args)
    if not args or args[-1].lower() != CONFIRM or len(args) > 2:
        return me.usage_error(fmt.PURGE_USAGE_DETAIL)
    chat_id = args[0] if len(args) == 2 else command.chat.chat_id
    try:
        removed = await service.storage.purge_chat(command.chat.platform, chat_id)
    except InvalidInputError as exc:
        return me.rejected(str(exc))
    log.info("purged %s chat %s by an operator: %d posts, %d images",
             command.chat.platform, chat_id, removed.posts, removed.images)
    return me.done(fmt.purged_text(chat_id, removed))


async def privacy(service: MemeService, command: Command, me: CommandSpec) -> CommandResult:
    return me.done(fmt.privacy_text(service.policy.retention_days,
                                    service.policy.purge_after_leave_days))
