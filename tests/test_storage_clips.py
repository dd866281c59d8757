"""Clips in storage (SQLite and PostgreSQL): the clip's blob and its poster frame, the post's
media kind, duration and frames used, read back by every view; a clip's frames fingerprinted
for repost lookups."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path

import pytest
from PIL import Image

from storage import BlobError, InvalidInputError
from storage.api import Storage
from storage.intake import ClipMedia, LabelledFingerprint, NewPost, PostKey, PredictionValues
from storage.records import Fingerprint
from tests.support.clipgen import clip, tgs_sticker
from tests.support.storage import make_image

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock


def poster_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 30, 30)).save(buf, "JPEG")
    return buf.getvalue()


def media(kind: str = "animation", container: str = "mp4") -> ClipMedia:
    return ClipMedia(kind, container, 96, 96, 1.0, 4, poster_jpeg())


async def store(storage: Storage, data: bytes, clip_media: ClipMedia | None, message: str = "1",
                fingerprint: LabelledFingerprint | None = None):  # type: ignore[no-untyped-def]
    return await storage.record_labelled_post(
        NewPost(PostKey("telegram", "-1", message), "7", data, media=clip_media),
        PredictionValues("v1", "doom", 0.9, {"doom": 0.9}),
        fingerprint,
    )


async def test_a_clip_is_stored_with_its_poster_kind_duration_and_frames(storage: Storage
                                                                         ) -> None:
    data = clip("doom", "mp4")
    result = await store(storage, data, media())
    post = result.post
    assert post.media_kind == "animation" and post.duration_s == 1.0 and post.frames_used == 4
    assert post.image.format == "MP4" and post.image.extension == "mp4"
    assert post.image.path.read_bytes() == data
    assert post.poster is not None and post.poster.format == "JPEG"
    assert post.poster.path.read_bytes() == poster_jpeg()
    assert post.picture == post.poster
    again = await storage.get_post(post.id)
    assert dataclasses.replace(again, created=True) == post  # read back, poster included
    found = await storage.find_post("telegram", "-1", "1")
    assert found is not None and found.poster == post.poster
    stats = await storage.stats()
    assert stats.memes_seen == 1 and stats.unique_images == 1  # the poster is no meme
    review = await storage.recent_predictions()
    assert review[0].post.poster == post.poster and review[0].post.media_kind == "animation"


async def test_a_still_has_no_poster(storage: Storage) -> None:
    post = (await store(storage, make_image(3), None)).post
    assert post.media_kind == "still" and post.poster is None and post.duration_s is None
    assert post.picture == post.image


@pytest.mark.parametrize("data, clip_media, reason", [
    (b"", media(), "empty"),
    (clip("doom", "webm"), media(container="mp4"), "not a MP4"),
    (clip("doom", "mp4"), media(container="avi"), "unsupported clip format"),
    (clip("doom", "mp4"), ClipMedia("animation", "mp4", 96, 96, 1.0, 4, b"not a jpeg"),
     "not a complete image"),
])
async def test_bad_clips_store_nothing(storage: Storage, data: bytes, clip_media: ClipMedia,
                                       reason: str) -> None:
    with pytest.raises(BlobError, match=reason):
        await store(storage, data, clip_media)
    assert (await storage.stats()).memes_seen == 0


async def test_clip_facts_are_checked(storage: Storage) -> None:
    for bad in (ClipMedia("still", "mp4", 9, 9, 1.0, 4, poster_jpeg()),
                ClipMedia("video", "mp4", 9, 9, -1.0, 4, poster_jpeg()),
                ClipMedia("video", "mp4", 9, 9, 1.0, 0, poster_jpeg())):
        with pytest.raises(InvalidInputError):
            await store(storage, clip("doom", "mp4"), bad)


async def test_a_sticker_and_an_animated_gif_keep_their_format(storage: Storage) -> None:
    sticker = (await store(storage, tgs_sticker(), media("sticker", "tgs"), "1")).post
    gif = (await store(storage, clip("doom", "gif"), media("animation", "gif"), "2")).post
    assert (sticker.image.extension, sticker.media_kind) == ("tgs", "sticker")
    assert (gif.image.extension, gif.image.format) == ("gif", "GIF")


async def test_a_clips_frames_are_all_looked_up(storage: Storage) -> None:
    main = Fingerprint(phash=0x0F0F_0F0F_0F0F_0F0F, dhash=1)
    other = Fingerprint(phash=0xFFFF_0000_FFFF_0000, dhash=2)
    post = (await store(storage, clip("doom", "mp4"), media(), "1",
                        LabelledFingerprint(main, "Alice", (other,)))).post
    for wanted in (main.phash, other.phash):
        found = await storage.hash_candidates("telegram", "-1", [wanted])
        assert [fp.post_id for fp in found] == [post.id]
        assert found[0].phash == wanted  # the frame that matched, not any frame of the post


def test_the_media_migration_goes_down_and_up_again(tmp_path: Path) -> None:
    """0006_media on a database holding a clip: down to 0003 (extra frames' fingerprints go,
    the rest stays) and up again."""
    from alembic import command

    from storage.migrate import alembic_config

    url = f"sqlite+aiosqlite:///{tmp_path / 'down.db'}"

    async def fill() -> None:
        storage = await Storage.open(url, tmp_path / "blobs")
        try:
            await store(storage, clip("doom", "mp4"), media(), "1", LabelledFingerprint(
                Fingerprint(phash=1, dhash=1), "Alice", (Fingerprint(phash=2, dhash=2),)))
        finally:
            await storage.close()

    asyncio.run(fill())
    command.downgrade(alembic_config(url), "0003_reposts")
    command.upgrade(alembic_config(url), "head")

    async def read() -> tuple[str, int]:
        storage = await Storage.open(url, tmp_path / "blobs")
        try:
            post = await storage.get_post(1)
            return post.media_kind, len(await storage.hash_candidates("telegram", "-1", [1, 2]))
        finally:
            await storage.close()

    assert asyncio.run(read()) == ("still", 1)
