"""Catch-up (issue 23): a Discord restart reads what each channel got while the bot was down
(bounded by a window and a cap per channel), labels it, answers recent posts and labels old ones
quietly; nothing is answered twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from discord.utils import snowflake_time

from storage.api import Storage
from tests.support import discord_bot as dcb
from tests.support import discord_standin as dc
from tests.support.fakes import FakeClassifier, colour_image, png

DEADLINE_S = 20.0


def meme(seed: int) -> bytes:
    return png(colour_image((30, 200, 30), (96, 96), stripe=seed))


async def test_a_restart_labels_what_was_posted_meanwhile(tmp_path: Path) -> None:
    async with dc.standin() as server:
        settings = dcb.make_settings(server, tmp_path, tmp_path / "models")
        async with dc.running_bot(server, settings, loader=FakeClassifier):
            seen = await server.post_image(dcb.ALICE, meme(1))
            await server.reply_to(seen)
        storage = await Storage.open(settings.effective_database_url,
                                     settings.data_dir / "blobs")
        try:  # closing saved where the channel was (the start, if that was later: the
            # whole window was read then)
            assert int(await storage.channel_cursor("discord", dc.CHANNEL_ID) or 0) >= seen
        finally:
            await storage.close()

        missed = server.post_offline(dcb.CURATOR, meme(2))
        async with dc.running_bot(server, settings, loader=FakeClassifier) as bot:
            reply = await server.reply_to(missed)
            assert reply.buttons and reply.content.startswith("Animal Crossing")
            post = await dcb.stored_post(bot, missed)
            assert post is not None and post.author_id == str(dcb.CURATOR.user_id)
            assert len(server.replies_to(seen)) == 1  # before the cursor: not read again
            assert any(call.startswith(f"GET channels/{dc.CHANNEL_ID}/messages")
                       for call in server.calls)


async def test_catch_up_limits_and_old_posts_labelled_quietly(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    async with dc.standin() as server:
        settings = dcb.make_settings(server, tmp_path, tmp_path / "models",
                                     discord_catch_up_hours=24, discord_catch_up_max=2,
                                     quiet_after_minutes=60)
        storage = await Storage.open(settings.effective_database_url,
                                     settings.data_dir / "blobs")
        try:  # the bot last saw this channel 40 hours ago
            await storage.advance_channel_cursor("discord", dc.CHANNEL_ID,
                                                 dc.Snowflakes.at(now - timedelta(hours=40)))
        finally:
            await storage.close()
        too_old = server.post_offline(dcb.ALICE, meme(3), ago=timedelta(hours=30))
        quiet = server.post_offline(dcb.ALICE, meme(4), ago=timedelta(hours=3))
        recent = server.post_offline(dcb.CURATOR, meme(5), ago=timedelta(minutes=2))
        capped = server.post_offline(dcb.CURATOR, meme(6), ago=timedelta(minutes=1))
        async with dc.running_bot(server, settings, loader=FakeClassifier) as bot:
            assert (await server.reply_to(recent)).buttons
            async with asyncio.timeout(DEADLINE_S):
                while await dcb.stored_post(bot, quiet) is None:
                    await asyncio.sleep(0.02)
            assert server.replies_to(quiet) == []  # stored and labelled, no reply
            [prediction] = await bot.storage.predictions_for((await dcb.stored_post(bot, quiet)).id)
            assert prediction.label == "animal_crossing"
            assert await dcb.stored_post(bot, too_old) is None  # outside the 24 h window
            assert await dcb.stored_post(bot, capped) is None  # past the cap of 2
            assert server.replies_to(too_old) == server.replies_to(capped) == []


async def test_a_first_start_without_saved_positions_reads_back_the_window(tmp_path: Path
                                                                          ) -> None:
    # The first start after an upgrade: no channel has a saved position yet.
    async with dc.standin() as server:
        settings = dcb.make_settings(server, tmp_path, tmp_path / "models",
                                     discord_catch_up_hours=24, discord_catch_up_max=2)
        too_old = server.post_offline(dcb.ALICE, meme(7), ago=timedelta(hours=30))
        first = server.post_offline(dcb.ALICE, meme(8), ago=timedelta(minutes=3))
        second = server.post_offline(dcb.CURATOR, meme(9), ago=timedelta(minutes=2))
        capped = server.post_offline(dcb.CURATOR, meme(10), ago=timedelta(minutes=1))
        async with dc.running_bot(server, settings, loader=FakeClassifier) as bot:
            for missed in (first, second):
                assert (await server.reply_to(missed)).buttons
            assert await dcb.stored_post(bot, too_old) is None  # outside the 24 h window
            assert await dcb.stored_post(bot, capped) is None  # past the cap of 2
        assert server.replies_to(too_old) == server.replies_to(capped) == []
        storage = await Storage.open(settings.effective_database_url,
                                     settings.data_dir / "blobs")
        try:
            assert await storage.channel_cursor("discord", dc.CHANNEL_ID) == str(second)
        finally:
            await storage.close()



async def test_a_quiet_channel_read_back_at_first_start_is_marked_read(tmp_path: Path) -> None:
    # Nothing in the window: the channel is recorded as read up to the start (saved with the
    # next periodic flush), so the next start reads only what came after.
    async with dc.standin() as server:
        settings = dcb.make_settings(server, tmp_path, tmp_path / "models")
        async with dc.running_bot(server, settings, loader=FakeClassifier) as bot:
            async with asyncio.timeout(DEADLINE_S):
                while (saved := await bot.storage.channel_cursor("discord", dc.CHANNEL_ID)
                       ) is None:
                    await asyncio.sleep(0.1)
        assert abs(snowflake_time(int(saved)) - datetime.now(UTC)) < timedelta(minutes=1)
