"""Model versions (exactly one active) and retrain jobs (join, claim, finish, fail stale)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from storage import ConflictError, InvalidInputError, NotFoundError, StateError
from storage.api import Storage
from storage.records import JobStatus, ModelStatus
from tests.support.storage import FakeClock

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock


async def _register(storage: Storage, version: str, digit: str = "a"):
    return await storage.register_model_version(
        version, path=f"/models/{version}", sha256=digit * 64, metadata={"val_acc": 0.9}
    )


async def test_exactly_one_active_version(storage: Storage) -> None:
    assert await storage.active_model_version() is None
    first = await _register(storage, "2025-01-01", "a")
    assert first.status is ModelStatus.candidate and first.metadata == {"val_acc": 0.9}
    await _register(storage, "2025-01-02", "b")
    await storage.activate_model_version("2025-01-01")
    promoted = await storage.activate_model_version("2025-01-02")
    assert promoted.status is ModelStatus.active and promoted.promoted_at is not None
    statuses = {v.version: v.status for v in await storage.list_model_versions()}
    assert statuses == {"2025-01-01": ModelStatus.retired, "2025-01-02": ModelStatus.active}
    active = await storage.active_model_version()
    assert active is not None and active.version == "2025-01-02"
    # Rolling back to a retired version is allowed.
    await storage.activate_model_version("2025-01-01")
    active = await storage.active_model_version()
    assert active is not None and active.version == "2025-01-01"


async def test_concurrent_activations_leave_one_active(open_storage) -> None:
    # Two Storage objects: like two bot processes sharing the database.
    a, b = await open_storage(), await open_storage()
    versions = [f"v{i}" for i in range(6)]
    for i, version in enumerate(versions):
        await _register(a, version, "0123456789"[i])
    await asyncio.gather(
        *[(a if i % 2 else b).activate_model_version(v) for i, v in enumerate(versions)]
    )
    active = [v for v in await a.list_model_versions() if v.status is ModelStatus.active]
    assert len(active) == 1


async def test_model_version_errors(storage: Storage) -> None:
    await _register(storage, "v1", "a")
    again = await _register(storage, "v1", "a")  # same bytes: idempotent (trainer retry)
    assert again.status is ModelStatus.candidate
    with pytest.raises(ConflictError):
        await _register(storage, "v1", "b")
    with pytest.raises(NotFoundError):
        await storage.activate_model_version("v9")
    with pytest.raises(InvalidInputError):
        await storage.register_model_version("v2", path="/m", sha256="xyz")
    with pytest.raises(InvalidInputError):
        await storage.register_model_version("bad version!", path="/m", sha256="a" * 64)
    failed = await storage.mark_model_version_failed("v1", reason="val acc 0.2")
    assert failed.status is ModelStatus.failed and failed.metadata["failure"] == "val acc 0.2"
    with pytest.raises(StateError):
        await storage.activate_model_version("v1")
    await _register(storage, "v2", "c")
    await storage.activate_model_version("v2")
    with pytest.raises(StateError):
        await storage.mark_model_version_failed("v2")


async def test_enqueue_joins_open_job(storage: Storage) -> None:
    first = await storage.enqueue_retrain(requested_by="telegram:1")
    second = await storage.enqueue_retrain(requested_by="discord:2")
    assert first.created and not second.created and second.job.id == first.job.id
    assert second.job.requested_by == "telegram:1"
    other_kind = await storage.enqueue_retrain(requested_by=3, kind="calibrate")
    assert other_kind.created

    claimed = await storage.claim_next_job("trainer-1")
    assert claimed is not None and claimed.id == first.job.id
    assert claimed.status is JobStatus.running and claimed.worker == "trainer-1"
    joined = await storage.enqueue_retrain(requested_by=4)  # joins the running job
    assert not joined.created and joined.job.id == first.job.id

    done = await storage.finish_job(
        claimed.id, succeeded=True, log_tail="x" * 10_000 + "done", model_version="v7"
    )
    assert done.status is JobStatus.succeeded and done.model_version == "v7"
    assert done.log_tail.endswith("done") and len(done.log_tail) == 8_000
    fresh = await storage.enqueue_retrain(requested_by=5)
    assert fresh.created and fresh.job.id != first.job.id


async def test_concurrent_enqueues_create_one_job(open_storage) -> None:
    a, b = await open_storage(), await open_storage()
    results = await asyncio.gather(
        *[(a if i % 2 else b).enqueue_retrain(requested_by=i) for i in range(20)]
    )
    assert sum(r.created for r in results) == 1
    assert len({r.job.id for r in results}) == 1


async def test_claim_is_exclusive(open_storage) -> None:
    a, b = await open_storage(), await open_storage()
    for kind in ("full", "calibrate", "finetune"):
        await a.enqueue_retrain(requested_by=1, kind=kind)
    claims = await asyncio.gather(
        *[(a if i % 2 else b).claim_next_job(f"worker-{i}") for i in range(8)]
    )
    got = [c for c in claims if c is not None]
    assert len(got) == 3 and len({c.id for c in got}) == 3
    assert [c.kind for c in sorted(got, key=lambda c: c.id)] == ["full", "calibrate", "finetune"]
    assert await a.claim_next_job("late") is None


async def test_claim_filters_by_kind(storage: Storage) -> None:
    await storage.enqueue_retrain(requested_by=1, kind="full")
    await storage.enqueue_retrain(requested_by=1, kind="calibrate")
    job = await storage.claim_next_job("w", kinds=["calibrate"])
    assert job is not None and job.kind == "calibrate"


async def test_stale_job_of_killed_trainer_fails(storage: Storage, clock: FakeClock) -> None:
    queued = await storage.enqueue_retrain(requested_by=1)
    job = await storage.claim_next_job("trainer-1")
    assert job is not None
    clock.advance(timedelta(minutes=5))
    await storage.heartbeat_job(job.id, log_tail="epoch 3/10")
    clock.advance(timedelta(minutes=9))
    assert await storage.fail_stale_jobs(older_than=timedelta(minutes=10)) == []
    clock.advance(timedelta(minutes=2))
    failed = await storage.fail_stale_jobs(older_than=timedelta(minutes=10))
    assert [j.id for j in failed] == [queued.job.id]
    assert failed[0].status is JobStatus.failed and "trainer-1" in (failed[0].error or "")
    assert failed[0].log_tail == "epoch 3/10"
    # The killed trainer cannot report late, and a new request starts a new job.
    with pytest.raises(StateError):
        await storage.finish_job(job.id, succeeded=True)
    with pytest.raises(StateError):
        await storage.heartbeat_job(job.id)
    assert (await storage.enqueue_retrain(requested_by=2)).created


async def test_job_errors(storage: Storage) -> None:
    with pytest.raises(NotFoundError):
        await storage.finish_job(99, succeeded=False)
    with pytest.raises(NotFoundError):
        await storage.get_job(99)
    queued = await storage.enqueue_retrain(requested_by=1)
    with pytest.raises(StateError):  # never claimed
        await storage.finish_job(queued.job.id, succeeded=True)
    with pytest.raises(InvalidInputError):
        await storage.enqueue_retrain(requested_by=1, kind="Full Retrain")
    job = await storage.claim_next_job("w")
    assert job is not None
    failed = await storage.finish_job(job.id, succeeded=False, error="CUDA out of memory")
    assert failed.status is JobStatus.failed and failed.error == "CUDA out of memory"
    assert [j.id for j in await storage.list_jobs()] == [job.id]
