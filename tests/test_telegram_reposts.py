"""Reposts and sorting end to end: the real PTB Application and core against the Bot API
stand-in, real SQLite storage and a real (tiny) trained model."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import ImageOps

from bot.core.runtime import CoreRuntime
from tests.support.imagegen import (
    cropped,
    encode,
    make_image,
    reencoded,
    resized,
    with_caption_bar,
    with_meme_text,
)
from tests.support.telegram_bot import ALICE, BOB, CHAT, make_settings, stored_post
from tests.support.telegram_standin import TelegramStandIn, running_bot

CAROL = {"id": 44, "is_bot": False, "first_name": "Carol", "username": "carol"}


def meme(seed: int, words: str = "one does not simply") -> Any:
    """A generated picture with words on it (a meme), 240x200."""
    return with_meme_text(make_image("doom", seed, (240, 200)), words, "rip and tear")


def jpeg(img: Any, quality: int = 90) -> bytes:
    return encode(img.convert("RGB"), "JPEG", quality=quality)


async def replies(server: TelegramStandIn, message_id: int, count: int = 1) -> list[Any]:
    """The bot's replies to a message once it has answered (label reply, maybe repost note)."""
    found = await server.wait_for(lambda: len(server.replies_to(message_id)) >= count or None)
    assert found
    return server.replies_to(message_id)


def repost_notes(server: TelegramStandIn, message_id: int) -> list[Any]:
    return [r for r in server.replies_to(message_id) if r.text.startswith("Repost")]


async def settle(server: TelegramStandIn, bot: CoreRuntime, message_id: int) -> None:
    """Wait until the bot has answered a meme: its label reply comes last."""
    await server.wait_for(
        lambda: [r for r in server.replies_to(message_id) if not r.text.startswith("Repost")]
        or None
    )


async def command(server: TelegramStandIn, sender: dict[str, Any], text: str) -> str:
    message = server.post_text(CHAT, sender, text)
    return (await server.reply_to(message)).text


async def test_reposts_and_edited_copies_are_flagged_other_memes_are_not(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    original = meme(1)
    first = server.post_photo(CHAT, ALICE, jpeg(original))
    await settle(server, bot, first)
    assert repost_notes(server, first) == []
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    copies = {
        "same file": jpeg(original),
        "half size": jpeg(resized(original, 0.5)),
        "JPEG 40": jpeg(reencoded(original, "JPEG", 40), 40),
        "WebP": encode(original, "WEBP", quality=70),
        "caption bar": jpeg(with_caption_bar(original, "me after the patch")),
        "mirrored": jpeg(ImageOps.mirror(original)),
        "cropped 10%": jpeg(cropped(original, 0.10, seed=3)),
    }
    for name, data in copies.items():
        message = server.post_photo(CHAT, CAROL, data)
        await settle(server, bot, message)
        notes = repost_notes(server, message)
        assert len(notes) == 1, name
        assert notes[0].text == (
            f"Repost: first posted by @alice on {today}\nhttps://t.me/c/1/{first}"
        ), name
        assert [b["text"] for b in notes[0].buttons] == ["Not a repost", "Exempt this image"]
    # Another meme of the same picture (other words), and a different picture: no copies.
    for name, img in {
        "same template": with_meme_text(make_image("doom", 1, (240, 200)),
                                        "nobody expects", "the doom slayer"),
        "other picture": meme(2),
    }.items():
        message = server.post_photo(CHAT, CAROL, jpeg(img))
        await settle(server, bot, message)
        assert repost_notes(server, message) == [], name


async def test_not_a_repost_and_exempt_are_remembered(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    original = meme(4)
    first = server.post_photo(CHAT, ALICE, jpeg(original))
    await settle(server, bot, first)
    second = server.post_photo(CHAT, CAROL, jpeg(resized(original, 0.8)))
    await settle(server, bot, second)
    [note] = repost_notes(server, second)

    refused = server.press(CAROL, note, note.buttons[0]["callback_data"])
    [answer] = await server.wait_for(
        lambda: [a for a in server.answers if a.callback_query_id == refused])
    assert answer.show_alert and "admins" in (answer.text or "")
    server.press(BOB, note, note.buttons[0]["callback_data"])
    await server.wait_for(lambda: note.edits or None)
    assert note.text == "Not a repost (marked by @bob)." and not note.buttons
    post = await stored_post(bot, second)
    [mark] = await bot.storage.repost_marks([post.id])
    assert (mark.kind.value, mark.admin_id) == ("not_repost", f"telegram:{BOB['id']}")

    # A copy of the second post now copies the second post, not the first one.
    third = server.post_photo(CHAT, ALICE, jpeg(resized(original, 0.8), 70))
    await settle(server, bot, third)
    [again] = repost_notes(server, third)
    assert again.text.startswith("Repost: first posted by @carol") and f"/{second}" in again.text

    # Exempting the image: later copies of it are not flagged at all.
    server.press(BOB, again, again.buttons[1]["callback_data"])
    await server.wait_for(lambda: again.edits or None)
    assert again.text.startswith("Copies of this image are not flagged any more")
    fourth = server.post_photo(CHAT, CAROL, jpeg(resized(original, 0.8), 60))
    await settle(server, bot, fourth)
    assert repost_notes(server, fourth) == []


async def test_delete_mode_removes_reposts_only_where_the_bot_may(
    server: TelegramStandIn, bot: CoreRuntime
) -> None:
    assert (await command(server, ALICE, "/reposts delete")).startswith("Only admins")
    assert (await command(server, BOB, "/reposts delete")).startswith("Reposts: delete.")
    original = meme(5)
    first = server.post_photo(CHAT, ALICE, jpeg(original))
    await settle(server, bot, first)
    # Without the right to delete: the repost is noted, not removed.
    second = server.post_photo(CHAT, CAROL, jpeg(original, 80))
    await settle(server, bot, second)
    assert len(repost_notes(server, second)) == 1 and server.deleted == []
    server.can_delete.add(CHAT["id"])
    third = server.post_photo(CHAT, CAROL, jpeg(original, 70))
    removed = await server.wait_for(
        lambda: [s for s in server.sent if s.text.startswith("Removed a repost by @carol")])
    assert server.deleted == [(CHAT["id"], third)] and removed[0].reply_to is None
    assert server.replies_to(third) == []  # no label reply to a removed meme
    assert (await command(server, BOB, "/reposts off")) == "Reposts: off."
    fourth = server.post_photo(CHAT, CAROL, jpeg(original, 60))
    await settle(server, bot, fourth)
    assert repost_notes(server, fourth) == [] and len(server.deleted) == 1


async def test_sorted_copies_are_sent_once_across_restarts_and_corrections(
    server: TelegramStandIn, tmp_path: Path, tiny_model: Path
) -> None:
    settings = make_settings(server, tmp_path, tiny_model)
    topics = {"doom": "7", "animal_crossing": "8", "other": "-100999:9"}
    async with running_bot(server, settings) as runtime:
        for label, place in topics.items():
            assert f"→ {place}" in await command(server, BOB, f"/sort {label} {place}")
        # Every label counts as confident in this chat: each meme is copied when posted.
        await runtime.storage.update_chat_settings("telegram", CHAT["id"],
                                                   confidence_threshold=0.0)
        message = server.post_photo(CHAT, ALICE, jpeg(meme(6)))
        await settle(server, runtime, message)
        post = await stored_post(runtime, message)
        label = (await runtime.storage.predictions_for(post.id))[0].label
        [copy] = server.copies
        assert copy["source_message_id"] == message and copy["from_chat_id"] == CHAT["id"]
        place_chat, _, topic = (f"{CHAT['id']}:{topics[label]}" if ":" not in topics[label]
                                else topics[label]).partition(":")
        assert (copy["chat_id"], copy["message_thread_id"]) == (int(place_chat), int(topic))
        assert copy["caption"].endswith(f"meme from @alice: https://t.me/c/1/{message}")
        label_reply = (await replies(server, message))[0]

    async with running_bot(server, settings) as runtime:  # a restart
        server.redeliver(message)
        await server.wait_for(lambda: len(server.calls) > 0)
        same = server.press(BOB, label_reply, next(
            b["callback_data"] for b in label_reply.buttons if b["callback_data"].endswith(label)))
        await server.wait_for(lambda: [a for a in server.answers if a.callback_query_id == same])
        assert len(server.copies) == 1  # confirming the label copies nothing again
        new = next(lb for lb in topics if lb != label)
        moved = server.press(BOB, label_reply, next(
            b["callback_data"] for b in label_reply.buttons if b["callback_data"].endswith(new)))
        [answer] = await server.wait_for(
            lambda: [a for a in server.answers if a.callback_query_id == moved])
        assert f"Moved its copy from {topics[label]} to {topics[new]}." in (answer.text or "")
        assert len(server.copies) == 2
        assert server.deleted == [(copy["chat_id"], copy["message_id"])]
        forward = await runtime.storage.forward_for(post.id)
        assert forward is not None and (forward.label, forward.place) == (new, topics[new])
        assert "Memes are copied to" in await command(server, BOB, "/sort")
        assert await command(server, BOB, "/sort off") == (
            "Sorting is off. Use /sort LABEL PLACE to copy a label's memes to a place.")
