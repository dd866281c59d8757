"""People's data and its lifetime (issue 23): forgetting a person, purging a chat, retention,
posts deleted on their platform, the chats the bot left, and the last message seen per channel.

Whatever removes posts goes through `_drop_posts`: their predictions, corrections on them,
fingerprints, repost marks and forwarded-copy records go with them (foreign keys cascade), and
an image no remaining post shows goes too, row and file. Files are unlinked after the commit:
a failed transaction never loses an image that is still referenced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.base import StorageBase, aware
from storage.models import (
    AuditRow,
    ChannelCursorRow,
    ChatPresenceRow,
    ChatSettingsRow,
    ChatTrustRow,
    CorrectionRow,
    FingerprintRow,
    HeldPostRow,
    ImageRow,
    LabelRow,
    PostRow,
    RepostMarkRow,
    RetrainJobRow,
)
from storage.validation import check_id, check_platform

log = logging.getLogger(__name__)

FORGOTTEN = "forgotten"  # stands for a person's id in the decisions kept after /forgetme


def _chat(platform: str, chat_id: str | int) -> tuple[str, str]:
    return check_platform(platform), check_id(chat_id, "chat id")


@dataclass(frozen=True)
class Removed:
    """What a forget, purge or retention run removed."""

    posts: int = 0
    images: int = 0  # image rows and their files (no other post showed them)
    anonymized: int = 0  # decisions kept without the person's id (corrections, marks, jobs)


class LifecycleAPI(StorageBase):
    # ------------------------------------------------------------------ removing posts

    async def _drop_posts(self, session: AsyncSession, post_ids: list[int]
                          ) -> tuple[int, list[Path]]:
        """Delete the posts, then every image they leave unshown; the files to unlink."""
        if not post_ids:
            return 0, []
        shas = set(await session.scalars(
            select(PostRow.image_sha256).where(PostRow.id.in_(post_ids))))
        await session.execute(delete(PostRow).where(PostRow.id.in_(post_ids)))
        orphans = (await session.execute(
            select(ImageRow.sha256, ImageRow.extension).where(
                ImageRow.sha256.in_(shas),
                ~exists().where(PostRow.image_sha256 == ImageRow.sha256)))).all()
        if orphans:
            await session.execute(
                delete(ImageRow).where(ImageRow.sha256.in_([sha for sha, _ in orphans])))
        return len(post_ids), [self._blobs.path_for(sha, ext) for sha, ext in orphans]

    async def _unlink(self, paths: Iterable[Path]) -> None:
        def unlink_all() -> None:
            for path in paths:
                try:
                    path.unlink(missing_ok=True)
                except OSError as exc:  # gone from the database; `memebot db gc` retries
                    log.warning("could not delete image file %s: %s", path, exc)

        await asyncio.to_thread(unlink_all)

    # ----------------------------------------------------------------------- a person

    async def forget_user(self, platform: str, user_id: str | int) -> Removed:
        """Delete every post of a person on `platform` (captions, names in fingerprints, the
        images only they posted); keep the decisions they made as an admin without their id."""
        platform = check_platform(platform)
        user = check_id(user_id, "user id")
        qualified = f"{platform}:{user}"
        async with self._db.write() as session:
            ids = list(await session.scalars(select(PostRow.id).where(
                PostRow.platform == platform, PostRow.author_id == user)))
            posts, files = await self._drop_posts(session, ids)
            # The audit log keeps what was done to their posts, not what the posts said.
            await session.execute(update(AuditRow).where(AuditRow.post_id.in_(ids)).values(
                detail=None))
            anonymized = 0
            for column in (CorrectionRow.admin_id, CorrectionRow.reviewed_by,
                           RepostMarkRow.admin_id, RetrainJobRow.requested_by,
                           LabelRow.added_by, AuditRow.actor_id, ChatTrustRow.granted_by,
                           HeldPostRow.decided_by):
                result = await session.execute(
                    update(column.class_).where(column == qualified).values(
                        {column.key: FORGOTTEN}))
                anonymized += int(getattr(result, "rowcount", 0) or 0)
            for row in await session.scalars(select(ChatSettingsRow).where(
                    ChatSettingsRow.platform == platform)):
                if user in row.admin_ids:
                    row.admin_ids = [a for a in row.admin_ids if a != user]
        await self._unlink(files)
        return Removed(posts, len(files), anonymized)

    # ------------------------------------------------------------------------- a chat

    async def purge_chat(self, platform: str, chat_id: str | int) -> Removed:
        """Delete everything kept about a chat: its posts (and images only it showed), its
        settings, whether the bot left it, its catch-up cursor."""
        platform, chat = _chat(platform, chat_id)
        async with self._db.write() as session:
            ids = list(await session.scalars(select(PostRow.id).where(
                PostRow.platform == platform, PostRow.chat_id == chat)))
            posts, files = await self._drop_posts(session, ids)
            await session.execute(update(AuditRow).where(AuditRow.post_id.in_(ids)).values(
                detail=None))
            for model in (ChatSettingsRow, ChatPresenceRow, ChannelCursorRow, ChatTrustRow):
                await session.execute(delete(model).where(
                    model.platform == platform, model.chat_id == chat))
        await self._unlink(files)
        return Removed(posts, len(files))

    async def set_chat_left(self, platform: str, chat_id: str | int, left: bool) -> None:
        """The bot left (or was removed from) a chat, or is back in it."""
        platform, chat = _chat(platform, chat_id)
        now = self._clock()
        async with self._db.write() as session:
            row = await session.get(ChatPresenceRow, (platform, chat))
            if row is None:
                if not left:
                    return
                row = ChatPresenceRow(platform=platform, chat_id=chat, updated_at=now)
                session.add(row)
            if left and row.left_at is None:
                row.left_at = now
            elif not left:
                row.left_at = None
            row.updated_at = now

    async def chats_left_before(self, cutoff: datetime) -> list[tuple[str, str]]:
        cutoff = aware(cutoff, "cutoff")
        async with self._db.read() as session:
            rows = await session.execute(select(ChatPresenceRow.platform, ChatPresenceRow.chat_id)
                                         .where(ChatPresenceRow.left_at < cutoff))
            return [(platform, chat) for platform, chat in rows]

    # ---------------------------------------------------------------------- retention

    async def remove_unlabelled_before(self, cutoff: datetime) -> Removed:
        """Retention: posts older than `cutoff` that no admin labelled go, with the images
        only they showed. Admin-labelled posts stay (they are the training set)."""
        cutoff = aware(cutoff, "cutoff")
        async with self._db.write() as session:
            ids = list(await session.scalars(select(PostRow.id).where(
                PostRow.created_at < cutoff,
                ~exists().where(CorrectionRow.post_id == PostRow.id))))
            posts, files = await self._drop_posts(session, ids)
        await self._unlink(files)
        return Removed(posts, len(files))

    # ------------------------------------------------------------- deleted on platform

    async def mark_deleted(self, platform: str, chat_id: str | int,
                           message_id: str | int) -> Removed:
        """A message was deleted on its platform: its posts are never named as an original
        again (fingerprints removed, caption cleared, `deleted_at` set); a post whose image no
        live post shows is removed with the image."""
        platform, chat = _chat(platform, chat_id)
        message = check_id(message_id, "message id")
        now = self._clock()
        async with self._db.write() as session:
            ids = list(await session.scalars(select(PostRow.id).where(
                PostRow.platform == platform, PostRow.chat_id == chat,
                PostRow.message_id == message)))
            if not ids:
                return Removed()
            await session.execute(delete(FingerprintRow).where(FingerprintRow.post_id.in_(ids)))
            await session.execute(update(PostRow).where(PostRow.id.in_(ids)).values(
                deleted_at=now, caption=None))
            # An image no live post shows any more goes, with every deleted post of it.
            live = PostRow.__table__.alias("live")
            shas = select(PostRow.image_sha256).where(PostRow.id.in_(ids))
            unshown = list(await session.scalars(select(PostRow.id).where(
                PostRow.image_sha256.in_(shas),
                ~exists().where(live.c.image_sha256 == PostRow.image_sha256,
                                live.c.deleted_at.is_(None)))))
            removed, files = await self._drop_posts(session, unshown)
        await self._unlink(files)
        return Removed(removed, len(files))

    # ----------------------------------------------------------------- catch-up cursor

    async def channel_cursor(self, platform: str, chat_id: str | int) -> str | None:
        platform, chat = _chat(platform, chat_id)
        async with self._db.read() as session:
            row = await session.get(ChannelCursorRow, (platform, chat))
            return row.last_message_id if row is not None else None

    async def channel_cursors(self, platform: str) -> dict[str, str]:
        platform = check_platform(platform)
        async with self._db.read() as session:
            rows = await session.execute(select(
                ChannelCursorRow.chat_id, ChannelCursorRow.last_message_id).where(
                ChannelCursorRow.platform == platform))
            return {chat: last for chat, last in rows}

    async def advance_channel_cursor(self, platform: str, chat_id: str | int,
                                     message_id: int) -> None:
        """Remember `message_id` as seen in the channel unless a newer one already is
        (Discord ids grow with time, so the larger id is the newer message)."""
        platform, chat = _chat(platform, chat_id)
        now = self._clock()
        async with self._db.write() as session:
            row = await session.get(ChannelCursorRow, (platform, chat))
            if row is None:
                session.add(ChannelCursorRow(platform=platform, chat_id=chat,
                                             last_message_id=str(message_id), updated_at=now))
            elif int(row.last_message_id) < message_id:
                row.last_message_id = str(message_id)
                row.updated_at = now

    async def count_posts_by(self, platform: str, user_id: str | int) -> int:
        platform = check_platform(platform)
        user = check_id(user_id, "user id")
        async with self._db.read() as session:
            return int(await session.scalar(select(func.count()).select_from(PostRow).where(
                PostRow.platform == platform, PostRow.author_id == user)) or 0)
