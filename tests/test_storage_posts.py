"""Posts, images, predictions, corrections, labels, training set, review list, stats."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

from inference.fingerprint import pack, unpack
from storage import InvalidInputError, LabelExistsError
from storage.api import Storage
from storage.migrate import alembic_config
from storage.records import CorrectionKind
from tests.support.storage import make_image

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock


async def _post(storage: Storage, seed: int, message_id: int | None = None, **kw: object):
    return await storage.add_post(
        platform=kw.pop("platform", "telegram"),  # type: ignore[arg-type]
        chat_id=kw.pop("chat_id", -1001234567890123),  # type: ignore[arg-type]
        message_id=seed if message_id is None else message_id,
        author_id=kw.pop("author_id", 9223372036854775807),  # type: ignore[arg-type]
        image=kw.pop("image", None) or make_image(seed),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


async def _predict(storage: Storage, post_id: int, label: str = "doom", confidence: float = 0.9,
                   *, remembered: bool = False):
    return await storage.record_prediction(
        post_id,
        model_version="v1",
        label=label,
        confidence=confidence,
        probabilities={label: confidence},
        latency_ms=4.2,
        ood_score=0.1,
        remembered=remembered,
    )


async def test_redelivered_update_is_idempotent(storage: Storage) -> None:
    first = await _post(storage, 1)
    again = await _post(storage, 1)
    assert first.created and not again.created
    assert again.id == first.id and again.image == first.image
    counts = await storage.table_counts()
    assert counts["posts"] == 1 and counts["images"] == 1
    assert first.chat_id == "-1001234567890123" and first.author_id == "9223372036854775807"


async def test_post_keeps_its_caption(storage: Storage) -> None:
    post = await _post(storage, 1, caption="  When the \x00demons\nsee you  ")
    # NUL (refused by PostgreSQL) becomes a space
    assert post.caption == "When the  demons\nsee you"
    assert (await storage.get_post(post.id)).caption == post.caption
    assert (await _post(storage, 2, caption="   ")).caption is None
    assert (await _post(storage, 3)).caption is None
    assert len((await _post(storage, 4, caption="x" * 10_000)).caption or "") == 4096
    with pytest.raises(InvalidInputError, match="caption"):
        await _post(storage, 5, caption=b"bytes")
    assert (await storage.table_counts())["posts"] == 4  # the refused post left nothing behind


async def test_same_image_in_two_posts_is_stored_once(storage: Storage) -> None:
    data = make_image(7)
    a = await _post(storage, 1, image=data)
    b = await _post(storage, 2, image=data, platform="discord", chat_id="123456789012345678")
    assert a.id != b.id and a.image.sha256 == b.image.sha256
    assert (await storage.table_counts())["images"] == 1
    blobs = [p for p in storage.blob_root.rglob("*") if p.is_file()]
    assert blobs == [a.image.path]


async def test_blob_is_content_addressed(storage: Storage) -> None:
    data = make_image(3)
    post = await _post(storage, 3, image=data)
    sha = hashlib.sha256(data).hexdigest()
    assert post.image.path == storage.blob_root / sha[:2] / sha[2:4] / f"{sha}.png"
    assert post.image.path.read_bytes() == data
    assert (post.image.format, post.image.width, post.image.height) == ("PNG", 16, 16)
    assert post.image.byte_size == len(data)


async def _trust_chat(storage: Storage) -> None:
    """The chat `_post` posts in: its corrections train once it is trusted."""
    await storage.set_chat_trust("telegram", -1001234567890123, "trusted", by="telegram:1")


async def test_latest_correction_wins_and_trail_is_kept(storage: Storage) -> None:
    await _trust_chat(storage)
    post = await _post(storage, 1)
    await _predict(storage, post.id, "doom")
    first = await storage.record_correction(post.id, admin_id=10, label="animal_crossing")
    second = await storage.record_correction(post.id, admin_id=11, label="other")
    assert (first.previous_label, first.new_label) == ("doom", "animal_crossing")
    assert (second.previous_label, second.new_label) == ("animal_crossing", "other")
    trail = await storage.corrections_for(post.id)
    assert [c.new_label for c in trail] == ["animal_crossing", "other"]
    examples = (await storage.training_set()).examples
    assert [(e.sha256, e.label, e.admin_id) for e in examples] == [
        (post.image.sha256, "other", "11")
    ]


async def test_confirmed_prediction_is_labelled_unconfirmed_is_not(storage: Storage) -> None:
    await _trust_chat(storage)
    confirmed = await _post(storage, 1)
    guessed = await _post(storage, 2)
    prediction = await _predict(storage, confirmed.id, "animal_crossing")
    await _predict(storage, guessed.id, "doom", 0.99)
    assert (await storage.training_set()).examples == ()
    decision = await storage.confirm_prediction(prediction.id, admin_id="42")
    assert decision.kind is CorrectionKind.confirmation and decision.new_label == "animal_crossing"
    examples = (await storage.training_set()).examples
    assert [(e.sha256, e.label, e.source) for e in examples] == [
        (confirmed.image.sha256, "animal_crossing", CorrectionKind.confirmation)
    ]
    # A later correction still wins over the confirmation.
    await storage.record_correction(confirmed.id, admin_id="43", label="other")
    assert [e.label for e in (await storage.training_set()).examples] == ["other"]


async def test_label_applies_to_the_image_across_posts(storage: Storage) -> None:
    await _trust_chat(storage)
    data = make_image(5)
    a = await _post(storage, 1, image=data)
    b = await _post(storage, 2, image=data)
    await storage.record_correction(a.id, admin_id=1, label="doom")
    await storage.record_correction(b.id, admin_id=2, label="other")
    examples = (await storage.training_set()).examples
    assert [(e.sha256, e.label) for e in examples] == [(a.image.sha256, "other")]


async def test_training_set_carries_labels_and_base_dataset(
    open_storage, tmp_path: Path
) -> None:
    storage = await open_storage(dataset_dir=tmp_path / "dataset")
    await storage.add_label("genshin", added_by="telegram:1")
    training = await storage.training_set()
    assert training.base_dataset_dir == tmp_path / "dataset"
    assert training.labels == ("animal_crossing", "doom", "genshin", "other")


async def test_labels(storage: Storage) -> None:
    assert {lb.name for lb in await storage.list_labels()} == {"animal_crossing", "doom", "other"}
    added = await storage.add_label("genshin", added_by=77)
    assert added.added_by == "77"
    assert "genshin" in {lb.name for lb in await storage.list_labels()}
    with pytest.raises(LabelExistsError):
        await storage.add_label("genshin", added_by=77)
    for bad in ("Genshin", "gen shin", "", "x" * 33, "génshin"):
        with pytest.raises(InvalidInputError):
            await storage.add_label(bad, added_by=77)


async def test_recent_predictions_filters(storage: Storage) -> None:
    posts = [await _post(storage, i) for i in range(4)]
    await _predict(storage, posts[0].id, "doom", 0.95)
    await _predict(storage, posts[1].id, "doom", 0.40)
    await _predict(storage, posts[2].id, "other", 0.55)
    old = await _predict(storage, posts[3].id, "doom", 0.10)
    newer = await _predict(storage, posts[3].id, "animal_crossing", 0.70)  # a newer model run
    await storage.record_correction(posts[1].id, admin_id=1, label="other")

    newest_first = await storage.recent_predictions()
    assert newest_first[0].prediction.id == newer.id
    assert old.id not in {i.prediction.id for i in newest_first}
    assert len(await storage.recent_predictions(latest_only=False)) == 5

    doom = await storage.recent_predictions(label="doom")
    assert {i.post.id for i in doom} == {posts[0].id, posts[1].id}
    band = await storage.recent_predictions(min_confidence=0.5, max_confidence=0.9)
    assert {i.post.id for i in band} == {posts[2].id, posts[3].id}
    corrected = await storage.recent_predictions(corrected=True)
    assert [(i.post.id, i.effective_label, i.corrected) for i in corrected] == [
        (posts[1].id, "other", True)
    ]
    uncorrected = await storage.recent_predictions(corrected=False)
    assert posts[1].id not in {i.post.id for i in uncorrected} and len(uncorrected) == 3
    low_first = await storage.recent_predictions(low_confidence_first=True)
    assert [i.prediction.confidence for i in low_first] == [0.40, 0.55, 0.70, 0.95]
    assert len(await storage.recent_predictions(limit=2, offset=3)) == 1
    assert await storage.recent_predictions(platform="discord") == []


async def test_stats(storage: Storage) -> None:
    a = await _post(storage, 1)
    b = await _post(storage, 2)
    await _post(storage, 3, image=make_image(1))  # same image as a
    pa = await _predict(storage, a.id, "doom")
    await _predict(storage, b.id, "other")
    await storage.confirm_prediction(pa.id, admin_id=1)
    await storage.record_correction(b.id, admin_id=1, label="animal_crossing")
    await storage.register_model_version("v1", path="/m/v1", sha256="a" * 64)
    await storage.activate_model_version("v1")
    await storage.enqueue_retrain(requested_by=1)
    stats = await storage.stats()
    assert stats.memes_seen == 3 and stats.unique_images == 2
    assert stats.predicted_per_label == {"doom": 1, "other": 1}
    assert stats.labelled_per_label == {"animal_crossing": 1, "doom": 1}
    assert (stats.corrections, stats.confirmations) == (1, 1)
    assert stats.active_model == "v1"
    assert (stats.queued_jobs, stats.running_jobs) == (1, 0)


async def test_chat_settings(storage: Storage) -> None:
    default = await storage.chat_settings("discord", 123456789012345678)
    assert default.enabled is None and default.admin_ids == () and default.reply_mode is None
    assert default.updated_at is None
    changed = await storage.update_chat_settings(
        "discord", "123456789012345678", admin_ids=[5, "role:9", 5], reply_mode="silent"
    )
    assert changed.admin_ids == ("5", "role:9") and changed.reply_mode == "silent"
    changed = await storage.update_chat_settings(
        "discord", "123456789012345678", enabled=False, confidence_threshold=0.8
    )
    assert (changed.enabled, changed.reply_mode, changed.confidence_threshold) == (
        False, "silent", 0.8
    )
    changed = await storage.update_chat_settings("discord", "123456789012345678", reply_mode=None)
    assert changed.reply_mode is None
    assert await storage.chat_settings("discord", "123456789012345678") == changed
    before = await storage.table_counts()
    for kwargs in ({"reply_mode": "loud"}, {"confidence_threshold": 1.5}, {"admin_ids": "5"},
                   {"admin_ids": ["x" * 65]}):
        with pytest.raises(InvalidInputError):
            await storage.update_chat_settings("telegram", 1, **kwargs)  # type: ignore[arg-type]
    assert await storage.table_counts() == before


async def test_labelled_embeddings_are_the_latest_decisions_with_an_embedding(
    storage: Storage,
) -> None:
    from storage.records import Fingerprint

    fixed, confirmed, bare, other_space = [await _post(storage, seed) for seed in (71, 72, 73, 74)]
    for post in (fixed, confirmed, bare, other_space):
        await _predict(storage, post.id)
    words = pack(np.arange(1, 385, dtype=np.float32), projected=False)  # 384 float16
    await storage.add_fingerprint(fixed.id, Fingerprint(1, 2, b"\x01\x02", "lite0-224",
                                                        text_embedding=words),
                                  author_name="A")
    await storage.add_fingerprint(confirmed.id, Fingerprint(3, 4, b"\x03\x04", "lite0-224"),
                                  author_name="A")
    await storage.add_fingerprint(other_space.id, Fingerprint(5, 6, b"\x05\x06", "other"),
                                  author_name="A")
    await storage.add_label("genshin", added_by="telegram:1")
    await storage.record_correction(fixed.id, admin_id="telegram:1", label="genshin")
    await storage.record_correction(confirmed.id, admin_id="telegram:1", label="other")
    predictions = await storage.predictions_for(confirmed.id)
    await storage.confirm_prediction(predictions[-1].id, admin_id="telegram:1")  # back to doom
    await storage.record_correction(bare.id, admin_id="telegram:1", label="other")
    await storage.record_correction(other_space.id, admin_id="telegram:1", label="other")
    rows = {r.sha256: r for r in await storage.labelled_embeddings("lite0-224")}
    assert {sha: (r.label, r.embedding) for sha, r in rows.items()} == {
        fixed.image.sha256: ("genshin", b"\x01\x02"),
        confirmed.image.sha256: ("doom", b"\x03\x04"),  # the latest decision: a confirmation
    }
    row = rows[fixed.image.sha256]
    assert row.decided_at.tzinfo is not None
    assert row.text_embedding == words  # the words' vector comes back as stored
    assert rows[confirmed.image.sha256].text_embedding is None  # a post without words' vector
    np.testing.assert_allclose(np.linalg.norm(unpack([words])), 1.0, atol=1e-3)


async def test_confirmations_count_whoever_gave_the_label(storage: Storage) -> None:
    """An admin's yes counts as a correction for the memory, whether the memory gave the label
    (a new label, or one the model can give too) or the model did; the prediction keeps where
    its label came from."""
    from storage.records import Fingerprint

    await storage.add_label("genshin", added_by="telegram:1")
    posts = [await _post(storage, seed) for seed in (81, 82, 83)]
    given = (("genshin", True, b"\x08"), ("other", True, b"\x09"), ("doom", False, b"\x0a"))
    for post, (label, remembered, blob) in zip(posts, given, strict=True):
        prediction = await _predict(storage, post.id, label=label, remembered=remembered)
        assert prediction.remembered is remembered
        await storage.add_fingerprint(post.id, Fingerprint(1, 2, blob, "lite0-224"),
                                      author_name="A")
        await storage.confirm_prediction(prediction.id, admin_id="telegram:1")
    rows = await storage.labelled_embeddings("lite0-224")
    assert sorted((r.label, r.embedding) for r in rows) == sorted(
        (label, blob) for label, _, blob in given)
    assert [p.remembered for p in await storage.predictions_for(posts[1].id)] == [True]


@contextlib.asynccontextmanager
async def _as_it_is(url: str, blobs: Path) -> AsyncIterator[Storage]:
    """A database at an older revision, opened without upgrading it."""
    storage = await Storage.open(url, blobs, upgrade=False)
    try:
        yield storage
    finally:
        await storage.close()


def _old_database(tmp_path: Path, name: str, revision: str) -> tuple[str, Config]:
    """A new SQLite database migrated up to an older `revision`: its URL and Alembic config."""
    url = f"sqlite+aiosqlite:///{tmp_path / name}"
    config = alembic_config(url)
    command.upgrade(config, revision)
    return url, config


def _up_then_down_and_up(config: Config, before: str, revision: str) -> Iterator[str]:
    """Up to `revision`, then down to `before` and up to head again: the caller checks the data
    after each (the revision reached is yielded)."""
    command.upgrade(config, revision)
    yield revision
    command.downgrade(config, before)
    command.upgrade(config, "head")
    yield "head"


def test_the_remembered_migration_keeps_old_predictions_as_the_models(tmp_path: Path) -> None:
    """0010_remembered on a database holding a prediction: up from 0009 it reads as the model's
    own label (not remembered), and so again after down and up."""
    url, config = _old_database(tmp_path, "remembered.db", "0009_text_vectors")

    async def fill() -> int:
        async with _as_it_is(url, tmp_path / "blobs") as storage:
            post = await _post(storage, 92)
            async with storage._db.write() as session:  # the 0009 columns only
                await session.execute(text(
                    "INSERT INTO predictions (post_id, model_version, label, confidence,"
                    " probabilities, latency_ms, created_at) VALUES (:p, 'v1', 'other', 0.9,"
                    " '{}', 1.0, :t)"), {"p": post.id, "t": post.posted_at})
            return post.id

    async def read(post_id: int) -> list[bool]:
        async with _as_it_is(url, tmp_path / "blobs") as storage:
            return [p.remembered for p in await storage.predictions_for(post_id)]

    post_id = asyncio.run(fill())
    for _ in _up_then_down_and_up(config, "0009_text_vectors", "0010_remembered"):
        assert asyncio.run(read(post_id)) == [False]


def test_the_text_vectors_migration_goes_down_and_up_again(tmp_path: Path) -> None:
    """0009_text_vectors on a database holding a fingerprint: up from 0008 (its vector is
    empty, the rest stays), and down and up again."""
    url, config = _old_database(tmp_path, "words.db", "0008_lifecycle")

    async def fill() -> None:
        async with _as_it_is(url, tmp_path / "blobs") as storage:
            post = await _post(storage, 91)
            async with storage._db.write() as session:  # the 0008 columns only
                await session.execute(text(
                    "INSERT INTO post_fingerprints (post_id, frame, platform, chat_id, posted_at,"
                    " author_name, phash, dhash, band0, band1, band2, band3, embedding,"
                    " embedding_space) VALUES (:p, 0, 'telegram', '-1', :t, 'A', 1, 2, 0, 0, 0,"
                    " 0, :e, 'lite0-224')"), {"p": post.id, "t": post.posted_at, "e": b"\x01"})

    async def read() -> list[bytes | None]:
        async with _as_it_is(url, tmp_path / "blobs") as storage, storage._db.read() as session:
            rows = await session.execute(text(
                "SELECT embedding, text_embedding FROM post_fingerprints"))
            return [v for row in rows for v in row]

    asyncio.run(fill())
    for _ in _up_then_down_and_up(config, "0008_lifecycle", "0009_text_vectors"):
        assert asyncio.run(read()) == [b"\x01", None]


async def test_current_labels_of_many_posts_at_once(storage: Storage) -> None:
    """The label shown: the admins' latest decision, else the model's latest prediction; a post
    with neither is left out."""
    predicted, corrected, bare = [await _post(storage, seed) for seed in (95, 96, 97)]
    await _predict(storage, predicted.id, label="doom")
    await _predict(storage, predicted.id, label="animal_crossing")  # a newer model's answer
    await _predict(storage, corrected.id, label="doom")
    await storage.record_correction(corrected.id, admin_id="telegram:1", label="other")
    await storage.record_correction(corrected.id, admin_id="telegram:1", label="animal_crossing")
    await _predict(storage, corrected.id, label="doom")  # the model again: the admin still wins
    ids = [predicted.id, corrected.id, bare.id]
    assert await storage.current_labels(ids) == {predicted.id: "animal_crossing",
                                                 corrected.id: "animal_crossing"}
    assert await storage.current_labels([]) == {}


async def test_labelled_embeddings_count_everywhere_only_where_they_may_train(
    storage: Storage,
) -> None:
    """A decision that may train (trusted chat, approved, an operator's) counts in every chat
    (chat None); one from a chat that is not trusted, or rejected, only in its own chat. A chat
    that is not trusted cannot override a label decided elsewhere, except in its own chat."""
    from storage.records import Fingerprint

    await storage.set_chat_trust("telegram", -100, "trusted", by="telegram:1")
    trusted = await _post(storage, 101, chat_id=-100)
    loose = await _post(storage, 102, chat_id=-200)
    approved = await _post(storage, 103, chat_id=-200)
    rejected = await _post(storage, 104, chat_id=-100)
    again = await _post(storage, 105, chat_id=-200, image=make_image(101))  # trusted's image
    for n, post in enumerate((trusted, loose, approved, rejected, again)):
        await _predict(storage, post.id)
        await storage.add_fingerprint(post.id, Fingerprint(n, n, bytes([n + 1]), "lite0-224"),
                                      author_name="A")
    await storage.record_correction(trusted.id, admin_id="telegram:1", label="other")
    await storage.record_correction(loose.id, admin_id="telegram:2", label="other")
    await storage.record_correction(approved.id, admin_id="telegram:1", label="other",
                                    approved=True)
    no = await storage.record_correction(rejected.id, admin_id="telegram:1", label="other")
    await storage.review_corrections([no.id], approve=False, by="telegram:1")
    await storage.record_correction(again.id, admin_id="telegram:2", label="animal_crossing")
    rows = {(r.sha256, r.chat): r.label for r in await storage.labelled_embeddings("lite0-224")}
    assert rows == {
        (trusted.image.sha256, None): "other",  # not overridden by the chat not trusted ...
        (trusted.image.sha256, ("telegram", "-200")): "animal_crossing",  # ... but in its chat
        (loose.image.sha256, ("telegram", "-200")): "other",
        (approved.image.sha256, None): "other",
        (rejected.image.sha256, ("telegram", "-100")): "other",
    }
    await storage.set_chat_trust("telegram", -200, "trusted", by="telegram:1")
    rows = {(r.sha256, r.chat): r.label for r in await storage.labelled_embeddings("lite0-224")}
    assert rows[(loose.image.sha256, None)] == "other"  # trusted now: counts everywhere
    assert rows[(trusted.image.sha256, None)] == "animal_crossing"  # the latest trusted word
