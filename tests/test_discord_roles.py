"""Roles, trust and undo on Discord (issue 21), end to end: the real discord.py client and core
against the Discord stand-in, real SQLite storage and a real (tiny) model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core import formatting as fmt
from bot.core.runtime import CoreRuntime
from tests.support.discord_bot import ALICE, MOD, ROOT, make_settings, stored_post
from tests.support.discord_standin import CHANNEL_ID, DiscordStandIn, running_bot, standin
from tests.support.imagegen import jpeg


@pytest.fixture
async def server() -> AsyncIterator[DiscordStandIn]:
    async with standin() as s:
        yield s


@pytest.fixture
async def bot(server: DiscordStandIn, tmp_path: Path, tiny_model: Path
              ) -> AsyncIterator[CoreRuntime]:
    async with running_bot(server, make_settings(server, tmp_path, tiny_model)) as runtime:
        yield runtime


def other_label(label: str) -> str:
    return "animal_crossing" if label != "animal_crossing" else "other"


def button(reply: Any, label: str) -> str:
    return next(b["custom_id"] for b in reply.buttons if b["custom_id"].endswith(f":{label}"))


async def test_a_channel_admin_is_refused_ephemerally_and_nothing_changes(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    labels = await bot.storage.list_labels()
    serving = bot.models.current.version
    for name, options in (("retrain", {}), ("retrain", {"kind": "full"}), ("rollback", {}),
                          ("addlabel", {"name": "minecraft"}), ("trust", {}),
                          ("delegate", {})):
        refused = await server.answer(await server.slash(MOD, name, **options))
        assert refused.ephemeral, name
        assert (refused.content or "").startswith(f"Only the bot's operators can use /{name}")
    assert await bot.storage.list_jobs() == []
    assert bot.models.current.version == serving
    assert await bot.storage.list_labels() == labels
    assert await bot.storage.audit_log() == []


async def test_delegation_lets_the_channels_admins_retrain(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    delegated = await server.answer(await server.slash(ROOT, "delegate"))
    assert not delegated.ephemeral and "may also /retrain" in (delegated.content or "")
    queued = await server.answer(await server.slash(MOD, "retrain"))
    assert (queued.content or "").startswith("Retraining (fast) queued (job #1)")
    refused = await server.answer(await server.slash(MOD, "delegate", chat="discord:999"))
    assert refused.ephemeral  # delegation stays the operators'
    back = await server.answer(await server.slash(ROOT, "delegate", chat="off"))
    assert "is trusted: its admins' corrections train" in (back.content or "")
    again = await server.answer(await server.slash(MOD, "retrain", kind="full"))
    assert again.ephemeral and await bot.storage.list_jobs() != []
    log = [(e.action, e.actor_id, e.to_value) for e in await bot.storage.audit_log()]
    assert log == [("trust", f"discord:{ROOT.user_id}", "trusted"),
                   ("retrain", f"discord:{MOD.user_id}", "fast"),
                   ("trust", f"discord:{ROOT.user_id}", "delegated")]


async def test_undo_button_and_reaction_removal_take_a_correction_back(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post_image(ALICE, jpeg("doom", 31))
    reply = await server.reply_to(meme)
    first = reply.content
    post = await stored_post(bot, meme)
    new = other_label((await bot.storage.predictions_for(post.id))[0].label)
    await server.answer(await server.press(MOD, reply, button(reply, new)))
    assert reply.content == f"{fmt.display_name(new)} (set by Mod)"
    training = await bot.storage.training_set()
    assert training.examples == () and training.pending == 1  # the channel is not trusted
    undo = next(b["custom_id"] for b in reply.buttons if b["label"] == "↩ Undo")
    refused = await server.answer(await server.press(ALICE, reply, undo))
    assert refused.ephemeral and "Only the admin who made" in (refused.content or "")
    await server.answer(await server.press(MOD, reply, undo))
    await server.wait_for(lambda: reply.content == first or None)
    assert await bot.storage.corrections_for(post.id) == []

    emoji = {label: e for e, label in bot.settings.reaction_labels.items()}[new]
    await server.react(MOD, meme, emoji)
    await server.wait_for(lambda: reply.content != first or None)
    await server.unreact(ALICE, meme, emoji)  # not hers: nothing
    await server.unreact(MOD, meme, emoji, channel_id=CHANNEL_ID)
    await server.wait_for(lambda: reply.content == first or None)
    assert await bot.storage.corrections_for(post.id) == []
    actions = [e.action for e in await bot.storage.post_history(post.id)]
    assert actions == ["correction", "undo", "correction", "undo"]
