"""Repost fingerprints (hash-quarter lookup per chat), repost marks, forwarded copies and the
repost/sorting chat settings, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bot.core.commands import spec
from bot.core.messages import Actor, ChatRef, Command
from bot.core.model_holder import ModelHolder
from bot.core.moderation import Moderation, ModerationPolicy
from bot.core.outcomes import SortPlaces
from storage import InvalidInputError
from storage.api import Storage
from storage.records import Fingerprint, RepostMarkKind
from tests.support.fakes import FakeClassifier
from tests.support.storage import make_image

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock

HIGH = 0xF0F0_1234_ABCD_8001  # above 2**63: stored as a negative BIGINT


async def _post(storage: Storage, seed: int, chat: int = -100123):
    return await storage.add_post(
        platform="telegram", chat_id=chat, message_id=seed, author_id=7, image=make_image(seed)
    )


async def test_near_hashes_are_found_in_the_same_chat_only(storage: Storage) -> None:
    first = await _post(storage, 1)
    other_chat = await _post(storage, 2, chat=-100999)
    unrelated = await _post(storage, 3)
    await storage.add_fingerprint(first.id, Fingerprint(HIGH, 5, b"\x00\x01", "s"),
                                  author_name="Al")
    await storage.add_fingerprint(other_chat.id, Fingerprint(HIGH, 5), author_name="Bo")
    await storage.add_fingerprint(unrelated.id, Fingerprint(~HIGH & (2**64 - 1), 6),
                                  author_name="Cy")
    await storage.add_fingerprint(first.id, Fingerprint(1, 1), author_name="again")  # no-op
    # Three bits differ, all in the lowest quarter: the other three quarters still match.
    found = await storage.hash_candidates("telegram", -100123, [HIGH ^ 0b111, 5])
    assert [(f.post_id, f.phash, f.author_name, f.message_id) for f in found] == [
        (first.id, HIGH, "Al", "1")
    ]
    assert await storage.hash_candidates("telegram", -100123, HIGH, before_post=first.id) == []
    later = first.posted_at + timedelta(days=1)
    assert await storage.hash_candidates("telegram", -100123, HIGH, since=later) == []
    assert await storage.embeddings_after("telegram", -100123, "s", 0) == [(first.id, b"\x00\x01")]
    assert await storage.embeddings_after("telegram", -100123, "s", first.id) == []


async def test_repost_marks_are_kept_like_corrections(storage: Storage) -> None:
    original, copy = await _post(storage, 1), await _post(storage, 2)
    mark = await storage.add_repost_mark(
        copy.id, "not_repost", admin_id="telegram:5", original_post_id=original.id
    )
    await storage.add_repost_mark(original.id, RepostMarkKind.exempt, admin_id="telegram:5")
    marks = await storage.repost_marks([copy.id, original.id])
    assert [(m.post_id, m.kind, m.original_post_id) for m in marks] == [
        (copy.id, RepostMarkKind.not_repost, original.id),
        (original.id, RepostMarkKind.exempt, None),
    ]
    assert mark.admin_id == "telegram:5"
    with pytest.raises(InvalidInputError):
        await storage.add_repost_mark(copy.id, "maybe", admin_id=5)


async def test_a_post_is_claimed_for_forwarding_once(open_storage) -> None:
    first = await open_storage()
    second = await open_storage()  # another bot process on the same database
    post = await _post(first, 1)
    claim = await first.claim_forward(post.id, "doom", "topic:5")
    assert claim is not None and claim.copy_id is None
    assert await second.claim_forward(post.id, "doom", "topic:5") is None
    await first.confirm_forward(post.id, 77)
    moved = await second.move_forward(post.id, "other", "topic:6", expected="topic:5")
    assert moved is not None and (moved.place, moved.copy_id) == ("topic:6", None)
    assert await first.move_forward(post.id, "doom", "topic:7", expected="topic:5") is None
    assert [f.post_id for f in await first.forwards_in("telegram", -100123, "topic:6")] == [post.id]
    await first.release_forward(post.id)
    assert await first.forward_for(post.id) is None


async def test_repost_and_sorting_settings(storage: Storage) -> None:
    default = await storage.chat_settings("telegram", 1)
    assert (default.repost_mode, default.repost_window_days, default.sort_places) == (
        None, None, {}
    )
    changed = await storage.update_chat_settings(
        "telegram", 1, repost_mode="delete", repost_window_days=30,
        sort_places={"doom": "12", "genshin": "-100777:3"},
    )
    assert changed.sort_places == {"doom": "12", "genshin": "-100777:3"}
    again = await storage.update_chat_settings("telegram", 1, reply_mode="silent")
    assert (again.repost_mode, again.repost_window_days) == ("delete", 30)
    assert again.sort_places == {"doom": "12", "genshin": "-100777:3"}
    for bad in ({"repost_mode": "shout"}, {"repost_window_days": 0},
                {"sort_places": {"Doom!": "x"}}, {"sort_places": {"doom": ""}}):
        with pytest.raises(InvalidInputError):
            await storage.update_chat_settings("telegram", 1, **bad)


async def test_concurrent_sort_commands_keep_every_place(open_storage, tmp_path: Path) -> None:
    # Three bot processes on one database, each handling one admin's /sort at the same time.
    sorts = [Moderation(await open_storage(), ModelHolder(FakeClassifier(tmp_path / "model")),
                        ModerationPolicy()) for _ in range(3)]
    chat, admin = ChatRef("telegram", "-1007"), Actor("telegram", "1", "Root")
    places = {"doom": "11", "animal_crossing": "22", "other": "33"}
    results = await asyncio.gather(*(
        moderation.sort_command(Command(chat, admin, "sort", (label, place)), spec("sort"))
        for moderation, (label, place) in zip(sorts, places.items(), strict=True)))
    assert all(result.ok for result in results)
    assert (await sorts[0].storage.chat_settings("telegram", "-1007")).sort_places == places
    off = await sorts[1].sort_command(Command(chat, admin, "sort", ("doom", "off")),
                                      spec("sort"))
    assert off.data == SortPlaces({"animal_crossing": "22", "other": "33"})
