"""`memebot run` with both tokens: one process answers Telegram and Discord over the same
storage and model; a slow or unreachable Discord does not hold up Telegram; no token logged."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from config.settings import Settings
from storage.api import Storage
from tests.support import discord_standin as dc
from tests.support import telegram_standin as tg
from tests.support.imagegen import encode, make_image
from tests.support.paths import ROOT

POSTER = dc.Person(55, "Poster")


def meme(seed: int) -> bytes:
    return encode(make_image("doom", seed), "JPEG")


@asynccontextmanager
async def memebot_run(tmp_path: Path, model: Path, telegram: tg.TelegramStandIn,
                      discord_port: int, health_port: int | None = None) -> AsyncIterator[Path]:
    """A real `memebot run` with both tokens; yields its log file; SIGTERM on the way out,
    which must end it cleanly."""
    base = f"http://127.0.0.1:{discord_port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")},
        "PYTHONPATH": str(ROOT),
        "MEMEBOT_TELEGRAM_TOKEN": tg.TOKEN,
        "MEMEBOT_TELEGRAM_API_URL": telegram.api_url,
        "MEMEBOT_TELEGRAM_FILE_URL": telegram.file_url,
        "MEMEBOT_DISCORD_TOKEN": dc.TOKEN,
        "MEMEBOT_DISCORD_API_URL": f"{base}/api/v{dc.API_VERSION}",
        "MEMEBOT_DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{discord_port}/gateway/",
        "MEMEBOT_DISCORD_FILE_ORIGINS": base,
        "MEMEBOT_DISCORD_GUILD_READY_TIMEOUT_S": "0.1",
        "MEMEBOT_DATA_DIR": str(tmp_path / "data"),
        "MEMEBOT_MODEL_DIR": str(model),
        "MEMEBOT_TRAINER": "off",
    }
    if health_port is not None:
        env["MEMEBOT_HEALTH_PORT"] = str(health_port)
    log_path = tmp_path / "bot.log"  # a file, not a pipe: a full pipe would stall the bot
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", "-v", "run", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=log_file,
        )
    try:
        yield log_path
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = log_path.read_text()
    assert proc.returncode == 0, log[-3000:]
    assert dc.TOKEN not in log and tg.TOKEN.split(":")[1] not in log


async def test_one_memebot_run_serves_telegram_and_discord(tmp_path: Path, tiny_model: Path
                                                           ) -> None:
    async with (
        tg.standin() as telegram,
        dc.standin() as discord,
        memebot_run(tmp_path, tiny_model, telegram, discord.port),
    ):
        await telegram.wait_for(lambda: telegram.get_updates_calls > 0, timeout=90)
        await discord.wait_for(discord.connected, timeout=90)
        discord.sends_open.clear()  # Discord stalls: no message can be sent there
        on_discord = await discord.post_image(POSTER, meme(1))
        await discord.wait_for(lambda: discord.downloads == 1)  # the bot is on it
        on_telegram = telegram.post_photo(tg.group(), tg.user(5), meme(2))
        await telegram.reply_to(on_telegram, timeout=60)  # not held up
        assert not discord.replies_to(on_discord)
        discord.sends_open.set()
        assert (await discord.reply_to(on_discord)).buttons
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")  # type: ignore[call-arg]
    storage = await Storage.open(settings.effective_database_url, settings.data_dir / "blobs")
    try:
        both = [await storage.find_post("discord", str(dc.CHANNEL_ID), str(on_discord)),
                await storage.find_post("telegram", str(tg.group()["id"]), str(on_telegram))]
        assert all(post is not None for post in both)
        for post in both:
            assert len(await storage.predictions_for(post.id)) == 1
    finally:
        await storage.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def readiness(http: aiohttp.ClientSession, health: str) -> tuple[int, dict[str, Any]]:
    """/readyz's status and checks, or (0, {}) while the process does not listen yet."""
    try:
        async with http.get(f"{health}/readyz") as response:
            return response.status, (await response.json())["checks"]
    except aiohttp.ClientConnectionError:
        return 0, {}


async def test_discord_down_at_start_leaves_telegram_serving_and_is_retried(
    tmp_path: Path, tiny_model: Path
) -> None:
    """... and /readyz says so: Telegram connected, Discord not, then ready once it is back."""
    async with dc.standin() as gone:  # a port where Discord will be, later
        port = gone.port
    health = f"http://127.0.0.1:{(health_port := free_port())}"
    async with (
        tg.standin() as telegram,
        memebot_run(tmp_path, tiny_model, telegram, port, health_port) as log_path,
        aiohttp.ClientSession() as http,
    ):
        await telegram.wait_for(lambda: telegram.get_updates_calls > 0, timeout=90)
        on_telegram = telegram.post_photo(tg.group(), tg.user(5), meme(3))
        assert (await telegram.reply_to(on_telegram)).buttons
        assert "cannot reach Discord" in log_path.read_text()
        status, checks = await readiness(http, health)
        assert status == 503 and checks["telegram"]["ok"] and not checks["discord"]["ok"]
        async with dc.standin(port=port) as discord:  # Discord is back
            await discord.wait_for(discord.connected, timeout=90)
            on_discord = await discord.post_image(POSTER, meme(4))
            assert (await discord.reply_to(on_discord)).buttons
            async with asyncio.timeout(30):  # ready once discord.py has seen every guild
                while (await readiness(http, health))[0] != 200:
                    await asyncio.sleep(0.1)
            async with http.get(f"{health}/metrics") as response:
                text = await response.text()
            assert 'memebot_memes_labelled_total{label="doom",platform="discord"}' in text
