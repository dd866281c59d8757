"""`memebot trainer`: claims retrain jobs from storage, retrains, registers and promotes.

Safety (issue 6):
- the retrain runs in a worker thread while the event loop heartbeats the job with the log
  tail, so a live trainer never looks stale;
- on start, running jobs of a trainer that died (same host, process gone; or no heartbeat for
  `stale_after`) are marked failed, and half-written `.tmp-*` model folders are removed;
- a model folder only appears under its final name once complete and verified, models/ACTIVE
  is replaced atomically, and only after storage says the new version is active;
- one trainer at a time writes a model directory (an flock on models/.trainer.lock).

torch is only imported when a job runs (`memebot run` imports this module's CLI).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inference.metadata import (
    ACTIVE_POINTER,
    FP32_FILE,
    INT8_FILE,
    META_FILE,
    ModelMeta,
    file_sha256,
    resolve_model_dir,
)
from storage.records import JobStatus, ModelStatus, RetrainJob

if TYPE_CHECKING:
    from config.settings import Settings
    from model_training.retrain import RetrainConfig, RetrainResult
    from storage.api import Storage

log = logging.getLogger(__name__)

LOCK_FILE = ".trainer.lock"
JOB_KINDS = ("fast", "full")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def served_file(folder: Path) -> Path:
    """The ONNX file the bot's Classifier serves by default (int8 when present)."""
    int8 = Path(folder) / INT8_FILE
    return int8 if int8.is_file() else Path(folder) / FP32_FILE


def write_active_pointer(model_dir: Path, version: str) -> None:
    pointer = Path(model_dir) / ACTIVE_POINTER
    tmp = pointer.with_name(f"{ACTIVE_POINTER}.{os.getpid()}.tmp")
    tmp.write_text(version + "\n")
    os.replace(tmp, pointer)


class LogTail(logging.Handler):
    """Keeps the last lines the retrain logged, for heartbeats and the job record."""

    def __init__(self, lines: int = 60) -> None:
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
        )
        self._lock2 = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a broken log call must not break the job
            return
        with self._lock2:
            self.lines.append(line)

    def text(self) -> str:
        with self._lock2:
            return "\n".join(self.lines)


@dataclass
class JobOutcome:
    job: RetrainJob
    result: RetrainResult | None = None
    error: str | None = None


@dataclass
class TrainerOptions:
    model_dir: Path
    dataset_dir: Path | None
    cache_dir: Path
    min_examples_new_label: int = 5
    worker: str = field(default_factory=worker_name)
    poll_interval_s: float = 5.0
    heartbeat_s: float = 10.0
    stale_after: timedelta = timedelta(minutes=2)
    threads: int | None = None
    retrain_overrides: dict[str, Any] = field(default_factory=dict)  # RetrainConfig fields
    health_file: Path | None = None  # touched at every poll and heartbeat (container health check)

    @classmethod
    def from_settings(cls, settings: Settings, **kw: Any) -> TrainerOptions:
        return cls(
            model_dir=Path(settings.model_dir),
            dataset_dir=settings.dataset_dir,
            cache_dir=Path(settings.data_dir) / "cache",
            min_examples_new_label=settings.min_examples_new_label,
            health_file=Path(settings.data_dir) / "trainer.alive",
            **kw,
        )


class Trainer:
    def __init__(self, storage: Storage, options: TrainerOptions) -> None:
        self.storage = storage
        self.opts = options
        self._lock_fh: Any = None

    # ------------------------------------------------------------------ recovery

    async def recover(self) -> list[RetrainJob]:
        """Fail the jobs of trainers that died; remove half-written model folders."""
        failed = list(await self.storage.fail_stale_jobs(older_than=self.opts.stale_after))
        host = socket.gethostname()
        for job in await self.storage.list_jobs(limit=200):
            if job.status != JobStatus.running or not job.worker:
                continue
            who_host, _, pid_text = job.worker.rpartition(":")
            if who_host != host or not pid_text.isdigit():
                continue
            pid = int(pid_text)
            # pid == ours: a restarted container reuses its pid, and we have not claimed anything
            # yet.
            if pid == os.getpid() or not _pid_alive(pid):
                with contextlib.suppress(Exception):
                    failed.append(
                        await self.storage.finish_job(
                            job.id,
                            succeeded=False,
                            log_tail=job.log_tail,
                            error=f"trainer {job.worker} died while running this job; marked "
                            f"failed by {self.opts.worker} on restart",
                        )
                    )
        for job in failed:
            log.warning("retrain job %d was left running by %s: marked failed", job.id, job.worker)
        if self._try_lock():
            try:
                from model_training.retrain import (
                    cleanup_temp_folders,
                )  # torch: only in the trainer

                for p in cleanup_temp_folders(self.opts.model_dir):
                    log.warning("removed half-written model folder %s", p)
            finally:
                self._unlock()
        return failed

    def _try_lock(self, blocking: bool = False) -> bool:
        path = Path(self.opts.model_dir)
        path.mkdir(parents=True, exist_ok=True)
        fh = (path / LOCK_FILE).open("a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.close()
            return False
        self._lock_fh = fh
        return True

    def _unlock(self) -> None:
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None

    # ------------------------------------------------------------------ active model

    async def active_folder(self) -> Path:
        """The version storage says is active (a /rollback counts), else models/ACTIVE."""
        active = await self.storage.active_model_version()
        if active is not None:
            for candidate in (Path(active.path), Path(self.opts.model_dir) / active.version):
                if (candidate / META_FILE).is_file():
                    return candidate
            log.warning(
                "active model %s not found at %s: using %s",
                active.version,
                active.path,
                self.opts.model_dir,
            )
        folder = resolve_model_dir(Path(self.opts.model_dir))
        version = ModelMeta.load(folder).version
        if active is None or active.version != version:
            await self.storage.register_model_version(
                version,
                path=str(folder.resolve()),
                sha256=file_sha256(served_file(folder)),
                metadata={"registered_by": "trainer"},
            )
            if active is None:
                await self.storage.activate_model_version(version)
        return folder

    # ------------------------------------------------------------------ jobs

    def retrain_config(self, kind: str) -> RetrainConfig:
        from model_training.retrain import RetrainConfig

        cfg = RetrainConfig(
            model_dir=Path(self.opts.model_dir),
            dataset_dir=self.opts.dataset_dir,
            cache_dir=Path(self.opts.cache_dir),
            kind=kind,
            min_examples_new_label=self.opts.min_examples_new_label,
            threads=self.opts.threads,
        )
        for k, v in self.opts.retrain_overrides.items():
            setattr(cfg, k, v)
        return cfg

    async def process_one(self) -> JobOutcome | None:
        """Claim the oldest queued job and run it; None when the queue is empty."""
        job = await self.storage.claim_next_job(self.opts.worker, kinds=JOB_KINDS)
        if job is None:
            return None
        return await self.run_job(job)

    async def run_job(self, job: RetrainJob) -> JobOutcome:
        from model_training.retrain import corrections_from_examples, retrain

        tail = LogTail()
        watched = [logging.getLogger("model_training"), logging.getLogger("storage")]
        for lg in watched:
            lg.addHandler(tail)
        old_levels = [lg.level for lg in watched]
        for lg in watched:
            if lg.getEffectiveLevel() > logging.INFO:
                lg.setLevel(logging.INFO)
        beat = asyncio.create_task(self._heartbeat(job.id, tail))
        version: str | None = None
        try:
            log.info(
                "retrain job %d (%s, requested by %s) started by %s",
                job.id,
                job.kind,
                job.requested_by,
                self.opts.worker,
            )
            locked = await asyncio.to_thread(self._try_lock, True)
            assert locked
            active = await self.active_folder()
            training = await self.storage.training_set()
            # From here on an admin can no longer undo what this job learns from.
            await self.storage.mark_corrections_trained(
                job.id, [e.correction_id for e in training.examples if e.correction_id]
            )
            by_chat = training.per_chat()
            log.info("corrections by chat: %s; %d from chats not trusted wait for review",
                     ", ".join(f"{c} {n}" for c, n in by_chat.items()) or "none",
                     training.pending)
            corrections, _missing = await asyncio.to_thread(
                corrections_from_examples, training.examples, self.opts.cache_dir / "clip_frames"
            )
            cfg = self.retrain_config(job.kind)
            if cfg.dataset_dir is None and training.base_dataset_dir is not None:
                cfg.dataset_dir = training.base_dataset_dir
            result = await asyncio.to_thread(retrain, active, corrections, cfg)
            version = result.version
            await self.storage.register_model_version(
                result.version,
                path=str(result.path.resolve()),
                sha256=await asyncio.to_thread(file_sha256, served_file(result.path)),
                metadata={**_json_safe(result.to_dict()), "corrections_by_chat": by_chat,
                          "corrections_pending": training.pending},
            )
            await asyncio.to_thread(write_quick_report, result.path, cfg)
            if result.promoted:
                await self.storage.activate_model_version(result.version)
                write_active_pointer(self.opts.model_dir, result.version)
                log.info("model %s promoted and active", result.version)
            else:
                log.info("model %s kept as candidate: %s", result.version, result.reason)
            beat.cancel()
            finished = await self.storage.finish_job(
                job.id,
                succeeded=True,
                log_tail=tail.text() + "\n\n" + result.summary(),
                model_version=result.version,
            )
            return JobOutcome(job=finished, result=result)
        except Exception as exc:
            beat.cancel()
            error = f"{type(exc).__name__}: {exc}"
            log.warning("retrain job %d failed: %s", job.id, error, exc_info=True)
            if version is not None:
                with contextlib.suppress(Exception):
                    mv = await self.storage.get_model_version(version)
                    if mv.status == ModelStatus.candidate:
                        await self.storage.mark_model_version_failed(version, reason=error)
            finished = await self.storage.finish_job(
                job.id, succeeded=False, log_tail=tail.text(), error=error
            )
            return JobOutcome(job=finished, error=error)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await beat
            self._unlock()
            for lg, lvl in zip(watched, old_levels, strict=False):
                lg.removeHandler(tail)
                lg.setLevel(lvl)

    def touch(self) -> None:
        if self.opts.health_file is not None:
            with contextlib.suppress(OSError):
                self.opts.health_file.parent.mkdir(parents=True, exist_ok=True)
                self.opts.health_file.touch()

    async def _heartbeat(self, job_id: int, tail: LogTail) -> None:
        while True:
            await asyncio.sleep(self.opts.heartbeat_s)
            self.touch()
            try:
                await self.storage.heartbeat_job(job_id, log_tail=tail.text())
            except Exception as exc:  # the database blipped: try again next beat
                log.warning("heartbeat for job %d failed: %s", job_id, exc)

    async def run(
        self, *, once: bool = False, stop: asyncio.Event | None = None
    ) -> list[JobOutcome]:
        """Recover, then process jobs: one and return (`once`), or poll until `stop` is set."""
        stop = stop or asyncio.Event()
        await self.recover()
        outcomes: list[JobOutcome] = []
        while not stop.is_set():
            self.touch()
            outcome = await self.process_one()
            if outcome is not None:
                outcomes.append(outcome)
                log.info("job %d: %s", outcome.job.id, outcome.job.status)
            if once:
                break
            if outcome is None:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.opts.poll_interval_s)
                await self.storage.fail_stale_jobs(older_than=self.opts.stale_after)
        return outcomes


def write_quick_report(folder: Path, cfg: RetrainConfig) -> None:
    """The model report beside a retrained version, cut to what a retrain can afford (the job
    waits for it); `memebot report --model VERSION` writes the full one. Never fails the job."""
    from model_training.report.build import build_report
    from model_training.report.context import ReportOptions

    why = (
        "Written right after a retrain, so the costly parts were cut: 50 label permutations "
        "instead of "
        "200, no Grad-CAM, no leave-one-source-out refits. `memebot report --model "
        f"{folder.name}` writes the full report."
    )
    try:
        result = build_report(
            folder,
            dataset_dir=cfg.dataset_dir,
            cache_dir=cfg.cache_dir,
            options=ReportOptions.quick(why),
        )
        log.info("report written: %s (%.0f s)", result.path, result.seconds)
    except Exception as exc:  # the model is fine without its report; say why there is none
        log.warning("no report for %s: %s: %s", folder.name, type(exc).__name__, exc)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


async def run_trainer(
    settings: Settings, *, once: bool = False, stop: asyncio.Event | None = None, **options: Any
) -> list[JobOutcome]:
    """Open storage from settings and run the job loop (the `memebot trainer` command)."""
    from storage.api import Storage

    storage = await Storage.open(
        settings.effective_database_url,
        Path(settings.data_dir) / "blobs",
        dataset_dir=settings.dataset_dir,
    )
    try:
        trainer = Trainer(storage, TrainerOptions.from_settings(settings, **options))
        return await trainer.run(once=once, stop=stop)
    finally:
        await storage.close()
