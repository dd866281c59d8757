"""Health and metrics (issue 23): /healthz, /readyz and /metrics scraped over HTTP while a
burst of memes is being answered, and the exposition parsed as Prometheus would."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.messages import Actor, ChatRef, ImagePost
from bot.core.outcomes import CorrectionStatus, PostStatus
from bot.core.runtime import CoreRuntime, open_runtime
from bot.core.service import button_payload
from bot.observability.health import HealthServer, start_health_server
from tests.support.fakes import FakeClassifier, colour_image, fast_settings, png

CHAT = ChatRef("telegram", "-100300")
ALICE = Actor("telegram", "7", "Alice")
ADMIN = Actor("telegram", "1", "Ada")
RED, GREEN = (200, 20, 20), (20, 200, 20)
_ids = itertools.count(1)
DEADLINE_S = 20.0


def post() -> ImagePost:
    return ImagePost(CHAT, f"h{next(_ids)}", ALICE, posted_at=datetime.now(UTC))


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(http: aiohttp.ClientSession, base: str) -> Samples:
    async with http.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def readyz(http: aiohttp.ClientSession, base: str) -> tuple[int, dict]:
    async with http.get(f"{base}/readyz") as response:
        return response.status, await response.json()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[CoreRuntime, str]]:
    settings = fast_settings(tmp_path, super_admins=["telegram:1"], health_queue_stall_s=0.2)
    async with open_runtime(settings, file_origins=(), loader=FakeClassifier) as runtime:
        server: HealthServer = await start_health_server(
            runtime.readiness, runtime.metrics, "127.0.0.1", 0)
        try:
            yield runtime, f"http://127.0.0.1:{server.port}"
        finally:
            await server.close()


async def test_metrics_and_readiness_during_a_burst(served: tuple[CoreRuntime, str]) -> None:
    core, base = served
    classifier = core.models.current
    assert isinstance(classifier, FakeClassifier)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as response:
            assert response.status == 200 and (await response.json()) == {"alive": True}
        status, body = await readyz(http, base)
        assert status == 200 and body["ready"] is True
        assert set(body["checks"]) == {"database", "model", "queue"}
        assert body["checks"]["model"]["detail"] == "serving fake-1"

        classifier.gate.clear()  # hold the worker: the burst waits in the queue
        images = [png(colour_image(RED if i % 2 else GREEN, stripe=i + 1)) for i in range(8)]
        burst = [asyncio.create_task(core.service.handle_upload(post(), data))
                 for data in images]
        async with asyncio.timeout(DEADLINE_S):
            while core.queue.pending < 6:  # one batch is held by the worker
                await asyncio.sleep(0.01)
            during = await scrape(http, base)
            assert during[("memebot_queue_depth", ())] == core.queue.pending >= 6
            # Held past the stall limit, the queue makes the bot unready, saying why.
            while (await readyz(http, base))[0] != 503:
                await asyncio.sleep(0.05)
        status, body = await readyz(http, base)
        assert body["ready"] is False and body["checks"]["queue"]["ok"] is False
        assert "no progress" in body["checks"]["queue"]["detail"]
        assert body["checks"]["database"]["ok"] is True

        classifier.gate.set()
        outcomes = await asyncio.wait_for(asyncio.gather(*burst), DEADLINE_S)
        assert [o.status for o in outcomes] == [PostStatus.labelled] * 8
        copy = await core.service.handle_upload(post(), images[0])  # a repost of the first
        assert copy.repost is not None
        broken = await core.service.handle_upload(post(), b"not an image")
        assert broken.status is PostStatus.unreadable
        corrected = await core.service.handle_button(
            CHAT, ADMIN, button_payload(outcomes[1].post_id or 0, "other"), None)
        assert corrected.status is CorrectionStatus.corrected
        job = await core.storage.enqueue_retrain("telegram:1")
        await core.storage.claim_next_job("test")
        await core.storage.finish_job(job.job.id, succeeded=False, error="no data")
        await core.jobs.check()

        after = await scrape(http, base)
        status, body = await readyz(http, base)
    assert status == 200 and body["ready"] is True
    assert after[("memebot_memes_labelled_total",
                  (("label", "doom"), ("platform", "telegram")))] == 4
    assert after[("memebot_memes_labelled_total",
                  (("label", "animal_crossing"), ("platform", "telegram")))] == 5
    assert after[("memebot_reply_seconds_count", (("platform", "telegram"),))] == 9
    assert after[("memebot_reply_seconds_bucket", (("le", "+Inf"), ("platform", "telegram")))] == 9
    assert after[("memebot_repost_hits_total", (("platform", "telegram"),))] == 1
    assert after[("memebot_decode_errors_total",
                  (("platform", "telegram"), ("status", "unreadable")))] == 1
    assert after[("memebot_corrections_total",
                  (("kind", "corrected"), ("platform", "telegram")))] == 1
    assert after[("memebot_retrain_jobs_total", (("outcome", "failed"),))] == 1
    assert after[("memebot_model_serving", (("version", "fake-1"),))] == 1
    assert after[("memebot_queue_depth", ())] == 0


async def test_a_platform_counts_only_while_connected(served: tuple[CoreRuntime, str]) -> None:
    core, base = served
    connected = False
    gone = core.readiness.connected("discord", lambda: connected)
    async with aiohttp.ClientSession() as http:
        status, body = await readyz(http, base)
        assert status == 503 and body["checks"]["discord"] == {
            "name": "discord", "ok": False, "detail": "not connected"}
        connected = True
        assert (await readyz(http, base))[0] == 200
        gone()  # the adapter stopped
        status, body = await readyz(http, base)
    assert status == 503 and body["checks"]["discord"]["ok"] is False


async def test_the_database_unreachable_is_reported(served: tuple[CoreRuntime, str]) -> None:
    core, base = served
    await core.storage.close()  # disposes the pool; the file it would reopen is moved away
    db_file = core.settings.data_dir / "memebot.db"
    db_file.rename(db_file.with_suffix(".moved"))
    db_file.mkdir()  # a directory where the database was: connecting fails
    async with aiohttp.ClientSession() as http:
        status, body = await readyz(http, base)
    assert status == 503 and body["checks"]["database"]["ok"] is False
    assert "not reachable" in body["checks"]["database"]["detail"]
