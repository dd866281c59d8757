"""The Discord stand-in fails loudly, and the real discord.py connects to it as to Discord:
HELLO, IDENTIFY with the intents the bot needs, heartbeats, READY and GUILD_CREATE."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.core.service import PAYLOAD_PATTERN, button_payload
from bot.errors import ConfigError
from tests.support.discord_bot import make_settings
from tests.support.discord_standin import (
    INTENT_GUILD_MESSAGE_REACTIONS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    TOKEN,
    DiscordStandIn,
    running_bot,
    standin,
)


async def test_unimplemented_routes_fail_loudly() -> None:
    server = DiscordStandIn()
    await server.start()
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bot {TOKEN}"}
        async with session.post(f"{server.api_url}/channels/1/threads", headers=headers) as r:
            assert r.status == 500
            assert r.headers["Content-Type"] == "application/json"
    with pytest.raises(AssertionError, match="POST /channels/1/threads"):
        await server.stop()


async def test_the_bot_identifies_with_its_intents_heartbeats_and_syncs(
    tmp_path: Path, tiny_model: Path
) -> None:
    defaults = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    async with (
        standin() as server,
        running_bot(server, make_settings(server, tmp_path, tiny_model)),
    ):
        assert server.api_url == Route.BASE
        [identify] = server.identifies
        assert identify["token"] == TOKEN
        intents = identify["intents"]
        for needed in (INTENT_GUILDS, INTENT_GUILD_MESSAGES,
                       INTENT_GUILD_MESSAGE_REACTIONS, INTENT_MESSAGE_CONTENT):
            assert intents & needed, f"intent {needed} missing"
        assert identify["shard"] == [0, 1]  # AutoShardedClient: Discord's shard count
        # discord.py beats at once on HELLO, then every heartbeat_interval (2 s here).
        await server.wait_for(lambda: server.heartbeats >= 2, timeout=10)
        names = {c["name"] for c in server.synced[None]}
        assert names == {"help", "stats", "labels", "model", "retrain", "addlabel",
                         "rollback", "check", "reposts", "sort", "trust", "delegate",
                         "settings", "privacy", "forgetme", "purgechat"}
        assert "GET oauth2/applications/@me" in server.calls
    assert defaults == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)  # restored


async def test_commands_sync_to_the_configured_guilds_only(
    tmp_path: Path, tiny_model: Path
) -> None:
    async with standin() as server:
        settings = make_settings(server, tmp_path, tiny_model, discord_guild_ids="111,222")
        async with running_bot(server, settings):
            assert sorted(k for k in server.synced if k is not None) == [111, 222]
            assert None not in server.synced


async def test_two_shards_each_identify_with_their_range(tmp_path: Path, tiny_model: Path
                                                         ) -> None:
    async with (
        standin(shards=2) as server,
        running_bot(server, make_settings(server, tmp_path, tiny_model)),
    ):
        assert sorted(tuple(i["shard"]) for i in server.identifies) == [(0, 2), (1, 2)]


async def test_a_refused_token_ends_the_bot_with_a_clear_error(tmp_path: Path, tiny_model: Path
                                                               ) -> None:
    async with standin() as server:
        settings = make_settings(server, tmp_path, tiny_model, discord_token="not-the-token")
        with pytest.raises(ConfigError, match="Discord refused the bot token"):
            async with running_bot(server, settings):
                pass
        assert server.identifies == []


def test_every_button_payload_fits_a_persistent_discord_button() -> None:
    payload = button_payload(2**63 - 1, "a" * 32)  # the largest post id, the longest label
    assert re.fullmatch(PAYLOAD_PATTERN, payload) and len(payload) <= 100
