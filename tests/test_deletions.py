"""Deleted messages and the bot leaving a chat (issue 23), end to end against the stand-ins:
Discord's raw delete events and Telegram's "message to reply to not found" mark a post
deleted, a deleted post is never named as an original, its image goes once no other post shows
it; removal from a chat (my_chat_member, guild remove) is remembered for the purge."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.runtime import CoreRuntime
from tests.support import discord_bot as dcb
from tests.support import discord_standin as dc
from tests.support import telegram_bot as tgb
from tests.support import telegram_standin as tg
from tests.support.fakes import FakeClassifier, colour_image, png

DEADLINE_S = 20.0
CAROL = dc.Person(66, "Carol")


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll storage (the stand-ins cannot tell when the bot's write is done), bounded."""
    async with asyncio.timeout(DEADLINE_S):
        while not await check():
            await asyncio.sleep(0.02)


def meme(seed: int) -> bytes:
    return png(colour_image((200, 30, 30), (96, 96), stripe=seed))


def blob_exists(bot: CoreRuntime, sha256: str) -> bool:
    return any((bot.settings.data_dir / "blobs").rglob(f"{sha256}.*"))


async def left_chats(bot: CoreRuntime) -> list[tuple[str, str]]:
    return await bot.storage.chats_left_before(datetime.now(UTC) + timedelta(days=1))


async def test_discord_delete_events_mark_posts_deleted(tmp_path: Path) -> None:
    async with dc.standin() as server:
        settings = dcb.make_settings(server, tmp_path, tmp_path / "models")
        async with dc.running_bot(server, settings, loader=FakeClassifier) as bot:
            original = await server.post_image(dcb.ALICE, meme(1), "a.png")
            await server.reply_to(original)
            copy = await server.post_image(dcb.CURATOR, meme(1), "b.png")
            await server.wait_for(lambda: len(server.replies_to(copy)) == 2)
            assert any("Repost: first posted by Alice" in r.content
                       for r in server.replies_to(copy))
            lone = await server.post_image(dcb.ALICE, meme(2), "c.png")
            await server.reply_to(lone)
            lone_sha = (await dcb.stored_post(bot, lone)).image.sha256

            # Alice deletes both of hers (one uncached bulk delete, as a moderator's purge).
            await server.dispatch("MESSAGE_DELETE", {"id": str(original),
                                  "channel_id": str(dc.CHANNEL_ID), "guild_id": str(dc.GUILD_ID)})
            await server.dispatch("MESSAGE_DELETE_BULK", {"ids": [str(lone)],
                                  "channel_id": str(dc.CHANNEL_ID), "guild_id": str(dc.GUILD_ID)})

            async def both_marked() -> bool:
                first = await dcb.stored_post(bot, original)
                return await dcb.stored_post(bot, lone) is None and first.deleted_at is not None

            async def lone_blob_gone() -> bool:  # no other post showed it
                return not blob_exists(bot, lone_sha)

            await until(both_marked)
            await until(lone_blob_gone)  # unlinked just after the commit (storage/lifecycle.py)
            # Curator's copy still shows the picture: its image stays, and a third copy now
            # names Curator's post, never Alice's deleted one.
            third = await server.post_image(CAROL, meme(1), "d.png")
            await server.wait_for(lambda: len(server.replies_to(third)) == 2)
            notes = [r.content for r in server.replies_to(third) if "Repost" in r.content]
            assert notes and "first posted by Curator" in notes[0], notes

            await server.dispatch("GUILD_DELETE", {"id": str(dc.GUILD_ID)})  # bot removed
            await until(lambda: _contains(left_chats(bot), ("discord", str(dc.CHANNEL_ID))))


async def _contains(found: Awaitable[list[tuple[str, str]]], item: tuple[str, str]) -> bool:
    return item in await found


async def test_telegram_reply_to_a_deleted_meme_marks_it_deleted(tmp_path: Path) -> None:
    chat = tgb.CHAT
    async with tg.standin() as server:
        settings = tgb.make_settings(server, tmp_path, tmp_path / "models", trainer="off")
        async with tg.running_bot(server, settings, loader=FakeClassifier) as bot:
            classifier = bot.models.current
            assert isinstance(classifier, FakeClassifier)
            classifier.gate.clear()  # the meme is deleted while it is being labelled
            gone = server.post_photo(chat, tgb.ALICE, meme(3))
            await server.wait_for(lambda: "getFile" in server.calls)
            server.delete_by_member(gone)
            classifier.gate.set()

            async def removed() -> bool:
                return await tgb.stored_post(bot, gone) is None

            await until(removed)
            assert server.replies_to(gone) == [] and not any(
                (bot.settings.data_dir / "blobs").rglob("*.png"))
            again = server.post_photo(chat, tgb.BOB, meme(3))  # no original to name any more
            reply = await server.reply_to(again)
            assert reply.buttons and all("Repost" not in r.text for r in server.replies_to(again))

            server.bot_membership(chat, tgb.BOB, "kicked")
            await until(lambda: _contains(left_chats(bot), ("telegram", str(chat["id"]))))
            server.bot_membership(chat, tgb.BOB, "member")  # added back: no purge

            async def back() -> bool:
                return await left_chats(bot) == []

            await until(back)
