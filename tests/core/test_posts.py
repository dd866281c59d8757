"""What becomes of a posted image: statuses, reply modes, redelivery, reposts, sorting; and how
few storage round trips and decodes a meme costs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from bot.core.media import READABLE
from bot.core.messages import Actor, Attachment, ChatRef, ImagePost
from bot.core.outcomes import MatchKind, PostStatus
from bot.core.runtime import CoreRuntime
from tests.support.fakes import MemoryPort, colour_image, png

CHAT = ChatRef("telegram", "-100200")
ALICE = Actor("telegram", "7", "Alice")
RED, GREEN, GREY = (200, 20, 20), (20, 200, 20), (128, 128, 128)
_ids = itertools.count(1)


def post(chat: ChatRef = CHAT, *, caption: str | None = None, when: datetime | None = None,
         message_id: str | None = None) -> ImagePost:
    return ImagePost(chat, message_id or str(next(_ids)), ALICE,
                     posted_at=when or datetime.now(UTC), caption=caption)


async def test_a_readable_meme_is_labelled_stored_and_answered(core: CoreRuntime) -> None:
    outcome = await core.service.handle_upload(post(caption="rip and tear"), png(colour_image(RED)))
    assert outcome.status is PostStatus.labelled and outcome.label == "doom"
    assert outcome.reply is not None and outcome.reply.text == "Doom (90%)"
    assert [b.current for b in outcome.reply.buttons].count(True) == 1
    assert outcome.post is not None and outcome.post.caption == "rip and tear"
    assert outcome.repost is None and outcome.admin_log is None
    stored = await core.storage.predictions_for(outcome.post.id)
    assert [p.label for p in stored] == ["doom"] and stored[0].id == outcome.prediction_id


async def test_a_redelivered_message_is_answered_once(core: CoreRuntime) -> None:
    first = post()
    data = png(colour_image(GREEN))
    assert (await core.service.handle_upload(first, data)).status is PostStatus.labelled
    again = await core.service.handle_upload(first, data)
    assert again.status is PostStatus.redelivered and again.reply is None


@pytest.mark.parametrize("data, reason", [
    (b"", "empty"), (b"\xff\xd8\xff\xe0 not a jpeg", "corrupt"), (b"plain text", "not an image"),
])
async def test_unreadable_bytes_get_a_clear_reason_and_store_nothing(
    core: CoreRuntime, data: bytes, reason: str
) -> None:
    outcome = await core.service.handle_upload(post(), data)
    assert outcome.status is PostStatus.unreadable and reason in (outcome.reason or "")
    assert outcome.reply is not None and outcome.reply.text.startswith("Sorry, I can't read")
    assert "object at 0x" not in outcome.reply.text
    assert (await core.storage.stats()).memes_seen == 0


async def test_an_unread_image_type_and_a_too_large_file_are_refused_before_download(
    core: CoreRuntime
) -> None:
    async def never() -> str:
        raise AssertionError("nothing is downloaded")

    svg = Attachment("document", never, declared_size=100, mime_type="image/svg+xml")
    outcome = await core.service.handle_post(
        ImagePost(CHAT, "s1", ALICE, attachment=svg), None)
    assert outcome.status is PostStatus.unsupported and READABLE in (outcome.reason or "")
    huge = Attachment("photo", never, declared_size=10**9, mime_type="image/jpeg")
    outcome = await core.service.handle_post(ImagePost(CHAT, "h1", ALICE, attachment=huge))
    assert outcome.status is PostStatus.too_large and outcome.reply is not None


async def test_a_disabled_chat_gets_nothing(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, enabled=False)
    outcome = await core.service.handle_upload(post(), png(colour_image(RED)))
    assert outcome.status is PostStatus.disabled and outcome.reply is None


async def test_reply_modes(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, reply_mode="silent")
    silent = await core.service.handle_upload(post(), png(colour_image(RED)))
    assert silent.reply is None and silent.admin_log and "Doom (90%)" in silent.admin_log
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, reply_mode="confident",
                                            confidence_threshold=0.95)
    quiet = await core.service.handle_upload(post(), png(colour_image(RED, stripe=3)))
    assert quiet.status is PostStatus.labelled and quiet.reply is None and not quiet.admin_log


async def test_a_copy_is_a_repost_of_the_first_post_and_not_sorted(core: CoreRuntime) -> None:
    port = MemoryPort()
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id,
                                            sort_places={"doom": "12"})
    picture = colour_image(RED, stripe=5)
    first = await core.service.handle_upload(post(), png(picture), port)
    assert first.repost is None and len(port.copies) == 1  # confident: sorted once
    copy = await core.service.handle_upload(post(), png(picture.resize((80, 80))), port)
    verdict = copy.repost
    assert verdict is not None and verdict.original_post_id == first.post_id
    assert verdict.matched_by is MatchKind.picture and verdict.original_author == "Alice"
    assert copy.repost_note is not None and "first posted by Alice" in copy.repost_note.text
    assert verdict.original_link is not None and verdict.original_link in copy.repost_note.text
    assert copy.removed_note is None and len(port.copies) == 1  # a repost is not sorted again


async def test_delete_mode_asks_to_remove_and_old_posts_are_out_of_the_window(
    core: CoreRuntime
) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="delete",
                                            repost_window_days=30)
    picture = colour_image(GREEN, stripe=2)
    await core.service.handle_upload(post(when=datetime.now(UTC) - timedelta(days=60)),
                                     png(picture))
    late = await core.service.handle_upload(post(), png(picture))
    assert late.repost is None  # the original is older than the window
    again = await core.service.handle_upload(post(), png(picture))
    assert again.repost is not None and again.repost.remove
    assert again.removed_note is not None and "Removed a repost by Alice" in again.removed_note.text


async def test_repost_mode_off_still_remembers_the_picture(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="off")
    picture = png(colour_image(RED, stripe=4))
    first = await core.service.handle_upload(post(), picture)
    assert (await core.service.handle_upload(post(), picture)).repost is None
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="note")
    later = await core.service.handle_upload(post(), picture)
    assert later.repost is not None and later.repost.original_post_id == first.post_id


class Counter:
    def __init__(self) -> None:
        self.trips = 0
        self.decodes = 0


@pytest.fixture
def counted(core: CoreRuntime, monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    counter = Counter()
    db = core.storage._db
    for name in ("read", "write"):
        original = getattr(db, name)

        def counting(*args: object, _original: object = original, **kwargs: object) -> object:
            counter.trips += 1
            return _original(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(db, name, counting)
    opened = Image.open

    def counting_open(*args: object, **kwargs: object) -> Image.Image:
        counter.decodes += 1
        return opened(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image, "open", counting_open)
    yield counter


async def test_one_meme_costs_three_round_trips_and_two_decodes(
    core: CoreRuntime, counted: Counter
) -> None:
    """The plain path (reposts noted, nothing sorted): context, repost candidates, one write."""
    await core.service.handle_upload(post(), png(colour_image(GREY, stripe=1)))  # warm-up
    counted.trips = counted.decodes = 0
    outcome = await core.service.handle_upload(post(), png(colour_image(RED, stripe=6)))
    assert outcome.status is PostStatus.labelled
    assert counted.trips <= 3, counted.trips
    assert counted.decodes <= 2, counted.decodes
