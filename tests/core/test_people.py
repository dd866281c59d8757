"""People's data (issue 23): /forgetme leaves no trace of the person in posts, captions, names
or images (their decisions as an admin stay, nameless); an operator's purge of a chat and the
automatic one after the bot left; retention; /stats per chat; /privacy."""

from __future__ import annotations

import itertools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.lifecycle import LifecyclePolicy, lifecycle_pass
from bot.core.messages import Actor, ChatRef, Command, ImagePost
from bot.core.outcomes import CommandStatus, PostStatus
from bot.core.runtime import CoreRuntime
from bot.core.service import button_payload
from storage.lifecycle import FORGOTTEN
from tests.support.fakes import colour_image, png

CHAT = ChatRef("telegram", "-100500")
OTHER = ChatRef("telegram", "-100501")
ROOT = Actor("telegram", "1", "Root")  # a super-admin: the operator (fast_settings)
ALICE = Actor("telegram", "7", "Alice Liddell")
BOB = Actor("telegram", "8", "Bob")
_ids = itertools.count(1)


def image(seed: int) -> bytes:
    return png(colour_image((200, 20 + seed * 9, 20), stripe=seed))


async def post(core: CoreRuntime, who: Actor, data: bytes, chat: ChatRef = CHAT,
               caption: str | None = None) -> int:
    outcome = await core.service.handle_upload(
        ImagePost(chat, f"m{next(_ids)}", who, posted_at=datetime.now(UTC), caption=caption),
        data)
    assert outcome.status is PostStatus.labelled and outcome.post_id is not None
    return outcome.post_id


async def run(core: CoreRuntime, who: Actor, name: str, *args: str, chat: ChatRef = CHAT
              ) -> tuple[CommandStatus, str]:
    result = await core.service.handle_command(Command(chat, who, name, args), None)
    assert result is not None
    return result.status, result.reply.text


def database_text(core: CoreRuntime) -> str:
    """Every row of every table, as text (what a search for a person would find)."""
    con = sqlite3.connect(core.settings.data_dir / "memebot.db")
    try:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(row) for table in tables
                         for row in con.execute(f'SELECT * FROM "{table}"'))
    finally:
        con.close()


def blob_names(core: CoreRuntime) -> set[str]:
    return {p.name.split(".")[0] for p in (core.settings.data_dir / "blobs").rglob("*.*")}


async def test_forgetme_leaves_no_trace_of_the_person(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id,
                                            admin_ids=[ALICE.user_id])
    only_alice = await post(core, ALICE, image(1), caption="my cat, Dinah")
    shared = image(2)
    await post(core, ALICE, shared, chat=OTHER, caption="rip and tear")
    bobs = await post(core, BOB, shared)  # the same picture, Bob's post
    await post(core, BOB, image(3), caption="bob's own")
    alice_sha = (await core.storage.get_post(only_alice)).image.sha256
    shared_sha = (await core.storage.get_post(bobs)).image.sha256
    # Alice, a chat admin, corrects Bob's meme and asks for a retrain.
    fixed = await core.service.handle_button(CHAT, ALICE, button_payload(bobs, "other"), None)
    assert fixed.changed
    await core.storage.enqueue_retrain(ALICE.qualified_id)
    assert alice_sha in blob_names(core) and "Alice Liddell" in database_text(core)

    status, text = await run(core, ALICE, "forgetme")
    assert status is CommandStatus.done
    assert "deleted 2 memes" in text and "1 images only you posted" in text
    assert "cannot unlearn" in text and "without your name" in text

    dump = database_text(core)
    for trace in ("Alice Liddell", "Dinah", "rip and tear", ALICE.qualified_id):
        assert trace not in dump, trace
    assert await core.storage.count_posts_by("telegram", ALICE.user_id) == 0
    settings = await core.storage.chat_settings(CHAT.platform, CHAT.chat_id)
    assert ALICE.user_id not in settings.admin_ids
    names = blob_names(core)
    assert alice_sha not in names and shared_sha in names  # Bob still shows the shared one
    [decision] = await core.storage.corrections_for(bobs)  # her decision stays, nameless
    assert decision.new_label == "other" and decision.admin_id == FORGOTTEN
    assert "bob's own" in dump


async def test_operators_purge_a_chat_and_chat_admins_may_not(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id,
                                            admin_ids=[BOB.user_id])
    gone = await post(core, BOB, image(4), caption="purge me")
    kept = await post(core, BOB, image(5), chat=OTHER)
    gone_sha = (await core.storage.get_post(gone)).image.sha256
    status, text = await run(core, BOB, "purgechat", "confirm")
    assert status is CommandStatus.refused and "operators" in text
    status, text = await run(core, ROOT, "purgechat")
    assert status is CommandStatus.usage and "confirm" in text
    status, text = await run(core, ROOT, "purgechat", "confirm")
    assert status is CommandStatus.done and text.startswith(f"Purged chat {CHAT.chat_id}: 1 memes")
    assert await core.storage.find_post(CHAT.platform, CHAT.chat_id, "m1") is None
    assert "purge me" not in database_text(core) and gone_sha not in blob_names(core)
    assert (await core.storage.chat_settings(CHAT.platform, CHAT.chat_id)).admin_ids == ()
    assert (await core.storage.get_post(kept)).chat_id == OTHER.chat_id
    status, _ = await run(core, ROOT, "purgechat", OTHER.chat_id, "confirm")
    assert status is CommandStatus.done
    assert (await core.storage.stats()).memes_seen == 0


async def test_a_chat_left_long_enough_ago_is_purged_unless_the_bot_is_back(
    core: CoreRuntime
) -> None:
    await post(core, BOB, image(6))
    await post(core, BOB, image(7), chat=OTHER)
    await core.storage.set_chat_left(CHAT.platform, CHAT.chat_id, True)
    await core.storage.set_chat_left(OTHER.platform, OTHER.chat_id, True)
    await core.storage.set_chat_left(OTHER.platform, OTHER.chat_id, False)  # back again
    policy = LifecyclePolicy(retention_days=None, purge_after_leave_days=30)
    assert await lifecycle_pass(core.storage, policy) == (0, 0)  # not 30 days yet
    later = datetime.now(UTC) + timedelta(days=31)
    assert await lifecycle_pass(core.storage, policy, now=later) == (1, 0)
    assert (await core.storage.stats((CHAT.platform, CHAT.chat_id))).memes_seen == 0
    assert (await core.storage.stats((OTHER.platform, OTHER.chat_id))).memes_seen == 1
    assert await core.storage.chats_left_before(later) == []


async def test_retention_deletes_old_unlabelled_posts_and_keeps_labelled_ones(
    core: CoreRuntime
) -> None:
    plain = await post(core, BOB, image(8), caption="old news")
    labelled = await post(core, BOB, image(9))
    await core.service.handle_button(CHAT, ROOT, button_payload(labelled, "other"), None)
    plain_sha = (await core.storage.get_post(plain)).image.sha256
    policy = LifecyclePolicy(retention_days=7, purge_after_leave_days=None)
    assert await lifecycle_pass(core.storage, policy) == (0, 0)
    later = datetime.now(UTC) + timedelta(days=8)
    assert await lifecycle_pass(core.storage, policy, now=later) == (0, 1)
    assert "old news" not in database_text(core) and plain_sha not in blob_names(core)
    assert (await core.storage.get_post(labelled)).id == labelled


async def test_stats_are_per_chat_for_everyone_but_operators(core: CoreRuntime) -> None:
    await post(core, BOB, image(10))
    await post(core, BOB, image(11), chat=OTHER)
    await post(core, BOB, image(12), chat=OTHER)
    _, here = await run(core, BOB, "stats")
    _, there = await run(core, BOB, "stats", chat=OTHER)
    _, everywhere = await run(core, ROOT, "stats")
    assert here.startswith("Memes seen: 1 (1 unique images)")
    assert there.startswith("Memes seen: 2 (2 unique images)")
    assert everywhere.startswith("Memes seen: 3 (3 unique images)")


async def test_privacy_says_what_is_kept_and_for_how_long(tmp_path: Path) -> None:
    from bot.core.runtime import open_runtime
    from tests.support.fakes import FakeClassifier, fast_settings

    settings = fast_settings(tmp_path, retention_days=90, purge_after_leave_days=14)
    async with open_runtime(settings, file_origins=(), loader=FakeClassifier) as core:
        status, text = await run(core, BOB, "privacy")
    assert status is CommandStatus.done
    assert "after 90 days" in text and "14 days after I leave" in text
    assert "/forgetme" in text and "cannot unlearn" in text
