"""End to end: the real discord.py client and core against the Discord stand-in, with real
SQLite storage and a real (tiny) trained model."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.runtime import CoreRuntime
from config.settings import Settings
from tests.discord_standin import (
    CHANNEL_ID,
    MEME_ADMIN_ROLE,
    MEME_ADMIN_ROLE_ID,
    MOD_ROLE_ID,
    TOKEN,
    DiscordStandIn,
    Person,
    running_bot,
    standin,
)
from tests.imagegen import encode, make_image

ALICE = Person(11, "Alice")  # an ordinary member
MOD = Person(22, "Mod", roles=(MOD_ROLE_ID,))  # Manage Messages
CURATOR = Person(33, "Curator", roles=(MEME_ADMIN_ROLE_ID,))  # the configured admin role
ROOT = Person(44, "Root")  # a configured super-admin
LABEL_TEXT = re.compile(r"^(Doom|Animal Crossing) \(\d{1,3}%\)$|^other: not a ")


def make_settings(server: DiscordStandIn, tmp_path: Path, model_dir: Path, **overrides: Any
                  ) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data",
        model_dir=model_dir,
        discord_token=TOKEN,
        discord_api_url=server.api_url,
        discord_gateway_url=server.gateway_url,
        discord_file_origins=[server.base],
        discord_guild_ready_timeout_s=0.1,
        discord_admin_role=MEME_ADMIN_ROLE,
        super_admins=[f"discord:{ROOT.user_id}"],
        download_timeout_s=10,
        trainer="off",
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def server() -> AsyncIterator[DiscordStandIn]:
    async with standin() as s:
        yield s


@pytest.fixture
async def bot(server: DiscordStandIn, tmp_path: Path, tiny_model: Path
              ) -> AsyncIterator[CoreRuntime]:
    async with running_bot(server, make_settings(server, tmp_path, tiny_model)) as runtime:
        yield runtime


def jpeg(label: str = "doom", seed: int = 0) -> bytes:
    return encode(make_image(label, seed), "JPEG", quality=90)


async def stored_post(runtime: CoreRuntime, message_id: int) -> Any:
    return await runtime.storage.find_post("discord", str(CHANNEL_ID), str(message_id))


def button(reply: Any, label: str) -> str:
    return next(b["custom_id"] for b in reply.buttons if b["custom_id"].endswith(f":{label}"))


# --------------------------------------------------------------------------------- images


async def test_image_gets_a_label_reply_with_buttons_and_a_stored_prediction(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post_image(ALICE, jpeg("doom"))
    reply = await server.reply_to(meme)
    assert LABEL_TEXT.match(reply.content), reply.content
    assert reply.channel_id == CHANNEL_ID
    labels = sorted(b["custom_id"].split(":")[-1] for b in reply.buttons)
    assert labels == ["animal_crossing", "doom", "other"]
    post = await stored_post(bot, meme)
    assert post is not None and post.author_id == str(ALICE.user_id)
    [prediction] = await bot.storage.predictions_for(post.id)
    assert prediction.model_version == bot.models.current.version
    current = [b for b in reply.buttons if b["label"].startswith("✓")]
    assert [b["custom_id"].split(":")[-1] for b in current] == [prediction.label]


async def test_png_gif_webp_and_cdn_image_embeds_are_labelled_text_is_not(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    frames = [make_image("animal_crossing", i) for i in range(3)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    text = await server.post(ALICE, "just words")
    notes = await server.post(ALICE, attachments=[server.attachment(b"notes", "a.txt",
                                                                    "text/plain")])
    cdn = server.add_file(encode(make_image("other", 8), "WEBP"), "linked.webp")
    elsewhere = {"type": "image", "url": "https://example.com/a.png",
                 "thumbnail": {"url": "https://example.com/a.png",
                               "proxy_url": "https://media.example.net/a.png"}}
    sent = [
        await server.post_image(ALICE, gif, "meme.gif", "image/gif"),
        await server.post_image(ALICE, encode(make_image("doom", 7), "PNG"), "meme.png",
                                None),  # no content type: known by its name
        await server.post(ALICE, cdn, embeds=[{"type": "image", "url": cdn,
                                               "thumbnail": {"url": cdn}}]),
    ]
    ignored = await server.post(ALICE, "https://example.com/a.png", embeds=[elsewhere])
    for message_id in sent:
        reply = await server.reply_to(message_id)
        assert LABEL_TEXT.match(reply.content), reply.content
    formats = {(await stored_post(bot, m)).image.format for m in sent}
    assert formats == {"GIF", "PNG", "WEBP"}
    for quiet in (text, notes, ignored):
        assert not server.replies_to(quiet)
    assert (await bot.storage.stats()).memes_seen == 3


async def test_a_message_with_two_images_gets_two_replies(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post(ALICE, attachments=[
        server.attachment(jpeg("doom", 11), "a.jpg", "image/jpeg"),
        server.attachment(jpeg("animal_crossing", 12), "b.jpg", "image/jpeg"),
    ])
    await server.wait_for(lambda: len(server.replies_to(meme)) == 2)
    assert (await bot.storage.stats()).memes_seen == 2


async def test_images_posted_by_bots_are_ignored(server: DiscordStandIn, bot: CoreRuntime
                                                ) -> None:
    other_bot = Person(77, "OtherBot", bot=True)
    ignored = await server.post_image(other_bot, jpeg("doom", 14))
    later = await server.post_image(ALICE, jpeg("doom", 13))  # handled after the bot's
    await server.reply_to(later)
    assert not server.replies_to(ignored)
    assert await stored_post(bot, ignored) is None
