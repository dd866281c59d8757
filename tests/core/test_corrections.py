"""Buttons and reactions: who may change a label, confirm vs correct, repost judgements; and
how delivery shows them (edit the reply, or answer anew), plus a retrain report's fan-out."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.delivery import Delivery
from bot.core.job_watcher import JobReport, RetrainRequest
from bot.core.messages import Actor, ChatRef, ImagePost
from bot.core.moderation import NOT_REPOST, repost_payload
from bot.core.outcomes import CorrectionStatus, PostOutcome
from bot.core.runtime import CoreRuntime
from bot.core.service import button_payload
from tests.support.fakes import MemoryPort, colour_image, png

CHAT = ChatRef("telegram", "-100400")
ROOT = Actor("telegram", "1", "Root")
EVE = Actor("telegram", "66", "Eve")


async def labelled(core: CoreRuntime, message_id: str, stripe: int = 1) -> PostOutcome:
    post = ImagePost(CHAT, message_id, EVE, posted_at=datetime.now(UTC))
    return await core.service.handle_upload(post, png(colour_image((200, 20, 20), stripe=stripe)))


async def test_only_admins_change_labels_and_a_confirm_is_not_a_correction(
    core: CoreRuntime
) -> None:
    outcome = await labelled(core, "10")
    assert outcome.post_id is not None
    refused = await core.service.handle_button(CHAT, EVE, button_payload(outcome.post_id, "other"),
                                               None)
    assert refused.status is CorrectionStatus.refused and refused.alert and refused.reply is None
    confirm = await core.service.handle_button(CHAT, ROOT, button_payload(outcome.post_id, "doom"),
                                               None)
    assert confirm.status is CorrectionStatus.confirmed and not confirm.changed
    corrected = await core.service.handle_button(
        CHAT, ROOT, button_payload(outcome.post_id, "other"), None)
    assert corrected.status is CorrectionStatus.corrected and corrected.changed
    assert corrected.reply is not None and "set by Root" in corrected.reply.text
    again = await core.service.handle_button(CHAT, ROOT, button_payload(outcome.post_id, "other"),
                                             None)
    assert again.status is CorrectionStatus.unchanged and not again.alert


async def test_a_platform_admin_may_correct_and_stale_buttons_are_refused(
    core: CoreRuntime
) -> None:
    outcome = await labelled(core, "11", stripe=2)
    assert outcome.post_id is not None

    async def says_admin() -> bool:
        return True

    ok = await core.service.handle_button(CHAT, EVE, button_payload(outcome.post_id, "other"),
                                          says_admin)
    assert ok.status is CorrectionStatus.corrected
    elsewhere = ChatRef("telegram", "-100999")
    foreign = await core.service.handle_button(elsewhere, ROOT,
                                               button_payload(outcome.post_id, "doom"), None)
    assert foreign.status is CorrectionStatus.invalid
    assert (await core.service.handle_button(CHAT, ROOT, "c:x", None)).status is \
        CorrectionStatus.invalid
    unknown = await core.service.handle_button(CHAT, ROOT,
                                               button_payload(outcome.post_id, "nolabel"), None)
    assert unknown.status is CorrectionStatus.invalid


async def test_a_repost_judgement_is_stored_once(core: CoreRuntime) -> None:
    first = await labelled(core, "20", stripe=3)
    copy = await labelled(core, "21", stripe=3)
    assert copy.repost is not None and copy.post_id is not None and first.post_id is not None
    payload = repost_payload(NOT_REPOST, copy.post_id, first.post_id)
    judged = await core.service.handle_button(CHAT, ROOT, payload, None)
    assert judged.status is CorrectionStatus.repost_judged and judged.changed
    assert (await core.service.handle_button(CHAT, ROOT, payload, None)).status is \
        CorrectionStatus.unchanged


async def test_delivery_sends_in_order_and_a_reaction_edits_the_label_reply(
    core: CoreRuntime
) -> None:
    port = MemoryPort()
    delivery = Delivery(port, admin_chat="-999")
    await labelled(core, "30", stripe=4)
    copy = await labelled(core, "31", stripe=4)
    assert not await delivery.post_outcome(CHAT, "31", copy)
    assert [s.reply.text.split(":")[0] for s in port.replies_to("31")] == ["Repost", "Doom (90%)"]
    # An admin's reaction on the label reply counts for the meme; the reply is edited.
    label_reply = port.replies_to("31")[-1].message_id
    meme = delivery.meme_for(CHAT, label_reply)
    assert meme == "31"
    outcome = await core.service.handle_reaction(CHAT, ROOT, meme, ["🤷"], None)
    await delivery.correction(CHAT, meme, outcome)
    assert port.replies_to("31")[-1].edits[-1].text.startswith("Other (set by Root)")
    # After a restart (nothing remembered) the meme is answered anew.
    fresh = Delivery(port, admin_chat=None)
    undo = await core.service.handle_reaction(CHAT, ROOT, "31", ["😈"], None)
    await fresh.correction(CHAT, "31", undo)
    assert port.replies_to("31")[-1].reply.text.startswith("Doom (")


async def test_delete_mode_removes_the_meme_where_allowed(core: CoreRuntime) -> None:
    await core.storage.update_chat_settings(CHAT.platform, CHAT.chat_id, repost_mode="delete")
    await labelled(core, "40", stripe=6)
    copy = await labelled(core, "41", stripe=6)
    allowed, refused = MemoryPort(), MemoryPort(deletable=False)
    assert await Delivery(allowed, None).post_outcome(CHAT, "41", copy)
    assert allowed.deleted == [(CHAT.chat_id, "41")]
    assert [s.reply.text.split(":")[0] for s in allowed.sent] == ["Removed a repost by Eve"]
    assert not await Delivery(refused, None).post_outcome(CHAT, "41", copy)
    assert [s.reply.text.split(":")[0] for s in refused.replies_to("41")] == ["Repost",
                                                                            "Doom (90%)"]


async def test_a_retrain_report_reaches_who_asked_and_the_admin_chat_once(
    core: CoreRuntime
) -> None:
    port = MemoryPort()
    delivery = Delivery(port, admin_chat="-999")
    jobs = await core.storage.list_jobs(limit=1)
    queued = await core.storage.enqueue_retrain(ROOT.qualified_id, "fast")
    assert not jobs
    requests = (RetrainRequest(CHAT, ROOT, "5"), RetrainRequest(ChatRef("telegram", "-999"), ROOT,
                                                                "6"),
                RetrainRequest(ChatRef("telegram", "-999"), EVE, "7"),
                RetrainRequest(ChatRef("discord", "123"), ROOT, None))
    report = JobReport(queued.job, "done", requests, promoted=True, serving="fake-1")
    await delivery.job_report(report)
    assert [(s.chat_id, s.reply_to) for s in port.sent] == [(CHAT.chat_id, "5"), ("-999", "6")]
    assert all(s.mention == ROOT for s in port.sent)
