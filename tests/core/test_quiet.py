"""Old posts are labelled quietly (issue 23): a post older than `quiet_after` when the bot sees
it (caught up after downtime) is stored, labelled and sorted, but not answered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.delivery import Delivery
from bot.core.messages import Actor, ChatRef, ImagePost
from bot.core.outcomes import PostStatus
from bot.core.runtime import open_runtime
from tests.support.fakes import FakeClassifier, MemoryPort, colour_image, fast_settings, png

CHAT = ChatRef("telegram", "-100600")
ALICE = Actor("telegram", "7", "Alice")


async def test_an_old_post_is_stored_and_sorted_without_a_reply(tmp_path: Path) -> None:
    port = MemoryPort()
    delivery = Delivery(port, admin_chat=None)
    settings = fast_settings(tmp_path, quiet_after_minutes=60)
    async with open_runtime(settings, file_origins=(), loader=FakeClassifier) as core:
        await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id,
                                                sort_places={"doom": "7"})
        red = png(colour_image((200, 20, 20), stripe=3))
        old = ImagePost(CHAT, "1", ALICE, posted_at=datetime.now(UTC) - timedelta(hours=2))
        outcome = await core.service.handle_upload(old, red, port)
        await delivery.post_outcome(CHAT, old.message_id, outcome)
        assert outcome.status is PostStatus.labelled and outcome.quiet
        assert outcome.label == "doom" and outcome.reply is None and port.sent == []
        assert [copy.label for copy in port.copies] == ["doom"]  # sorted all the same
        later = datetime.now(UTC) - timedelta(hours=1, minutes=5)
        copy = ImagePost(CHAT, "2", ALICE, posted_at=later)
        quiet_repost = await core.service.handle_upload(copy, red, port)
        assert quiet_repost.repost is not None and quiet_repost.repost_note is None
        fresh = ImagePost(CHAT, "3", ALICE, posted_at=datetime.now(UTC) - timedelta(minutes=5))
        answered = await core.service.handle_upload(
            fresh, png(colour_image((20, 200, 20), stripe=4)), port)
        assert not answered.quiet and answered.reply is not None
