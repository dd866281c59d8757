"""End to end: the real discord.py client and core against the Discord stand-in, with real
SQLite storage and a real (tiny) trained model."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core import formatting as fmt
from bot.core.runtime import CoreRuntime
from tests.support.discord_bot import ALICE, CURATOR, MOD, ROOT, make_settings, stored_post
from tests.support.discord_standin import (
    ADMIN_CHANNEL_ID,
    BOT_ID,
    CHANNEL_ID,
    GUILD_ID,
    OTHER_CHANNEL_ID,
    TOKEN,
    DiscordStandIn,
    Person,
    SentMessage,
    running_bot,
    standin,
)
from tests.support.imagegen import encode, jpeg, make_image

LABEL_TEXT = re.compile(r"^(not sure: maybe )?(Doom|Animal Crossing) \(\d{1,3}%\)$|^other: not a ")


# Defined here, not in tests/support/discord_bot.py: this module is their only user, and they
# override the Telegram `server` and `bot` that tests/conftest.py loads for every test.
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
    """A label that is not `label` (a correction that changes something)."""
    return "animal_crossing" if label != "animal_crossing" else "other"


def button(reply: Any, label: str) -> str:
    return next(b["custom_id"] for b in reply.buttons if b["custom_id"].endswith(f":{label}"))


# --------------------------------------------------------------------------------- images


async def test_image_gets_a_label_reply_with_buttons_and_a_stored_prediction(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post(ALICE, "rip and tear", attachments=[
        server.attachment(jpeg("doom"), "meme.jpg", "image/jpeg")])
    reply = await server.reply_to(meme)
    assert LABEL_TEXT.match(reply.content), reply.content
    assert reply.channel_id == CHANNEL_ID
    labels = sorted(b["custom_id"].split(":")[-1] for b in reply.buttons)
    assert labels == ["animal_crossing", "doom", "other"]
    post = await stored_post(bot, meme)
    assert post is not None and post.author_id == str(ALICE.user_id)
    assert post.caption == "rip and tear"  # the message text, stored with the post
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


# ---------------------------------------------------------------------------- corrections


async def test_admin_press_records_one_correction_and_edits_the_reply(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post_image(ALICE, jpeg("doom"))
    reply = await server.reply_to(meme)
    post = await stored_post(bot, meme)
    predicted = (await bot.storage.predictions_for(post.id))[0].label
    new = other_label(predicted)
    first = await server.press(MOD, reply, button(reply, new))
    answer = await server.answer(first)
    assert answer.kind == 7 and answer.authorization is None  # the message itself is updated
    assert reply.content.startswith(f"{fmt.display_name(new)} (set by Mod)") and reply.edits
    [current] = [b for b in reply.buttons if b["label"].startswith("✓")]
    assert current["custom_id"].endswith(f":{new}")
    again = await server.answer(await server.press(MOD, reply, button(reply, new)))  # again
    assert again.ephemeral and again.content == f"It is already {fmt.display_name(new)}."
    corrections = await bot.storage.corrections_for(post.id)
    assert [(c.new_label, c.admin_id) for c in corrections] == [(new, f"discord:{MOD.user_id}")]
    assert await bot.storage.effective_label(post.image.sha256) == new


async def test_the_admin_role_and_super_admins_may_correct(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post_image(ALICE, jpeg("animal_crossing", 3))
    reply = await server.reply_to(meme)
    post = await stored_post(bot, meme)
    predicted = (await bot.storage.predictions_for(post.id))[0].label
    await server.answer(await server.press(CURATOR, reply, button(reply, predicted)))
    [decision] = await bot.storage.corrections_for(post.id)
    assert decision.kind.value == "confirmation" and decision.new_label == predicted
    assert "confirmed by Curator" in reply.content
    other = "doom" if predicted != "doom" else "other"
    await server.answer(await server.press(ROOT, reply, button(reply, other)))
    assert "set by Root" in reply.content


async def test_a_non_admin_press_is_refused_ephemerally_and_changes_nothing(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post_image(ALICE, jpeg("doom", 1))
    reply = await server.reply_to(meme)
    before = reply.content
    answer = await server.answer(await server.press(ALICE, reply, button(reply, "other")))
    assert answer.kind == 4 and answer.ephemeral and "admins" in (answer.content or "").lower()
    post = await stored_post(bot, meme)
    assert await bot.storage.corrections_for(post.id) == []
    assert reply.content == before and not reply.edits


async def test_buttons_keep_working_after_a_restart(
    server: DiscordStandIn, tmp_path: Path, tiny_model: Path
) -> None:
    settings = make_settings(server, tmp_path, tiny_model)
    async with running_bot(server, settings):
        meme = await server.post_image(ALICE, jpeg("doom", 2))
        reply = await server.reply_to(meme)
    async with running_bot(server, settings) as again:  # a new process: no view in memory
        post = await stored_post(again, meme)
        new = other_label((await again.storage.predictions_for(post.id))[0].label)
        await server.answer(await server.press(MOD, reply, button(reply, new)))
        assert [c.new_label for c in await again.storage.corrections_for(post.id)] == [new]
        assert reply.content.startswith(f"{fmt.display_name(new)} (set by Mod)")


async def test_admin_reaction_corrects_member_and_own_reactions_do_not(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post_image(ALICE, jpeg("other", 2))
    reply = await server.reply_to(meme)
    post = await stored_post(bot, meme)
    new = other_label((await bot.storage.predictions_for(post.id))[0].label)
    emoji = {label: e for e, label in bot.settings.reaction_labels.items()}[new]
    await server.react(ALICE, meme, emoji)  # a member: just a reaction
    await server.react(None, reply.message_id, emoji, user_id=BOT_ID)  # the bot's own
    await server.react(MOD, reply.message_id, emoji)  # an admin, on the bot's reply
    await server.wait_for(lambda: reply.edits)
    corrections = await bot.storage.corrections_for(post.id)
    assert [c.admin_id for c in corrections] == [f"discord:{MOD.user_id}"]
    assert await bot.storage.effective_label(post.image.sha256) == new
    assert reply.content == f"{fmt.display_name(new)} (set by Mod)"
    assert len(reply.edits) == 1


async def test_a_reaction_after_a_restart_answers_the_meme_anew(
    server: DiscordStandIn, tmp_path: Path, tiny_model: Path
) -> None:
    settings = make_settings(server, tmp_path, tiny_model)
    async with running_bot(server, settings):
        meme = await server.post_image(ALICE, jpeg("doom", 6))
        await server.reply_to(meme)
    async with running_bot(server, settings) as again:
        post = await stored_post(again, meme)
        new = other_label((await again.storage.predictions_for(post.id))[0].label)
        emoji = {label: e for e, label in again.settings.reaction_labels.items()}[new]
        await server.react(MOD, meme, emoji)
        await server.wait_for(lambda: len(server.replies_to(meme)) == 2)
        assert server.replies_to(meme)[1].content == f"{fmt.display_name(new)} (set by Mod)"


# ------------------------------------------------------------------------- slash commands


async def test_public_commands_answer_everyone_in_the_channel(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post_image(ALICE, jpeg("doom", 5))
    await server.reply_to(meme)
    for person in (ALICE, MOD):
        stats = await server.answer(await server.slash(person, "stats"))
        assert not stats.ephemeral and stats.authorization is None
        assert "Memes seen: 1 (1 unique images)" in (stats.content or "")
        assert f"Model: {bot.models.current.version} (test accuracy" in (stats.content or "")
        help_text = await server.answer(await server.slash(person, "help"))
        assert "/retrain" in (help_text.content or "") and not help_text.ephemeral
        model = await server.answer(await server.slash(person, "model"))
        assert f"{bot.models.current.version} – active" in (model.content or "")
        labels = await server.answer(await server.slash(person, "labels"))
        assert "Animal Crossing" in (labels.content or "")


async def test_retrain_is_queued_for_operators_and_refused_ephemerally_for_others(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    for person in (ALICE, MOD):  # a member; an admin of a channel the operators did not trust
        refused = await server.answer(await server.slash(person, "retrain"))
        assert refused.ephemeral
        assert (refused.content or "").startswith("Only the bot's operators can use /retrain")
    assert await bot.storage.list_jobs() == []
    delegated = await server.answer(await server.slash(ROOT, "delegate"))
    assert "may also /retrain" in (delegated.content or "")
    queued = await server.answer(await server.slash(MOD, "retrain"))
    assert not queued.ephemeral
    assert (queued.content or "").startswith("Retraining (fast) queued (job #1)")
    again = await server.answer(await server.slash(CURATOR, "retrain", kind="fast"))
    assert (again.content or "").startswith("A retrain is already queued (job #1).")
    [job] = await bot.storage.list_jobs()
    assert job.requested_by == f"discord:{MOD.user_id}" and job.kind == "fast"
    full = await server.answer(await server.slash(ROOT, "retrain", kind="full"))
    assert (full.content or "").startswith("Retraining (full) queued (job #2)")


async def test_addlabel_is_the_operators_and_adds_a_button(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    for person in (ALICE, MOD):
        refused = await server.answer(await server.slash(person, "addlabel", name="minecraft"))
        assert refused.ephemeral
        assert (refused.content or "").startswith("Only the bot's operators")
    await server.answer(await server.slash(ROOT, "delegate"))  # now Mod may
    added = await server.answer(await server.slash(MOD, "addlabel", name="Minecraft"))
    assert (added.content or "").startswith("Added the label Minecraft")
    invalid = await server.answer(await server.slash(MOD, "addlabel", name="no/slashes"))
    assert "cannot be a label" in (invalid.content or "")
    reply = await server.reply_to(await server.post_image(ALICE, jpeg("doom", 9)))
    assert "Minecraft" in [b["label"] for b in reply.buttons]


async def test_rollback_is_the_operators(server: DiscordStandIn, bot: CoreRuntime) -> None:
    for person in (ALICE, MOD):
        refused = await server.answer(await server.slash(person, "rollback"))
        assert refused.ephemeral
        assert (refused.content or "").startswith("Only the bot's operators")
    await server.answer(await server.slash(ROOT, "delegate"))
    only = await server.answer(await server.slash(MOD, "rollback"))
    assert (only.content or "").startswith("Cannot roll back")  # one version: nothing earlier
    unknown = await server.answer(await server.slash(MOD, "rollback", version="v999"))
    assert (unknown.content or "").startswith("Cannot roll back")
    assert bot.models.current.version == (await bot.storage.active_model_version()).version


async def test_retrain_reports_reach_the_admin_who_asked_and_the_admin_channel(
    server: DiscordStandIn, tmp_path: Path, tiny_model: Path
) -> None:
    settings = make_settings(server, tmp_path, tiny_model, job_check_interval_s=0.2,
                             discord_admin_channel_id=ADMIN_CHANNEL_ID)
    async with running_bot(server, settings) as bot:
        await bot.storage.set_chat_trust("discord", CHANNEL_ID, "delegated", by="discord:44")
        await server.answer(await server.slash(MOD, "retrain", kind="full"))
        job = await bot.storage.claim_next_job("host:1")  # what the trainer does
        assert job is not None
        await bot.storage.finish_job(job.id, succeeded=False, log_tail="line 1\nline 2",
                                     error="RetrainError: no base dataset")

        def report(channel: int) -> list[SentMessage]:
            return [
                m for m in server.sent if m.channel_id == channel and "Retrain job" in m.content
            ]

        [asked] = await server.wait_for(lambda: report(CHANNEL_ID))
        [admins] = await server.wait_for(lambda: report(ADMIN_CHANNEL_ID))
        assert asked.content.startswith(f"<@{MOD.user_id}>: Retrain job #1 (full, asked by "
                                        f"discord:{MOD.user_id}) failed: RetrainError")
        assert admins.content == asked.content.removeprefix(f"<@{MOD.user_id}>: ")


# ------------------------------------------------------------- bad input, bursts, outages


async def test_corrupt_non_image_and_unsupported_images_get_a_clear_reply(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    data = jpeg("doom")
    corrupt = await server.post_image(ALICE, data[: len(data) // 2])
    not_image = await server.post_image(ALICE, b"just some text\n" * 20, "meme.png",
                                        "image/png")
    svg = await server.post_image(ALICE, b"<svg xmlns='http://www.w3.org/2000/svg'/>",
                                  "meme.svg", "image/svg+xml")
    for message_id in (corrupt, not_image):
        reply = await server.reply_to(message_id)
        assert reply.content.startswith("Sorry, I can't read this image"), reply.content
        assert not reply.buttons
        assert await stored_post(bot, message_id) is None
    reply = await server.reply_to(svg)
    # One format policy for every platform (the console also took BMP and TIFF).
    assert reply.content == ("Sorry, I can't read this image: image/svg+xml is not a format I "
                             "read (JPEG, PNG, WebP, GIF, BMP and TIFF).")
    fine = await server.post_image(ALICE, jpeg("doom", 21))  # nothing crashed
    assert LABEL_TEXT.match((await server.reply_to(fine)).content)


async def test_an_oversized_attachment_is_refused_by_size_without_downloading(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    meme = await server.post_image(ALICE, b"\xff\xd8\xff" + bytes(1024), "huge.jpg",
                                   "image/jpeg", size=50 * 1024 * 1024)
    reply = await server.reply_to(meme)
    assert "too large (50 MB; the limit is 20 MB)" in reply.content
    assert server.downloads == 0
    assert await stored_post(bot, meme) is None


async def test_200_images_at_once_are_all_answered_and_stored(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    images = [jpeg(("doom", "animal_crossing", "other")[i % 3], 100 + i) for i in range(200)]
    memes = [await server.post_image(ALICE, data) for data in images]

    def label_replies(meme: int) -> list[SentMessage]:
        # Generated pictures of one class look alike to the tiny model: some may also get a
        # repost note; every meme gets exactly one label reply.
        return [r for r in server.replies_to(meme) if not r.content.startswith("Repost")]

    await server.wait_for(lambda: all(label_replies(m) for m in memes), timeout=120)
    for meme in memes:
        [reply] = label_replies(meme)
        assert LABEL_TEXT.match(reply.content), reply.content
    stats = await bot.storage.stats()
    assert stats.memes_seen == 200
    assert sum(stats.predicted_per_label.values()) == 200


async def test_rate_limited_replies_are_retried_not_dropped(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    server.rate_limit_next_sends = 3  # discord.py tries a request 5 times
    memes = [await server.post_image(ALICE, jpeg("doom", 50 + i)) for i in range(10)]
    await server.wait_for(lambda: all(server.replies_to(m) for m in memes), timeout=60)
    assert server.rate_limited == 3
    assert all(len(server.replies_to(m)) == 1 for m in memes)


async def test_after_a_gateway_drop_the_bot_resumes_and_misses_nothing(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    before = await server.post_image(ALICE, jpeg("doom", 30))
    await server.reply_to(before)
    [session] = server.sessions.values()
    await server.drop()  # 4000: an outage, resumable
    during = await server.post_image(ALICE, jpeg("doom", 31))  # kept for the RESUME
    await server.wait_for(lambda: server.resumes and session.connection is not None)
    [resume] = server.resumes
    assert resume["session_id"] == session.session_id and resume["token"] == TOKEN
    assert resume["seq"] >= 1
    assert LABEL_TEXT.match((await server.reply_to(during)).content)
    after = await server.post_image(ALICE, jpeg("doom", 32))
    assert LABEL_TEXT.match((await server.reply_to(after)).content)
    assert len(server.identifies) == 1  # resumed, not a new session
    assert len(server.replies_to(during)) == 1


async def test_a_disabled_channel_is_ignored_and_silent_mode_logs_to_the_admin_channel(
    server: DiscordStandIn, tmp_path: Path, tiny_model: Path
) -> None:
    settings = make_settings(server, tmp_path, tiny_model,
                             discord_admin_channel_id=ADMIN_CHANNEL_ID)
    async with running_bot(server, settings) as bot:
        await bot.storage.update_chat_settings("discord", str(OTHER_CHANNEL_ID), enabled=False)
        await bot.storage.update_chat_settings("discord", str(CHANNEL_ID), reply_mode="silent")
        off = await server.post_image(ALICE, jpeg("doom", 40), channel_id=OTHER_CHANNEL_ID)
        silent = await server.post_image(ALICE, jpeg("doom", 41))
        [log] = await server.wait_for(
            lambda: [m for m in server.sent if m.channel_id == ADMIN_CHANNEL_ID]
        )
        assert f"discord chat {CHANNEL_ID}, message {silent} by Alice: " in log.content
        await asyncio.sleep(0.2)  # a reply, if any, would be sent right after recording
        assert not server.replies_to(silent) and not server.replies_to(off)
        assert await bot.storage.find_post("discord", str(OTHER_CHANNEL_ID), str(off)) is None



# -------------------------------------------------------------------------------- reposts


async def test_a_repost_gets_a_note_with_working_buttons_and_reposts_is_admin_only(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    data = jpeg("doom", 60)
    first = await server.post_image(ALICE, data)
    await server.reply_to(first)
    again = await server.post_image(CURATOR, data)
    await server.wait_for(lambda: len(server.replies_to(again)) == 2)
    [note] = [r for r in server.replies_to(again) if r.content.startswith("Repost")]
    [answer] = [r for r in server.replies_to(again) if r is not note]
    assert LABEL_TEXT.match(answer.content) and not server.replies_to(first)[1:]
    assert note.buttons and all(b["custom_id"].startswith("r:") for b in note.buttons)
    refused = await server.answer(await server.press(ALICE, note, note.buttons[0]["custom_id"]))
    assert refused.ephemeral and "admins" in (refused.content or "").lower()
    pressed = await server.answer(await server.press(MOD, note, note.buttons[0]["custom_id"]))
    assert pressed.authorization is None and pressed.kind in (4, 7)
    off = await server.answer(await server.slash(ALICE, "reposts", setting="off"))
    assert off.ephemeral and (off.content or "").startswith("Only admins")
    done = await server.answer(await server.slash(MOD, "reposts", setting="off"))
    assert (done.content or "") == "Reposts: off."
    third = await server.post_image(ALICE, data)
    await server.reply_to(third)  # a note would have come before the label reply
    assert len(server.replies_to(third)) == 1


# ----------------------------------------------------------------------------- sorting


async def test_sort_copies_a_decided_meme_once_and_a_correction_moves_it(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    refused = await server.answer(
        await server.slash(ALICE, "sort", label="doom", place=f"<#{OTHER_CHANNEL_ID}>")
    )
    assert refused.ephemeral and (refused.content or "").startswith("Only admins")
    for label, place in (
        ("doom", f"<#{OTHER_CHANNEL_ID}>"),
        ("animal_crossing", str(ADMIN_CHANNEL_ID)),
    ):
        done = await server.answer(await server.slash(MOD, "sort", label=label, place=place))
        assert place in (done.content or ""), done.content
    listed = await server.answer(await server.slash(MOD, "sort"))
    assert "Doom" in (listed.content or "") and "Animal Crossing" in (listed.content or "")

    data = jpeg("doom", 71)
    meme = await server.post_image(ALICE, data)
    reply = await server.reply_to(meme)

    def copies(channel: int) -> list[SentMessage]:
        return [s for s in server.sent if s.channel_id == channel and s.files]

    # an admin decides doom: one copy in the doom place, the image itself, linking back
    await server.answer(await server.press(MOD, reply, button(reply, "doom")))
    [copy] = await server.wait_for(lambda: copies(OTHER_CHANNEL_ID))
    assert copy.files == [data]
    assert f"https://discord.com/channels/{GUILD_ID}/{CHANNEL_ID}/{meme}" in copy.content
    assert "Doom" in copy.content
    await server.answer(await server.press(MOD, reply, button(reply, "other")))  # not sorted
    await server.answer(await server.press(MOD, reply, button(reply, "doom")))  # back to doom
    assert len(copies(OTHER_CHANNEL_ID)) == 1  # still one copy there, never two
    # a correction to Animal Crossing moves the copy
    await server.answer(await server.press(MOD, reply, button(reply, "animal_crossing")))
    [moved] = await server.wait_for(lambda: copies(ADMIN_CHANNEL_ID))
    assert moved.files == [data] and "Animal Crossing" in moved.content
    assert not copies(OTHER_CHANNEL_ID) and (OTHER_CHANNEL_ID, copy.message_id) in server.deleted
    off = await server.answer(await server.slash(MOD, "sort", label="off"))
    assert (off.content or "").startswith("Sorting is off")
    assert not server.unexpected


async def test_delete_mode_removes_a_repost_and_says_so(
    server: DiscordStandIn, bot: CoreRuntime
) -> None:
    done = await server.answer(await server.slash(MOD, "reposts", setting="delete"))
    assert "delete" in (done.content or "").lower(), done.content
    data = jpeg("doom", 81)
    first = await server.post_image(ALICE, data)
    await server.reply_to(first)
    again = await server.post_image(CURATOR, data)
    await server.wait_for(lambda: (CHANNEL_ID, again) in server.deleted)
    [note] = await server.wait_for(lambda: [s for s in server.sent if s.channel_id == CHANNEL_ID
                                            and s.content.startswith("Removed a repost")])
    assert note.content.startswith("Removed a repost by Curator: first posted by Alice")
    assert (CHANNEL_ID, first) not in server.deleted and not server.replies_to(again)
    assert not server.unexpected
