"""Off-topic memes held for the admins: removed from their chat, kept here until an admin
allows (re-posts) or keeps them removed. A decision is taken once; none is a training label.
The hold and the decision are audited in their transactions."""

from __future__ import annotations

from sqlalchemy import select, update

from storage import convert
from storage.audit import BOT_ACTOR, add_audit, audit_row
from storage.base import StorageBase, get_row
from storage.errors import InvalidInputError
from storage.models import HeldPostRow, ImageRow, PostRow
from storage.records import AuditAction, HeldPost, HoldState, PendingHold
from storage.validation import check_id


def _held(row: HeldPostRow) -> HeldPost:
    return HeldPost(row.post_id, HoldState(row.state), row.author_name, row.decided_by,
                    row.created_at, row.decided_at)


class HoldsAPI(StorageBase):
    async def hold_post(self, post_id: int, author_name: str, *, detail: str | None = None
                        ) -> HeldPost:
        """Record that the post was removed and waits for the admins (again: as it was)."""
        name = (author_name or "a member")[:128]
        async with self._db.write() as session:
            post = await get_row(session, PostRow, post_id, "post")
            now = self._clock()
            inserted = await session.execute(self._db.insert_ignore(HeldPostRow).values(
                post_id=post_id, state=HoldState.held.value, author_name=name, created_at=now,
            ))
            if getattr(inserted, "rowcount", 0) == 1:
                await add_audit(session, audit_row(
                    AuditAction.hold.value, actor_id=BOT_ACTOR, at=now, platform=post.platform,
                    chat_id=post.chat_id, post_id=post_id, to_value=HoldState.held.value,
                    detail=detail,
                ))
            row = await session.get(HeldPostRow, post_id)
            assert row is not None
            return _held(row)

    async def held_post(self, post_id: int) -> HeldPost | None:
        async with self._db.read() as session:
            row = await session.get(HeldPostRow, post_id)
            return _held(row) if row else None

    async def pending_holds(self, *, limit: int = 100) -> list[PendingHold]:
        """Held posts no admin decided yet, oldest first (the console's desk lists them)."""
        if not 1 <= limit <= 1_000:
            raise InvalidInputError("limit must be 1-1000")
        async with self._db.read() as session:
            rows = (await session.execute(
                select(HeldPostRow, PostRow, ImageRow)
                .join(PostRow, PostRow.id == HeldPostRow.post_id)
                .join(ImageRow, ImageRow.sha256 == PostRow.image_sha256)
                .where(HeldPostRow.state == HoldState.held.value)
                .order_by(HeldPostRow.created_at, HeldPostRow.post_id)
                .limit(limit)
            )).all()
            return [PendingHold(_held(hold), convert.post(post, image, self._blobs))
                    for hold, post, image in rows]

    async def decide_hold(self, post_id: int, state: HoldState, admin_id: str
                          ) -> HeldPost | None:
        """Allow or keep a held post; None when it is not held (any more): the first admin's
        decision stands, a second press changes nothing."""
        if state is HoldState.held:
            raise ValueError("a decision is allowed or kept")
        admin = check_id(admin_id, "admin id")
        async with self._db.write() as session:
            now = self._clock()
            result = await session.execute(
                update(HeldPostRow)
                .where(HeldPostRow.post_id == post_id, HeldPostRow.state == HoldState.held.value)
                .values(state=state.value, decided_by=admin, decided_at=now)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            row = await session.get(HeldPostRow, post_id, populate_existing=True)
            post = await session.get(PostRow, post_id)
            assert row is not None and post is not None
            action = AuditAction.allow if state is HoldState.allowed else AuditAction.keep
            await add_audit(session, audit_row(
                action.value, actor_id=admin, at=now, platform=post.platform,
                chat_id=post.chat_id, post_id=post_id, from_value=HoldState.held.value,
                to_value=state.value,
            ))
            return _held(row)
