"""The periodic part of people's data (issue 23): chats the bot left long enough ago are
purged, and posts past the retention no admin labelled are deleted. One pass at start, then
every `lifecycle_interval_s`; several bot processes may run it (every step is idempotent)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage.api import Storage
from storage.errors import StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LifecyclePolicy:
    retention_days: int | None
    purge_after_leave_days: int | None
    interval_s: float = 3600.0


async def lifecycle_pass(storage: Storage, policy: LifecyclePolicy,
                         now: datetime | None = None) -> tuple[int, int]:
    """One pass: (chats purged, posts deleted by retention)."""
    now = now or datetime.now(UTC)
    purged = 0
    if policy.purge_after_leave_days is not None:
        cutoff = now - timedelta(days=policy.purge_after_leave_days)
        for platform, chat_id in await storage.chats_left_before(cutoff):
            removed = await storage.purge_chat(platform, chat_id)
            purged += 1
            log.info("purged %s chat %s (left more than %d days ago): %d posts, %d images",
                     platform, chat_id, policy.purge_after_leave_days, removed.posts,
                     removed.images)
    expired = 0
    if policy.retention_days is not None:
        removed = await storage.remove_unlabelled_before(
            now - timedelta(days=policy.retention_days))
        expired = removed.posts
        if expired:
            log.info("retention: deleted %d posts older than %d days (%d images)", expired,
                     policy.retention_days, removed.images)
    return purged, expired


async def run_lifecycle(storage: Storage, policy: LifecyclePolicy, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await lifecycle_pass(storage, policy)
        except (StorageError, OSError) as exc:  # the database blipped: next time
            log.warning("retention and purges failed: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), policy.interval_s)
