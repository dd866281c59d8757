"""/readyz for Telegram (issue 23): polling that fails (Telegram unreachable) makes the bot not
ready, although PTB keeps retrying and calls itself running."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from telegram.error import NetworkError

from bot.observability.health import start_health_server
from bot.telegram.runner import PollHealth
from tests.support import telegram_bot as tgb
from tests.support import telegram_standin as tg
from tests.support.fakes import FakeClassifier

DEADLINE_S = 30.0


async def test_failing_polls_make_telegram_unready(tmp_path: Path) -> None:
    async with tg.standin() as server:
        settings = tgb.make_settings(server, tmp_path, tmp_path / "models", trainer="off")
        async with tg.running_bot(server, settings, loader=FakeClassifier) as bot:
            health = await start_health_server(bot.readiness, bot.metrics, "127.0.0.1", 0)
            url = f"http://127.0.0.1:{health.port}/readyz"
            try:
                async with aiohttp.ClientSession() as http:
                    async with http.get(url) as response:
                        checks = (await response.json())["checks"]
                        assert response.status == 200 and checks["telegram"]["ok"]
                    server.polling_down = True
                    server.post_text(tgb.CHAT, tgb.ALICE, "hello")  # ends the current long poll
                    async with asyncio.timeout(DEADLINE_S):
                        while True:
                            async with http.get(url) as response:
                                if response.status == 503:
                                    checks = (await response.json())["checks"]
                                    break
                            await asyncio.sleep(0.05)
                    assert checks["telegram"] == {"name": "telegram", "ok": False,
                                                  "detail": "not connected"}
                    server.polling_down = False
            finally:
                await health.close()


def test_a_poll_failure_counts_for_the_grace_period_only() -> None:
    polls = PollHealth(grace_s=3600)
    assert polls.ok
    polls.failed(NetworkError("Bad Gateway"))
    assert not polls.ok
    assert PollHealth(grace_s=0.0).ok
    quick = PollHealth(grace_s=-1.0)  # any failure is already past its grace
    quick.failed(NetworkError("Bad Gateway"))
    assert quick.ok
