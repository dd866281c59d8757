"""The console's operator API (issue 21): the review desk, trusted chats, the audit log, each
post's history and undo; the admin token is the console's operator. Real core, SQLite and the
tiny model, through a plain aiohttp client."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.messages import Actor, ChatRef, ImagePost
from bot.core.runtime import CoreRuntime
from bot.core.service import button_payload
from storage.records import HoldState, TrustLevel
from tests.support.console import Client
from tests.support.fakes import MemoryPort
from tests.support.imagegen import jpeg

THEIRS = ChatRef("telegram", "-100500")  # a group no operator trusts
MALLORY = Actor("telegram", "77", "Mallory")  # its admin


async def platform_admin() -> bool:
    return True


async def corrected_elsewhere(runtime: CoreRuntime, seed: int) -> tuple[int, str]:
    """A meme of THEIRS, corrected by its admin: (post id, the label set)."""
    post = ImagePost(THEIRS, str(seed), Actor("telegram", "5", "Poster"),
                     posted_at=datetime.now(UTC))
    outcome = await runtime.service.handle_upload(post, jpeg("doom", seed))
    assert outcome.post_id is not None and outcome.prediction is not None
    label = "other" if outcome.prediction.label != "other" else "doom"
    done = await runtime.service.handle_button(
        THEIRS, MALLORY, button_payload(outcome.post_id, label), platform_admin)
    assert done.label == label
    return outcome.post_id, label


async def held_elsewhere(runtime: CoreRuntime, seed: int) -> int:
    """A meme of THEIRS removed by its off-topic rule and held for the admins: its post id."""
    post = ImagePost(THEIRS, str(seed), Actor("telegram", "5", "Poster"),
                     posted_at=datetime.now(UTC))
    outcome = await runtime.service.handle_upload(post, jpeg("doom", seed))
    assert outcome.post_id is not None
    await runtime.storage.hold_post(outcome.post_id, "@poster")
    return outcome.post_id


async def test_operator_pages_need_the_admin_token(client: Client) -> None:
    for path in ("api/desk", "api/chats", "api/audit", "api/posts/1/history"):
        status, body = await client.get_json(path)
        assert status == 403 and "admin token" in body["error"], path
    for path, body in (("api/desk", {"ids": [1], "action": "approve"}),
                       ("api/chats", {"chat": "telegram:1", "level": "trusted"}),
                       ("api/corrections/1/undo", None)):
        assert (await client.post_json(path, body))[0] == 403, path


async def test_review_desk_trust_history_and_undo(admin: Client, runtime: CoreRuntime) -> None:
    a, label_a = await corrected_elsewhere(runtime, 1)
    b, _ = await corrected_elsewhere(runtime, 2)
    status, desk = await admin.get_json("api/desk")
    assert status == 200 and desk["pending"] == 2
    top = desk["items"][0]
    assert (top["post_id"], top["admin"], top["to"]) == (a, "telegram:77", label_a)
    assert desk["items"][0]["image"].startswith("/img/")
    assert (await runtime.storage.training_set()).examples == ()

    first = desk["items"][0]["correction_id"]
    status, done = await admin.post_json("api/desk", {"ids": [first], "action": "approve"})
    assert status == 200 and done["changed"] == [first] and done["pending"] == 1
    assert [e.correction_id for e in (await runtime.storage.training_set()).examples] == [first]
    for bad in ({"ids": [], "action": "approve"}, {"ids": [1], "action": "bless"},
                {"ids": ["1"], "action": "reject"}):
        assert (await admin.post_json("api/desk", bad))[0] == 400

    # Trusting their chat lets the other correction train too.
    status, body = await admin.post_json("api/chats", {"chat": "telegram:-100500",
                                                       "level": "delegated"})
    assert status == 200 and "may also /retrain" in body["message"]
    assert (await runtime.storage.chat_trust("telegram", "-100500")).level is \
        TrustLevel.delegated
    _, chats = await admin.get_json("api/chats")
    assert chats["chats"][0]["chat"] == "telegram:-100500"
    assert (await admin.post_json("api/chats", {"chat": "telegram:-100500",
                                                "level": "trusted"}))[0] == 200
    assert (await runtime.storage.chat_trust("telegram", "-100500")).level is TrustLevel.trusted
    assert (await admin.post_json("api/chats", {"chat": "nochat", "level": "trusted"}))[0] == 400
    assert len((await runtime.storage.training_set()).examples) == 2

    # Post b's history, and its correction taken back.
    status, history = await admin.get_json(f"api/posts/{b}/history")
    assert status == 200 and [h["action"] for h in history["history"]] == ["correction"]
    [undoable] = history["undoable"]
    status, undone = await admin.post_json(f"api/corrections/{undoable}/undo")
    assert status == 200 and undone["notice"] == "Correction undone."
    assert await runtime.storage.corrections_for(b) == []
    assert (await admin.post_json(f"api/corrections/{undoable}/undo"))[0] == 404
    _, log = await admin.get_json("api/audit")
    assert [e["action"] for e in log["entries"]] == [
        "undo", "trust", "trust", "approve", "correction", "correction"]
    assert log["entries"][0]["actor"] == "console:admin"


async def test_the_consoles_own_correction_trains_at_once(admin: Client,
                                                          runtime: CoreRuntime) -> None:
    post, _ = await corrected_elsewhere(runtime, 3)
    status, body = await admin.post_json(f"api/posts/{post}/label", {"label": "animal_crossing"})
    assert status == 200, body
    examples = (await runtime.storage.training_set()).examples
    assert [(e.label, e.admin_id) for e in examples] == [("animal_crossing", "console:admin")]
    status, models = await admin.post_json("api/retrain")
    assert status == 200 and models["job"]["requested_by"] == "console:admin"
    assert [e.action for e in await runtime.storage.audit_log(action="retrain")] == ["retrain"]


async def test_memes_held_in_a_chat_are_decided_on_the_desk(
    admin: Client, client: Client, runtime: CoreRuntime
) -> None:
    a, b = [await held_elsewhere(runtime, seed) for seed in (4, 5)]
    assert (await client.get_json("api/holds"))[0] == 403
    assert (await client.post_json(f"api/holds/{a}", {"decision": "keep"}))[0] == 403
    status, body = await admin.get_json("api/holds")
    assert status == 200 and [i["post_id"] for i in body["items"]] == [a, b]
    assert body["items"][0]["author"] == "@poster" and body["items"][0]["image"].startswith(
        "/img/")
    assert (await admin.post_json(f"api/holds/{a}", {"decision": "bless"}))[0] == 400
    # Telegram does not run in this process: Allow cannot re-post, so nothing is decided.
    status, body = await admin.post_json(f"api/holds/{a}", {"decision": "allow"})
    assert status == 409 and "Nothing was changed" in body["error"]
    assert (await runtime.storage.held_post(a)).state is HoldState.held  # type: ignore[union-attr]
    status, body = await admin.post_json(f"api/holds/{b}", {"decision": "keep"})
    assert status == 200 and body["notice"] == "Kept removed."
    port = MemoryPort()
    runtime.service.outboxes.register("telegram", port)
    status, body = await admin.post_json(f"api/holds/{a}", {"decision": "allow"})
    assert status == 200 and body["notice"] == "Allowed: re-posted."
    (repost,) = port.images
    assert repost.chat_id == THEIRS.chat_id and repost.reply.post_id == a
    assert "@poster" in repost.reply.text
    assert (await admin.post_json(f"api/holds/{a}", {"decision": "keep"}))[0] == 409
    assert (await admin.get_json("api/holds"))[1]["items"] == []
    decided = [(e.action, e.actor_id, e.post_id)
               for e in await runtime.storage.audit_log(limit=10) if e.action in ("allow", "keep")]
    assert decided == [("allow", "console:admin", a), ("keep", "console:admin", b)]
