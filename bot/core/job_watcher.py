"""Tells the adapters when a retrain job ends, with the numbers (issue 6).

The trainer (another process, maybe another machine) only writes to the database: the job's
status, log tail and error, and the new model version with its metadata ("summary",
"promoted", "reason", ...). One watcher per bot process polls `Storage.list_jobs`; when a job
it has not announced yet is finished, it first serves a promoted model (`ModelSwitcher.sync`,
so "now serving" is true when admins read it), then hands a `JobReport` to every subscribed
adapter: Telegram posts it to the admin chat and replies to the admins who asked, the console
shows it on the models page.

Who asked (chat and message) is only known to the process that took the /retrain, and only
in memory: after a restart the report still reaches the admin chat, just not as a reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.core import formatting as fmt
from bot.core.messages import Actor, ChatRef
from bot.core.model_holder import ModelHolder
from bot.core.model_switch import ModelSwitcher
from storage.api import Storage
from storage.errors import StorageError
from storage.records import JobStatus, RetrainJob

log = logging.getLogger(__name__)

FINISHED = (JobStatus.succeeded, JobStatus.failed)
RECENT_JOBS = 20  # jobs looked at per poll (newest first)


@dataclass(frozen=True)
class RetrainRequest:
    """An admin's /retrain: where to answer when the job ends."""

    chat: ChatRef
    actor: Actor
    message_id: str | None = None


@dataclass(frozen=True)
class JobReport:
    job: RetrainJob
    text: str
    requests: tuple[RetrainRequest, ...]
    promoted: bool | None  # None: failed, or the model version says nothing
    serving: str


JobListener = Callable[[JobReport], Awaitable[None]]


class JobWatcher:
    def __init__(
        self,
        storage: Storage,
        switcher: ModelSwitcher,
        holder: ModelHolder,
        *,
        interval_s: float = 5.0,
    ) -> None:
        self._storage = storage
        self._switcher = switcher
        self._holder = holder
        self._interval_s = interval_s
        self._requests: dict[int, list[RetrainRequest]] = {}
        self._listeners: list[JobListener] = []
        self._announced: set[int] | None = None  # None until `start` took its snapshot
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    # ----------------------------------------------------------------------- registration

    def track(self, job_id: int, request: RetrainRequest) -> None:
        """Answer `request` when job `job_id` ends (a second /retrain joining it is added)."""
        requests = self._requests.setdefault(job_id, [])
        if request not in requests:
            requests.append(request)

    def subscribe(self, listener: JobListener) -> Callable[[], None]:
        """Call `listener` with every finished job's report; returns the unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    # -------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Remember the jobs that already ended (not announced again), then poll."""
        await self._snapshot()
        self._task = asyncio.create_task(self._loop(), name="job-watcher")

    async def stop(self) -> None:
        # Asked to stop between two checks: a cancel could land inside a database read.
        if self._task is not None:
            self._stopping.set()
            await self._task
            self._task = None

    async def _snapshot(self) -> None:
        jobs = await self._storage.list_jobs(limit=RECENT_JOBS * 5)
        self._announced = {job.id for job in jobs if job.status in FINISHED}

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval_s)
            if self._stopping.is_set():
                return
            try:
                await self.check()
            except (StorageError, OSError) as exc:  # the database blipped: next time
                log.warning("retrain job check failed: %s", exc)
            except Exception:  # never let the watcher die silently
                log.warning("retrain job check failed", exc_info=True)

    # ------------------------------------------------------------------------------ polls

    async def check(self) -> list[JobReport]:
        """One poll: report every job that ended since the last one (oldest first)."""
        async with self._lock:
            if self._announced is None:
                await self._snapshot()
            assert self._announced is not None
            reports = []
            for job in reversed(await self._storage.list_jobs(limit=RECENT_JOBS)):
                if job.status not in FINISHED or job.id in self._announced:
                    continue
                self._announced.add(job.id)
                report = await self.report(job, self._requests.pop(job.id, []))
                log.info("retrain job %d %s: %s", job.id, job.status.value,
                         report.text.splitlines()[0])
                reports.append(report)
        for report in reports:
            for listener in list(self._listeners):
                try:
                    await listener(report)
                except Exception as exc:  # one adapter failing must not silence the others
                    log.warning("could not announce retrain job %d: %s", report.job.id, exc,
                                exc_info=True)
        return reports

    async def report(
        self, job: RetrainJob, requests: list[RetrainRequest] | None = None
    ) -> JobReport:
        """The report of a finished job; serves a promoted model first."""
        summary: str | None = None
        promoted: bool | None = None
        by_chat: dict[str, int] | None = None
        pending = 0
        if job.status is JobStatus.succeeded:
            try:
                await self._switcher.sync()
            except Exception as exc:  # reported as "still serving" below
                log.warning("could not switch to the promoted model: %s", exc)
            if job.model_version:
                try:
                    metadata = (await self._storage.get_model_version(job.model_version)).metadata
                except StorageError:
                    metadata = {}
                raw_summary = metadata.get("summary")
                summary = raw_summary if isinstance(raw_summary, str) else None
                raw_promoted = metadata.get("promoted")
                promoted = raw_promoted if isinstance(raw_promoted, bool) else None
                raw_chats = metadata.get("corrections_by_chat")
                if isinstance(raw_chats, dict):
                    by_chat = {str(k): int(v) for k, v in raw_chats.items()
                               if isinstance(v, int)}
                    raw_pending = metadata.get("corrections_pending")
                    pending = raw_pending if isinstance(raw_pending, int) else 0
        serving = self._holder.current.version
        text = fmt.job_report_text(job, summary=summary, serving=serving, promoted=promoted,
                                   by_chat=by_chat, pending=pending)
        return JobReport(job, text, tuple(requests or ()), promoted, serving)
