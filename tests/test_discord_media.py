"""Memes that move, stickers, link previews and forwards, end to end: the real discord.py client
and core against the Discord stand-in (and a stand-in Tenor media server), real SQLite storage,
a real (tiny) trained model, and clips made with PyAV."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.core.runtime import CoreRuntime
from tests.support.clipgen import MIME_TYPES, clip, clip_frames
from tests.support.discord_bot import ALICE, MOD, make_settings, stored_post
from tests.support.discord_standin import (
    OTHER_CHANNEL_ID,
    DiscordStandIn,
    MediaHost,
    SentMessage,
    gifv_embed,
    media_host,
    running_bot,
    standin,
)
from tests.support.imagegen import encode, jpeg, make_image

LABEL_TEXT = re.compile(r"^(Doom|Animal Crossing) \(\d{1,3}%\)$|^other: not a ")


@pytest.fixture
async def server() -> AsyncIterator[DiscordStandIn]:
    async with standin() as s:
        yield s


@pytest.fixture
async def tenor() -> AsyncIterator[MediaHost]:
    """Tenor's media server: on the bot's allow-list of embed hosts."""
    async with media_host() as host:
        yield host


@pytest.fixture
async def elsewhere() -> AsyncIterator[MediaHost]:
    """Some other site's media server: not on the allow-list."""
    async with media_host() as host:
        yield host


@pytest.fixture
async def bot(server: DiscordStandIn, tenor: MediaHost, tmp_path: Path, tiny_model: Path
              ) -> AsyncIterator[CoreRuntime]:
    settings = make_settings(server, tmp_path, tiny_model, discord_embed_origins=[tenor.origin],
                             discord_sticker_url=server.sticker_url)
    async with running_bot(server, settings) as runtime:
        yield runtime


async def labelled(server: DiscordStandIn, runtime: CoreRuntime, message_id: int
                   ) -> SentMessage:
    reply = await server.reply_to(message_id)
    assert LABEL_TEXT.match(reply.content), reply.content
    assert len(reply.buttons) == 3
    assert await stored_post(runtime, message_id) is not None
    return reply


async def test_mp4_webm_mov_and_gif_attachments_are_labelled(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    sent = []
    for n, kind in enumerate(("mp4", "webm", "mov", "gif")):
        label = ("doom", "animal_crossing")[n % 2]
        sent.append(await server.post_image(ALICE, clip(label, kind, seed=n), f"meme.{kind}",
                                            MIME_TYPES[kind]))
    for message_id in sent:
        await labelled(server, bot, message_id)


async def test_a_tenor_gifv_added_by_message_update_is_labelled_once(
    server: DiscordStandIn, tenor: MediaHost, bot: CoreRuntime
) -> None:
    link = "https://tenor.com/view/rip-and-tear-gif-123"
    meme = await server.post(ALICE, link)  # Discord unfurls the link a moment later
    embed = gifv_embed(link, tenor.add(clip("doom", "mp4"), "rip.mp4"),
                       tenor.add(jpeg("doom"), "rip.png"))
    await server.update(meme, embeds=[embed])
    reply = await labelled(server, bot, meme)
    await server.update(meme, embeds=[embed], content=f"{link} so good")  # an edit: same embed
    later = await server.post_image(ALICE, jpeg("doom", 3))  # handled after the edit
    await labelled(server, bot, later)
    assert server.replies_to(meme) == [reply] and tenor.downloads == 1
    assert (await bot.storage.stats()).memes_seen == 2


async def test_previews_from_hosts_off_the_allow_list_are_ignored(
    server: DiscordStandIn, elsewhere: MediaHost, bot: CoreRuntime
) -> None:
    link = "https://gifs.example.com/view/1"
    clip_url = elsewhere.add(clip("doom", "mp4"), "a.mp4")
    video = {**gifv_embed(link, clip_url, elsewhere.add(jpeg("doom"), "a.png")),
             "type": "video"}
    image = {"type": "image", "url": elsewhere.add(jpeg("doom", 2), "b.jpg")}
    ignored = await server.post(ALICE, link, embeds=[video, image])
    await server.update(ignored, embeds=[gifv_embed(link, clip_url, clip_url)])
    later = await server.post_image(ALICE, jpeg("doom", 3))
    await labelled(server, bot, later)
    assert not server.replies_to(ignored) and elsewhere.downloads == 0
    assert await stored_post(bot, ignored) is None


async def test_png_apng_and_gif_stickers_are_labelled_lottie_gets_a_reason(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    frames = clip_frames("animal_crossing", 1)
    apng = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=100)
    stickers = [server.sticker(encode(make_image("doom", 2), "PNG"), 1),
                server.sticker(apng, 2),
                server.sticker(clip("doom", "gif", seed=3), 4)]
    sent = [await server.post(ALICE, stickers=[sticker]) for sticker in stickers]
    for message_id in sent:
        await labelled(server, bot, message_id)
    # A moving sticker is stored as a sticker (its bytes only say APNG or GIF); a still one is
    # a still picture like any other.
    kinds = [(await stored_post(bot, message_id)).media_kind for message_id in sent]
    assert kinds == ["still", "sticker", "sticker"]
    lottie = await server.post(ALICE, stickers=[server.sticker(None, 3, "wumpus")])
    reply = await server.reply_to(lottie)
    assert reply.content == ("Sorry, I can't read this sticker: Lottie stickers are vector "
                             "animations, which I do not read.")
    assert not reply.buttons and await stored_post(bot, lottie) is None


async def test_a_forwarded_message_is_read_from_its_snapshot(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    snapshot = server.snapshot("look at this", attachments=[
        server.attachment(clip("doom", "mp4", seed=5), "fwd.mp4", "video/mp4")])
    forward = await server.post(ALICE, forwarded=snapshot)
    await labelled(server, bot, forward)


async def test_sorting_re_uploads_the_clip(server: DiscordStandIn, bot: CoreRuntime) -> None:
    for label in ("doom", "animal_crossing", "other"):
        await server.answer(await server.slash(MOD, "sort", label=label,
                                               place=f"<#{OTHER_CHANNEL_ID}>"))
    data = clip("doom", "mp4", seed=7)
    meme = await server.post_image(ALICE, data, "meme.mp4", "video/mp4")
    reply = await labelled(server, bot, meme)
    label = next(b["custom_id"].split(":")[-1] for b in reply.buttons
                 if b["label"].startswith("✓"))
    await server.answer(await server.press(MOD, reply,
                                           next(b["custom_id"] for b in reply.buttons
                                                if b["custom_id"].endswith(f":{label}"))))
    [copy] = await server.wait_for(
        lambda: [s for s in server.sent if s.channel_id == OTHER_CHANNEL_ID and s.files])
    assert copy.files == [data]
