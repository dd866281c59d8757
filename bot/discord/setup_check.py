"""The Discord side of the setup check: the Message Content intent (the application's flags
in READY) and the bot's permissions in each channel it can see (or is configured to use)."""

from __future__ import annotations

import discord

from bot.core.messages import ChatRef
from bot.core.setup_check import Finding, Needs, Problem

# What labelling memes in a channel takes: (discord.Permissions attribute, name in the UI).
NEEDED = (
    ("view_channel", "View Channel"),
    ("read_message_history", "Read Message History"),
    ("send_messages", "Send Messages"),
    ("attach_files", "Attach Files"),
    ("add_reactions", "Add Reactions"),
)
TO_DELETE = ("manage_messages", "Manage Messages")

Channel = discord.abc.GuildChannel | discord.Thread


class DiscordSetupProbe:
    def __init__(self, client: discord.Client, admin_channel_id: int | None) -> None:
        self._client = client
        self._admin_channel_id = admin_channel_id

    def _intent(self) -> list[Finding]:
        flags = self._client.application_flags
        granted = flags.gateway_message_content or flags.gateway_message_content_limited
        if self._client.intents.message_content and granted:
            return []
        return [Finding(Problem.discord_intent)]

    @staticmethod
    def _channel(channel: Channel, needs: Needs) -> list[Finding]:
        me = channel.guild.me
        permissions = channel.permissions_for(me)
        wanted = NEEDED + ((TO_DELETE,) if needs.deletes else ())
        return [Finding(Problem.discord_permission, f"#{channel.name}", name)
                for attr, name in wanted if not getattr(permissions, attr)]

    async def check_chat(self, chat: ChatRef, needs: Needs) -> list[Finding]:
        findings = self._intent()
        channel = self._client.get_channel(int(chat.chat_id))
        if isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            findings += self._channel(channel, needs)
        return findings

    async def check_all(self, needs: Needs) -> list[Finding]:
        findings = self._intent()
        for guild in self._client.guilds:
            for channel in guild.text_channels:
                # A channel hidden from the bot is one it is not meant to serve.
                if channel.permissions_for(guild.me).view_channel:
                    findings += self._channel(channel, needs)
        admin = self._admin_channel_id
        if admin is not None:
            found = self._client.get_channel(admin)
            if not isinstance(found, discord.abc.GuildChannel | discord.Thread):
                findings.append(Finding(Problem.discord_unseen, str(admin)))
            elif not found.permissions_for(found.guild.me).view_channel:
                findings.append(Finding(Problem.discord_unseen, f"#{found.name}"))
        return findings
