"""The Discord side of the setup check: the Message Content intent (the application's flags
in READY) and the bot's permissions in each channel it can see (or is configured to use)."""

from __future__ import annotations

import discord

from bot.core.messages import ChatRef, ForwardError
from bot.core.setup_check import Finding, Needs, Problem
from bot.discord.port import parse_place

# What labelling memes in a channel takes: (discord.Permissions attribute, name in the UI).
NEEDED = (
    ("view_channel", "View Channel"),
    ("read_message_history", "Read Message History"),
    ("send_messages", "Send Messages"),
    ("attach_files", "Attach Files"),
    ("add_reactions", "Add Reactions"),
)
TO_DELETE = ("manage_messages", "Manage Messages")
IN_PLACES = (  # where sorted copies are posted (the image attached, a link back)
    ("view_channel", "View Channel"),
    ("send_messages", "Send Messages"),
    ("attach_files", "Attach Files"),
)

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
    def _missing(channel: Channel, wanted: tuple[tuple[str, str], ...]) -> list[Finding]:
        permissions = channel.permissions_for(channel.guild.me)
        return [Finding(Problem.discord_permission, f"#{channel.name}", name)
                for attr, name in wanted if not getattr(permissions, attr)]

    def _channel(self, channel: Channel, needs: Needs) -> list[Finding]:
        return self._missing(channel, NEEDED + ((TO_DELETE,) if needs.deletes else ()))

    def _places(self, needs: Needs) -> list[Finding]:
        findings = []
        for place in needs.places:
            try:
                found = self._client.get_channel(parse_place(place))
            except ForwardError:
                found = None
            if isinstance(found, discord.abc.GuildChannel | discord.Thread):
                findings += self._missing(found, IN_PLACES)
            else:
                findings.append(Finding(Problem.discord_unseen, detail=place))
        return findings

    async def check_chat(self, chat: ChatRef, needs: Needs) -> list[Finding]:
        findings = self._intent()
        channel = self._client.get_channel(int(chat.chat_id))
        if isinstance(channel, discord.abc.GuildChannel | discord.Thread):
            findings += self._channel(channel, needs)
        return findings + self._places(needs)

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
                findings.append(Finding(Problem.discord_unseen, detail=str(admin)))
            elif not found.permissions_for(found.guild.me).view_channel:
                findings.append(Finding(Problem.discord_unseen, detail=f"#{found.name}"))
        return findings
