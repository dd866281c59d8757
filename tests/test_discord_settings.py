"""Each chat's rules on Discord, end to end (the real discord.py client and core against the
stand-in): /settings as an ephemeral view of selects and toggles (every option, refusals,
bad values with nothing changed), a channel's settings over its server's, a reaction instead
of a reply (add_reaction), and off-topic memes held for the admins' channel with the image and
buttons (Allow re-posts it) or noted where the bot may not delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.core.messages import ChatRef
from bot.core.runtime import CoreRuntime
from inference.classifier import Classifier, Prediction
from storage.records import HoldState
from tests.support.discord_bot import ALICE, MANAGER, MOD, ROOT, make_settings, stored_post
from tests.support.discord_standin import (
    ADMIN_CHANNEL_ID,
    CHANNEL_ID,
    GUILD_ID,
    OTHER_CHANNEL_ID,
    DiscordStandIn,
    Person,
    SentMessage,
    running_bot,
    standin,
)
from tests.support.imagegen import jpeg

HERE = ChatRef("discord", str(CHANNEL_ID), server_id=str(GUILD_ID))
GENERAL = ChatRef("discord", str(OTHER_CHANNEL_ID), server_id=str(GUILD_ID))


class OtherClassifier(Classifier):
    """A real classifier that calls every meme "other" at 90%: off-topic in a Doom server."""

    def predict(self, images: Any, **kw: Any) -> Any:
        return [replace(p, label="other", confidence=0.9) if isinstance(p, Prediction) else p
                for p in super().predict(images, **kw)]


@asynccontextmanager
async def discord_bot(tmp_path: Path, tiny_model: Path
                      ) -> AsyncIterator[tuple[DiscordStandIn, CoreRuntime]]:
    async with standin() as server:
        settings = make_settings(server, tmp_path, tiny_model,
                                 discord_admin_channel_id=ADMIN_CHANNEL_ID)
        async with running_bot(server, settings, loader=OtherClassifier) as bot:
            yield server, bot


async def menu(server: DiscordStandIn, who: Person = MOD, **options: Any) -> SentMessage:
    """Run /settings and return the ephemeral menu it answered with."""
    answer = await server.answer(await server.slash(who, "settings", **options))
    assert answer.ephemeral and (answer.content or "").startswith("Settings for")
    [shown] = [s for s in server.sent if s.ephemeral and s.content == answer.content][-1:]
    return shown


def components(message: SentMessage) -> dict[str, dict[str, Any]]:
    return {c["custom_id"]: c for c in message.buttons}


async def test_the_settings_view_changes_every_option(tmp_path: Path, tiny_model: Path) -> None:
    async with discord_bot(tmp_path, tiny_model) as (server, bot):
        shown = await menu(server)
        parts = components(shown)
        assert {"s:c:v:replies", "s:c:v:threshold", "s:c:v:topics", "s:c:v:offtopic",
                "s:c:v:enabled:off", "s:c:v:reactions:off"} == set(parts)
        assert parts["s:c:v:topics"]["max_values"] > 1  # several labels at once
        refused = await server.answer(
            await server.select(ALICE, shown, "s:c:v:replies", ["silent"]))
        assert refused.ephemeral and refused.content == "Only admins can change settings."
        for custom_id, values in (("s:c:v:replies", ["confident"]), ("s:c:v:threshold", ["0.8"]),
                                  ("s:c:v:topics", ["doom", "animal_crossing"]),
                                  ("s:c:v:offtopic", ["note"])):
            edits = len(shown.edits)
            answer = await server.answer(await server.select(MOD, shown, custom_id, values))
            assert answer.kind == 7 and len(shown.edits) == edits + 1  # the view, edited
        for toggle in ("s:c:v:enabled:off", "s:c:v:reactions:off"):
            assert (await server.answer(await server.press(MOD, shown, toggle))).kind == 7
        stored = await bot.storage.chat_settings("discord", str(CHANNEL_ID))
        assert (stored.reply_mode, stored.confidence_threshold, stored.offtopic_action) == (
            "confident", 0.8, "note")
        assert stored.on_topic_labels == ("animal_crossing", "doom")
        assert (stored.enabled, stored.reaction_corrections) == (False, False)
        assert "Reaction corrections changed by Mod." in shown.content
        bad = await server.answer(await server.slash(MOD, "settings", setting="threshold",
                                                     value="2"))
        assert bad.ephemeral and "Nothing was changed." in (bad.content or "")
        other = await server.answer(await server.slash(MOD, "settings", setting="topics",
                                                       value="doom genshin"))
        assert "There is no label 'genshin'" in (other.content or "")
        assert await bot.storage.chat_settings("discord", str(CHANNEL_ID)) == stored


async def test_a_channel_overrides_its_server(tmp_path: Path, tiny_model: Path) -> None:
    async with discord_bot(tmp_path, tiny_model) as (server, bot):
        # The whole server's rules need Manage Server (or an operator), not Manage Messages.
        refused = await server.answer(await server.slash(MOD, "settings", setting="topics",
                                                         value="doom", scope="server"))
        assert refused.ephemeral and "Manage Server" in refused.content
        assert (await bot.service.rules_for(HERE)).on_topic is None
        whole = await menu(server, MANAGER, setting="topics", value="doom", scope="server")
        assert whole.content.startswith("Settings for this server")
        pressed = await server.answer(await server.select(MOD, whole, "s:g:v:offtopic",
                                                          ["note"]))
        assert pressed.ephemeral and "Manage Server" in pressed.content
        await server.answer(await server.select(ROOT, whole, "s:g:v:offtopic", ["note"]))
        await server.answer(await server.slash(MOD, "settings", setting="offtopic",
                                               value="off", in_channel=OTHER_CHANNEL_ID))
        here, general = (await bot.service.rules_for(HERE), await bot.service.rules_for(GENERAL))
        assert here.on_topic == general.on_topic == {"doom"}
        assert (here.offtopic_action.value, general.offtopic_action.value) == ("note", "off")
        meme = await server.post_image(ALICE, jpeg("doom", 11))
        note = await server.reply_to(meme)
        assert note.content.endswith("Other is off-topic here.")
        quiet = await server.post_image(ALICE, jpeg("doom", 12), channel_id=OTHER_CHANNEL_ID)
        assert not (await server.reply_to(quiet)).content.endswith("off-topic here.")


async def test_reaction_mode_adds_a_reaction(tmp_path: Path, tiny_model: Path) -> None:
    async with discord_bot(tmp_path, tiny_model) as (server, _):
        await server.answer(await server.slash(MOD, "settings", setting="replies",
                                               value="react"))
        meme = await server.post_image(ALICE, jpeg("doom", 13))
        [reaction] = await server.wait_for(lambda: server.reactions)
        assert reaction == (CHANNEL_ID, meme, "🤷") and not server.replies_to(meme)


async def test_a_held_meme_goes_to_the_admins_and_allow_reposts_it(
    tmp_path: Path, tiny_model: Path
) -> None:
    async with discord_bot(tmp_path, tiny_model) as (server, bot):
        await server.answer(await server.slash(MOD, "settings", setting="topics", value="doom"))
        await server.answer(await server.slash(MOD, "settings", setting="offtopic",
                                               value="hold"))
        meme = await server.post_image(ALICE, jpeg("doom", 14))
        [held] = await server.wait_for(
            lambda: [s for s in server.sent if s.channel_id == ADMIN_CHANNEL_ID and s.files])
        assert (CHANNEL_ID, meme) in server.deleted
        post = await stored_post(bot, meme)
        assert held.files == [post.image.path.read_bytes()]
        names = {b["label"]: b["custom_id"] for b in held.buttons}
        assert {"Allow", "Keep removed", "✓ Other"} <= set(names)
        assert (await bot.storage.held_post(post.id)).state is HoldState.held
        refused = await server.answer(await server.press(ALICE, held, names["Allow"]))
        assert refused.ephemeral and refused.content == "Only admins can decide this."
        done = await server.answer(await server.press(MOD, held, names["Allow"]))
        assert done.kind == 7 and "Allowed and re-posted by Mod." in held.content
        [repost] = await server.wait_for(
            lambda: [s for s in server.sent if s.channel_id == CHANNEL_ID and s.files])
        assert repost.content == "A meme by Alice (Other), allowed by Mod."
        assert await bot.storage.corrections_for(post.id) == []


async def test_delete_without_manage_messages_only_notes(tmp_path: Path, tiny_model: Path
                                                         ) -> None:
    async with discord_bot(tmp_path, tiny_model) as (server, _):
        server.no_manage_messages.add(CHANNEL_ID)
        await server.answer(await server.slash(MOD, "settings", setting="topics", value="doom"))
        await server.answer(await server.slash(MOD, "settings", setting="offtopic",
                                               value="delete"))
        meme = await server.post_image(ALICE, jpeg("doom", 15))
        note = await server.reply_to(meme)
        assert note.content.endswith("Other is off-topic here.")
        assert (CHANNEL_ID, meme) not in server.deleted
        server.no_manage_messages.clear()
        gone = await server.post_image(ALICE, jpeg("doom", 16))
        await server.wait_for(lambda: (CHANNEL_ID, gone) in server.deleted)
        await server.wait_for(lambda: [s for s in server.sent
                                       if s.content.startswith("Alice, I removed your meme")])


async def test_silent_mode_posts_the_image_and_buttons_to_the_admins(
    tmp_path: Path, tiny_model: Path
) -> None:
    async with discord_bot(tmp_path, tiny_model) as (server, bot):
        await server.answer(await server.slash(MOD, "settings", setting="replies",
                                               value="silent"))
        meme = await server.post_image(ALICE, jpeg("doom", 17))
        [log] = await server.wait_for(
            lambda: [s for s in server.sent if s.channel_id == ADMIN_CHANNEL_ID and s.files])
        assert f"message {meme} by Alice: " in log.content and not server.replies_to(meme)
        names = {b["label"]: b["custom_id"] for b in log.buttons}
        assert "Allow" not in names and "✓ Other" in names
        done = await server.answer(await server.press(MOD, log, names["Doom"]))
        assert done.kind == 7 and "Doom (set by Mod)" in log.content
        post = await stored_post(bot, meme)
        [correction] = await bot.storage.corrections_for(post.id)
        assert correction.new_label == "doom"  # a label set by an admin trains, as ever
