"""storage.lifecycle on both backends (issue 23): forgetting a person, purging a chat,
retention, posts deleted on their platform, the chats the bot left, catch-up cursors, and
per-chat stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.api import Storage
from storage.lifecycle import FORGOTTEN
from storage.records import Fingerprint, RepostMarkKind
from tests.support.storage import make_image

pytest_plugins = ["tests.support.storage"]


def blob_count(storage: Storage) -> int:
    return sum(1 for p in storage.blob_root.rglob("*.png"))


async def seed(storage: Storage) -> dict[str, int]:
    ids = {}
    for name, chat, author, seed_ in (("a1", 1, 7, 1), ("a2", 2, 7, 2), ("b1", 1, 8, 2),
                                      ("b2", 2, 8, 3)):
        post = await storage.add_post(platform="telegram", chat_id=chat, message_id=name,
                                      author_id=author, image=make_image(seed_),
                                      caption=f"caption {name}")
        await storage.add_fingerprint(post.id, Fingerprint(phash=seed_, dhash=seed_),
                                      author_name=f"user{author}")
        await storage.record_prediction(post.id, model_version="v1", label="doom",
                                        confidence=0.7, probabilities={"doom": 0.7},
                                        latency_ms=1.0)
        ids[name] = post.id
    return ids


async def test_forget_purge_and_stats(storage: Storage) -> None:
    ids = await seed(storage)
    await storage.record_correction(ids["b1"], admin_id="telegram:7", label="other")
    await storage.add_repost_mark(ids["b2"], RepostMarkKind.exempt, admin_id="telegram:7")
    assert (await storage.stats(("telegram", "1"))).memes_seen == 2
    assert (await storage.stats()).memes_seen == 4 and blob_count(storage) == 3

    removed = await storage.forget_user("telegram", 7)
    # anonymized: the correction, the repost mark and the correction's audit-log row
    assert (removed.posts, removed.images, removed.anonymized) == (2, 1, 3)
    assert await storage.count_posts_by("telegram", 7) == 0
    assert blob_count(storage) == 2  # image 2 is still b1's
    [decision] = await storage.corrections_for(ids["b1"])
    assert decision.admin_id == FORGOTTEN
    [mark] = await storage.repost_marks([ids["b2"]])
    assert mark.admin_id == FORGOTTEN
    assert all(fp.author_name == "user8" for fp in await storage.fingerprints(ids.values()))

    removed = await storage.purge_chat("telegram", 1)
    assert (removed.posts, removed.images) == (1, 1)
    assert (await storage.stats(("telegram", "1"))).memes_seen == 0
    assert (await storage.stats()).memes_seen == 1 and blob_count(storage) == 1


async def test_deleted_posts_leave_the_originals_and_their_images_go_when_unshown(
    storage: Storage
) -> None:
    ids = await seed(storage)
    removed = await storage.mark_deleted("telegram", 1, "a1")  # image 1: only a1 showed it
    assert removed.posts == 1 and removed.images == 1
    removed = await storage.mark_deleted("telegram", 1, "b1")  # image 2: a2 still shows it
    assert removed.posts == 0 and removed.images == 0
    post = await storage.get_post(ids["b1"])
    assert post.deleted_at is not None and post.caption is None
    assert await storage.fingerprints([ids["b1"]]) == []  # never an original again
    assert (await storage.mark_deleted("telegram", 1, "unknown")).posts == 0
    removed = await storage.mark_deleted("telegram", 2, "a2")  # the last live post of image 2
    assert removed.posts == 2 and removed.images == 1  # it goes, with b1 (deleted) that showed it
    assert blob_count(storage) == 1  # image 3 (b2) only


async def test_left_chats_retention_and_cursors(storage: Storage) -> None:
    ids = await seed(storage)
    await storage.set_chat_left("telegram", 1, True)
    await storage.set_chat_left("telegram", 2, False)  # never left: nothing recorded
    later = datetime.now(UTC) + timedelta(days=1)
    assert await storage.chats_left_before(later) == [("telegram", "1")]
    await storage.set_chat_left("telegram", 1, False)
    assert await storage.chats_left_before(later) == []

    await storage.record_correction(ids["a2"], admin_id="telegram:1", label="other")
    removed = await storage.remove_unlabelled_before(later)
    assert removed.posts == 3  # a2 is labelled: kept
    assert (await storage.stats()).memes_seen == 1

    assert await storage.channel_cursor("discord", 5) is None
    await storage.advance_channel_cursor("discord", 5, 100)
    await storage.advance_channel_cursor("discord", 5, 90)  # older: ignored
    await storage.advance_channel_cursor("discord", 6, 7)
    assert await storage.channel_cursors("discord") == {"5": "100", "6": "7"}
