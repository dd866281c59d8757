"""Classification off the event loop: a bounded FIFO in front of a small thread pool.

onnxruntime releases the GIL while it runs, so threads give real parallelism without the
memory cost of processes. Whatever is waiting when a worker frees up is classified as one
batch, which is what lets a burst of memes be answered quickly. Each file is decoded once, in
the worker: the classifier and the repost fingerprint both use that one decoded picture (a
clip: its chosen frames, decoded under the time limit of `inference.clips.ClipLimits`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from bot.core.model_holder import ModelHolder
from inference.classifier import Classifier, Prediction, PredictionError
from inference.clips import ClipLimits, MediaFacts, MediaKind, facts, load_media
from inference.errors import ImageError
from inference.fingerprint import ImageHashes, image_hashes

log = logging.getLogger(__name__)

STILL = MediaFacts(MediaKind.still)
REPOST_FRAMES = 3  # a clip's frames fingerprinted besides its poster


class QueueFullError(Exception):
    """More images are waiting than the queue holds; the caller tells the chat it is busy."""


class QueueClosedError(Exception):
    """The bot is shutting down."""


@dataclass(frozen=True)
class FramePrint:
    """One more frame of a clip as repost detection compares it."""

    hashes: ImageHashes
    embedding: np.ndarray


@dataclass(frozen=True)
class Classified:
    prediction: Prediction
    hashes: ImageHashes | None  # None: the picture could not be fingerprinted (a clip: its poster)
    media: MediaFacts = STILL
    frames: tuple[FramePrint, ...] = ()  # a clip's other frames, for repost detection


def frame_prints(frames: tuple[Image.Image, ...], embeddings: np.ndarray) -> tuple[FramePrint, ...]:
    """Fingerprints of up to REPOST_FRAMES of a clip's frames besides its poster (the first),
    spread over the clip: a screenshot of any moment of it should find it."""
    if len(frames) < 2:
        return ()
    picks = np.linspace(1, len(frames) - 1, min(REPOST_FRAMES, len(frames) - 1)).round()
    out = []
    for i in sorted({int(p) for p in picks}):
        hashes = _fingerprint(frames[i])
        if hashes is not None:
            out.append(FramePrint(hashes, embeddings[i]))
    return tuple(out)


@dataclass
class _Job:
    image: bytes
    caption: str | None
    future: asyncio.Future[Classified]


def _fingerprint(img: Image.Image) -> ImageHashes | None:
    try:
        return image_hashes(img)
    except ImageError as exc:  # the classifier read it: a hash failure must not cost it
        log.warning("image not fingerprinted: %s", exc)
        return None


def classify_decoded(
    classifier: Classifier, images: list[bytes], captions: list[str | None],
    limits: ClipLimits | None = None,
) -> list[Classified | ImageError]:
    """Decode each file once (a still, or a clip's chosen frames: `inference.clips`); classify
    the stills as one batch and each clip from its frames, and fingerprint them. A file that
    cannot be classified gets its error (a MediaError for a bad clip), without traceback: it
    would keep the decoded frames alive."""
    cfg = classifier.preprocess
    results: list[Classified | ImageError | None] = [None] * len(images)
    stills: list[tuple[int, Image.Image]] = []
    for i, data in enumerate(images):
        try:
            media = load_media(data, background=cfg.background, max_pixels=cfg.max_pixels,
                               limits=limits)
        except ImageError as exc:
            results[i] = type(exc)(str(exc))
            continue
        if not media.is_clip:
            stills.append((i, media.frames[0]))
            continue
        clip = classifier.predict_clip(media.frames, captions[i])
        results[i] = Classified(clip.prediction, _fingerprint(media.poster), facts(media),
                                frame_prints(media.frames, clip.frame_embeddings))
    predictions = classifier.predict(
        [img for _, img in stills], captions=[captions[i] for i, _ in stills]
    ) if stills else []
    for (i, img), prediction in zip(stills, predictions, strict=True):
        if isinstance(prediction, PredictionError):
            results[i] = ImageError(prediction.error)
            continue
        results[i] = Classified(prediction, _fingerprint(img))
    return [r if r is not None else ImageError("not classified") for r in results]


class ClassifyQueue:
    """`max_pending` images wait at most, holding `max_pending_bytes` at most between them (a
    count alone would let 256 waiting 20 MB files hold 5 GB); one image is always taken."""

    def __init__(
        self, holder: ModelHolder, *, max_pending: int, threads: int = 1, batch_size: int = 8,
        max_pending_bytes: int | None = None, clip_limits: ClipLimits | None = None,
    ) -> None:
        self._holder = holder
        self._clip_limits = clip_limits
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(maxsize=max_pending)
        self._max_bytes = max_pending_bytes
        self._pending_bytes = 0
        self._threads = threads
        self._batch_size = batch_size
        self._pool: ThreadPoolExecutor | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False
        self._progress_at = time.monotonic()  # a batch ended, or work arrived at an idle queue

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def stalled_s(self) -> float:
        """How long images have waited without any batch finishing (0 when none wait): the
        health check's "queue stuck"."""
        if self._queue.empty():
            return 0.0
        return time.monotonic() - self._progress_at

    @property
    def is_full(self) -> bool:
        # Before a download the next image's size is unknown: full once the budget is spent.
        spent = self._max_bytes is not None and self._pending_bytes >= self._max_bytes
        return self._queue.full() or (spent and not self._queue.empty())

    def _over_budget(self, size: int) -> bool:
        if self._max_bytes is None or self._queue.empty():
            return False
        return self._pending_bytes + size > self._max_bytes

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="classify")
        self._workers = [
            asyncio.create_task(self._work(), name=f"classify-{i}") for i in range(self._threads)
        ]

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Refuse new work, let queued images finish (up to the timeout), then stop."""
        self._closed = True
        try:
            await asyncio.wait_for(self._queue.join(), drain_timeout_s)
        except TimeoutError:
            log.warning("classify queue stopped with %d images unprocessed", self.pending)
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(QueueClosedError("the bot is shutting down"))
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    async def classify(self, image: bytes, caption: str | None = None) -> Classified:
        """Classify in arrival order (with the words posted beside the image, if any); raises
        QueueFullError, QueueClosedError or ImageError."""
        if self._closed:
            raise QueueClosedError("the bot is shutting down")
        if self._over_budget(len(image)):
            held = f"{self._pending_bytes:,}"
            raise QueueFullError(f"{self.pending} waiting images hold {held} bytes")
        future: asyncio.Future[Classified] = asyncio.get_running_loop().create_future()
        if self._queue.empty():
            self._progress_at = time.monotonic()
        try:
            self._queue.put_nowait(_Job(image, caption, future))
        except asyncio.QueueFull:
            raise QueueFullError(f"{self._queue.maxsize} images are already waiting") from None
        self._pending_bytes += len(image)
        return await future

    def _take(self, job: _Job) -> _Job:
        self._pending_bytes -= len(job.image)
        return job

    async def _work(self) -> None:
        while True:
            jobs = [self._take(await self._queue.get())]
            while len(jobs) < self._batch_size and not self._queue.empty():
                jobs.append(self._take(self._queue.get_nowait()))
            try:
                # Its own frame: a batch's images and results are freed before the next wait.
                await self._run_batch([job for job in jobs if not job.future.done()])
            finally:
                self._progress_at = time.monotonic()
                for _ in jobs:
                    self._queue.task_done()

    async def _run_batch(self, jobs: list[_Job]) -> None:
        if not jobs:  # every waiter was cancelled: nothing to decode
            return
        loop = asyncio.get_running_loop()
        try:
            classifier = self._holder.current
            images = [job.image for job in jobs]
            captions = [job.caption for job in jobs]
            results = await loop.run_in_executor(
                self._pool, functools.partial(classify_decoded, classifier, images, captions,
                                                self._clip_limits)
            )
            for job, result in zip(jobs, results, strict=True):
                if job.future.done():  # the waiter was cancelled meanwhile
                    continue
                if isinstance(result, ImageError):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)
        except Exception as exc:  # a broken model must fail these images, not the worker
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
