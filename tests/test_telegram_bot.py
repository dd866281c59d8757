"""End to end: the real PTB Application and core against the Bot API stand-in, with real
SQLite storage and a real (tiny) trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core.runtime import CoreRuntime
from tests.support.imagegen import encode, jpeg, make_image
from tests.support.models import game_meme
from tests.support.telegram_bot import (
    ALICE,
    BOB,
    CHAT,
    LABEL_TEXT,
    ROOT,
    make_settings,
    stored_post,
)
from tests.support.telegram_standin import TelegramStandIn, running_bot


async def test_photo_gets_a_label_reply_with_buttons_and_a_stored_prediction(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    meme = server.post_photo(CHAT, ALICE, jpeg("doom"))
    reply = await server.reply_to(meme)
    assert LABEL_TEXT.match(reply.text), reply.text
    labels = [b["callback_data"].split(":")[-1] for b in reply.buttons]
    assert sorted(labels) == ["animal_crossing", "doom", "other"]
    post = await stored_post(bot, meme)
    assert post is not None and post.author_id == str(ALICE["id"])
    predictions = await bot.storage.predictions_for(post.id)
    assert len(predictions) == 1
    assert predictions[0].model_version == bot.models.current.version
    assert "message_reaction" in (server.allowed_updates or [])


def button(reply: Any, label: str) -> str:
    return next(b["callback_data"] for b in reply.buttons if b["callback_data"].endswith(label))


async def test_admin_press_records_the_correction_and_edits_the_reply(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    meme = server.post_photo(CHAT, ALICE, jpeg("doom"))
    reply = await server.reply_to(meme)
    post = await stored_post(bot, meme)
    predicted = (await bot.storage.predictions_for(post.id))[0].label
    new = "animal_crossing" if predicted != "animal_crossing" else "other"
    query = server.press(BOB, reply, button(reply, new))
    answer = await server.wait_for(
        lambda: [a for a in server.answers if a.callback_query_id == query]
    )
    assert answer[0].show_alert is False and "Label set to" in (answer[0].text or "")
    corrections = await bot.storage.corrections_for(post.id)
    assert [(c.new_label, c.admin_id) for c in corrections] == [(new, f"telegram:{BOB['id']}")]
    assert await bot.storage.effective_label(post.image.sha256) == new
    assert "set by @bob" in reply.text and reply.edits
    assert [b["text"] for b in reply.buttons if b["text"].startswith("✓")]


async def test_a_press_on_the_predicted_label_is_a_confirmation(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    meme = server.post_photo(CHAT, ALICE, jpeg("animal_crossing", 3))
    reply = await server.reply_to(meme)
    post = await stored_post(bot, meme)
    predicted = (await bot.storage.predictions_for(post.id))[0].label
    query = server.press(ROOT, reply, button(reply, predicted))  # a super-admin, not a chat admin
    await server.wait_for(lambda: [a for a in server.answers if a.callback_query_id == query])
    [decision] = await bot.storage.corrections_for(post.id)
    assert decision.kind.value == "confirmation" and decision.new_label == predicted
    assert "confirmed by @root" in reply.text


async def test_a_non_admin_press_is_refused_and_changes_nothing(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    meme = server.post_photo(CHAT, ALICE, jpeg("doom", 1))
    reply = await server.reply_to(meme)
    before = reply.text
    query = server.press(ALICE, reply, button(reply, "other"))
    [answer] = await server.wait_for(
        lambda: [a for a in server.answers if a.callback_query_id == query]
    )
    assert answer.show_alert and "admins" in (answer.text or "").lower()
    post = await stored_post(bot, meme)
    assert await bot.storage.corrections_for(post.id) == []
    assert reply.text == before and not reply.edits


async def test_admin_reaction_corrects_and_member_reaction_does_not(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    meme = server.post_photo(CHAT, ALICE, jpeg("other", 2))
    reply = await server.reply_to(meme)
    post = await stored_post(bot, meme)
    server.react(CHAT, ALICE, meme, "😈")  # a member: just a reaction
    server.react(CHAT, BOB, reply.message_id, "😈")  # an admin, on the bot's reply
    await server.wait_for(lambda: reply.edits)
    corrections = await bot.storage.corrections_for(post.id)
    assert [c.admin_id for c in corrections] == [f"telegram:{BOB['id']}"]
    assert await bot.storage.effective_label(post.image.sha256) == "doom"
    assert reply.text.startswith("Doom (")


async def test_corrupt_image_gets_a_clear_reply_and_is_not_stored(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    data = jpeg("doom")
    meme = server.post_photo(CHAT, ALICE, data[: len(data) // 2])
    reply = await server.reply_to(meme)
    assert reply.text.startswith("Sorry, I can't read this image") and not reply.buttons
    assert await stored_post(bot, meme) is None


async def test_a_50_mb_file_is_refused_by_size_without_downloading(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    big = b"\xff\xd8\xff" + bytes(50 * 1024 * 1024)
    meme = server.post_document(CHAT, ALICE, big, "image/jpeg", "huge.jpg")
    reply = await server.reply_to(meme)
    assert "too large (50 MB; the limit is 20 MB)" in reply.text
    assert "getFile" not in server.calls
    assert await stored_post(bot, meme) is None


async def test_text_and_non_image_documents_are_ignored(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    text = server.post_text(CHAT, ALICE, "hello")
    pdf = server.post_document(CHAT, ALICE, b"%PDF-1.4 not an image", "application/pdf", "a.pdf")
    song = server.post_document(CHAT, ALICE, b"ID3\x03 not a meme", "audio/mpeg", "a.mp3")
    meme = server.post_photo(CHAT, ALICE, jpeg("doom", 4))  # processed after the others
    await server.reply_to(meme)
    assert not server.replies_to(text) and not server.replies_to(pdf)
    assert not server.replies_to(song)
    assert (await bot.storage.stats()).memes_seen == 1


async def test_gif_png_webp_documents_and_static_stickers_are_labelled(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    frames = [make_image("animal_crossing", i) for i in range(3)]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    sent = [
        server.post_document(CHAT, ALICE, gif, "image/gif", "meme.gif"),
        server.post_document(CHAT, ALICE, encode(make_image("doom", 7), "PNG"), "image/png",
                             "meme.png"),
        server.post_sticker(CHAT, ALICE, encode(make_image("other", 8), "WEBP")),
    ]
    for message_id in sent:
        reply = await server.reply_to(message_id)
        assert LABEL_TEXT.match(reply.text), reply.text
    formats = {(await stored_post(bot, m)).image.format for m in sent}
    assert formats == {"GIF", "PNG", "WEBP"}


async def test_200_memes_at_once_are_all_answered_and_stored(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    images = [jpeg(("doom", "animal_crossing", "other")[i % 3], 100 + i) for i in range(200)]
    memes = [server.post_photo(CHAT, ALICE, data) for data in images]
    # Generated pictures of one class look alike to the tiny model: some may also get a
    # repost note; every meme gets exactly one label reply.
    def labelled() -> list[Any]:
        return [s for s in server.sent if not s.text.startswith("Repost")]

    await server.wait_for(lambda: len(labelled()) >= 200, timeout=60)
    for meme in memes:
        [reply] = [r for r in server.replies_to(meme) if not r.text.startswith("Repost")]
        assert LABEL_TEXT.match(reply.text), reply.text
    stats = await bot.storage.stats()
    assert stats.memes_seen == 200
    assert sum(stats.predicted_per_label.values()) == 200


async def test_retrain_is_queued_for_operators_and_refused_for_others(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    refused = server.post_text(CHAT, ALICE, "/retrain")
    reply = await server.reply_to(refused)  # Alice never opened a chat with the bot
    assert reply.text.startswith("Only the bot's operators can use /retrain")
    assert await bot.storage.list_jobs() == []
    delegated = server.post_text(CHAT, ROOT, "/delegate")  # Bob administers this chat
    assert "may also /retrain" in (await server.reply_to(delegated)).text
    queued = server.post_text(CHAT, BOB, "/retrain@meme_test_bot")
    reply = await server.reply_to(queued)
    assert reply.text.startswith("Retraining (fast) queued (job #1)")
    # This in-process bot has no trainer (`memebot run` supervises one): the reply says so.
    assert "No trainer is running right now" in reply.text
    again = server.post_text(CHAT, ROOT, "/retrain")
    assert (await server.reply_to(again)).text.startswith("A retrain is already queued (job #1).")
    [job] = await bot.storage.list_jobs()
    assert job.status.value == "queued" and job.requested_by == f"telegram:{BOB['id']}"
    assert job.kind == "fast"
    full = server.post_text(CHAT, BOB, "/retrain full")
    assert (await server.reply_to(full)).text.startswith("Retraining (full) queued (job #2)")
    wrong = server.post_text(CHAT, BOB, "/retrain now")
    assert (await server.reply_to(wrong)).text == "Usage: /retrain [fast|full]"


async def test_addlabel_is_the_operators_and_adds_a_button(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    refused = server.post_text(CHAT, BOB, "/addlabel minecraft")  # a chat admin, no operator
    assert (await server.reply_to(refused)).text.startswith("Only the bot's operators")
    added = server.post_text(CHAT, ROOT, "/addlabel Minecraft")
    assert (await server.reply_to(added)).text.startswith("Added the label Minecraft")
    invalid = server.post_text(CHAT, ROOT, "/addlabel no/slashes")
    assert "cannot be a label" in (await server.reply_to(invalid)).text
    meme = server.post_photo(CHAT, ALICE, jpeg("doom", 9))
    reply = await server.reply_to(meme)
    assert "Minecraft" in [b["text"] for b in reply.buttons]
    labels = server.post_text(CHAT, ALICE, "/labels")
    assert "Minecraft [minecraft] (new" in (await server.reply_to(labels)).text


async def test_help_stats_and_model_commands(server: TelegramStandIn, bot: CoreRuntime) -> None:
    meme = server.post_photo(CHAT, ALICE, jpeg("doom", 5))
    await server.reply_to(meme)
    stats = await server.reply_to(server.post_text(CHAT, ALICE, "/stats"))
    assert "Memes seen: 1 (1 unique images)" in stats.text
    assert f"Model: {bot.models.current.version} (test accuracy" in stats.text
    help_text = await server.reply_to(server.post_text(CHAT, ALICE, "/help"))
    assert "/retrain" in help_text.text
    model = await server.reply_to(server.post_text(CHAT, ALICE, "/model"))
    assert f"{bot.models.current.version} – active" in model.text


async def test_caption_is_stored_and_weighed_with_the_image(
    server: TelegramStandIn, tmp_path: Path, worded_model: Path
) -> None:
    async with running_bot(server, make_settings(server, tmp_path, worded_model)) as runtime:
        labels = {}
        image = game_meme(worded_model)
        for caption in (None, "the slayer and the demons", "Tom Nook and a villager"):
            meme = server.post_photo(CHAT, ALICE, image, caption=caption)
            await server.reply_to(meme)
            post = await stored_post(runtime, meme)
            assert post is not None and post.caption == caption
            labels[caption] = (await runtime.storage.predictions_for(post.id))[-1].label
    assert labels[None] != "other"
    assert labels["the slayer and the demons"] == "doom"
    assert labels["Tom Nook and a villager"] == "animal_crossing"
