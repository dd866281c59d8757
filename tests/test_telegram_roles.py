"""Roles, trust and undo on Telegram (issue 21), end to end: the real PTB Application and core
against the Bot API stand-in, real SQLite storage and a real (tiny) model."""

from __future__ import annotations

from typing import Any

from bot.core.runtime import CoreRuntime
from tests.support.imagegen import jpeg
from tests.support.telegram_bot import ALICE, BOB, CHAT, ROOT, stored_post
from tests.support.telegram_standin import TelegramStandIn, group, user

OTHER = group(-1002, "Someone else's group")
MALLORY = user(44, "Mallory")  # administers OTHER, and opened a private chat with the bot


def button(reply: Any, label: str) -> str:
    return next(b["callback_data"] for b in reply.buttons if b["callback_data"].endswith(label))


async def answer(server: TelegramStandIn, query: str) -> Any:
    found = await server.wait_for(
        lambda: [a for a in server.answers if a.callback_query_id == query])
    return found[0]


async def test_another_groups_admin_is_refused_privately_and_nothing_changes(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    server.members[(OTHER["id"], MALLORY["id"])] = "administrator"
    server.started.add(MALLORY["id"])
    labels = await bot.storage.list_labels()
    serving = bot.models.current.version
    asked = [server.post_text(OTHER, MALLORY, text)
             for text in ("/retrain", "/retrain full", "/rollback", "/addlabel minecraft",
                          "/trust", "/delegate")]
    private = await server.wait_for(
        lambda: server.private_to(MALLORY["id"]) if len(server.private_to(MALLORY["id"])) >= 6
        else None)
    texts = [m.text for m in private]
    assert len(private) == 6 and all(t.startswith("Only the bot's operators") for t in texts)
    assert all("Ask an operator" in t for t in texts)  # updates run concurrently: any order
    assert sorted(t.split()[6].rstrip(":") for t in texts) == [
        "/addlabel", "/delegate", "/retrain", "/retrain", "/rollback", "/trust"]
    assert all(not server.replies_to(message) for message in asked)  # nothing in the group
    assert await bot.storage.list_jobs() == []
    assert bot.models.current.version == serving
    assert await bot.storage.list_labels() == labels
    assert await bot.storage.trusted_chats() == []
    assert await bot.storage.audit_log() == []


async def test_untrusted_corrections_wait_until_the_chat_is_trusted(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    meme = server.post_photo(CHAT, ALICE, jpeg("doom", 21))
    reply = await server.reply_to(meme)
    post = await stored_post(bot, meme)
    predicted = (await bot.storage.predictions_for(post.id))[0].label
    new = "animal_crossing" if predicted != "animal_crossing" else "other"
    await answer(server, server.press(BOB, reply, button(reply, new)))
    assert "set by @bob" in reply.text  # stored and shown
    assert await bot.storage.effective_label(post.image.sha256) == new
    training = await bot.storage.training_set()
    assert training.examples == () and training.pending == 1
    trusted = server.post_text(CHAT, ROOT, "/trust")
    assert "is trusted" in (await server.reply_to(trusted)).text
    assert [(e.label, e.chat) for e in (await bot.storage.training_set()).examples] == [
        (new, f"telegram:{CHAT['id']}")]


async def test_undo_button_and_reaction_removal_take_a_correction_back(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    meme = server.post_photo(CHAT, ALICE, jpeg("doom", 22))
    reply = await server.reply_to(meme)
    first_text = reply.text
    post = await stored_post(bot, meme)
    predicted = (await bot.storage.predictions_for(post.id))[0].label
    new = "animal_crossing" if predicted != "animal_crossing" else "other"
    await answer(server, server.press(BOB, reply, button(reply, new)))
    undo = next(b for b in reply.buttons if b["text"] == "↩ Undo")
    refused = await answer(server, server.press(ALICE, reply, undo["callback_data"]))
    assert refused.show_alert and "Only the admin who made" in (refused.text or "")
    done = await answer(server, server.press(BOB, reply, undo["callback_data"]))
    assert done.text == "Correction undone." and not done.show_alert
    assert reply.text == first_text and not [b for b in reply.buttons if "Undo" in b["text"]]
    assert await bot.storage.corrections_for(post.id) == []

    # A reaction that set the label, taken back.
    unicorn = "🦄" if predicted != "animal_crossing" else "🤷"
    server.react(CHAT, BOB, meme, unicorn)
    await server.wait_for(lambda: reply.text != first_text or None)
    assert len(await bot.storage.corrections_for(post.id)) == 1
    server.react(CHAT, BOB, meme, unicorn, removed=True)
    await server.wait_for(lambda: reply.text == first_text or None)
    assert await bot.storage.corrections_for(post.id) == []
    history = [(e.action, e.actor_id) for e in await bot.storage.post_history(post.id)]
    bob = f"telegram:{BOB['id']}"
    assert history == [("correction", bob), ("undo", bob), ("correction", bob), ("undo", bob)]
