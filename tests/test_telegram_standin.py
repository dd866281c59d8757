"""The stand-in models the Bot API traps it exists for, and the bot copes with redelivery."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.support.imagegen import jpeg
from tests.support.telegram_bot import ALICE, CHAT, make_settings
from tests.support.telegram_standin import TOKEN, TelegramStandIn, group, running_bot, user


async def test_unimplemented_methods_fail_loudly() -> None:
    server = TelegramStandIn()
    await server.start()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{server.api_url}{TOKEN}/sendPoll", data={"chat_id": 1}) as r,
    ):
        assert r.status == 500
    with pytest.raises(AssertionError, match="sendPoll"):
        await server.stop()


async def test_reactions_are_only_delivered_when_asked_for() -> None:
    server = TelegramStandIn()
    await server.start()
    try:
        server.react(group(), user(1), 5, "👍")
        server.post_text(group(), user(1), "hi")
        async with aiohttp.ClientSession() as session:
            url = f"{server.api_url}{TOKEN}/getUpdates"
            async with session.post(url, data={"timeout": "0"}) as r:
                kinds = [next(k for k in u if k != "update_id") for u in (await r.json())["result"]]
            assert kinds == ["message"]
            data = {"timeout": "0", "allowed_updates": '["message_reaction"]'}
            async with session.post(url, data=data) as r:
                kinds = [next(k for k in u if k != "update_id") for u in (await r.json())["result"]]
            assert kinds == ["message_reaction"]
    finally:
        await server.stop()


async def test_a_redelivered_meme_is_answered_once(tmp_path: Path, tiny_model: Path) -> None:
    server = TelegramStandIn()
    await server.start()
    try:
        async with running_bot(server, make_settings(server, tmp_path, tiny_model)) as bot:
            meme = server.post_photo(CHAT, ALICE, jpeg("doom"))
            await server.reply_to(meme)
            server.redeliver(meme)
            later = server.post_photo(CHAT, ALICE, jpeg("doom", 2))
            await server.reply_to(later)
            assert len(server.replies_to(meme)) == 1
            post = await bot.storage.find_post("telegram", str(CHAT["id"]), str(meme))
            assert len(await bot.storage.predictions_for(post.id)) == 1
    finally:
        await server.stop()
