"""Repost detection and sorting: fingerprints per post (searched per chat through indexed hash
quarters), admins' repost marks, and the one forwarded copy of each post."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, select, union, update
from sqlalchemy.orm import InstrumentedAttribute

from storage.base import StorageBase, aware, get_row
from storage.errors import InvalidInputError
from storage.models import FingerprintRow, ForwardRow, PostRow, RepostMarkRow
from storage.records import (
    Fingerprint,
    Forward,
    RepostMark,
    RepostMarkKind,
    StoredFingerprint,
)
from storage.validation import check_id, check_label, check_platform

BANDS = 4
BAND_BITS = 16
MAX_CANDIDATES = 1_000  # a flood of identical hashes (blank images) must not flood the check
MAX_AUTHOR_NAME = 128
MAX_FRAME_PRINTS = 8  # fingerprints kept per post: a still has one, a clip a few frames'


def to_signed(value: int) -> int:
    """An unsigned 64-bit hash as the signed BIGINT both backends store."""
    if not 0 <= value < 2**64:
        raise InvalidInputError(f"a hash must be an unsigned 64-bit integer, got {value!r}")
    return value - 2**64 if value >= 2**63 else value


def to_unsigned(value: int) -> int:
    return value + 2**64 if value < 0 else value


def bands(phash: int) -> list[int]:
    """The four 16-bit quarters of a 64-bit hash, the keys of the multi-index lookup."""
    mask = (1 << BAND_BITS) - 1
    return [(phash >> (BAND_BITS * i)) & mask for i in range(BANDS)]


def _band_columns() -> list[InstrumentedAttribute[int]]:
    return [FingerprintRow.band0, FingerprintRow.band1, FingerprintRow.band2, FingerprintRow.band3]


def fingerprint_values(
    post_id: int, platform: str, chat_id: str, posted_at: datetime, author_name: str,
    fingerprint: Fingerprint, frame: int = 0,
) -> dict[str, object]:
    """One `post_fingerprints` row as insert values (also used by the benchmark's bulk load);
    `frame`: which of a clip's frames (0 for a still)."""
    quarters = bands(fingerprint.phash)
    return dict(
        post_id=post_id,
        frame=frame,
        platform=platform,
        chat_id=chat_id,
        posted_at=posted_at,
        author_name=author_name[:MAX_AUTHOR_NAME],
        phash=to_signed(fingerprint.phash),
        dhash=to_signed(fingerprint.dhash),
        band0=quarters[0],
        band1=quarters[1],
        band2=quarters[2],
        band3=quarters[3],
        embedding=fingerprint.embedding,
        embedding_space=fingerprint.embedding_space,
        thumbnail=fingerprint.thumbnail,
        text_embedding=fingerprint.text_embedding,
    )


def _stored(row: FingerprintRow, message_id: str) -> StoredFingerprint:
    return StoredFingerprint(
        post_id=row.post_id,
        platform=row.platform,
        chat_id=row.chat_id,
        message_id=message_id,
        posted_at=row.posted_at,
        author_name=row.author_name,
        phash=to_unsigned(row.phash),
        dhash=to_unsigned(row.dhash),
        thumbnail=row.thumbnail,
    )


def _mark(row: RepostMarkRow) -> RepostMark:
    return RepostMark(
        id=row.id,
        post_id=row.post_id,
        original_post_id=row.original_post_id,
        kind=RepostMarkKind(row.kind),
        admin_id=row.admin_id,
        created_at=row.created_at,
    )


def _forward(row: ForwardRow) -> Forward:
    return Forward(
        post_id=row.post_id,
        label=row.label,
        place=row.place,
        copy_id=row.copy_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True)
class RepostCandidates:
    by_hash: list[StoredFingerprint]  # posts sharing a hash quarter, oldest first
    new_embeddings: list[tuple[int, bytes]]  # (post id, embedding) stored after the asked id


def _hash_query(platform: str, chat: str, phashes: int | Sequence[int], since: datetime | None,
                before_post: int | None) -> Select[FingerprintRow, str]:
    # One indexed equality lookup per quarter, united: an OR of the four would let the
    # planner scan the whole chat through its (platform, chat_id) prefix instead.
    matching = union(*(
        select(FingerprintRow.post_id, FingerprintRow.frame).where(
            FingerprintRow.platform == platform, FingerprintRow.chat_id == chat, col == q
        )
        for phash in ([phashes] if isinstance(phashes, int) else phashes)
        for col, q in zip(_band_columns(), bands(phash), strict=True)
    )).subquery()
    query = (
        select(FingerprintRow, PostRow.message_id)
        .join(matching, (matching.c.post_id == FingerprintRow.post_id)
              & (matching.c.frame == FingerprintRow.frame))
        .join(PostRow, PostRow.id == FingerprintRow.post_id)
        .order_by(FingerprintRow.post_id, FingerprintRow.frame)
        .limit(MAX_CANDIDATES)
    )
    if since is not None:
        query = query.where(FingerprintRow.posted_at >= aware(since, "since"))
    if before_post is not None:
        query = query.where(FingerprintRow.post_id < before_post)
    return query


def _embeddings_query(platform: str, chat: str, space: str | None, after_post: int, limit: int
                      ) -> Select[int, bytes | None]:
    return (
        select(FingerprintRow.post_id, FingerprintRow.embedding)
        .where(
            FingerprintRow.platform == platform,
            FingerprintRow.chat_id == chat,
            FingerprintRow.post_id > after_post,
            FingerprintRow.embedding_space == space,
        )
        .order_by(FingerprintRow.post_id, FingerprintRow.frame)
        .limit(limit)
    )


class RepostsAPI(StorageBase):
    # ---------------------------------------------------------------------------- fingerprints

    async def add_fingerprint(
        self, post_id: int, fingerprint: Fingerprint, *, author_name: str
    ) -> None:
        """Remember what a post looks like; a second call for the same post changes nothing."""
        async with self._db.write() as session:
            post: PostRow = await get_row(session, PostRow, post_id, "post")
            values = fingerprint_values(
                post.id, post.platform, post.chat_id, post.posted_at, author_name, fingerprint
            )
            await session.execute(self._db.insert_ignore(FingerprintRow).values(**values))

    async def hash_candidates(
        self,
        platform: str,
        chat_id: str | int,
        phashes: int | Sequence[int],
        *,
        since: datetime | None = None,
        before_post: int | None = None,
    ) -> list[StoredFingerprint]:
        """Earlier posts of this chat sharing at least one hash quarter with any of `phashes`
        (a picture and its mirror image: one round trip), oldest first; the caller measures
        the Hamming distances."""
        query = _hash_query(check_platform(platform), check_id(chat_id, "chat id"), phashes,
                            since, before_post)
        async with self._db.read() as session:
            rows = (await session.execute(query)).all()
        return [_stored(row, message_id) for row, message_id in rows]

    async def repost_candidates(
        self,
        platform: str,
        chat_id: str | int,
        phashes: Sequence[int],
        *,
        since: datetime | None,
        space: str | None,
        embeddings_after: int,
        limit: int = 50_000,
    ) -> RepostCandidates:
        """`hash_candidates` and `embeddings_after` (when `space` is given) in one round trip:
        what a new post is compared with."""
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        async with self._db.read() as session:
            rows = (await session.execute(
                _hash_query(platform, chat, phashes, since, None)
            )).all()
            embedded = (await session.execute(
                _embeddings_query(platform, chat, space, embeddings_after, limit)
            )).all() if space else []
        return RepostCandidates(
            [_stored(row, message_id) for row, message_id in rows],
            [(post_id, blob) for post_id, blob in embedded if blob is not None],
        )

    async def fingerprints(self, post_ids: Iterable[int]) -> list[StoredFingerprint]:
        ids = sorted(set(post_ids))
        if not ids:
            return []
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(FingerprintRow, PostRow.message_id)
                    .join(PostRow, PostRow.id == FingerprintRow.post_id)
                    .where(FingerprintRow.post_id.in_(ids))
                    .order_by(FingerprintRow.post_id)
                )
            ).all()
        return [_stored(row, message_id) for row, message_id in rows]

    async def embeddings_after(
        self, platform: str, chat_id: str | int, space: str, after_post: int, limit: int = 50_000
    ) -> list[tuple[int, bytes]]:
        """(post id, embedding) of this chat's posts after `after_post`, in post order: an
        in-memory index catches up with what other processes stored since it last looked."""
        query = _embeddings_query(check_platform(platform), check_id(chat_id, "chat id"), space,
                                  after_post, limit)
        async with self._db.read() as session:
            rows = (await session.execute(query)).all()
        return [(post_id, blob) for post_id, blob in rows if blob is not None]

    # ------------------------------------------------------------------------------ marks

    async def add_repost_mark(
        self,
        post_id: int,
        kind: RepostMarkKind | str,
        *,
        admin_id: str | int,
        original_post_id: int | None = None,
    ) -> RepostMark:
        try:
            kind = RepostMarkKind(kind)
        except ValueError as exc:
            raise InvalidInputError(f"unknown repost mark {kind!r}") from exc
        admin = check_id(admin_id, "admin id")
        async with self._db.write() as session:
            await get_row(session, PostRow, post_id, "post")
            if original_post_id is not None:
                await get_row(session, PostRow, original_post_id, "post")
            row = RepostMarkRow(
                post_id=post_id,
                original_post_id=original_post_id,
                kind=kind.value,
                admin_id=admin,
                created_at=self._clock(),
            )
            session.add(row)
            await session.flush()
            return _mark(row)

    async def repost_marks(self, post_ids: Sequence[int]) -> list[RepostMark]:
        """Marks on any of these posts, oldest first."""
        ids = sorted(set(post_ids))
        if not ids:
            return []
        async with self._db.read() as session:
            rows = await session.scalars(
                select(RepostMarkRow)
                .where(RepostMarkRow.post_id.in_(ids))
                .order_by(RepostMarkRow.id)
            )
            return [_mark(row) for row in rows]

    # ---------------------------------------------------------------------------- forwards

    async def forward_for(self, post_id: int) -> Forward | None:
        async with self._db.read() as session:
            row = await session.get(ForwardRow, post_id)
            return _forward(row) if row else None

    async def claim_forward(self, post_id: int, label: str, place: str) -> Forward | None:
        """Reserve the post's one copy before sending it; None when it already has one (or
        another process is sending it), so no post is ever sent twice."""
        label = check_label(label)
        if not place or len(place) > 128:
            raise InvalidInputError("a place must be 1-128 characters")
        async with self._db.write() as session:
            await get_row(session, PostRow, post_id, "post")
            now = self._clock()
            claimed = await session.scalar(
                self._db.insert_ignore(ForwardRow)
                .values(
                    post_id=post_id, label=label, place=place, copy_id=None,
                    created_at=now, updated_at=now,
                )
                .returning(ForwardRow.post_id)
            )
            if claimed is None:
                return None
            row = await session.get(ForwardRow, post_id)
            assert row is not None
            return _forward(row)

    async def confirm_forward(self, post_id: int, copy_id: str | int) -> Forward:
        """The copy was sent: remember where it is (to move it after a correction)."""
        copy = check_id(copy_id, "copy id")
        async with self._db.write() as session:
            row: ForwardRow = await get_row(session, ForwardRow, post_id, "forward")
            row.copy_id = copy
            row.updated_at = self._clock()
            await session.flush()
            return _forward(row)

    async def move_forward(self, post_id: int, label: str, place: str, *, expected: str
                           ) -> Forward | None:
        """Re-point the copy at a new place if it still is where the caller saw it (at
        `expected`): of two concurrent moves only one wins. The copy id is cleared until
        `confirm_forward`."""
        label = check_label(label)
        async with self._db.write() as session:
            result = await session.execute(
                update(ForwardRow)
                .where(ForwardRow.post_id == post_id, ForwardRow.place == expected)
                .values(label=label, place=place, copy_id=None, updated_at=self._clock())
            )
            # An UPDATE without RETURNING yields a CursorResult, which counts the rows it hit.
            if cast("CursorResult[Any]", result).rowcount != 1:
                return None
            row = await session.get(ForwardRow, post_id, populate_existing=True)
            return _forward(row) if row else None

    async def release_forward(self, post_id: int) -> None:
        """Forget a claim whose copy could not be sent, so a later decision may try again."""
        async with self._db.write() as session:
            await session.execute(delete(ForwardRow).where(ForwardRow.post_id == post_id))

    async def forwards_in(
        self, platform: str, chat_id: str | int, place: str, *, limit: int = 50, offset: int = 0
    ) -> list[Forward]:
        """The copies sorted into `place` from this chat, newest first."""
        platform = check_platform(platform)
        chat = check_id(chat_id, "chat id")
        async with self._db.read() as session:
            rows = await session.scalars(
                select(ForwardRow)
                .join(PostRow, PostRow.id == ForwardRow.post_id)
                .where(
                    PostRow.platform == platform, PostRow.chat_id == chat,
                    ForwardRow.place == place,
                )
                .order_by(ForwardRow.post_id.desc())
                .limit(limit)
                .offset(offset)
            )
            return [_forward(row) for row in rows]
