"""Reusable SELECTs: effective labels (latest admin decision per image) and the review list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVarTuple, cast

from sqlalchemy import ColumnElement, Select, Subquery, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import ChatTrustRow, CorrectionRow, ImageRow, PostRow, PredictionRow
from storage.records import CorrectionReview


def latest_decisions() -> Subquery:
    """(sha256, correction id) of the newest correction/confirmation of every labelled image.

    Ordered by id, not time: ids are assigned in commit order per backend, and two admins
    clicking in the same millisecond must still have a single winner.
    """
    return (
        select(PostRow.image_sha256.label("sha256"), func.max(CorrectionRow.id).label("cid"))
        .join(PostRow, PostRow.id == CorrectionRow.post_id)
        .group_by(PostRow.image_sha256)
        .subquery("latest_decisions")
    )


Row = TypeVarTuple("Row")


def trains() -> ColumnElement[bool]:
    """Whether a correction may train (needs `trust_join`): an operator approved it, or its
    chat is trusted and nobody rejected it."""
    return or_(
        CorrectionRow.review == CorrectionReview.approved.value,
        and_(CorrectionRow.review.is_(None), ChatTrustRow.level.is_not(None)),
    )


def trust_join(stmt: Select[*Row]) -> Select[*Row]:
    """Corrections joined with their post and, where there is one, their chat's trust."""
    return stmt.join(PostRow, PostRow.id == CorrectionRow.post_id).outerjoin(
        ChatTrustRow,
        and_(ChatTrustRow.platform == PostRow.platform, ChatTrustRow.chat_id == PostRow.chat_id),
    )


def training_decisions() -> Subquery:
    """Like `latest_decisions`, over the corrections that may train only: a chat that is not
    trusted cannot override a label decided elsewhere."""
    stmt = select(PostRow.image_sha256.label("sha256"), func.max(CorrectionRow.id).label("cid"))
    return (
        trust_join(stmt.select_from(CorrectionRow))
        .where(trains())
        .group_by(PostRow.image_sha256)
        .subquery("training_decisions")
    )


def chat_only_decisions() -> Subquery:
    """(sha256, correction id) of the newest decision on every image in every chat, over the
    corrections that may not train (a chat not trusted that no operator approved, or rejected):
    they count in their own chat only."""
    stmt = select(PostRow.image_sha256.label("sha256"), func.max(CorrectionRow.id).label("cid"))
    stays = or_(CorrectionRow.review == CorrectionReview.rejected.value,
                and_(CorrectionRow.review.is_(None), ChatTrustRow.level.is_(None)))
    return (
        trust_join(stmt.select_from(CorrectionRow))
        .where(stays)
        .group_by(PostRow.image_sha256, PostRow.platform, PostRow.chat_id)
        .subquery("chat_only_decisions")
    )


def pending() -> Select[CorrectionRow, PostRow]:
    """Corrections from chats that are not trusted that no operator reviewed, oldest first."""
    stmt = select(CorrectionRow, PostRow)
    return (
        trust_join(stmt.select_from(CorrectionRow))
        .where(CorrectionRow.review.is_(None), ChatTrustRow.level.is_(None))
        .order_by(CorrectionRow.id)
    )


def pending_count() -> Select[int]:
    stmt = select(func.count()).select_from(CorrectionRow)
    return trust_join(stmt).where(CorrectionRow.review.is_(None), ChatTrustRow.level.is_(None))


def latest_predictions(post_ids: Sequence[int] | None = None) -> Subquery:
    """(post_id, prediction id) of the newest prediction of every post (of these posts)."""
    stmt = select(PredictionRow.post_id.label("post_id"), func.max(PredictionRow.id).label("pid"))
    if post_ids is not None:
        stmt = stmt.where(PredictionRow.post_id.in_(post_ids))
    return stmt.group_by(PredictionRow.post_id).subquery("latest_predictions")


def corrected_images() -> Select[str]:
    return (
        select(PostRow.image_sha256)
        .join(CorrectionRow, CorrectionRow.post_id == PostRow.id)
        .where(CorrectionRow.kind == "correction")
    )


async def effective_label(session: AsyncSession, sha256: str) -> str | None:
    stmt = (
        select(CorrectionRow.new_label)
        .join(PostRow, PostRow.id == CorrectionRow.post_id)
        .where(PostRow.image_sha256 == sha256)
        .order_by(CorrectionRow.id.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


async def latest_prediction_label(session: AsyncSession, post_id: int) -> str | None:
    stmt = (
        select(PredictionRow.label)
        .where(PredictionRow.post_id == post_id)
        .order_by(PredictionRow.id.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


def review_query(
    *,
    label: str | None,
    min_confidence: float | None,
    max_confidence: float | None,
    corrected: bool | None,
    platform: str | None,
    chat_id: str | None,
    model_version: str | None,
    latest_only: bool,
    low_confidence_first: bool,
    limit: int,
    offset: int,
) -> Select[PredictionRow, PostRow, ImageRow, CorrectionRow | None]:
    decisions = latest_decisions()
    decision = aliased(CorrectionRow, name="decision")
    stmt = (
        select(PredictionRow, PostRow, ImageRow, decision)
        .join(PostRow, PostRow.id == PredictionRow.post_id)
        .join(ImageRow, ImageRow.sha256 == PostRow.image_sha256)
        .outerjoin(decisions, decisions.c.sha256 == PostRow.image_sha256)
        .outerjoin(decision, decision.id == decisions.c.cid)
    )
    if latest_only:
        newest = latest_predictions()
        stmt = stmt.join(newest, newest.c.pid == PredictionRow.id)
    if label is not None:
        stmt = stmt.where(PredictionRow.label == label)
    if min_confidence is not None:
        stmt = stmt.where(PredictionRow.confidence >= min_confidence)
    if max_confidence is not None:
        stmt = stmt.where(PredictionRow.confidence <= max_confidence)
    if corrected is not None:
        is_corrected = PostRow.image_sha256.in_(corrected_images())
        stmt = stmt.where(is_corrected if corrected else ~is_corrected)
    if platform is not None:
        stmt = stmt.where(PostRow.platform == platform)
    if chat_id is not None:
        stmt = stmt.where(PostRow.chat_id == chat_id)
    if model_version is not None:
        stmt = stmt.where(PredictionRow.model_version == model_version)
    if low_confidence_first:
        stmt = stmt.order_by(PredictionRow.confidence.asc(), PredictionRow.id.desc())
    else:
        stmt = stmt.order_by(PredictionRow.id.desc())
    # The outer join leaves `decision` None for a post no admin has labelled.
    return cast(
        "Select[PredictionRow, PostRow, ImageRow, CorrectionRow | None]",
        stmt.limit(limit).offset(offset),
    )
