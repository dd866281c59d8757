"""The platform-free pieces on their own: wording, downloads, the classify queue, redaction."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.core import formatting as fmt
from bot.core.classify_queue import Classified, ClassifyQueue, QueueFullError
from bot.core.downloads import Downloader, DownloadError, ForbiddenURLError, TooLargeError
from bot.core.model_holder import ModelHolder
from bot.core.service import button_payload, parse_payload
from bot.logs import REDACTED, RedactSecrets, configure_logging
from inference.errors import ImageError
from tests.support.fakes import FakeClassifier, colour_image, png

LABELS = ["animal_crossing", "doom", "other"]


# ---------------------------------------------------------------------------- formatting


def test_reply_wording() -> None:
    kw: dict[str, Any] = {"reject_label": "other", "model_labels": ["doom", "animal_crossing",
                                                                     "other"]}
    assert fmt.prediction_text("doom", 0.973, **kw) == "Doom (97%)"
    assert fmt.prediction_text("animal_crossing", 0.88, **kw) == "Animal Crossing (88%)"
    assert fmt.prediction_text("other", 0.99, **kw) == "other: not a Doom or Animal Crossing meme"
    assert fmt.prediction_text("animal_crossing", 0.22, unsure=True, **kw) == \
        "not sure: maybe Animal Crossing (22%)"
    assert fmt.prediction_text("genshin", 0.7, remembered=True, **kw) == \
        "Genshin (like a meme an admin labelled)"
    assert fmt.display_name("pixel_art") == "Pixel Art"
    assert fmt.corrected_text("doom", "@bob", confirmed=False) == "Doom (set by @bob)"


def test_button_payload_round_trip_fits_telegram() -> None:
    payload = button_payload(2**63 - 1, "x" * 32)
    assert len(payload.encode()) <= 64
    assert parse_payload(payload) == (2**63 - 1, "x" * 32)
    assert parse_payload("c:abc:doom") is None and parse_payload("other") is None


def test_metrics_summary_handles_missing_metrics() -> None:
    assert fmt.metrics_summary({}) == "no test metrics"
    summary = fmt.metrics_summary({"test": {"accuracy": 0.9, "n": 10, "per_class": {
        "a": {"f1": 0.8}, "b": {"f1": 1.0}}}})
    assert summary == "test accuracy 90%, macro F1 0.90, on 10 images"


# ----------------------------------------------------------------------------- downloads


@pytest.fixture
async def file_server() -> AsyncIterator[str]:
    async def small(request: web.Request) -> web.Response:
        return web.Response(body=b"hello")

    async def endless(request: web.Request) -> web.StreamResponse:
        # No Content-Length: only counting while streaming can stop it.
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            for _ in range(64):
                await response.write(b"\0" * 65536)
        except ConnectionResetError:
            pass  # the downloader hung up at its size limit, as it should
        return response

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data")

    async def hop(request: web.Request) -> web.Response:
        # `to`: where to send the client (a path on this server, or another server's URL).
        raise web.HTTPFound(request.query.get("to", "/small"))

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/loop")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(body=b"late")

    app = web.Application()
    app.router.add_get("/small", small)
    app.router.add_get("/endless", endless)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/hop", hop)
    app.router.add_get("/loop", loop)
    app.router.add_get("/slow", slow)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def other_server() -> AsyncIterator[str]:
    """A second file server (another origin), serving /small."""
    async def small(request: web.Request) -> web.Response:
        return web.Response(body=b"from elsewhere")

    app = web.Application()
    app.router.add_get("/small", small)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_download_is_streamed_and_hashed(file_server: str) -> None:
    async with Downloader([file_server], max_bytes=1024, timeout_s=5) as downloader:
        got = await downloader.fetch(f"{file_server}/small")
    assert got.data == b"hello" and got.sha256 == hashlib.sha256(b"hello").hexdigest()


async def test_download_refuses_other_origins_before_connecting(file_server: str) -> None:
    async with Downloader([file_server], max_bytes=1024, timeout_s=5) as downloader:
        for url in ("http://169.254.169.254/latest", "file:///etc/passwd",
                    file_server.replace("127.0.0.1", "localhost") + "/small",
                    file_server.rsplit(":", 1)[0] + ":1/small"):
            with pytest.raises(ForbiddenURLError):
                await downloader.fetch(url)


async def test_download_follows_a_few_redirects_to_allowed_origins_only(
    file_server: str, other_server: str
) -> None:
    to_other = f"{file_server}/hop?to={other_server}/small"
    async with Downloader([file_server, other_server], max_bytes=1024, timeout_s=5) as both:
        assert (await both.fetch(f"{file_server}/hop")).data == b"hello"
        assert (await both.fetch(to_other)).data == b"from elsewhere"
        with pytest.raises(DownloadError, match="too many times"):
            await both.fetch(f"{file_server}/loop")
    async with Downloader([file_server], max_bytes=1024, timeout_s=5) as one:
        for url in (to_other, f"{file_server}/redirect"):
            with pytest.raises(ForbiddenURLError, match="another site"):
                await one.fetch(url)


async def test_download_stops_at_the_size_limit_without_content_length(file_server: str) -> None:
    async with Downloader([file_server], max_bytes=1024 * 1024, timeout_s=5) as downloader:
        with pytest.raises(TooLargeError, match="over 1 MB"):
            await downloader.fetch(f"{file_server}/endless")
        with pytest.raises(TooLargeError, match="50 MB"):
            downloader.check_size(50 * 1024 * 1024)


async def test_download_has_a_total_timeout(file_server: str) -> None:
    async with Downloader([file_server], max_bytes=1024, timeout_s=0.3) as downloader:
        with pytest.raises(DownloadError, match="too long"):
            await downloader.fetch(f"{file_server}/slow")


# ------------------------------------------------------------------------ classify queue


def sized(n: int) -> bytes:
    """A picture known by its width."""
    return png(colour_image((200, 20, 20), (10 + n, 10)))


def widths(fake: FakeClassifier) -> list[list[int]]:
    return [[w - 10 for w, _ in batch] for batch in fake.batches]


@pytest.fixture
def fake(tmp_path: Path) -> FakeClassifier:
    return FakeClassifier(tmp_path / "model")


async def test_queue_hands_each_image_its_own_caption(fake: FakeClassifier) -> None:
    fake.gate.clear()  # hold the worker so that the three wait and go as one batch
    queue = ClassifyQueue(ModelHolder(fake), max_pending=50, threads=1, batch_size=8)  # type: ignore[arg-type]
    await queue.start()
    try:
        first = asyncio.create_task(queue.classify(sized(0), "rip and tear"))
        await asyncio.sleep(0.05)
        rest = [asyncio.create_task(queue.classify(sized(i + 1), c))
                for i, c in enumerate(["nook", None])]
        await asyncio.sleep(0.05)
        fake.gate.set()
        await asyncio.gather(first, *rest)
    finally:
        await queue.stop()
    pairs = [(w, cap) for batch, caps in zip(widths(fake), fake.seen_captions, strict=True)
             for w, cap in zip(batch, caps, strict=True)]
    assert pairs == [(0, "rip and tear"), (1, "nook"), (2, None)]


async def test_queue_classifies_in_order_and_batches_what_waits(fake: FakeClassifier) -> None:
    queue = ClassifyQueue(ModelHolder(fake), max_pending=50, threads=1, batch_size=4)  # type: ignore[arg-type]
    await queue.start()
    try:
        results = await asyncio.gather(*(queue.classify(sized(i)) for i in range(10)))
    finally:
        await queue.stop()
    assert all(r.prediction.label == "doom" and r.hashes is not None for r in results)
    assert [w for batch in widths(fake) for w in batch] == list(range(10))
    assert max(len(b) for b in fake.batches) == 4
    assert all(c is None for batch in fake.seen_captions for c in batch)  # none posted, none passed


async def test_a_full_queue_says_so_and_drops_nothing_it_accepted(fake: FakeClassifier) -> None:
    fake.gate.clear()
    queue = ClassifyQueue(ModelHolder(fake), max_pending=3, threads=1, batch_size=1)  # type: ignore[arg-type]
    await queue.start()
    try:
        first = asyncio.ensure_future(queue.classify(sized(0)))  # taken by the worker
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(queue.classify(sized(i + 1))) for i in range(3)]
        await asyncio.sleep(0)
        assert queue.is_full
        with pytest.raises(QueueFullError):
            await queue.classify(sized(9))
        fake.gate.set()
        done = await asyncio.gather(first, *waiting)
    finally:
        await queue.stop()
    assert len(done) == 4
    assert [b[0] for b in widths(fake)] == [0, 1, 2, 3]


async def test_a_bad_image_fails_only_itself(fake: FakeClassifier) -> None:
    queue = ClassifyQueue(ModelHolder(fake), max_pending=10, batch_size=8)  # type: ignore[arg-type]
    await queue.start()
    try:
        good, bad = await asyncio.gather(
            queue.classify(sized(1)), queue.classify(b"bad"), return_exceptions=True
        )
    finally:
        await queue.stop()
    assert isinstance(good, Classified) and isinstance(bad, ImageError)


def test_model_holder_swap_leaves_earlier_references_alone(tmp_path: Path) -> None:
    old, new = FakeClassifier(tmp_path / "a"), FakeClassifier(tmp_path / "b")
    holder = ModelHolder(old)  # type: ignore[arg-type]
    in_flight = holder.current
    assert holder.swap(new) is old  # type: ignore[arg-type]
    assert holder.current is new and in_flight is old


# ----------------------------------------------------------------------------- redaction


def test_redaction_covers_messages_args_and_tracebacks() -> None:
    token = "123:SECRET-token"
    stream = io.StringIO()
    logger = logging.getLogger("test_bot_core.redaction")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        configure_logging([token], logger=logger)
        logger.debug("Set Bot API URL: %s", f"https://api.telegram.org/bot{token}")
        logger.info("encoded https://x/bot123%3ASECRET-token/getMe")
        try:
            raise ValueError(f"bad url https://api.telegram.org/bot{token}/getFile")
        except ValueError:
            logger.warning("request failed", exc_info=True)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "SECRET" not in text and text.count(REDACTED) == 3
    assert RedactSecrets([]).filter(logging.makeLogRecord({"msg": "x"}))


async def test_waiting_images_are_bounded_by_bytes_too(fake: FakeClassifier) -> None:
    fake.gate.clear()
    big = sized(200)
    queue = ClassifyQueue(ModelHolder(fake), max_pending=50, threads=1, batch_size=1,  # type: ignore[arg-type]
                          max_pending_bytes=2 * len(big))
    await queue.start()
    try:
        first = asyncio.ensure_future(queue.classify(big))  # taken by the worker: not waiting
        await asyncio.sleep(0.05)
        waiting = [asyncio.ensure_future(queue.classify(big)) for _ in range(2)]
        await asyncio.sleep(0)
        assert queue.is_full
        with pytest.raises(QueueFullError, match="bytes"):
            await queue.classify(big)
        fake.gate.set()
        done = await asyncio.gather(first, *waiting)
        assert len(done) == 3 and not queue.is_full
        assert isinstance(await queue.classify(big), Classified)  # room again
    finally:
        fake.gate.set()
        await queue.stop()


async def test_a_cancelled_wait_is_not_classified(fake: FakeClassifier) -> None:
    fake.gate.clear()
    queue = ClassifyQueue(ModelHolder(fake), max_pending=10, threads=1, batch_size=8)  # type: ignore[arg-type]
    await queue.start()
    try:
        first = asyncio.ensure_future(queue.classify(sized(0)))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(queue.classify(sized(1)))
        kept = asyncio.ensure_future(queue.classify(sized(2)))
        await asyncio.sleep(0)
        gone.cancel()
        fake.gate.set()
        await asyncio.gather(first, kept)
    finally:
        await queue.stop()
    assert widths(fake) == [[0], [2]]
