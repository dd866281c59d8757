"""Trusted chats, the review of corrections, undo, what trains, and the audit log (issue 21),
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from storage import InvalidInputError
from storage.api import Storage
from storage.errors import AlreadyTrainedError, NotFoundError
from storage.records import CorrectionReview, TrustLevel
from tests.support.storage import make_image

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock

THEIRS, OURS = "-100500", "-100600"


async def _labelled(storage: Storage, seed: int, chat: str, label: str = "other",
                    admin: str = "telegram:77") -> tuple[int, int]:
    post = await storage.add_post(platform="telegram", chat_id=chat, message_id=seed,
                                  author_id=5, image=make_image(seed))
    await storage.record_prediction(post.id, model_version="v1", label="doom", confidence=0.9,
                                    probabilities={"doom": 0.9}, latency_ms=1.0)
    correction = await storage.record_correction(post.id, admin_id=admin, label=label)
    return post.id, correction.id


async def test_trust_levels_are_set_audited_listed_and_moved(storage: Storage) -> None:
    assert (await storage.chat_trust("telegram", OURS)).level is TrustLevel.untrusted
    before = await storage.set_chat_trust("telegram", OURS, "delegated", by="telegram:1")
    assert before.level is TrustLevel.untrusted
    again = await storage.set_chat_trust("telegram", OURS, TrustLevel.delegated, by="telegram:1")
    assert again.level is TrustLevel.delegated  # no change, nothing logged
    await storage.set_chat_trust("discord", "42", "trusted", by="console:admin")
    assert [(c.platform, c.chat_id, c.level) for c in await storage.trusted_chats()] == [
        ("discord", "42", TrustLevel.trusted), ("telegram", OURS, TrustLevel.delegated)]
    with pytest.raises(InvalidInputError):
        await storage.set_chat_trust("telegram", OURS, "owner", by="telegram:1")
    assert await storage.move_chat_trust("telegram", OURS, "-100700")
    assert not await storage.move_chat_trust("telegram", OURS, "-100700")  # moved once
    assert (await storage.chat_trust("telegram", "-100700")).level is TrustLevel.delegated
    await storage.set_chat_trust("telegram", "-100700", "untrusted", by="telegram:1")
    assert [c.chat_id for c in await storage.trusted_chats()] == ["42"]
    log = [(e.action, e.actor_id, e.chat_id, e.from_value, e.to_value)
           for e in await storage.audit_log(action="trust")]
    assert log == [
        ("trust", "telegram:1", "-100700", "delegated", "untrusted"),
        ("trust", "console:admin", "42", "untrusted", "trusted"),
        ("trust", "telegram:1", OURS, "untrusted", "delegated"),
    ]


async def test_only_trusted_or_approved_corrections_train(storage: Storage) -> None:
    a, ca = await _labelled(storage, 1, THEIRS)
    b, cb = await _labelled(storage, 2, THEIRS)
    await _labelled(storage, 3, OURS, label="animal_crossing", admin="telegram:78")
    training = await storage.training_set()
    assert training.examples == () and training.pending == 3
    assert await storage.count_pending_corrections() == 3
    await storage.set_chat_trust("telegram", OURS, "trusted", by="telegram:1")
    training = await storage.training_set()
    assert [(e.label, e.chat, e.correction_id > 0) for e in training.examples] == [
        ("animal_crossing", f"telegram:{OURS}", True)]
    assert training.pending == 2 and training.per_chat() == {f"telegram:{OURS}": 1}
    pending = await storage.pending_corrections()
    assert [(p.post.id, p.correction.new_label) for p in pending] == [(a, "other"), (b, "other")]
    assert await storage.review_corrections([ca, cb], approve=True, by="console:admin") == [ca, cb]
    assert await storage.review_corrections([ca], approve=True, by="console:admin") == []
    await storage.review_corrections([cb], approve=False, by="console:admin")
    assert (await storage.get_correction(cb)).review is CorrectionReview.rejected
    training = await storage.training_set()
    assert training.pending == 0 and len(training.examples) == 2
    # A rejected correction stays out even once its chat is trusted; an approved one stays in
    # when the trust goes.
    await storage.set_chat_trust("telegram", THEIRS, "trusted", by="telegram:1")
    assert {e.correction_id for e in (await storage.training_set()).examples} >= {ca}
    assert cb not in {e.correction_id for e in (await storage.training_set()).examples}
    await storage.set_chat_trust("telegram", OURS, "untrusted", by="telegram:1")
    assert [e.correction_id for e in (await storage.training_set()).examples] == [ca]
    with pytest.raises(InvalidInputError):
        await storage.review_corrections([], approve=True, by="console:admin")
    reviews = [(e.action, e.post_id, e.to_value) for e in await storage.audit_log()
               if e.action in ("approve", "reject")]
    assert reviews == [("reject", b, "rejected"), ("approve", b, "approved"),
                       ("approve", a, "approved")]


async def test_an_untrusted_chat_cannot_override_a_trusted_label(storage: Storage) -> None:
    data = make_image(9)
    trusted = await storage.add_post(platform="telegram", chat_id=OURS, message_id=1,
                                     author_id=5, image=data)
    await storage.record_correction(trusted.id, admin_id="telegram:78", label="doom")
    await storage.set_chat_trust("telegram", OURS, "trusted", by="telegram:1")
    theirs = await storage.add_post(platform="telegram", chat_id=THEIRS, message_id=1,
                                    author_id=5, image=data)
    await storage.record_correction(theirs.id, admin_id="telegram:77", label="other")
    assert await storage.effective_label(trusted.image.sha256) == "other"  # shown...
    assert [e.label for e in (await storage.training_set()).examples] == ["doom"]  # ...not used


async def test_undo_until_a_retrain_used_it(storage: Storage) -> None:
    post, first = await _labelled(storage, 1, OURS, label="other")
    second = (await storage.record_correction(post, admin_id="telegram:78",
                                              label="animal_crossing")).id
    assert await storage.undo_correction(second, by="telegram:78") == "other"
    with pytest.raises(NotFoundError):
        await storage.undo_correction(second, by="telegram:78")
    job = (await storage.enqueue_retrain("telegram:1", "fast")).job
    assert await storage.claim_next_job("trainer", kinds=("fast",)) is not None
    assert await storage.mark_corrections_trained(job.id, [first]) == 1
    assert await storage.mark_corrections_trained(job.id + 1, [first]) == 0  # the first keeps it
    with pytest.raises(AlreadyTrainedError):
        await storage.undo_correction(first, by="telegram:77")
    assert [c.id for c in await storage.corrections_for(post)] == [first]
    [stale] = await storage.fail_stale_jobs(timedelta(0))  # its trainer died: freed again
    assert stale.id == job.id
    assert await storage.undo_correction(first, by="telegram:77") is None
    history = [(e.action, e.actor_id, e.from_value, e.to_value)
               for e in await storage.post_history(post)]
    assert history == [
        ("correction", "telegram:77", "doom", "other"),
        ("correction", "telegram:78", "other", "animal_crossing"),
        ("undo", "telegram:78", "animal_crossing", "other"),
        ("undo", "telegram:77", "other", "doom"),
    ]


async def test_audit_api_records_filters_pages_and_exports(storage: Storage,
                                                          tmp_path: Path) -> None:
    for i in range(5):
        await storage.record_audit("settings", actor_id="discord:9", platform="discord",
                                   chat_id="42", from_value=f"v{i}", to_value=f"v{i + 1}",
                                   detail="reply_mode")
    hold = await storage.record_audit("hold", actor_id="telegram:1", platform="telegram",
                                      chat_id=OURS, post_id=12)
    assert hold.action == "hold" and hold.post_id == 12
    assert [e.id for e in await storage.post_history(12)] == [hold.id]
    page = await storage.audit_log(action="settings", limit=2)
    older = await storage.audit_log(action="settings", limit=10, before_id=page[-1].id)
    assert [e.from_value for e in page + older] == ["v4", "v3", "v2", "v1", "v0"]
    assert len(await storage.audit_log(platform="discord", chat_id="42")) == 5
    for bad in ("Settings", "", "x" * 33, "a b"):
        with pytest.raises(InvalidInputError):
            await storage.record_audit(bad, actor_id="telegram:1")
    with pytest.raises(InvalidInputError):
        await storage.record_audit("settings", actor_id="telegram:1", to_value="x" * 200)
    path = await storage.export_audit(tmp_path / "export")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("id,created_at,actor_id,action") and len(lines) == 7
    assert lines[1].split(",")[3:5] == ["settings", "discord"]


def test_the_migration_backfills_each_posts_history_and_downgrades(tmp_path: Path) -> None:
    """Corrections made before 0004_roles_audit start their post's history; down and up again."""
    import asyncio
    import sqlite3

    from alembic import command

    from storage.migrate import alembic_config

    db = tmp_path / "old.db"
    config = alembic_config(f"sqlite+aiosqlite:///{db}")
    command.upgrade(config, "0003_reposts")
    at = "2026-11-30 10:00:00.000000+00:00"
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO images VALUES (?, 'PNG', 'png', 8, 8, 100, ?)", ("a" * 64, at))
        conn.execute("INSERT INTO posts (id, platform, chat_id, message_id, attachment_index, "
                     "author_id, posted_at, image_sha256, created_at) VALUES "
                     "(7, 'telegram', '-100500', '1', 0, '5', ?, ?, ?)", (at, "a" * 64, at))
        conn.execute("INSERT INTO corrections (post_id, admin_id, kind, previous_label, "
                     "new_label, created_at) VALUES (7, 'telegram:77', 'correction', 'doom', "
                     "'other', ?)", (at,))
    command.upgrade(config, "head")

    async def history() -> list[tuple[str, str, str | None, str | None, int]]:
        storage = await Storage.open(f"sqlite+aiosqlite:///{db}", tmp_path / "blobs",
                                     upgrade=False)
        try:
            pending = await storage.count_pending_corrections()
            return [(e.action, e.actor_id, e.from_value, e.to_value, pending)
                    for e in await storage.post_history(7)]
        finally:
            await storage.close()

    backfilled = [("correction", "telegram:77", "doom", "other", 1)]
    assert asyncio.run(history()) == backfilled
    command.downgrade(config, "0003_reposts")
    command.upgrade(config, "head")
