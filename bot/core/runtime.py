"""Everything one bot process shares between its adapters: storage, the served model, the
classification queue, the downloader, the retrain job watcher and the service on top of them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from bot.core.classify_queue import ClassifyQueue
from bot.core.downloads import Downloader
from bot.core.governance import operators_of
from bot.core.job_watcher import JobWatcher
from bot.core.lifecycle import LifecyclePolicy, run_lifecycle
from bot.core.model_holder import ModelHolder
from bot.core.model_switch import (
    ClassifierLoader,
    ModelSwitcher,
    follow_active_model,
    load_classifier,
)
from bot.core.moderation import ModerationPolicy
from bot.core.reposts import RepostThresholds
from bot.core.service import MemeService, ServicePolicy
from bot.core.trainer_process import TrainerStatus
from bot.errors import SwitchError
from bot.observability.health import Readiness
from bot.observability.metrics import BotMetrics
from config.settings import Settings
from inference.classifier import Classifier
from inference.clip_records import clip_limits
from storage import backup
from storage.api import Storage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CoreRuntime:
    settings: Settings
    storage: Storage
    models: ModelHolder
    queue: ClassifyQueue
    downloader: Downloader
    switcher: ModelSwitcher
    service: MemeService
    jobs: JobWatcher
    trainer: TrainerStatus  # updated by the trainer supervisor (`bot.process.serve`)
    metrics: BotMetrics
    readiness: Readiness  # adapters say whether their platform is connected


async def _first_model(
    settings: Settings,
    storage: Storage,
    loader: ClassifierLoader,
    preloaded: asyncio.Task[Classifier],
) -> Classifier:
    """Storage's active version if it loads (a /rollback survives restarts), else model_dir.

    `preloaded` (model_dir, loading since before storage opened) is usually the answer, so
    the two slow start-up steps overlap.
    """
    active = await storage.active_model_version()
    if active is not None:
        try:
            fallback = await preloaded
            if fallback.version == active.version:
                return fallback
        except SwitchError:
            pass
        try:
            return await load_classifier(loader, Path(active.path))
        except SwitchError as exc:
            log.warning("active model %s does not load (%s); using %s",
                        active.version, exc, settings.model_dir)
    return await preloaded


async def _stop_task(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    await task


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    file_origins: Iterable[str],
    loader: ClassifierLoader | None = None,
) -> AsyncIterator[CoreRuntime]:
    """Open everything; on exit, finish queued classifications and close in reverse order."""
    loader = loader or partial(Classifier, threads=None, read_text=settings.read_text)
    async with AsyncExitStack() as stack:
        preloaded = asyncio.create_task(load_classifier(loader, settings.model_dir))
        try:
            storage = await Storage.open(
                settings.effective_database_url,
                settings.data_dir / "blobs",
                dataset_dir=settings.dataset_dir,
                before_upgrade=backup.migration_hook(
                    backup.Place(settings.effective_database_url, settings.data_dir / "blobs",
                                 settings.model_dir),
                    settings.data_dir / "backups", settings.backups_kept),
            )
        except BaseException:
            preloaded.cancel()
            await asyncio.gather(preloaded, return_exceptions=True)
            raise
        stack.push_async_callback(storage.close)
        holder = ModelHolder(await _first_model(settings, storage, loader, preloaded))
        switcher = ModelSwitcher(storage, holder, loader)
        await switcher.register_current()
        queue = ClassifyQueue(
            holder,
            max_pending=settings.queue_size,
            max_pending_bytes=settings.queue_max_bytes,
            threads=settings.inference_threads,
            batch_size=settings.classify_batch_size,
            clip_limits=clip_limits(settings),
        )
        await queue.start()
        stack.push_async_callback(queue.stop)
        downloader = Downloader(
            file_origins,
            max_bytes=settings.max_download_bytes,
            timeout_s=settings.download_timeout_s,
        )
        stack.push_async_callback(downloader.close)
        jobs = JobWatcher(storage, switcher, holder, interval_s=settings.job_check_interval_s)
        await jobs.start()
        stack.push_async_callback(jobs.stop)
        # The one poller of this process for a model a trainer promoted (any adapter serves it).
        stop_following = asyncio.Event()
        following = asyncio.create_task(follow_active_model(
            switcher, settings.model_check_interval_s, stop_following, who="bot"
        ), name="follow-active-model")
        stack.push_async_callback(_stop_task, following, stop_following)
        stop_lifecycle = asyncio.Event()
        lifecycle = asyncio.create_task(run_lifecycle(storage, LifecyclePolicy(
            settings.retention_days, settings.purge_after_leave_days,
            settings.lifecycle_interval_s), stop_lifecycle), name="lifecycle")
        stack.push_async_callback(_stop_task, lifecycle, stop_lifecycle)
        trainer = TrainerStatus(
            settings.effective_trainer, health_file=Path(settings.data_dir) / "trainer.alive"
        )
        policy = ServicePolicy(
            reply_mode=settings.reply_mode,
            confidence_threshold=settings.confidence_threshold,
            super_admins=operators_of(settings.super_admins),
            reaction_labels=dict(settings.reaction_labels),
            admin_chats=settings.admin_chats(),
            retention_days=settings.retention_days,
            purge_after_leave_days=settings.purge_after_leave_days,
            quiet_after=(timedelta(minutes=settings.quiet_after_minutes)
                         if settings.quiet_after_minutes is not None else None),
            moderation=ModerationPolicy(
                repost_mode=settings.repost_mode,
                repost_window_days=settings.repost_window_days,
                thresholds=RepostThresholds(
                    settings.repost_hash_distance, settings.repost_cosine,
                    settings.repost_checked_cosine,
                ),
            ),
        )
        metrics = BotMetrics(lambda: queue.pending, lambda: holder.current.version)
        stack.callback(jobs.subscribe(metrics.job_report))
        readiness = Readiness(storage, holder, queue, queue_stall_s=settings.health_queue_stall_s)
        service = MemeService(
            storage=storage,
            models=holder,
            queue=queue,
            downloader=downloader,
            switcher=switcher,
            policy=policy,
            jobs=jobs,
            trainer=trainer,
            metrics=metrics,
        )
        log.info("serving model %s from %s; database %s",
                 holder.current.version, holder.current.folder, storage.url)
        yield CoreRuntime(
            settings, storage, holder, queue, downloader, switcher, service, jobs, trainer,
            metrics, readiness,
        )
