"""Honest answers: a game label below the model's calibrated confidence is shown as a guess
("not sure: maybe ..."), still with the buttons, and the "confident" reply mode and sorting
treat it as unsure."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from bot.core.messages import Actor, ChatRef, ImagePost
from bot.core.outcomes import PostStatus
from bot.core.runtime import CoreRuntime
from tests.support.fakes import FakeClassifier, MemoryPort, colour_image, png

CHAT = ChatRef("telegram", "-100700")
ALICE = Actor("telegram", "7", "Alice")
GREEN = (20, 200, 20)
_ids = itertools.count(1)


def post() -> ImagePost:
    return ImagePost(CHAT, str(next(_ids)), ALICE, posted_at=datetime.now(UTC))


def fake(core: CoreRuntime) -> FakeClassifier:
    classifier = core.models.current
    assert isinstance(classifier, FakeClassifier)
    return classifier


async def test_a_guess_says_not_sure_with_the_buttons(core: CoreRuntime) -> None:
    meta = fake(core).meta
    fake(core).confidence = 0.22
    assert meta.unsure_below > 0.22
    outcome = await core.service.handle_upload(post(), png(colour_image(GREEN, stripe=1)))
    assert outcome.status is PostStatus.labelled and outcome.label == "animal_crossing"
    assert outcome.reply is not None
    assert outcome.reply.text == "not sure: maybe Animal Crossing (22%)"
    assert {b.text for b in outcome.reply.buttons} >= {"✓ Animal Crossing", "Doom", "Other"}
    # at or above the model's threshold the label is stated plainly
    fake(core).confidence = meta.unsure_below
    sure = await core.service.handle_upload(post(), png(colour_image(GREEN, stripe=2)))
    assert sure.reply is not None and sure.reply.text.startswith("Animal Crossing (")


async def test_confident_mode_and_sorting_treat_a_guess_as_unsure(core: CoreRuntime) -> None:
    port = MemoryPort()
    meta = fake(core).meta
    # over the chat's own threshold, but under the model's calibrated one: still a guess
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, reply_mode="confident",
                                            confidence_threshold=0.3,
                                            sort_places={"animal_crossing": "ac-memes"})
    fake(core).confidence = (0.3 + meta.unsure_below) / 2
    guess = await core.service.handle_upload(post(), png(colour_image(GREEN, stripe=3)), port)
    assert guess.status is PostStatus.labelled and guess.reply is None and port.copies == []
    fake(core).confidence = 0.95
    sure = await core.service.handle_upload(post(), png(colour_image(GREEN, stripe=4)), port)
    assert sure.reply is not None and sure.reply.text == "Animal Crossing (95%)"
    assert [c.post_id for c in port.copies] == [sure.post_id]
