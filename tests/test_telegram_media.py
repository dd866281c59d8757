"""Memes that move, and albums, end to end: the real PTB Application and core against the Bot
API stand-in, real SQLite storage, a real (tiny) trained model, and clips made with PyAV."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.runtime import CoreRuntime
from tests.support.clipgen import clip, tgs_sticker
from tests.support.imagegen import jpeg
from tests.support.telegram_bot import ALICE, BOB, CHAT, LABEL_TEXT, make_settings, stored_post
from tests.support.telegram_standin import TelegramStandIn, running_bot

ALBUM_LINE = re.compile(r"^(\d+)\. (.+)$")


@pytest.fixture
async def album_bot(server: TelegramStandIn, tmp_path: Path, tiny_model: Path
                    ) -> AsyncIterator[CoreRuntime]:
    """The bot with a short album window (the quiet time after an album's last item)."""
    settings = make_settings(server, tmp_path, tiny_model, telegram_album_window_s=0.5)
    async with running_bot(server, settings) as runtime:
        yield runtime


async def labelled(server: TelegramStandIn, runtime: CoreRuntime, message_id: int) -> Any:
    reply = await server.reply_to(message_id)
    assert LABEL_TEXT.match(reply.text), reply.text
    assert len(reply.buttons) == 3
    post = await stored_post(runtime, message_id)
    assert post is not None
    return post


async def test_animations_videos_and_video_notes_are_labelled(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    sent = [
        server.post_animation(CHAT, ALICE, clip("doom", "mp4")),  # a GIF, as Telegram sends it
        server.post_video(CHAT, ALICE, clip("animal_crossing", "mp4", seed=1)),
        server.post_video(CHAT, ALICE, clip("doom", "webm", seed=2), mime_type="video/webm"),
        server.post_video_note(CHAT, ALICE, clip("other", "mp4", seed=3)),
        server.post_document(CHAT, ALICE, clip("doom", "mov", seed=4), "video/quicktime",
                             "meme.mov"),
    ]
    for message_id in sent:
        await labelled(server, bot, message_id)


async def test_animated_and_video_stickers_are_labelled(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    tgs = server.post_sticker(CHAT, ALICE, tgs_sticker(), animated=True)
    webm = server.post_sticker(CHAT, ALICE, clip("animal_crossing", "webm"), video=True)
    for message_id in (tgs, webm):
        post = await labelled(server, bot, message_id)
        # Stored as what was posted, not as what the bytes are (a WebM is a video file).
        assert post.media_kind == "sticker"


async def test_a_clip_over_telegrams_20_mb_download_limit_gets_a_clear_reply(
    server: TelegramStandIn, tmp_path: Path, tiny_model: Path
) -> None:
    # The bot's own limit is higher: Telegram's getFile is what refuses.
    settings = make_settings(server, tmp_path, tiny_model, max_download_bytes=100 * 2**20)
    async with running_bot(server, settings) as runtime:
        meme = server.post_video(CHAT, ALICE, clip("doom"), size=25 * 2**20)
        reply = await server.reply_to(meme)
        assert reply.text == ("Sorry, I can't read this video: the file is too large (25 MB; "
                              "Telegram lets bots download files up to 20 MB).")
        assert not reply.buttons and "getFile" not in server.calls
        assert await stored_post(runtime, meme) is None


async def test_a_video_in_a_container_i_do_not_read_is_refused_before_any_download(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    meme = server.post_document(CHAT, ALICE, b"RIFF\0\0\0\0AVI LIST", "video/x-msvideo",
                                "meme.avi")
    reply = await server.reply_to(meme)
    assert reply.text.startswith(
        "Sorry, I can't read this video: video/x-msvideo is not a format I read (MP4, ")
    assert "getFile" not in server.calls and await stored_post(bot, meme) is None


async def test_an_album_gets_one_reply_labelling_each_item_and_its_caption_applies_to_all(
    server: TelegramStandIn, album_bot: CoreRuntime
) -> None:
    items = [server.photo_content(jpeg("doom", 1)),
             server.video_content(clip("animal_crossing", "mp4", seed=2)),
             server.photo_content(jpeg("other", 3))]
    album = server.post_album(CHAT, ALICE, items, caption="three of my best")
    reply = await server.reply_to(album[0])
    lines = reply.text.split("\n")
    assert [ALBUM_LINE.match(line).group(1) for line in lines] == ["1", "2", "3"]  # type: ignore[union-attr]
    for line in lines:
        assert LABEL_TEXT.match(ALBUM_LINE.match(line).group(2)), line  # type: ignore[union-attr]
    for message_id in album:
        post = await stored_post(album_bot, message_id)
        assert post is not None and post.caption == "three of my best"
        numbered = [b for b in reply.buttons if b["callback_data"].startswith(f"c:{post.id}:")]
        number = album.index(message_id) + 1
        assert len(numbered) == 3 and all(b["text"].startswith(f"{number}: ")
                                          for b in numbered)
    # One reply for the whole album, none to the other items.
    assert len(server.sent) == 1 and not server.replies_to(album[1])


async def test_correcting_one_album_item_edits_its_line_only(
    server: TelegramStandIn, album_bot: CoreRuntime
) -> None:
    album = server.post_album(CHAT, ALICE, [server.photo_content(jpeg("doom", n))
                                            for n in (5, 6, 7)])
    reply = await server.reply_to(album[0])
    before = reply.text.split("\n")
    second = await stored_post(album_bot, album[1])
    predicted = (await album_bot.storage.predictions_for(second.id))[0].label
    new = "animal_crossing" if predicted != "animal_crossing" else "other"
    query = server.press(BOB, reply, f"c:{second.id}:{new}")
    await server.wait_for(lambda: [a for a in server.answers if a.callback_query_id == query])
    after = reply.text.split("\n")
    assert after[0] == before[0] and after[2] == before[2]
    assert after[1].startswith("2. ") and after[1].endswith("(set by @bob)")
    assert [c.new_label for c in await album_bot.storage.corrections_for(second.id)] == [new]
    others = [await stored_post(album_bot, m) for m in (album[0], album[2])]
    assert all([await album_bot.storage.corrections_for(p.id) == [] for p in others])
    ticked = [b["text"] for b in reply.buttons if b["text"].startswith("2: ✓")]
    undo = [b["text"] for b in reply.buttons if "Undo" in b["text"]]
    assert len(ticked) == 1 and undo == ["2: ↩ Undo"]  # the corrected item can be undone
    assert len(reply.buttons) == 9 + 1
    # A reaction on another item's own message edits that item's line in the same reply.
    server.react(CHAT, BOB, album[2], "😈")
    await server.wait_for(lambda: reply.text.split("\n")[2].endswith("by @bob)"))
    assert reply.text.split("\n")[1] == after[1] and len(server.sent) == 1


async def test_sorting_copies_an_animation_with_copy_message(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    for label in ("doom", "animal_crossing", "other"):  # one at a time, as admins type
        await server.reply_to(server.post_text(CHAT, BOB, f"/sort {label} 7"))
    await bot.storage.update_chat_settings("telegram", CHAT["id"], confidence_threshold=0.0)
    meme = server.post_animation(CHAT, ALICE, clip("doom", "mp4", seed=9))
    await labelled(server, bot, meme)
    [copy] = await server.wait_for(lambda: server.copies)
    assert copy["source_message_id"] == meme and copy["message_thread_id"] == 7
    assert "animation" in server.messages[copy["source_message_id"]]
