"""A chat that changed its id (a Telegram group upgraded to a supergroup): its settings, posts,
their repost fingerprints and its trust move to the new id once, in one transaction with the
audit row that records it; a second call (the platform's other migrate message, or a
redelivery) finds nothing left to move. The audit log keeps its rows as they were written."""

from __future__ import annotations

from sqlalchemy import and_, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.audit import BOT_ACTOR, add_audit, audit_row
from storage.base import StorageBase
from storage.errors import InvalidInputError
from storage.models import ChatSettingsRow, FingerprintRow, PostRow
from storage.records import AuditAction, ChatMove
from storage.trust import move_trust_row
from storage.validation import check_id, check_platform

# Settings that inherit when None: the old chat's value fills a gap in the new chat's row.
_INHERITING = ("enabled", "reply_mode", "confidence_threshold", "repost_mode",
               "repost_window_days", "on_topic_labels", "offtopic_action",
               "reaction_corrections")


class ChatMovesAPI(StorageBase):
    async def move_chat(self, platform: str, old_chat_id: str | int, new_chat_id: str | int
                        ) -> ChatMove:
        platform = check_platform(platform)
        old, new = check_id(old_chat_id, "chat id"), check_id(new_chat_id, "chat id")
        if old == new:
            raise InvalidInputError("a chat cannot move to its own id")
        async with self._db.write() as session:
            await self._db.serialize(session, f"move-chat:{platform}:{old}")
            moved_settings = await self._move_settings(session, platform, old, new)
            clash = aliased(PostRow)
            taken = exists().where(and_(
                clash.platform == platform, clash.chat_id == new,
                clash.message_id == PostRow.message_id,
                clash.attachment_index == PostRow.attachment_index,
            ))
            posts = await session.execute(
                update(PostRow)
                .where(PostRow.platform == platform, PostRow.chat_id == old, ~taken)
                .values(chat_id=new)
                .execution_options(synchronize_session=False)
            )
            fingerprints = await session.execute(
                update(FingerprintRow)
                .where(FingerprintRow.platform == platform, FingerprintRow.chat_id == old,
                       FingerprintRow.post_id.in_(
                           select(PostRow.id).where(PostRow.platform == platform,
                                                    PostRow.chat_id == new)))
                .values(chat_id=new)
                .execution_options(synchronize_session=False)
            )
            left_count = await session.scalar(
                select(func.count(PostRow.id)).where(PostRow.platform == platform,
                                                     PostRow.chat_id == old))
            trust = await move_trust_row(session, platform, old, new, self._clock())
            moved = ChatMove(moved_settings, int(getattr(posts, "rowcount", 0) or 0),
                             int(getattr(fingerprints, "rowcount", 0) or 0),
                             int(left_count or 0), trust)
            if moved.settings or moved.posts or moved.trust:
                await add_audit(session, audit_row(
                    AuditAction.move_chat.value, actor_id=BOT_ACTOR, at=self._clock(),
                    platform=platform, chat_id=new, from_value=old, to_value=new,
                    detail=(f"settings {'moved' if moved.settings else 'none'}, "
                            f"{moved.posts} posts, {moved.fingerprints} fingerprints, "
                            f"trust {'moved' if moved.trust else 'none'}, "
                            f"{moved.left_behind} left"),
                ))
            return moved

    async def _move_settings(self, session: AsyncSession, platform: str, old: str, new: str
                             ) -> bool:
        source = await session.get(ChatSettingsRow, (platform, old), with_for_update=True)
        if source is None:
            return False
        target = await session.get(ChatSettingsRow, (platform, new), with_for_update=True)
        if target is None:
            target = ChatSettingsRow(
                platform=platform, chat_id=new, enabled=source.enabled,
                admin_ids=list(source.admin_ids), updated_at=self._clock(),
            )
            session.add(target)
        # The new chat's own choices (made after the move began) win; the old fill the gaps.
        for name in _INHERITING:
            if getattr(target, name) is None:
                setattr(target, name, getattr(source, name))
        target.admin_ids = sorted(set(target.admin_ids or ()) | set(source.admin_ids or ()))
        target.sort_places = {**(source.sort_places or {}), **(target.sort_places or {})}
        target.updated_at = self._clock()
        await session.flush()
        await session.execute(delete(ChatSettingsRow).where(
            ChatSettingsRow.platform == platform, ChatSettingsRow.chat_id == old))
        return True
