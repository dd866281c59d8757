"""The Telegram side of the setup check: privacy mode (getMe) and the bot's own membership in a
group (getChatMember), which decides whether memes, reactions and deletes reach it."""

from __future__ import annotations

import logging

from telegram import Bot, ChatMemberAdministrator
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot.core.messages import ChatRef
from bot.core.setup_check import Finding, Needs, Problem

log = logging.getLogger(__name__)


class TelegramSetupProbe:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def _privacy_on(self) -> bool:
        me = await self._bot.get_me()
        return not me.can_read_all_group_messages

    async def check_all(self, needs: Needs) -> list[Finding]:
        # A bot cannot list its chats: the rest is checked by /check in each group.
        return [Finding(Problem.telegram_privacy_on)] if await self._privacy_on() else []

    async def check_chat(self, chat: ChatRef, needs: Needs) -> list[Finding]:
        if chat.is_private:  # a private chat shows the bot everything
            return []
        try:
            member = await self._bot.get_chat_member(int(chat.chat_id), self._bot.id)
            privacy_on = await self._privacy_on()
        except TelegramError as exc:
            log.warning("telegram setup check failed in chat %s: %s", chat.chat_id, exc)
            raise
        owner = member.status == ChatMemberStatus.OWNER
        admin = owner or isinstance(member, ChatMemberAdministrator)
        where = "this group"
        findings = []
        if not admin and privacy_on:
            findings.append(Finding(Problem.telegram_privacy, where))
        if not admin and needs.reactions:
            findings.append(Finding(Problem.telegram_reactions, where))
        may_delete = owner or (isinstance(member, ChatMemberAdministrator)
                               and member.can_delete_messages)
        if needs.deletes and not may_delete:
            findings.append(Finding(Problem.telegram_delete, where))
        return findings
