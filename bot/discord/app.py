"""The discord.py client: events and interactions in, `MemeService` calls, the core's replies
out. Rate limits are discord.py's own (it waits out 429s and retries)."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import discord
from discord import app_commands

from bot.core import formatting as fmt
from bot.core.delivery import Delivery
from bot.core.messages import Actor, ChatRef, Command, ImagePost, PlatformAdminCheck
from bot.core.outcomes import SettingsMenu
from bot.core.service import MemeService, parse_payload
from bot.core.setup_check import log_start_check
from bot.discord.catch_up import CatchUpLimits, ChannelCursors, catch_up
from bot.discord.commands import add_commands
from bot.discord.media import media_attachments
from bot.discord.port import NO_MENTIONS, DiscordPort
from bot.discord.settings_view import SETTINGS_KINDS, settings_view
from bot.discord.setup_check import DiscordSetupProbe
from bot.discord.views import BUTTON_KINDS, label_view
from config.settings import Settings

log = logging.getLogger(__name__)

PLATFORM = DiscordPort.platform
TAKEN_CAPACITY = 10_000  # memes remembered against a second labelling by a message edit
CATCH_UP_STOP_S = 10.0  # at close, how long catch-up may take to finish the message in hand


@dataclass(frozen=True)
class DiscordConfig:
    token: str
    guild_ids: tuple[int, ...] = ()
    admin_role: str | None = None
    admin_channel_id: int | None = None
    shard_count: int | None = None
    shard_ids: tuple[int, ...] = ()
    guild_ready_timeout_s: float = 2.0
    catch_up: CatchUpLimits = field(default_factory=lambda: CatchUpLimits(24.0, 200))
    concurrent_updates: int = 16
    api_url: str = "https://discord.com/api/v10"
    gateway_url: str = "wss://gateway.discord.gg/"
    sticker_url: str = "https://media.discordapp.net/stickers"

    @classmethod
    def from_settings(cls, settings: Settings) -> DiscordConfig:
        return cls(
            token=settings.token_for("discord"),
            guild_ids=tuple(settings.discord_guild_ids),
            admin_role=settings.discord_admin_role,
            admin_channel_id=settings.discord_admin_channel_id,
            shard_count=settings.discord_shard_count,
            shard_ids=tuple(settings.discord_shard_ids),
            guild_ready_timeout_s=settings.discord_guild_ready_timeout_s,
            catch_up=CatchUpLimits(settings.discord_catch_up_hours,
                                   settings.discord_catch_up_max),
            concurrent_updates=settings.concurrent_updates,
            api_url=settings.discord_api_url,
            gateway_url=settings.discord_gateway_url,
            sticker_url=settings.discord_sticker_url,
        )


def intents() -> discord.Intents:
    """Guilds (channels and roles, for permissions), guild messages and their reactions, and
    message content (privileged: without it attachments of others' messages arrive empty)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.guild_reactions = True
    wanted.message_content = True
    return wanted


def chat_ref(channel_id: int, guild_id: int | None) -> ChatRef:
    # A channel's settings override its server's (/settings ... server).
    return ChatRef(PLATFORM, str(channel_id), is_private=guild_id is None,
                   server_id=str(guild_id) if guild_id is not None else None)


def actor(user: discord.abc.User, permissions: discord.Permissions | None = None) -> Actor:
    """`permissions`: the interaction's (Manage Server lets them set the server's rules)."""
    return Actor(PLATFORM, str(user.id), user.display_name,
                 manages_server=permissions is not None and permissions.manage_guild)


def has_admin_role(member: discord.Member, admin_role: str | None) -> bool:
    if not admin_role:
        return False
    return any(role.name == admin_role or str(role.id) == admin_role for role in member.roles)


class DiscordHandlers:
    """What the client's events do: platform events in, the core's outcomes out through
    `delivery`."""

    def __init__(self, client: discord.Client, service: MemeService, config: DiscordConfig
                 ) -> None:
        self.client = client
        self.service = service
        self.config = config
        self.port = DiscordPort(client, self._image_of)
        admin = config.admin_channel_id
        self.delivery = Delivery(self.port, str(admin) if admin is not None else None,
                                 service.storage)
        # discord.py runs every event as its own task: bound the memes in flight at once
        # (each holds a download and a decoded image), the rest wait their turn.
        self._slots = asyncio.Semaphore(config.concurrent_updates)
        # The memes already taken up, (channel, message, index): a later MESSAGE_UPDATE (an
        # edit, the link previews Discord adds) must not label them again.
        self._taken: OrderedDict[tuple[int, int, int], None] = OrderedDict()

    async def _image_of(self, post_id: int) -> Path:
        return (await self.service.storage.get_post(post_id)).image.path

    def admin_check(self, member: discord.abc.User | None,
                    permissions: discord.Permissions | None) -> PlatformAdminCheck:
        """Manage Messages in the channel, or the configured admin role."""
        async def check() -> bool:
            if not isinstance(member, discord.Member):
                return False
            if has_admin_role(member, self.config.admin_role):
                return True
            return permissions is not None and permissions.manage_messages

        return check

    async def on_message(self, message: discord.Message, *, edited: bool = False) -> None:
        """A new message, or (`edited`) one whose link previews Discord added or changed:
        then only its embeds are new, and those already labelled are left alone."""
        if message.author.bot or message.webhook_id is not None:
            return
        found = [f.attachment for f in media_attachments(
                     message, self.service.downloader.check_url, self.config.sticker_url)
                 if f.from_embed or not edited]
        found = [a for a in found if self._take(message, a.index)]
        if not found:
            return
        chat = chat_ref(message.channel.id, message.guild.id if message.guild else None)
        async with self._slots:
            for attachment in found:
                post = ImagePost(chat=chat, message_id=str(message.id),
                                 author=actor(message.author), attachment=attachment,
                                 posted_at=message.created_at,
                                 caption=message.clean_content or None)
                outcome = await self.service.handle_post(post, self.port)
                if await self.delivery.post_outcome(chat, post.message_id, outcome):
                    return  # the message is gone: its other attachments with it

    def _take(self, message: discord.Message, index: int) -> bool:
        key = (message.channel.id, message.id, index)
        if key in self._taken:
            return False
        self._taken[key] = None
        while len(self._taken) > TAKEN_CAPACITY:
            self._taken.popitem(last=False)
        return True

    async def on_button(self, interaction: discord.Interaction, payload: str) -> None:
        chat = chat_ref(interaction.channel_id or 0, interaction.guild_id)
        outcome = await self.service.handle_button(
            chat,
            actor(interaction.user, interaction.permissions),
            payload,
            self.admin_check(interaction.user, interaction.permissions),
            self.port,
        )
        if outcome.reply is None:  # refused or stale: only the presser sees why
            await interaction.response.send_message(outcome.notice, ephemeral=True)
            return
        view = (settings_view(outcome.menu) if outcome.menu is not None
                else label_view(outcome.reply))
        await interaction.response.edit_message(content=outcome.reply.text, view=view)
        message = interaction.message
        if message is not None and parse_payload(payload) is not None:  # a label reply
            meme = message.reference.message_id if message.reference else None
            self.delivery.remember(chat, str(meme or 0), outcome.reply, str(message.id))

    async def on_reaction(self, event: discord.RawReactionActionEvent) -> None:
        member = event.member
        if event.guild_id is None or member is None or member.bot:  # the bot's own, too
            return
        if self.client.user is not None and event.user_id == self.client.user.id:
            return
        channel = member.guild.get_channel_or_thread(event.channel_id)
        if channel is None:
            return  # a channel this shard has not seen (permissions unknown)
        chat = chat_ref(event.channel_id, event.guild_id)
        meme_id = self.delivery.meme_for(chat, str(event.message_id))
        outcome = await self.service.handle_reaction(
            chat,
            actor(member),
            meme_id,
            [str(event.emoji)],
            self.admin_check(member, channel.permissions_for(member)),
            self.port,
        )
        await self.delivery.correction(chat, meme_id, outcome)

    async def on_reaction_removed(self, event: discord.RawReactionActionEvent) -> None:
        """A reaction taken back (Discord sends no member with it: the core only matches the
        admin whose reaction made the correction)."""
        if event.guild_id is None:
            return
        if self.client.user is not None and event.user_id == self.client.user.id:
            return
        chat = chat_ref(event.channel_id, event.guild_id)
        meme_id = self.delivery.meme_for(chat, str(event.message_id))
        who = Actor(PLATFORM, str(event.user_id), str(event.user_id))
        outcome = await self.service.handle_reaction_removed(chat, who, meme_id,
                                                             [str(event.emoji)])
        await self.delivery.correction(chat, meme_id, outcome)

    async def on_deleted(self, channel_id: int, message_ids: Sequence[int]) -> None:
        """Deleted messages (raw events: cached or not): never named as originals again."""
        for message_id in message_ids:
            await self.service.storage.mark_deleted(PLATFORM, str(channel_id), str(message_id))

    async def on_guild_presence(self, guild: discord.Guild, *, left: bool) -> None:
        """Removed from a guild: its channels are purged some days later (unless back)."""
        for channel in (*guild.text_channels, *guild.threads):
            await self.service.storage.set_chat_left(PLATFORM, str(channel.id), left)

    async def on_command(self, interaction: discord.Interaction, name: str,
                         args: Sequence[str] = ()) -> None:
        command = Command(
            chat=chat_ref(interaction.channel_id or 0, interaction.guild_id),
            actor=actor(interaction.user, interaction.permissions),
            name=name,
            args=tuple(args),
        )
        result = await self.service.handle_command(
            command, self.admin_check(interaction.user, interaction.permissions)
        )
        text = result.reply.text if result is not None else fmt.unknown_command_text(name)
        private = result is None or result.reply.private
        if result is not None and isinstance(result.data, SettingsMenu):  # for the admin only
            await interaction.response.send_message(text, ephemeral=True,
                                                    view=settings_view(result.data),
                                                    allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.send_message(text, ephemeral=private,
                                                allowed_mentions=NO_MENTIONS)


class MemeClient(discord.AutoShardedClient):
    """An `AutoShardedClient` (Discord requires sharding from 2,500 guilds on; below that it
    runs one shard) with the slash commands in `tree`."""

    def __init__(self, service: MemeService, config: DiscordConfig) -> None:
        super().__init__(
            intents=intents(),
            shard_count=config.shard_count,
            # discord.py's options TypedDict says list[int]; None (its default) means all shards
            shard_ids=list(config.shard_ids) or None,  # type: ignore[arg-type]
            guild_ready_timeout=config.guild_ready_timeout_s,
            chunk_guilds_at_startup=False,
            max_messages=None,  # reactions come as raw events: no message cache to keep
            allowed_mentions=NO_MENTIONS,
        )
        self.config = config
        self.handlers = DiscordHandlers(self, service, config)
        self.tree = app_commands.CommandTree(self)
        add_commands(self.tree, self.handlers)
        self.setup_probe = DiscordSetupProbe(self, config.admin_channel_id)
        self.cursors = ChannelCursors(service.storage)
        self._stop_flushing = asyncio.Event()
        self._flushing: asyncio.Task[None] | None = None
        self._catching_up: asyncio.Task[int] | None = None  # once per start, not per reconnect
        self._stop_catching_up = asyncio.Event()

    async def setup_hook(self) -> None:
        # Presses on any earlier reply (before a restart, from another process) land here.
        self.add_dynamic_items(*BUTTON_KINDS, *SETTINGS_KINDS)
        await self.sync_commands()
        self._flushing = asyncio.create_task(self.cursors.keep_flushing(self._stop_flushing),
                                             name="discord-cursors")

    async def close(self) -> None:
        """Save the channel positions, then close (the next start catches up from there)."""
        if self._catching_up is not None:
            # Stopped between two messages (a cancel could land inside a database write); the
            # rest is read at the next start.
            self._stop_catching_up.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._catching_up), CATCH_UP_STOP_S)
            except TimeoutError:
                self._catching_up.cancel()
                await asyncio.gather(self._catching_up, return_exceptions=True)
        self._stop_flushing.set()
        if self._flushing is not None:
            await self._flushing
            self._flushing = None
        await super().close()

    async def sync_commands(self) -> None:
        """Guild sync (instant) for the configured guilds, else global (Discord propagates
        it to every guild within about an hour)."""
        if self.config.guild_ids:
            for guild_id in self.config.guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
                log.info("discord: %d slash commands synced to guild %s", len(synced), guild_id)
        else:
            synced = await self.tree.sync()
            log.info("discord: %d slash commands synced globally", len(synced))

    async def on_message(self, message: discord.Message) -> None:
        if message.guild is not None:
            self.cursors.seen(message.channel.id, message.id, live=True)
        await self.handlers.on_message(message)

    async def _read_back(self, message: discord.Message) -> None:
        """A message read from the history at start (catch-up)."""
        self.cursors.seen(message.channel.id, message.id)
        await self.handlers.on_message(message)

    async def on_raw_message_edit(self, event: discord.RawMessageUpdateEvent) -> None:
        # Raw: the bot keeps no message cache, and an edit of any message may add previews.
        await self.handlers.on_message(event.message, edited=True)

    async def on_raw_reaction_add(self, event: discord.RawReactionActionEvent) -> None:
        await self.handlers.on_reaction(event)

    async def on_raw_reaction_remove(self, event: discord.RawReactionActionEvent) -> None:
        await self.handlers.on_reaction_removed(event)

    async def on_raw_message_delete(self, event: discord.RawMessageDeleteEvent) -> None:
        await self.handlers.on_deleted(event.channel_id, [event.message_id])

    async def on_raw_bulk_message_delete(self, event: discord.RawBulkMessageDeleteEvent
                                         ) -> None:
        await self.handlers.on_deleted(event.channel_id, sorted(event.message_ids))

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        await self.handlers.on_guild_presence(guild, left=True)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self.handlers.on_guild_presence(guild, left=False)

    async def on_ready(self) -> None:
        log.info("discord: ready as %s in %d guilds, %d shards", self.user, len(self.guilds),
                 self.shard_count or 1)
        await log_start_check(PLATFORM, self.setup_probe, self.handlers.service)
        if self._catching_up is None and not self.is_closed():
            self._catching_up = asyncio.create_task(catch_up(
                self, self.handlers.service.storage, self.config.catch_up, self._read_back,
                self.cursors, self._stop_catching_up),
                name="discord-catch-up")
