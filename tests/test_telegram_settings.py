"""Each chat's rules on Telegram, end to end (the real PTB Application and core against the Bot
API stand-in): the /settings inline menu edited in place, typed values refused with nothing
changed, a reaction instead of a reply (setMessageReaction), off-topic memes held for the
admins' chat (deleteMessage, sendPhoto with buttons, Allow re-posts) or noted where the bot may
not delete, and a group's move to a supergroup id with the migrate messages redelivered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot.core.runtime import CoreRuntime
from inference.classifier import Classifier, Prediction
from storage.records import HoldState
from tests.support.imagegen import jpeg
from tests.support.telegram_bot import ALICE, BOB, CHAT, make_settings, stored_post
from tests.support.telegram_standin import SentMessage, TelegramStandIn, running_bot, standin

ADMINS = -100777


class OtherClassifier(Classifier):
    """A real classifier that calls every meme "other" at 90%: off-topic in a Doom chat."""

    def predict(self, images: Any, **kw: Any) -> Any:
        return [replace(p, label="other", confidence=0.9) if isinstance(p, Prediction) else p
                for p in super().predict(images, **kw)]


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 20.0) -> Any:
    """Poll storage until `check()` is truthy (the bot writes it from its own task)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await check():
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("the bot never got there")


def button(message: SentMessage, text: str) -> str:
    return next(b["callback_data"] for b in message.buttons if b["text"].startswith(text))


async def command(server: TelegramStandIn, text: str, sender: dict[str, Any] = BOB
                  ) -> SentMessage:
    return await server.reply_to(server.post_text(CHAT, sender, text))


async def test_the_settings_menu_is_edited_in_place(server: TelegramStandIn, bot: CoreRuntime
                                                    ) -> None:
    menu = await command(server, "/settings")
    assert menu.text.startswith("Settings for this chat:") and len(menu.buttons) == 7
    server.press(BOB, menu, button(menu, "Replies"))
    await server.wait_for(lambda: menu.edits)
    assert "Pick replies:" in menu.text
    server.press(ALICE, menu, button(menu, "silent"))  # not an admin: refused, nothing changes
    await server.wait_for(lambda: server.answers and server.answers[-1].show_alert)
    assert (await bot.storage.chat_settings("telegram", str(CHAT["id"]))).reply_mode is None
    server.press(BOB, menu, button(menu, "silent"))
    await server.wait_for(lambda: "Replies changed by @bob." in menu.text)
    assert (await bot.storage.chat_settings("telegram", str(CHAT["id"]))).reply_mode == "silent"
    for name, choice in (("On-topic", "✓ Other"), ("Off-topic", "hold"),
                         ("Confidence", "70%"), ("Reaction", "off"), ("Enabled", "off")):
        edits = len(menu.edits)
        server.press(BOB, menu, button(menu, name))
        await server.wait_for(lambda e=edits: len(menu.edits) > e)
        edits = len(menu.edits)
        server.press(BOB, menu, button(menu, choice))
        await server.wait_for(lambda e=edits: len(menu.edits) > e and "changed by" in menu.text)
        if name == "On-topic":  # a toggle page stays open
            server.press(BOB, menu, button(menu, "« Back"))
            await server.wait_for(lambda e=edits: len(menu.edits) > e + 1)
    stored = await bot.storage.chat_settings("telegram", str(CHAT["id"]))
    assert stored.on_topic_labels == ("animal_crossing", "doom")
    assert (stored.offtopic_action, stored.confidence_threshold) == ("hold", 0.7)
    assert (stored.reaction_corrections, stored.enabled) == (False, False)
    refused = await command(server, "/settings threshold 2 replies every")
    assert "Nothing was changed." in refused.text
    assert await bot.storage.chat_settings("telegram", str(CHAT["id"])) == stored
    other = await command(server, "/settings replies every", sender=ALICE)
    assert other.text == "Only admins of this chat can use /settings."


async def test_reaction_mode_reacts_instead_of_replying(server: TelegramStandIn,
                                                       bot: CoreRuntime) -> None:
    await command(server, "/settings replies react")
    meme = server.post_photo(CHAT, ALICE, jpeg("doom"))
    [(chat, message, emoji)] = await server.wait_for(lambda: server.reactions)
    assert (chat, message) == (CHAT["id"], meme) and emoji in ("😈", "🦄", "🤷", "👀")
    assert not server.replies_to(meme)


async def test_an_off_topic_meme_is_held_and_allowed(tmp_path: Path, tiny_model: Path) -> None:
    async with _bot(tmp_path, tiny_model, can_delete=True) as (server, bot):
        await command(server, "/settings topics doom offtopic hold")
        meme = server.post_photo(CHAT, ALICE, jpeg("doom", 3))
        [held] = await server.wait_for(
            lambda: [s for s in server.sent if s.chat_id == ADMINS and s.photo])
        assert (CHAT["id"], meme) in server.deleted
        post = await stored_post(bot, meme)
        assert held.photo == post.image.path.read_bytes()  # the stored image
        assert "Held from telegram chat" in held.text and "@alice" in held.text
        assert {"Allow", "Keep removed", "✓ Other"} <= {b["text"] for b in held.buttons}
        notice = await server.wait_for(
            lambda: [s for s in server.sent if s.chat_id == CHAT["id"] and "held" in s.text])
        assert "@alice, your meme is held for the admins" in notice[0].text
        assert (await bot.storage.held_post(post.id)).state is HoldState.held
        server.press(BOB, held, button(held, "Allow"))
        await server.wait_for(lambda: held.edits)  # editMessageCaption on the photo
        assert "Allowed and re-posted by @bob." in held.text and not held.buttons
        [repost] = await server.wait_for(
            lambda: [s for s in server.sent if s.chat_id == CHAT["id"] and s.photo])
        assert repost.text == "A meme by @alice (Other), allowed by @bob."
        assert await bot.storage.corrections_for(post.id) == []
        history = await bot.storage.post_history(post.id)  # the audit log: hold, then allow
        assert [(e.action, e.actor_id) for e in history] == [
            ("hold", "memebot"), ("allow", f"telegram:{BOB['id']}")]
        changed = {e.detail for e in await bot.storage.audit_log(action="settings")}
        assert changed == {"on_topic_labels", "offtopic_action"}


async def test_without_the_right_to_delete_and_below_the_threshold_it_is_noted(
    tmp_path: Path, tiny_model: Path
) -> None:
    async with _bot(tmp_path, tiny_model, can_delete=False) as (server, _):
        await command(server, "/settings topics doom offtopic delete")
        meme = server.post_photo(CHAT, ALICE, jpeg("doom", 4))
        note = await server.reply_to(meme)
        assert note.text.endswith("Other is off-topic here.") and not server.deleted
        await command(server, "/settings threshold 0.95")
        server.can_delete.add(CHAT["id"])
        unsure = server.post_photo(CHAT, ALICE, jpeg("doom", 5))
        assert (await server.reply_to(unsure)).text.endswith("off-topic here.")
        assert not server.deleted  # below the chat's threshold: only a note
        await command(server, "/settings threshold default")
        removed = server.post_photo(CHAT, ALICE, jpeg("doom", 6))
        await server.wait_for(lambda: (CHAT["id"], removed) in server.deleted)
        await server.wait_for(lambda: [s for s in server.sent if "I removed your meme" in s.text])


async def test_a_group_moves_to_its_supergroup_id_once(tmp_path: Path, tiny_model: Path) -> None:
    old = {"id": -4001, "type": "group", "title": "Memes"}
    new = {"id": -1004001, "type": "supergroup", "title": "Memes"}
    async with _bot(tmp_path, tiny_model, can_delete=False) as (server, bot):
        server.members[(old["id"], BOB["id"])] = "administrator"
        server.members[(new["id"], BOB["id"])] = "administrator"
        await server.reply_to(server.post_text(old, BOB, "/settings replies confident"))
        await server.reply_to(server.post_text(old, BOB, "/sort doom 12"))
        await bot.storage.set_chat_trust("telegram", old["id"], "trusted", by="telegram:1")
        meme = server.post_photo(old, ALICE, jpeg("doom", 7))
        reply = await server.reply_to(meme)
        written = await bot.storage.audit_log(limit=1000)
        to_new, from_old = server.migrate(old, new, BOB)
        server.redeliver(to_new)
        server.redeliver(from_old)
        moved = await until(lambda: bot.storage.find_post("telegram", str(new["id"]),
                                                          str(meme)))
        settings = await until(lambda: _changed(bot, str(new["id"])))
        assert settings.reply_mode == "confident" and settings.sort_places == {"doom": "12"}
        assert (await bot.storage.fingerprints([moved.id]))[0].chat_id == str(new["id"])
        assert (await bot.storage.chat_settings("telegram", str(old["id"]))).updated_at is None
        assert await bot.storage.find_post("telegram", str(old["id"]), str(meme)) is None
        assert (await bot.storage.chat_trust("telegram", new["id"])).level.value == "trusted"
        again = await bot.storage.move_chat("telegram", str(old["id"]), str(new["id"]))
        assert (again.settings, again.posts, again.trust) == (False, 0, False)
        # The audit log: the settings change (from, to, who), one move, old rows as written.
        (move,) = await bot.storage.audit_log(action="move_chat")
        assert (move.from_value, move.to_value) == (str(old["id"]), str(new["id"]))
        assert (await bot.storage.audit_log(limit=1000))[1:] == written
        change = next(e for e in written if e.detail == "reply_mode")
        assert (change.actor_id, change.chat_id, change.from_value, change.to_value) == (
            f"telegram:{BOB['id']}", str(old["id"]), "default", "confident")
        # A reaction on the label reply in the supergroup corrects the meme and edits it.
        server.react(new, BOB, reply.message_id, "😈")
        await server.wait_for(lambda: reply.edits)
        assert "Doom" in reply.text and reply.chat_id == new["id"]
        (correction,) = await bot.storage.audit_log(action="correction")
        assert correction.chat_id == str(new["id"]) and correction.post_id == moved.id


async def _changed(bot: CoreRuntime, chat_id: str) -> Any:
    settings = await bot.storage.chat_settings("telegram", chat_id)
    return settings if settings.updated_at is not None else None


@asynccontextmanager
async def _bot(tmp_path: Path, tiny_model: Path, *, can_delete: bool
               ) -> AsyncIterator[tuple[TelegramStandIn, CoreRuntime]]:
    """A bot with an admins' chat (Bob administers both) and the "other" classifier."""
    async with standin() as server:
        server.members[(CHAT["id"], BOB["id"])] = "administrator"
        server.members[(ADMINS, BOB["id"])] = "administrator"
        if can_delete:
            server.can_delete.add(CHAT["id"])
        settings = make_settings(server, tmp_path, tiny_model, admin_chat_id=str(ADMINS))
        async with running_bot(server, settings, loader=OtherClassifier) as bot:
            yield server, bot
