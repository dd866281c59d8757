"""Which chats an operator trusts: a trusted chat's corrections train; a delegated chat's admins
may also retrain, roll back and change labels. Every change is audited in its transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import add_audit, audit_row
from storage.base import StorageBase
from storage.errors import InvalidInputError
from storage.models import ChatTrustRow
from storage.records import AuditAction, ChatTrust, TrustLevel
from storage.validation import check_id, check_platform


def _trust(row: ChatTrustRow) -> ChatTrust:
    return ChatTrust(row.platform, row.chat_id, TrustLevel(row.level), row.granted_by,
                     row.updated_at)


class TrustAPI(StorageBase):
    async def chat_trust(self, platform: str, chat_id: str | int) -> ChatTrust:
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        async with self._db.read() as session:
            row = await session.get(ChatTrustRow, (platform, chat))
            return _trust(row) if row else ChatTrust(platform, chat, TrustLevel.untrusted,
                                                     None, None)

    async def set_chat_trust(
        self, platform: str, chat_id: str | int, level: TrustLevel | str, *, by: str | int
    ) -> ChatTrust:
        """Set a chat's level (untrusted removes it); returns the level it had before."""
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        who = check_id(by, "operator id")
        try:
            wanted = TrustLevel(level)
        except ValueError:
            raise InvalidInputError(
                f"trust level must be one of {', '.join(t.value for t in TrustLevel)}"
            ) from None
        async with self._db.write() as session:
            row = await session.scalar(
                select(ChatTrustRow)
                .where(ChatTrustRow.platform == platform, ChatTrustRow.chat_id == chat)
                .with_for_update()
            )
            before = _trust(row) if row else ChatTrust(platform, chat, TrustLevel.untrusted,
                                                       None, None)
            if before.level is wanted:
                return before
            now = self._clock()
            if wanted is TrustLevel.untrusted:
                await session.delete(row)
            elif row is None:
                session.add(ChatTrustRow(platform=platform, chat_id=chat, level=wanted.value,
                                         granted_by=who, updated_at=now))
            else:
                row.level, row.granted_by, row.updated_at = wanted.value, who, now
            await add_audit(session, audit_row(
                AuditAction.trust.value, actor_id=who, at=now, platform=platform, chat_id=chat,
                from_value=before.level.value, to_value=wanted.value,
            ))
            return before

    async def trusted_chats(self) -> list[ChatTrust]:
        async with self._db.read() as session:
            rows = await session.scalars(
                select(ChatTrustRow).order_by(ChatTrustRow.platform, ChatTrustRow.chat_id)
            )
            return [_trust(row) for row in rows]

    async def move_chat_trust(self, platform: str, old_chat_id: str | int,
                              new_chat_id: str | int) -> bool:
        """A chat got a new id (a Telegram group upgraded to a supergroup): its trust moves,
        once (False when there was nothing to move or the new id has its own)."""
        platform = check_platform(platform)
        old = check_id(old_chat_id, "chat id")
        new = check_id(new_chat_id, "chat id")
        async with self._db.write() as session:
            return await move_trust_row(session, platform, old, new, self._clock())


async def move_trust_row(session: AsyncSession, platform: str, old: str, new: str,
                         now: datetime) -> bool:
    """Move the chat's trust row to its new id in the caller's transaction (checked ids)."""
    row = await session.get(ChatTrustRow, (platform, old), with_for_update=True)
    if row is None or await session.get(ChatTrustRow, (platform, new)) is not None:
        return False
    session.add(ChatTrustRow(platform=platform, chat_id=new, level=row.level,
                             granted_by=row.granted_by, updated_at=now))
    await session.execute(delete(ChatTrustRow).where(
        ChatTrustRow.platform == platform, ChatTrustRow.chat_id == old))
    return True
