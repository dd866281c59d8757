"""Each chat's rules: /settings typed and from its menu (every option, bad values refused with
nothing changed, a Discord channel over its server), reply modes (a reaction instead of a
reply), reaction corrections off, and off-topic memes (note, hold for the admins with image
and buttons, Allow / Keep removed, delete only where the bot may; below the threshold only a
note)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.core.chat_rules import move_chat
from bot.core.delivery import Delivery
from bot.core.messages import Actor, ChatRef, Command, ImagePost
from bot.core.outcomes import CommandStatus, CorrectionStatus, PostStatus, SettingsMenu
from bot.core.runtime import CoreRuntime, open_runtime
from bot.core.service import button_payload
from storage.records import HoldState
from tests.support.fakes import FakeClassifier, MemoryPort, colour_image, fast_settings, png

CHAT = ChatRef("telegram", "-100500")
ADMINS = "-999"
ROOT = Actor("telegram", "1", "Root")  # a super-admin (fast_settings)
EVE = Actor("telegram", "66", "Eve")
RED, GREY = (200, 20, 20), (128, 128, 128)
_ids = itertools.count(1)


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[CoreRuntime]:
    async with open_runtime(fast_settings(tmp_path, admin_chat_id=ADMINS), file_origins=(),
                            loader=FakeClassifier) as runtime:
        yield runtime


def settings(*args: str, chat: ChatRef = CHAT, actor: Actor = ROOT) -> Command:
    return Command(chat, actor, "settings", args, message_id="9")


async def meme(core: CoreRuntime, delivery: Delivery, rgb: tuple[int, int, int] = GREY,
               chat: ChatRef = CHAT) -> tuple[str, object]:
    message_id = str(next(_ids))
    post = ImagePost(chat, message_id, EVE, posted_at=datetime.now(UTC))
    outcome = await core.service.handle_upload(post, png(colour_image(rgb, stripe=next(_ids))))
    await delivery.post_outcome(chat, message_id, outcome)
    return message_id, outcome


async def test_typed_settings_change_everything_at_once_or_nothing(core: CoreRuntime) -> None:
    result = await core.service.handle_command(settings(
        "replies", "react", "threshold", "75%", "topics", "doom", "animal_crossing",
        "offtopic", "hold", "reactions", "off", "enabled", "off"), None)
    assert result is not None and result.ok and isinstance(result.data, SettingsMenu)
    assert result.reply.private and "Saved 6 settings." in result.reply.text
    rules = await core.service.rules_for(CHAT)
    assert (rules.reply_mode.value, rules.confidence_threshold, rules.offtopic_action.value,
            rules.reaction_corrections, rules.enabled) == ("react", 0.75, "hold", False, False)
    assert rules.on_topic == {"doom", "animal_crossing"}
    before = await core.storage.chat_settings(CHAT.platform, CHAT.chat_id)
    for bad in (("replies", "loud"), ("threshold", "1.5"), ("threshold", "lots"),
                ("topics", "genshin"), ("offtopic", "ban"), ("reactions", "maybe"),
                ("volume", "11"), ("replies",), ("server", "replies", "every")):
        refused = await core.service.handle_command(
            settings("enabled", "on", *bad), None)  # the good half is not applied either
        assert refused is not None and refused.status is CommandStatus.rejected, bad
        assert "Nothing was changed." in refused.reply.text and refused.reply.private
    assert await core.storage.chat_settings(CHAT.platform, CHAT.chat_id) == before
    reset = await core.service.handle_command(settings("threshold", "default", "topics",
                                                       "all", "enabled", "default"), None)
    assert reset is not None and reset.ok
    rules = await core.service.rules_for(CHAT)
    assert (rules.confidence_threshold, rules.on_topic, rules.enabled) == (0.6, None, True)
    other = await core.service.handle_command(settings("replies", "silent", actor=EVE), None)
    assert other is not None and other.status is CommandStatus.refused


async def test_the_menu_walks_pages_and_changes_one_setting_per_press(
    core: CoreRuntime
) -> None:
    result = await core.service.handle_command(settings(), None)
    assert result is not None and isinstance(result.data, SettingsMenu)
    assert [r.name for r in result.data.rows] == [
        "enabled", "replies", "threshold", "topics", "offtopic", "reactions"]
    payloads = {b.text.split(":")[0]: b.payload for b in result.reply.buttons}
    assert "(default)" in result.reply.text
    page = await core.service.handle_button(CHAT, ROOT, payloads["Replies"], None)
    assert page.status is CorrectionStatus.shown and page.reply is not None
    pick = {b.text: b.payload for b in page.reply.buttons}
    assert "✓ a reply to every meme" in pick
    refused = await core.service.handle_button(CHAT, EVE, pick["silent (the admins' chat only)"],
                                               None)
    assert refused.status is CorrectionStatus.refused
    changed = await core.service.handle_button(CHAT, ROOT, pick["silent (the admins' chat only)"],
                                               None)
    assert changed.status is CorrectionStatus.settings_changed and changed.reply is not None
    assert "Replies changed by Root." in changed.reply.text
    assert (await core.service.rules_for(CHAT)).reply_mode.value == "silent"
    for name, choice in (("Enabled", "off"), ("Reaction corrections", "off")):
        opened = await core.service.handle_button(CHAT, ROOT, payloads[name], None)
        assert opened.reply is not None
        press = next(b.payload for b in opened.reply.buttons if b.text == choice)
        await core.service.handle_button(CHAT, ROOT, press, None)
    rules = await core.service.rules_for(CHAT)
    assert rules.enabled is False and rules.reaction_corrections is False
    threshold = await core.service.handle_button(CHAT, ROOT, payloads["Confidence threshold"],
                                                 None)
    assert threshold.reply is not None
    await core.service.handle_button(
        CHAT, ROOT, next(b.payload for b in threshold.reply.buttons if b.text == "80%"), None)
    assert (await core.service.rules_for(CHAT)).confidence_threshold == 0.8
    off = await core.service.handle_button(CHAT, ROOT, payloads["Off-topic memes"], None)
    assert off.reply is not None
    await core.service.handle_button(
        CHAT, ROOT, next(b.payload for b in off.reply.buttons if b.text == "delete it"), None)
    topics = await core.service.handle_button(CHAT, ROOT, payloads["On-topic labels"], None)
    assert topics.reply is not None
    toggle = {b.text: b.payload for b in topics.reply.buttons}
    assert "✓ Doom" in toggle  # every label is on-topic by default
    after = await core.service.handle_button(CHAT, ROOT, toggle["✓ Other"], None)
    assert after.reply is not None and "✓ Other" not in {b.text for b in after.reply.buttons}
    rules = await core.service.rules_for(CHAT)
    assert rules.on_topic == {"doom", "animal_crossing"} and rules.offtopic_action.value == "delete"
    assert rules.is_off_topic("other")
    closed = await core.service.handle_button(CHAT, ROOT, payloads["Done"], None)
    assert closed.reply is not None and closed.reply.buttons == ()
    stale = await core.service.handle_button(CHAT, ROOT, "s:c:v:replies:loud", None)
    assert stale.status is CorrectionStatus.invalid and "Nothing was changed" in stale.notice
    assert (await core.service.rules_for(CHAT)).reply_mode.value == "silent"


async def test_a_discord_channel_overrides_its_server(core: CoreRuntime) -> None:
    general = ChatRef("discord", "1001", server_id="77")
    doom = ChatRef("discord", "1002", server_id="77")
    server = await core.service.handle_command(
        settings("server", "topics", "doom", "offtopic", "note", chat=general), None)
    assert server is not None and server.ok and isinstance(server.data, SettingsMenu)
    assert server.data.scope == "server"
    channel = await core.service.handle_command(
        settings("offtopic", "off", "replies", "confident", chat=doom), None)
    assert channel is not None and channel.ok
    for chat, action, mode in ((general, "note", "every"), (doom, "off", "confident")):
        rules = await core.service.rules_for(chat)
        assert rules.on_topic == {"doom"}  # from the server in both
        assert (rules.offtopic_action.value, rules.reply_mode.value) == (action, mode)
    delivery = Delivery(MemoryPort(), None, core.storage)
    _, outcome = await meme(core, delivery, GREY, chat=general)
    assert outcome.reply is not None and "off-topic here" in outcome.reply.text  # type: ignore[attr-defined]
    await core.service.handle_command(settings("server", "enabled", "off", chat=general), None)
    _, quiet = await meme(core, delivery, GREY, chat=doom)
    assert quiet.status is PostStatus.disabled  # type: ignore[attr-defined]
    # A channel's admin (Manage Messages) has the channel's rules, not the server's.
    async def manages_messages() -> bool:
        return True

    mod = Actor("discord", "88", "Mod")
    for manages in (False, True):
        who = Actor("discord", "88", "Mod", manages_server=manages)
        typed = await core.service.handle_command(
            settings("server", "enabled", "on", chat=doom, actor=who), manages_messages)
        assert typed is not None and typed.ok is manages and typed.reply.private
        assert (await core.service.rules_for(doom)).enabled is manages  # refused: unchanged
    own = await core.service.handle_command(settings("threshold", "0.7", chat=doom, actor=mod),
                                            manages_messages)
    assert own is not None and own.ok
    pressed = await core.service.handle_button(doom, mod, "s:g:v:enabled:off", manages_messages)
    assert pressed.status is CorrectionStatus.refused and "Manage Server" in pressed.notice


async def test_reaction_mode_reacts_and_reaction_corrections_can_be_off(
    core: CoreRuntime
) -> None:
    port = MemoryPort()
    delivery = Delivery(port, ADMINS, core.storage)
    await core.service.handle_command(settings("replies", "react"), None)
    message_id, _ = await meme(core, delivery, RED)
    assert port.reactions == [(CHAT.chat_id, message_id, "😈")] and port.sent == []
    assert await core.service.handle_reaction(CHAT, ROOT, message_id, ["🤷"], None) is not None
    await core.service.handle_command(settings("reactions", "off"), None)
    assert await core.service.handle_reaction(CHAT, ROOT, message_id, ["🦄"], None) is None


async def test_silent_mode_sends_the_image_and_buttons_to_the_admins(core: CoreRuntime) -> None:
    port = MemoryPort()
    delivery = Delivery(port, ADMINS, core.storage)
    await core.service.handle_command(settings("replies", "silent"), None)
    message_id, outcome = await meme(core, delivery, RED)
    assert port.sent == []
    (image,) = port.images
    assert image.chat_id == ADMINS and image.reply.post_id == outcome.post_id  # type: ignore[attr-defined]
    assert f"message {message_id}" in image.reply.text
    fix = next(b.payload for b in image.reply.buttons if b.text == "Other")
    foreign = await core.service.handle_button(CHAT, ROOT, fix, None)
    assert foreign.status is CorrectionStatus.invalid  # only in the admins' chat
    admins = ChatRef("telegram", ADMINS)
    done = await core.service.handle_button(admins, ROOT, fix, None, port)
    assert done.status is CorrectionStatus.corrected and done.reply is not None
    assert "✓ Other" in {b.text for b in done.reply.buttons}


async def test_hold_removes_the_meme_and_allow_reposts_it(core: CoreRuntime) -> None:
    port = MemoryPort()
    delivery = Delivery(port, ADMINS, core.storage)
    await core.service.handle_command(settings("topics", "doom", "offtopic", "hold"), None)
    on_topic, _ = await meme(core, delivery, RED)
    assert port.deleted == [] and port.replies_to(on_topic)
    message_id, outcome = await meme(core, delivery, GREY)
    post_id = outcome.post_id  # type: ignore[attr-defined]
    assert port.deleted == [(CHAT.chat_id, message_id)]
    (held,) = port.images
    assert held.chat_id == ADMINS and held.reply.post_id == post_id
    texts = {b.text: b.payload for b in held.reply.buttons}
    assert {"Allow", "Keep removed", "Doom", "✓ Other"} <= set(texts)
    notice = port.sent[-1]
    assert notice.chat_id == CHAT.chat_id and "held for the admins" in notice.reply.text
    assert (await core.storage.held_post(post_id)).state is HoldState.held  # type: ignore[union-attr]
    admins = ChatRef("telegram", ADMINS)
    assert (await core.service.handle_button(admins, EVE, texts["Allow"], None, port)
            ).status is CorrectionStatus.refused
    allowed = await core.service.handle_button(admins, ROOT, texts["Allow"], None, port)
    assert allowed.status is CorrectionStatus.hold_decided and allowed.reply is not None
    assert "Allowed and re-posted by Root" in allowed.reply.text and allowed.reply.buttons == ()
    repost = port.images[-1]
    assert repost.chat_id == CHAT.chat_id and repost.reply.post_id == post_id
    assert "by Eve" in repost.reply.text and "allowed by Root" in repost.reply.text
    again = await core.service.handle_button(admins, ROOT, texts["Keep removed"], None, port)
    assert again.status is CorrectionStatus.unchanged
    assert await core.storage.corrections_for(post_id) == []  # no training label
    _, kept = await meme(core, delivery, GREY)
    keep = next(b.payload for b in port.images[-1].reply.buttons if b.text == "Keep removed")
    decided = await core.service.handle_button(admins, ROOT, keep, None, port)
    assert decided.reply is not None and "Kept removed by Root" in decided.reply.text
    assert (await core.storage.held_post(kept.post_id)).state is HoldState.kept  # type: ignore[attr-defined,union-attr]


async def test_delete_only_with_the_right_and_below_the_threshold_only_a_note(
    core: CoreRuntime, tmp_path: Path
) -> None:
    port = MemoryPort(deletable=False)
    delivery = Delivery(port, ADMINS, core.storage)
    await core.service.handle_command(settings("topics", "doom", "offtopic", "delete"), None)
    message_id, _ = await meme(core, delivery, GREY)
    (note,) = port.replies_to(message_id)
    assert "Other is off-topic here." in note.reply.text and port.deleted == []
    port.deletable = True
    removed, _ = await meme(core, delivery, GREY)
    assert port.deleted == [(CHAT.chat_id, removed)] and not port.replies_to(removed)
    assert "I removed your meme" in port.sent[-1].reply.text
    await core.service.handle_command(settings("threshold", "0.95"), None)  # fake says 90%
    unsure, _ = await meme(core, delivery, GREY)
    assert port.deleted[-1] != (CHAT.chat_id, unsure)
    assert "off-topic here" in port.replies_to(unsure)[0].reply.text
    await core.service.handle_command(settings("offtopic", "hold", "threshold", "0.5"), None)
    no_admins = Delivery(port, None, core.storage)  # nowhere to hold it: noted instead
    kept, _ = await meme(core, no_admins, GREY)
    assert port.deleted[-1] != (CHAT.chat_id, kept) and port.replies_to(kept)


async def test_a_label_button_from_a_stale_menu_payload_is_refused(core: CoreRuntime) -> None:
    outcome = await core.service.handle_button(CHAT, ROOT, "a:y:999999", None)
    assert outcome.status is CorrectionStatus.invalid
    outcome = await core.service.handle_button(ChatRef("telegram", ADMINS), ROOT, "a:y:999999",
                                               None)
    assert outcome.status is CorrectionStatus.invalid
    assert button_payload(1, "doom") == "c:1:doom"


async def test_silent_mode_never_replies_even_when_a_removal_fails(core: CoreRuntime) -> None:
    port = MemoryPort(deletable=False)
    delivery = Delivery(port, ADMINS, core.storage)
    await core.service.handle_command(settings("replies", "silent", "topics", "doom",
                                               "offtopic", "delete"), None)
    message_id, _ = await meme(core, delivery, GREY)
    assert port.sent == [] and port.deleted == []
    (log_post,) = port.images
    assert "Other is off-topic here." in log_post.reply.text and message_id in log_post.reply.text


async def test_the_audit_log_lists_settings_holds_allows_deletes_and_a_move(
    core: CoreRuntime,
) -> None:
    port = MemoryPort()
    delivery = Delivery(port, ADMINS, core.storage)
    await core.service.handle_command(settings("topics", "doom", "offtopic", "hold",
                                               "threshold", "0.5"), None)
    changes = await core.storage.audit_log(action="settings")
    assert {(e.detail, e.from_value, e.to_value) for e in changes} == {
        ("on_topic_labels", "default", "doom"), ("offtopic_action", "default", "hold"),
        ("confidence_threshold", "default", "0.5")}
    assert {(e.actor_id, e.platform, e.chat_id) for e in changes} == {
        (ROOT.qualified_id, "telegram", CHAT.chat_id)}
    await core.service.handle_command(settings("threshold", "0.5"), None)  # no change: no row
    assert len(await core.storage.audit_log(action="settings")) == 3
    _, outcome = await meme(core, delivery, GREY)
    post_id = outcome.post_id  # type: ignore[attr-defined]
    (hold,) = await core.storage.audit_log(action="hold")
    assert (hold.actor_id, hold.chat_id, hold.post_id) == ("memebot", CHAT.chat_id, post_id)
    assert hold.detail is not None and "off-topic other" in hold.detail
    allow = next(b.payload for b in port.images[-1].reply.buttons if b.text == "Allow")
    await core.service.handle_button(ChatRef("telegram", ADMINS), ROOT, allow, None, port)
    (allowed,) = await core.storage.audit_log(action="allow")
    assert (allowed.actor_id, allowed.post_id, allowed.from_value, allowed.to_value) == (
        ROOT.qualified_id, post_id, "held", "allowed")
    await core.service.handle_command(settings("offtopic", "delete"), None)
    _, deleted = await meme(core, delivery, GREY)
    (gone,) = await core.storage.audit_log(action="delete")
    assert (gone.actor_id, gone.post_id) == ("memebot", deleted.post_id)  # type: ignore[attr-defined]
    # A Telegram group's new id: its trust follows, the log keeps its rows as written.
    await core.storage.set_chat_trust(CHAT.platform, CHAT.chat_id, "trusted",
                                      by=ROOT.qualified_id)
    before = await core.storage.audit_log(limit=1000)
    new = "-100500500"
    moved = await move_chat(core.storage, CHAT.platform, CHAT.chat_id, new)
    assert moved.settings and moved.posts == 2 and moved.trust
    assert (await core.storage.chat_trust(CHAT.platform, new)).level.value == "trusted"
    assert (await core.storage.chat_trust(CHAT.platform, CHAT.chat_id)).level.value == (
        "untrusted")
    again = await move_chat(core.storage, CHAT.platform, CHAT.chat_id, new)
    assert not (again.settings or again.posts or again.trust)
    (move,) = await core.storage.audit_log(action="move_chat")
    assert (move.chat_id, move.from_value, move.to_value) == (new, CHAT.chat_id, new)
    assert (await core.storage.audit_log(limit=1000))[1:] == before
