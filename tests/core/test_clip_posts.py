"""Clips through the core: an adapter hands the service a clip's bytes exactly as it hands an
image's; the post is labelled from its frames and stored with its poster, kind and length; a
bad clip gets a clear reply; a screenshot of a clip is a repost of it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from PIL import Image

from bot.core.messages import Actor, Attachment, ChatRef, ImagePost
from bot.core.outcomes import MatchKind, PostStatus
from bot.core.runtime import CoreRuntime
from inference.clip_records import clip_media
from inference.clips import MediaFacts, MediaKind
from storage.intake import ClipMedia
from tests.support.clipgen import encode_clip, tgs_sticker
from tests.support.fakes import colour_image, png

CHAT = ChatRef("telegram", "-100300")
ALICE = Actor("telegram", "7", "Alice")
RED, GREEN = (200, 20, 20), (20, 200, 20)
SIZE = (128, 128)
_ids = itertools.count(1)


def post(caption: str | None = None, attachment: Attachment | None = None) -> ImagePost:
    return ImagePost(CHAT, str(next(_ids)), ALICE, attachment=attachment,
                     posted_at=datetime.now(UTC), caption=caption)


def scenes(colour: tuple[int, int, int], *stripes: int, hold: int = 6) -> list[Image.Image]:
    """A clip of a few distinct pictures, each held `hold` frames."""
    return [colour_image(colour, SIZE, stripe=s) for s in stripes for _ in range(hold)]


async def test_a_clip_is_labelled_from_its_frames_and_stored_with_its_poster(
    core: CoreRuntime,
) -> None:
    clip = encode_clip(scenes(RED, 1, 2, 3), "mp4", fps=6)
    outcome = await core.service.handle_upload(post(caption="rip and tear"), clip)
    assert outcome.status is PostStatus.labelled and outcome.label == "doom"
    assert outcome.reply is not None and outcome.reply.text == "Doom (90%)"
    stored = outcome.post
    assert stored is not None and stored.media_kind == "animation"
    assert stored.duration_s is not None and 2.5 <= stored.duration_s <= 3.1
    assert stored.frames_used == 3  # the three pictures; repeats are not looked at again
    assert stored.image.extension == "mp4" and stored.image.path.read_bytes() == clip
    assert stored.poster is not None and stored.poster.format == "JPEG"
    assert stored.caption == "rip and tear"


async def test_a_clip_that_is_mostly_other_is_other(core: CoreRuntime) -> None:
    greys = [colour_image((v, v, v), SIZE, stripe=2) for v in (90, 130, 170) for _ in range(6)]
    frames = scenes(RED, 1) + greys
    outcome = await core.service.handle_upload(post(), encode_clip(frames, "webm", fps=6))
    assert outcome.status is PostStatus.labelled and outcome.label == "other"


async def test_every_moving_format_goes_through_the_same_call(core: CoreRuntime) -> None:
    for kind in ("webm", "mov", "gif", "webp"):
        outcome = await core.service.handle_upload(
            post(), encode_clip(scenes(GREEN, 4, 5, hold=3), kind, fps=6))
        assert outcome.status is PostStatus.labelled and outcome.label == "animal_crossing"
        assert outcome.post is not None and outcome.post.media_kind == "animation"
    sticker = await core.service.handle_upload(post(), tgs_sticker(colour=RED))
    assert sticker.status is PostStatus.labelled and sticker.post is not None
    assert sticker.post.media_kind == "sticker" and sticker.post.image.extension == "tgs"


async def test_a_bad_clip_gets_a_clear_reply_and_stores_nothing(core: CoreRuntime) -> None:
    clip = encode_clip(scenes(RED, 1, 2), "mp4")
    outcome = await core.service.handle_upload(post(), clip[: len(clip) // 3])
    assert outcome.status is PostStatus.unreadable and outcome.reason
    assert outcome.reply is not None
    assert outcome.reply.text.startswith("Sorry, I can't read this clip: the file is damaged")
    assert (await core.storage.stats()).memes_seen == 0


async def test_an_unread_video_type_is_refused_before_download(core: CoreRuntime) -> None:
    async def never() -> str:
        raise AssertionError("nothing is downloaded")

    attachment = Attachment("video", never, 1000, "video/x-msvideo")
    outcome = await core.service.handle_post(post(attachment=attachment))
    assert outcome.status is PostStatus.unsupported
    assert outcome.reason is not None and "MP4" in outcome.reason and "WebM" in outcome.reason


async def test_a_screenshot_of_a_clip_is_a_repost_of_it(core: CoreRuntime) -> None:
    clip = encode_clip(scenes(RED, 1, 2, 3), "mp4", fps=6)
    first = await core.service.handle_upload(post(), clip)
    assert first.repost is None
    # The last picture of the clip, not its poster: found through the clip's other frames.
    screenshot = png(colour_image(RED, SIZE, stripe=3).resize((200, 200)))
    copy = await core.service.handle_upload(post(), screenshot)
    assert copy.repost is not None and copy.repost.original_post_id == first.post_id
    assert copy.repost.matched_by is MatchKind.picture


async def test_a_clip_of_an_earlier_still_is_a_repost_of_it(core: CoreRuntime) -> None:
    still = await core.service.handle_upload(post(), png(colour_image(RED, SIZE, stripe=9)))
    clip = encode_clip(scenes(RED, 8, 9), "webm", fps=6)
    copy = await core.service.handle_upload(post(), clip)
    assert copy.repost is not None and copy.repost.original_post_id == still.post_id


def test_a_clip_posted_as_a_sticker_is_recorded_as_one() -> None:
    facts = MediaFacts(MediaKind.animation, 1.0, 3, "webm", 512, 512, b"poster")
    assert clip_media(facts, "sticker") == ClipMedia("sticker", "webm", 512, 512, 1.0, 3,
                                                     b"poster")
    assert clip_media(facts, "animation") is not None
    assert clip_media(facts, "animation").kind == "animation"  # type: ignore[union-attr]
    assert clip_media(MediaFacts(MediaKind.still), "sticker") is None  # a PNG sticker: a still
