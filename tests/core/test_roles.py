"""Two roles (issue 21): operators own what every chat shares, a chat's admins their chat; only
trusted or approved corrections train; a correction can be undone until a retrain used it; and
the audit log lists each admin action."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.commands import COMMANDS, Role
from bot.core.delivery import Delivery
from bot.core.governance import parse_undo_payload
from bot.core.messages import Actor, ChatRef, Command, ImagePost
from bot.core.moderation import NOT_REPOST, repost_payload
from bot.core.outcomes import CommandStatus, CorrectionStatus, PostOutcome
from bot.core.runtime import CoreRuntime
from bot.core.service import button_payload
from storage.records import TrustLevel
from tests.support.fakes import MemoryPort, colour_image, png

THEIRS = ChatRef("telegram", "-100500")  # a group someone added the bot to: not trusted
OURS = ChatRef("telegram", "-100600")
ROOT = Actor("telegram", "1", "Root")  # an operator (fast_settings' super-admin)
MALLORY = Actor("telegram", "77", "Mallory")  # THEIRS's admin (the platform says so)
ALICE = Actor("telegram", "78", "Alice")  # OURS's admin
POSTER = Actor("telegram", "66", "Eve")
SHARED = ("retrain", "rollback", "addlabel", "trust", "delegate")


async def platform_admin() -> bool:
    return True


def cmd(chat: ChatRef, actor: Actor, name: str, *args: str) -> Command:
    return Command(chat, actor, name, args, message_id="9")


async def run(core: CoreRuntime, chat: ChatRef, actor: Actor, name: str, *args: str):
    result = await core.service.handle_command(cmd(chat, actor, name, *args), platform_admin)
    assert result is not None
    return result


async def posted(core: CoreRuntime, chat: ChatRef, message_id: str, stripe: int) -> PostOutcome:
    post = ImagePost(chat, message_id, POSTER, posted_at=datetime.now(UTC))
    outcome = await core.service.handle_upload(
        post, png(colour_image((200, 20, 20), stripe=stripe)))
    assert outcome.post_id is not None
    return outcome


async def training_shas(core: CoreRuntime) -> dict[str, str]:
    return {e.sha256: e.label for e in (await core.storage.training_set()).examples}


def test_the_shared_commands_are_the_operators() -> None:
    roles = {spec.name: spec.role for spec in COMMANDS}
    assert all(roles[name] is Role.operator for name in SHARED)
    assert roles["reposts"] is Role.admin and roles["sort"] is Role.admin
    assert {s.name for s in COMMANDS if s.role is Role.operator and not s.delegable} == \
        {"delegate", "purgechat"}


async def test_another_chats_admin_cannot_touch_what_every_chat_shares(
    core: CoreRuntime
) -> None:
    labels = await core.storage.list_labels()
    serving = core.models.current.version
    for name, args in (("retrain", ()), ("retrain", ("full",)), ("rollback", ()),
                       ("addlabel", ("minecraft",)), ("trust", ()), ("delegate", ()),
                       ("trust", ("telegram:-100500",))):
        result = await run(core, THEIRS, MALLORY, name, *args)
        assert result.status is CommandStatus.refused and result.reply.private
        assert "Only the bot's operators" in result.reply.text and f"/{name}" in result.reply.text
        assert "Ask an operator" in result.reply.text
    assert await core.storage.list_jobs(limit=10) == []
    assert core.models.current.version == serving
    assert await core.storage.list_labels() == labels
    assert (await core.storage.chat_trust("telegram", "-100500")).level is TrustLevel.untrusted
    assert await core.storage.audit_log() == []
    # Their chat's own settings stay theirs (and are logged; showing them is not).
    assert (await run(core, THEIRS, MALLORY, "reposts", "off")).ok
    assert (await run(core, THEIRS, MALLORY, "reposts")).ok
    [entry] = await core.storage.audit_log()
    assert (entry.action, entry.actor_id, entry.chat_id, entry.to_value, entry.detail) == (
        "settings", "telegram:77", "-100500", "off", "/reposts")


async def test_an_operator_delegates_to_a_chat(core: CoreRuntime) -> None:
    assert (await run(core, OURS, ROOT, "delegate")).ok
    assert (await core.storage.chat_trust("telegram", "-100600")).level is TrustLevel.delegated
    queued = await run(core, OURS, ALICE, "retrain")
    assert queued.ok and len(await core.storage.list_jobs(limit=10)) == 1
    assert (await run(core, OURS, ALICE, "addlabel", "minecraft")).ok
    assert (await run(core, OURS, ALICE, "rollback")).status is CommandStatus.rejected  # none
    # Delegation is the operators' alone; elsewhere Alice is nobody.
    assert (await run(core, OURS, ALICE, "delegate", "telegram:-100500")).status is \
        CommandStatus.refused
    assert (await run(core, THEIRS, ALICE, "retrain")).status is CommandStatus.refused
    # A member who is not an admin of the delegated chat may not either.
    refused = await core.service.handle_command(cmd(OURS, POSTER, "retrain"), None)
    assert refused is not None and refused.status is CommandStatus.refused
    # Taken back: a trusted chat again, whose admins correct but do not retrain.
    assert (await run(core, THEIRS, ROOT, "delegate", "telegram:-100600", "off")).ok
    assert (await core.storage.chat_trust("telegram", "-100600")).level is TrustLevel.trusted
    assert (await run(core, OURS, ALICE, "retrain", "full")).status is CommandStatus.refused
    listed = await run(core, OURS, ROOT, "trust", "list")
    assert "telegram:-100600: trusted" in listed.reply.text
    actions = [(e.action, e.from_value, e.to_value) for e in await core.storage.audit_log()]
    assert actions == [
        ("trust", "delegated", "trusted"),
        ("add_label", None, "minecraft"),
        ("retrain", None, "fast"),
        ("trust", "untrusted", "delegated"),
    ]


async def test_untrusted_corrections_train_only_once_trusted_or_approved(
    core: CoreRuntime
) -> None:
    a = await posted(core, THEIRS, "1", stripe=1)
    b = await posted(core, THEIRS, "2", stripe=2)
    assert a.post_id is not None and b.post_id is not None and a.post is not None
    for outcome in (a, b):
        assert outcome.post_id is not None
        stored = await core.service.handle_button(
            THEIRS, MALLORY, button_payload(outcome.post_id, "other"), platform_admin)
        assert stored.status is CorrectionStatus.corrected  # stored and shown...
        assert stored.reply is not None and "set by Mallory" in stored.reply.text
    assert await core.storage.effective_label(a.post.image.sha256) == "other"
    training = await core.storage.training_set()
    assert training.examples == () and training.pending == 2  # ...but not trained on
    pending = await core.storage.pending_corrections()
    assert [p.post.id for p in pending] == [a.post_id, b.post_id]

    # An operator approves one on the review desk: that one trains.
    assert await core.storage.review_corrections([pending[0].correction.id], approve=True,
                                                 by=ROOT.qualified_id) == [pending[0].correction.id]
    assert list((await training_shas(core)).values()) == ["other"]
    await core.storage.review_corrections([pending[1].correction.id], approve=False,
                                          by=ROOT.qualified_id)
    # Trusting the chat lets the rest train, but not what an operator rejected.
    assert (await run(core, OURS, ROOT, "trust", "-100500")).ok
    assert len(await training_shas(core)) == 1
    c = await posted(core, THEIRS, "3", stripe=3)
    assert c.post_id is not None
    await core.service.handle_button(THEIRS, MALLORY, button_payload(c.post_id, "doom"),
                                     platform_admin)
    assert len(await training_shas(core)) == 2
    assert (await run(core, OURS, ROOT, "trust", "-100500", "off")).ok
    assert len(await training_shas(core)) == 1
    # An operator's own correction trains wherever it is taken.
    await core.service.handle_button(THEIRS, ROOT, button_payload(c.post_id, "other"), None)
    assert len(await training_shas(core)) == 2


async def test_repost_judgements_never_train(core: CoreRuntime) -> None:
    first = await posted(core, OURS, "1", stripe=4)
    copy = await posted(core, OURS, "2", stripe=4)
    assert copy.repost is not None and copy.post_id is not None and first.post_id is not None
    await run(core, OURS, ROOT, "trust")
    judged = await core.service.handle_button(
        OURS, ROOT, repost_payload(NOT_REPOST, copy.post_id, first.post_id), None)
    assert judged.status is CorrectionStatus.repost_judged
    assert await core.storage.corrections_for(copy.post_id) == []
    assert (await core.storage.training_set()).examples == ()


async def test_undo_takes_a_correction_back_until_a_retrain_used_it(core: CoreRuntime) -> None:
    await run(core, OURS, ROOT, "trust")
    outcome = await posted(core, OURS, "1", stripe=5)
    assert outcome.post_id is not None and outcome.prediction is not None
    corrected = await core.service.handle_button(
        OURS, ALICE, button_payload(outcome.post_id, "other"), platform_admin)
    assert corrected.reply is not None
    undo = corrected.reply.buttons[-1]
    assert undo.text == "↩ Undo" and parse_undo_payload(undo.payload) is not None
    assert len(await training_shas(core)) == 1

    refused = await core.service.handle_button(OURS, MALLORY, undo.payload, platform_admin)
    assert refused.status is CorrectionStatus.refused and refused.alert
    elsewhere = await core.service.handle_button(THEIRS, ALICE, undo.payload, platform_admin)
    assert elsewhere.status is CorrectionStatus.invalid
    undone = await core.service.handle_button(OURS, ALICE, undo.payload, platform_admin)
    assert undone.status is CorrectionStatus.undone and undone.notice == "Correction undone."
    assert undone.reply is not None and "set by" not in undone.reply.text
    assert undone.label == outcome.prediction.label
    assert await core.storage.corrections_for(outcome.post_id) == []
    assert await training_shas(core) == {}
    again = await core.service.handle_button(OURS, ALICE, undo.payload, platform_admin)
    assert again.status is CorrectionStatus.invalid  # a double click does nothing more

    # Once a retrain read it, it stays.
    kept = await core.service.handle_button(
        OURS, ALICE, button_payload(outcome.post_id, "other"), platform_admin)
    assert kept.reply is not None
    job = (await core.storage.enqueue_retrain("telegram:1", "fast")).job
    await core.storage.claim_next_job("trainer", kinds=("fast",))
    training = await core.storage.training_set()
    await core.storage.mark_corrections_trained(job.id,
                                                [e.correction_id for e in training.examples])
    late = await core.service.handle_button(OURS, ALICE, kept.reply.buttons[-1].payload,
                                            platform_admin)
    assert late.status is CorrectionStatus.refused and "retrain already used" in late.notice
    assert len(await training_shas(core)) == 1
    await core.storage.finish_job(job.id, succeeded=False, error="x")  # undoable again
    freed = await core.service.handle_button(OURS, ALICE, kept.reply.buttons[-1].payload,
                                             platform_admin)
    assert freed.status is CorrectionStatus.undone

    history = [(e.action, e.actor_id, e.from_value, e.to_value)
               for e in await core.storage.post_history(outcome.post_id)]
    label = outcome.prediction.label
    assert history == [
        ("correction", "telegram:78", label, "other"),
        ("undo", "telegram:78", "other", label),
        ("correction", "telegram:78", label, "other"),
        ("undo", "telegram:78", "other", label),
    ]


async def test_removing_the_reaction_undoes_its_correction(core: CoreRuntime) -> None:
    port = MemoryPort()
    delivery = Delivery(port, admin_chat=None)
    outcome = await posted(core, OURS, "1", stripe=6)
    assert outcome.post_id is not None and outcome.prediction is not None
    await delivery.post_outcome(OURS, "1", outcome)
    unicorn = next(e for e, lb in core.service.policy.reaction_labels.items()
                   if lb == "animal_crossing")
    set_ = await core.service.handle_reaction(OURS, ALICE, "1", [unicorn], platform_admin)
    assert set_ is not None and set_.label == "animal_crossing"
    await delivery.correction(OURS, "1", set_)
    # Someone else taking back the same emoji undoes nothing.
    assert await core.service.handle_reaction_removed(OURS, MALLORY, "1", [unicorn]) is None
    undone = await core.service.handle_reaction_removed(OURS, ALICE, "1", [unicorn])
    assert undone is not None and undone.status is CorrectionStatus.undone
    await delivery.correction(OURS, "1", undone)
    assert await core.storage.corrections_for(outcome.post_id) == []
    reply = port.sent[-1]
    assert reply.edits and "set by" not in reply.edits[-1].text
    # The confirm reaction, taken back, undoes the confirmation.
    thumb = next(e for e, lb in core.service.policy.reaction_labels.items() if lb == "+")
    confirmed = await core.service.handle_reaction(OURS, ALICE, "1", [thumb], platform_admin)
    assert confirmed is not None and confirmed.status is CorrectionStatus.confirmed
    assert await core.service.handle_reaction_removed(OURS, ALICE, "1", [unicorn]) is None
    taken = await core.service.handle_reaction_removed(OURS, ALICE, "1", [thumb])
    assert taken is not None and taken.status is CorrectionStatus.undone
    actions = [e.action for e in await core.storage.post_history(outcome.post_id)]
    assert actions == ["correction", "undo", "confirmation", "undo"]


async def test_a_retrain_report_says_which_chats_taught_it(core: CoreRuntime) -> None:
    job = (await core.storage.enqueue_retrain("telegram:1", "fast")).job
    await core.storage.claim_next_job("w", kinds=("fast",))
    await core.storage.register_model_version(
        "v-next", path="/nowhere", sha256="a" * 64,
        metadata={"summary": "Retrain (fast) -> model v-next: kept", "promoted": False,
                  "corrections_by_chat": {"telegram:-100600": 3, "console:channel": 1},
                  "corrections_pending": 2},
    )
    finished = await core.storage.finish_job(job.id, succeeded=True, model_version="v-next")
    report = await core.jobs.report(finished)
    assert ("Corrections by chat: telegram:-100600 3, console:channel 1. 2 from chats not "
            "trusted wait for review (not used).") in report.text
