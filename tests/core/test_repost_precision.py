"""Repost precision through the core (issue 24): a candidate found by hash or embedding is a
repost only when its picture, aligned with the earlier one, differs by nothing but edits. A game
menu in another state and another meme on the same picture are not reposts, though hash or
embedding alone would call them so; edited copies still are."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from PIL import Image, ImageOps

from bot.core.messages import Actor, ChatRef, ImagePost
from bot.core.runtime import CoreRuntime
from tests.support.fakes import png
from tests.support.imagegen import (
    menu_state,
    reencoded,
    resized,
    scene,
    stretched,
    with_caption_bar,
    with_meme_text,
    words,
)

CHAT = ChatRef("telegram", "-100424")
ALICE = Actor("telegram", "7", "Alice")
_ids = itertools.count(1)


def post() -> ImagePost:
    return ImagePost(CHAT, str(next(_ids)), ALICE, posted_at=datetime.now(UTC))


async def flagged_without_comparing(core: CoreRuntime, img: Image.Image) -> bool:
    """What hash and embedding alone say (the rule before issue 24)."""
    classified = await core.service.queue.classify(png(img), None)
    moderation = core.service.moderation
    assert classified.hashes is not None
    found = await moderation.detector.find_original(
        CHAT.platform, CHAT.chat_id, classified.hashes,
        moderation.embedding(classified.prediction), since=datetime.now(UTC) - timedelta(days=1),
    )
    return found is not None


async def test_a_menu_in_another_state_is_not_a_repost(core: CoreRuntime) -> None:
    first = await core.service.handle_upload(post(), png(menu_state(scene(5), 1, highlight=2)))
    assert first.repost is None
    other = menu_state(scene(5), 2, highlight=2)  # other entries
    assert await flagged_without_comparing(core, other)  # the false alarm issue 24 is about
    outcome = await core.service.handle_upload(post(), png(other))
    assert outcome.repost is None and outcome.repost_note is None


async def test_another_meme_on_the_same_picture_is_not_a_repost(core: CoreRuntime) -> None:
    first = await core.service.handle_upload(
        post(), png(with_meme_text(scene(6), words(1, 3), words(2, 3))))
    assert first.repost is None
    outcome = await core.service.handle_upload(
        post(), png(with_meme_text(scene(6), words(3, 3), words(4, 3))))
    assert outcome.repost is None


async def test_edited_copies_are_still_reposts(core: CoreRuntime) -> None:
    # (Crops are compared in tests/inference/test_matching.py: the fake classifier's embedding,
    # a 16x16 thumbnail, does not make a crop a candidate.)
    original = with_meme_text(scene(7), words(5, 3), words(6, 3))
    first = await core.service.handle_upload(post(), png(original))
    copies = {
        "resized": reencoded(resized(original, 0.5), "JPEG", 85),
        "stretched": reencoded(stretched(original, 1.0, 0.75), "JPEG", 85),
        "caption bar": reencoded(with_caption_bar(original, "me at 3 am"), "JPEG", 85),
        "mirrored": ImageOps.mirror(original),
    }
    for kind, copy in copies.items():
        outcome = await core.service.handle_upload(post(), png(copy))
        assert outcome.repost is not None, kind
        assert outcome.repost.original_post_id == first.post_id, kind
