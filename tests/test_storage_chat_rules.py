"""Each chat's rules (on-topic labels, off-topic action, reaction corrections, inherited
`enabled`, a server's layer), held posts, and moving a chat to a new id, on SQLite and
PostgreSQL."""

from __future__ import annotations

import pytest

from storage import InvalidInputError
from storage.api import Storage
from storage.chats import server_scope
from storage.errors import UnknownLabelError
from storage.records import Fingerprint, HoldState
from tests.support.storage import make_image

pytest_plugins = ["tests.support.storage"]  # fixtures: open_storage, storage, clock

OLD, NEW = "-4001", "-1004001"


async def test_rules_are_stored_and_a_bad_value_changes_nothing(storage: Storage) -> None:
    set_ = await storage.update_chat_settings(
        "discord", "55", on_topic_labels=["doom", "doom"], offtopic_action="hold",
        reaction_corrections=False, enabled=False, reply_mode="react",
    )
    assert set_.on_topic_labels == ("doom",) and set_.offtopic_action == "hold"
    assert set_.reaction_corrections is False and set_.enabled is False
    assert set_.reply_mode == "react"
    for bad in (dict(offtopic_action="ban"), dict(on_topic_labels=[]),
                dict(on_topic_labels="doom"), dict(reaction_corrections="yes"),
                dict(confidence_threshold=1.5)):
        with pytest.raises(InvalidInputError):
            await storage.update_chat_settings("discord", "55", reply_mode="silent", **bad)
    with pytest.raises(UnknownLabelError):
        await storage.update_chat_settings("discord", "55", reply_mode="silent",
                                           on_topic_labels=["doom", "nope"])
    assert await storage.chat_settings("discord", "55") == set_  # nothing half-applied
    inherit = await storage.update_chat_settings(
        "discord", "55", on_topic_labels=None, offtopic_action=None, enabled=None)
    assert (inherit.on_topic_labels, inherit.offtopic_action, inherit.enabled) == (
        None, None, None)


async def test_a_channel_and_its_server_are_read_together(storage: Storage) -> None:
    await storage.update_chat_settings("discord", server_scope(9), offtopic_action="note")
    await storage.update_chat_settings("discord", "77", reply_mode="silent")
    channel, server = await storage.chat_settings_layers("discord", "77", "9")
    assert (channel.reply_mode, channel.offtopic_action) == ("silent", None)
    assert (server.chat_id, server.offtopic_action) == ("server:9", "note")
    (alone,) = await storage.chat_settings_layers("telegram", "-5", None)
    assert alone.updated_at is None


async def test_a_hold_is_decided_once(storage: Storage) -> None:
    post = await storage.add_post(platform="telegram", chat_id=OLD, message_id=1, author_id=7,
                                  image=make_image(1))
    held = await storage.hold_post(post.id, "@alice")
    assert held.state is HoldState.held and await storage.hold_post(post.id, "x") == held
    allowed = await storage.decide_hold(post.id, HoldState.allowed, "telegram:22")
    assert allowed is not None and allowed.decided_by == "telegram:22"
    assert await storage.decide_hold(post.id, HoldState.kept, "telegram:33") is None
    assert (await storage.held_post(post.id)) == allowed
    assert await storage.corrections_for(post.id) == []  # never a training label
    history = await storage.post_history(post.id)  # each once, in its transaction
    assert [(e.action, e.actor_id, e.to_value) for e in history] == [
        ("hold", "memebot", "held"), ("allow", "telegram:22", "allowed")]


async def test_a_chat_moves_to_its_new_id_once(storage: Storage) -> None:
    await storage.update_chat_settings("telegram", OLD, admin_ids=[5], reply_mode="silent",
                                       sort_places={"doom": "12"}, offtopic_action="note")
    first = await storage.add_post(platform="telegram", chat_id=OLD, message_id=1,
                                   author_id=7, image=make_image(1))
    await storage.add_fingerprint(first.id, Fingerprint(1, 2), author_name="Al")
    clash = await storage.add_post(platform="telegram", chat_id=OLD, message_id=2,
                                   author_id=7, image=make_image(2))
    await storage.add_post(platform="telegram", chat_id=NEW, message_id=2, author_id=8,
                           image=make_image(3))
    await storage.update_chat_settings("telegram", NEW, reply_mode="every")
    moved = await storage.move_chat("telegram", OLD, NEW)
    assert (moved.settings, moved.posts, moved.fingerprints, moved.left_behind) == (
        True, 1, 1, 1)
    new = await storage.chat_settings("telegram", NEW)
    assert new.admin_ids == ("5",) and new.sort_places == {"doom": "12"}
    assert new.reply_mode == "every" and new.offtopic_action == "note"  # its own choice wins
    assert (await storage.chat_settings("telegram", OLD)).updated_at is None
    assert (await storage.find_post("telegram", NEW, "1")) is not None
    assert (await storage.get_post(clash.id)).chat_id == OLD  # its id is taken there
    again = await storage.move_chat("telegram", OLD, NEW)  # the other migrate message
    assert (again.settings, again.posts, again.fingerprints, again.trust) == (False, 0, 0, False)
    (audited,) = await storage.audit_log(action="move_chat")
    assert (audited.chat_id, audited.from_value, audited.to_value) == (NEW, OLD, NEW)
    assert await storage.chat_settings("telegram", NEW) == new
    with pytest.raises(InvalidInputError):
        await storage.move_chat("telegram", NEW, NEW)
