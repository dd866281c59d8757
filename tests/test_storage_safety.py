"""Bad input raises a clear StorageError and changes nothing; a crash between blob and row
leaves only an orphan blob, which gc removes; concurrent writers all succeed."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from storage import (
    BlobError,
    InvalidInputError,
    NotFoundError,
    StorageError,
    UnknownLabelError,
)
from storage.api import Storage
from tests.support.storage import make_image, make_noisy_jpeg

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock


def _blob_files(storage: Storage) -> list[Path]:
    return sorted(p for p in storage.blob_root.rglob("*") if p.is_file())


async def _snapshot(storage: Storage) -> tuple[dict[str, int], list[Path], object]:
    return await storage.table_counts(), _blob_files(storage), await storage.training_set()


async def _seed(storage: Storage):
    post = await storage.add_post(
        platform="telegram", chat_id=1, message_id=1, author_id=1, image=make_image(1)
    )
    prediction = await storage.record_prediction(
        post.id, model_version="v1", label="doom", confidence=0.8,
        probabilities={"doom": 0.8, "other": 0.2}, latency_ms=1.0,
    )
    await storage.record_correction(post.id, admin_id=1, label="other", approved=True)
    return post, prediction


def _truncated_png() -> bytes:
    data = make_image(2, size=(64, 64))
    return data[: len(data) // 2]


BAD_POSTS = {
    "long chat id": ({"chat_id": "9" * 65}, InvalidInputError),
    "long message id": ({"message_id": "m" * 65}, InvalidInputError),
    "long author id": ({"author_id": 10**70}, InvalidInputError),
    "empty chat id": ({"chat_id": ""}, InvalidInputError),
    "bad platform": ({"platform": "Tele Gram"}, InvalidInputError),
    "negative attachment": ({"attachment_index": -1}, InvalidInputError),
    "naive time": ({"posted_at": __import__("datetime").datetime(2025, 1, 1)}, InvalidInputError),
    "truncated png": ({"image": _truncated_png()}, BlobError),
    "truncated jpeg": ({"image": make_noisy_jpeg()[:1500]}, BlobError),
    "not an image": ({"image": b"<html>hello</html>"}, BlobError),
    "empty bytes": ({"image": b""}, BlobError),
}


@pytest.mark.parametrize("case", list(BAD_POSTS))
async def test_bad_post_raises_and_changes_nothing(storage: Storage, case: str) -> None:
    await _seed(storage)
    before = await _snapshot(storage)
    overrides, error = BAD_POSTS[case]
    kwargs = {"platform": "telegram", "chat_id": 5, "message_id": 5, "author_id": 5,
              "image": make_image(5), **overrides}
    with pytest.raises(error) as info:
        await storage.add_post(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, StorageError) and str(info.value)
    assert await _snapshot(storage) == before


async def test_bad_predictions_and_corrections_change_nothing(storage: Storage) -> None:
    post, prediction = await _seed(storage)
    before = await _snapshot(storage)
    good = {"model_version": "v1", "label": "doom", "confidence": 0.5,
            "probabilities": {"doom": 0.5}, "latency_ms": 1.0}
    cases = [
        (storage.record_prediction(post.id, **{**good, "label": "genshin"}), UnknownLabelError),
        (storage.record_prediction(999_999, **good), NotFoundError),
        (storage.record_prediction(post.id, **{**good, "confidence": 1.5}), InvalidInputError),
        (storage.record_prediction(post.id, **{**good, "confidence": float("nan")}),
         InvalidInputError),
        (storage.record_prediction(post.id, **{**good, "model_version": "v" * 65}),
         InvalidInputError),
        (storage.record_correction(999_999, admin_id=1, label="doom"), NotFoundError),
        (storage.record_correction(post.id, admin_id=1, label="genshin"), UnknownLabelError),
        (storage.record_correction(post.id, admin_id=1, label="DOOM"), InvalidInputError),
        (storage.record_correction(post.id, admin_id="a" * 65, label="doom"), InvalidInputError),
        (storage.record_correction(True, admin_id=1, label="doom"), InvalidInputError),
        (storage.confirm_prediction(999_999, admin_id=1), NotFoundError),
        (storage.confirm_prediction(prediction.id, admin_id="x" * 65), InvalidInputError),
    ]
    for call, error in cases:
        with pytest.raises(error):
            await call
    assert await _snapshot(storage) == before


async def test_crash_between_blob_and_row_leaves_only_an_orphan(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _seed(storage)
    real_put = storage._blobs.put

    def put_then_crash(data: bytes, info):  # the process dies right after the blob is durable
        real_put(data, info)
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(storage._blobs, "put", put_then_crash)
    counts = await storage.table_counts()
    with pytest.raises(KeyboardInterrupt):
        await storage.add_post(
            platform="telegram", chat_id=2, message_id=2, author_id=2, image=make_image(2)
        )
    monkeypatch.undo()
    assert await storage.table_counts() == counts
    assert len(_blob_files(storage)) == 2  # the seed's blob and the orphan

    # Every row still has its blob; the orphan survives a gc within the grace period...
    for example in (await storage.training_set()).examples:
        assert example.path.is_file()
    kept = await storage.gc_orphan_blobs()
    assert kept.removed_blobs == 0 and len(_blob_files(storage)) == 2
    # ...and goes once it is old enough.
    report = await storage.gc_orphan_blobs(min_age=timedelta(0))
    assert (report.removed_blobs, report.kept_blobs) == (1, 1) and report.freed_bytes > 0
    assert [p.name.split(".")[0] for p in _blob_files(storage)] == [
        e.sha256 for e in (await storage.training_set()).examples
    ]


async def test_failed_row_write_rolls_back_whole_post(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception after the image row is inserted rolls back the image row too."""
    import storage.posts as posts_module

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(posts_module.convert, "post", broken)
    counts = await storage.table_counts()
    with pytest.raises(RuntimeError):
        await storage.add_post(
            platform="telegram", chat_id=3, message_id=3, author_id=3, image=make_image(3)
        )
    assert await storage.table_counts() == counts


async def test_gc_removes_stale_temp_files(storage: Storage) -> None:
    post, _ = await _seed(storage)
    leftover = post.image.path.parent / ".tmp-crashed"
    leftover.write_bytes(b"partial")
    report = await storage.gc_orphan_blobs(min_age=timedelta(0))
    assert report.removed_temp_files == 1 and not leftover.exists()
    assert post.image.path.is_file()


N_WRITERS = 100


async def _write_meme(storage: Storage, i: int) -> int:
    post = await storage.add_post(
        platform="discord", chat_id=1, message_id=i, author_id=i, image=make_image(1000 + i)
    )
    await storage.record_prediction(
        post.id, model_version="v1", label="doom", confidence=0.5,
        probabilities={"doom": 0.5}, latency_ms=1.0,
    )
    return post.id


async def test_100_concurrent_writers_all_succeed(storage: Storage) -> None:
    ids = await asyncio.gather(*[_write_meme(storage, i) for i in range(N_WRITERS)])
    assert len(set(ids)) == N_WRITERS
    counts = await storage.table_counts()
    assert (counts["posts"], counts["images"], counts["predictions"]) == (N_WRITERS,) * 3


async def test_two_processes_writing_at_once_all_succeed(open_storage) -> None:
    """Two Storage objects (own engine and lock each) stand in for two bot processes: on
    SQLite, BEGIN IMMEDIATE plus busy_timeout make the second wait instead of failing."""
    a, b = await open_storage(), await open_storage()
    half = N_WRITERS // 2
    await asyncio.gather(
        *[_write_meme(a, i) for i in range(half)],
        *[_write_meme(b, i) for i in range(half, N_WRITERS)],
        # Redeliveries of the same updates through the other process: still no duplicates.
        *[_write_meme(b, i) for i in range(0, half, 5)],
    )
    counts = await a.table_counts()
    assert (counts["posts"], counts["images"]) == (N_WRITERS, N_WRITERS)
    assert counts["predictions"] == N_WRITERS + half // 5
