"""One meme, two transactions: what the bot needs to know before it downloads a posted image (the
chat's settings, the labels, whether this message was answered already), and everything it
learnt afterwards (image, post, prediction, fingerprint) written in one transaction."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import convert
from storage.base import StorageBase, aware, poster_rows, require_labels
from storage.blobs import BlobStore, ImageInfo, inspect_clip, inspect_image
from storage.errors import InvalidInputError
from storage.models import (
    ChatSettingsRow,
    FingerprintRow,
    ImageRow,
    LabelRow,
    PostRow,
    PredictionRow,
)
from storage.records import MEDIA_KINDS, ChatSettings, Fingerprint, Post
from storage.reposts import MAX_FRAME_PRINTS, fingerprint_values
from storage.validation import (
    check_caption,
    check_finite,
    check_id,
    check_label,
    check_platform,
    check_probability,
    check_version,
)


@dataclass(frozen=True)
class PostContext:
    settings: ChatSettings
    labels: tuple[str, ...]  # every label, in the order buttons show them
    answered_post_id: int | None  # this message was already stored and labelled (redelivery)
    server: ChatSettings | None = None  # the settings of the chat's server (Discord), if any


@dataclass(frozen=True)
class PostKey:
    platform: str
    chat_id: str
    message_id: str
    attachment_index: int = 0

    @classmethod
    def checked(cls, platform: str, chat_id: str | int, message_id: str | int,
                attachment_index: int = 0) -> PostKey:
        if isinstance(attachment_index, bool) or not isinstance(attachment_index, int):
            raise InvalidInputError("attachment index must be an integer")
        if not 0 <= attachment_index < 1_000:
            raise InvalidInputError(f"attachment index {attachment_index} is out of range")
        return cls(check_platform(platform), check_id(chat_id, "chat id"),
                   check_id(message_id, "message id"), attachment_index)


@dataclass(frozen=True)
class ClipMedia:
    """What the classifier learnt of a clip, stored with its post (a still has none)."""

    kind: str  # one of MEDIA_KINDS other than "still"
    container: str  # `storage.clip_formats.sniff`'s name: mp4, webm, gif, png, webp, tgs
    width: int
    height: int
    duration_s: float | None
    frames_used: int
    poster: bytes  # the poster frame, an image (JPEG)

    def checked(self) -> ClipMedia:
        if self.kind not in MEDIA_KINDS or self.kind == "still":
            raise InvalidInputError(f"unknown clip kind {self.kind!r}")
        if not 1 <= self.frames_used <= 1_000:
            raise InvalidInputError(f"frames used {self.frames_used} is out of range")
        if self.duration_s is not None:
            check_finite(self.duration_s, "duration_s")
            if self.duration_s < 0:
                raise InvalidInputError("a clip's duration cannot be negative")
        return self


@dataclass(frozen=True)
class NewPost:
    key: PostKey
    author_id: str | int
    image: bytes  # the file: an image, or a clip (then `media` says what it is)
    posted_at: datetime | None = None
    caption: str | None = None
    media: ClipMedia | None = None


@dataclass(frozen=True)
class StoredFiles:
    """A post's blobs as stored: the file, and a clip's poster frame."""

    file: ImageInfo
    poster: ImageInfo | None = None


def store_files(blobs: BlobStore, new: NewPost) -> StoredFiles:
    """Check and write a post's blobs (blocking: run in a thread); raises BlobError."""
    media = new.media
    if media is None:
        info = inspect_image(new.image)
        blobs.put(new.image, info)
        return StoredFiles(info)
    poster = inspect_image(media.poster)
    info = inspect_clip(new.image, media.container, media.width, media.height)
    blobs.put(media.poster, poster)
    blobs.put(new.image, info)
    return StoredFiles(info, poster)


@dataclass(frozen=True)
class PredictionValues:
    model_version: str
    label: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)
    latency_ms: float = 0.0
    ood_score: float | None = None
    remembered: bool = False  # the label came from the correction memory

    def checked(self) -> PredictionValues:
        return PredictionValues(
            model_version=check_version(self.model_version),
            label=check_label(self.label),
            confidence=check_probability(self.confidence, "confidence"),
            probabilities={check_label(k): check_probability(v, f"probability of {k}")
                           for k, v in dict(self.probabilities).items()},
            latency_ms=check_finite(self.latency_ms, "latency_ms"),
            ood_score=None if self.ood_score is None else check_finite(self.ood_score,
                                                                        "ood_score"),
            remembered=bool(self.remembered),
        )


@dataclass(frozen=True)
class LabelledFingerprint:
    fingerprint: Fingerprint
    author_name: str
    # A clip's other frames (stored as frames 1, 2, ...): a screenshot of any of them finds it.
    frames: tuple[Fingerprint, ...] = ()


@dataclass(frozen=True)
class IntakeResult:
    post: Post
    answered_before: bool  # another delivery of this message stored and labelled it first
    prediction_id: int | None = None  # the prediction stored now


async def insert_post(storage: StorageBase, session: AsyncSession, new: NewPost,
                      files: StoredFiles) -> tuple[PostRow, bool]:
    """The image (and poster) and post rows (kept when they exist); the post row and whether
    it is new."""
    db, now = storage._db, storage._clock()
    key = new.key
    for info in (files.file, files.poster):
        if info is not None:
            await session.execute(db.insert_ignore(ImageRow).values(
                sha256=info.sha256, format=info.format, extension=info.extension,
                width=info.width, height=info.height, byte_size=info.byte_size, first_seen=now,
            ))
    media = new.media
    inserted = await session.scalar(
        db.insert_ignore(PostRow).values(
            platform=key.platform, chat_id=key.chat_id, message_id=key.message_id,
            attachment_index=key.attachment_index, author_id=new.author_id,
            posted_at=new.posted_at or now, image_sha256=files.file.sha256, created_at=now,
            caption=new.caption, media_kind=media.kind if media else "still",
            duration_s=media.duration_s if media else None,
            frames_used=media.frames_used if media else None,
            poster_sha256=files.poster.sha256 if files.poster else None,
        ).returning(PostRow.id)
    )
    row = await session.scalar(_post_query(key))
    assert row is not None  # inserted above or by the earlier delivery
    return row, inserted is not None


def _post_query(key: PostKey) -> Select[PostRow]:
    return select(PostRow).where(
        PostRow.platform == key.platform, PostRow.chat_id == key.chat_id,
        PostRow.message_id == key.message_id, PostRow.attachment_index == key.attachment_index,
    )


def checked_post(new: NewPost) -> NewPost:
    return NewPost(
        key=new.key,
        author_id=check_id(new.author_id, "author id"),
        image=new.image,
        posted_at=aware(new.posted_at, "posted_at") if new.posted_at else None,
        caption=check_caption(new.caption),
        media=new.media.checked() if new.media is not None else None,
    )


class IntakeAPI(StorageBase):
    async def post_context(self, key: PostKey, server_scope: str | None = None) -> PostContext:
        """One read before a posted image is downloaded (`server_scope`: the chat id its
        server's settings are stored under, see `storage.chats.server_scope`)."""
        async with self._db.read() as session:
            settings_row = await session.get(ChatSettingsRow, (key.platform, key.chat_id))
            server_row = (await session.get(ChatSettingsRow, (key.platform, server_scope))
                          if server_scope is not None else None)
            labels = await session.scalars(
                select(LabelRow.name).order_by(LabelRow.added_at, LabelRow.name)
            )
            answered = await session.scalar(
                select(PostRow.id)
                .join(PredictionRow, PredictionRow.post_id == PostRow.id)
                .where(PostRow.platform == key.platform, PostRow.chat_id == key.chat_id,
                       PostRow.message_id == key.message_id,
                       PostRow.attachment_index == key.attachment_index)
                .limit(1)
            )
            settings = (convert.chat_settings(settings_row) if settings_row
                        else ChatSettings(key.platform, key.chat_id))
            server = None
            if server_scope is not None:
                server = (convert.chat_settings(server_row) if server_row
                          else ChatSettings(key.platform, server_scope))
            return PostContext(settings, tuple(labels), answered, server)

    async def record_labelled_post(
        self, new: NewPost, prediction: PredictionValues,
        fingerprint: LabelledFingerprint | None = None,
    ) -> IntakeResult:
        """Image, post, prediction and fingerprint in one transaction; the blob is durable on
        disk before it commits. A message stored and labelled by an earlier delivery is left
        as it was (`answered_before`)."""
        new = checked_post(new)
        values = prediction.checked()
        files = await asyncio.to_thread(store_files, self._blobs, new)
        async with self._db.write() as session:
            await require_labels(session, [values.label])
            row, created = await insert_post(self, session, new, files)
            answered = not created and await session.scalar(
                select(PredictionRow.id).where(PredictionRow.post_id == row.id).limit(1)
            ) is not None
            prediction_row = None
            if not answered:
                prediction_row = PredictionRow(
                    post_id=row.id, model_version=values.model_version, label=values.label,
                    confidence=values.confidence, ood_score=values.ood_score,
                    probabilities=values.probabilities, latency_ms=values.latency_ms,
                    created_at=self._clock(), remembered=values.remembered,
                )
                session.add(prediction_row)
                await session.flush()
                if fingerprint is not None:
                    prints = (fingerprint.fingerprint, *fingerprint.frames)
                    for frame, one in enumerate(prints[:MAX_FRAME_PRINTS]):
                        await session.execute(self._db.insert_ignore(FingerprintRow).values(
                            **fingerprint_values(row.id, row.platform, row.chat_id,
                                                 row.posted_at, fingerprint.author_name, one,
                                                 frame=frame)
                        ))
            image_row = await session.get_one(ImageRow, row.image_sha256)
            poster = (await poster_rows(session, [row])).get(row.poster_sha256 or "")
            post = convert.post(row, image_row, self._blobs, created=created, poster_row=poster)
            return IntakeResult(post,
                                answered, prediction_row.id if prediction_row else None)
