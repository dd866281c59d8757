"""The console's operator pages (the admin token is the console's operator): the review desk
(corrections from chats that are not trusted, approved or rejected one by one or in bulk;
off-topic memes held from any chat, allowed or kept removed),
which chats are trusted or delegated to, the audit log, each post's history, and undo.

Trust changes run as the /trust and /delegate commands (the one command table); undo as the
Undo button; only the desk's approvals are storage calls of their own (no chat has them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from bot.console.params import int_param, json_body
from bot.console.security import json_error
from bot.core import formatting as fmt
from bot.core.governance import undo_payload
from bot.core.messages import ChatRef
from bot.core.offtopic import admin_press, decision_payload
from bot.core.outcomes import CommandResult
from storage.errors import InvalidInputError, NotFoundError
from storage.records import AuditEntry, PendingCorrection, PendingHold, TrustLevel

if TYPE_CHECKING:
    from bot.console.app import Console

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RunCommand = Callable[[str, tuple[str, ...]], Awaitable[CommandResult]]
MAX_IDS = 500
# The commands that set a chat to each level (the console's operator may run them all).
LEVEL_COMMANDS: dict[str, tuple[tuple[str, bool], ...]] = {
    TrustLevel.untrusted.value: (("trust", True),),
    TrustLevel.trusted.value: (("trust", False), ("delegate", True)),
    TrustLevel.delegated.value: (("delegate", False),),
}


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "at": entry.created_at.isoformat(), "actor": entry.actor_id,
        "action": entry.action, "platform": entry.platform, "chat_id": entry.chat_id,
        "post_id": entry.post_id, "from": entry.from_value, "to": entry.to_value,
        "detail": entry.detail,
    }


def pending_json(item: PendingCorrection) -> dict[str, Any]:
    c, post = item.correction, item.post
    return {
        "correction_id": c.id, "post_id": post.id, "image": f"/img/{post.image.sha256}",
        "width": post.image.width, "height": post.image.height,
        "platform": post.platform, "chat_id": post.chat_id, "admin": c.admin_id,
        "kind": c.kind.value, "from": c.previous_label, "to": c.new_label,
        "from_name": fmt.display_name(c.previous_label) if c.previous_label else None,
        "to_name": fmt.display_name(c.new_label), "at": c.created_at.isoformat(),
    }


def hold_json(item: PendingHold, label: str | None) -> dict[str, Any]:
    post = item.post
    return {
        "post_id": post.id, "image": f"/img/{post.image.sha256}",
        "width": post.image.width, "height": post.image.height,
        "platform": post.platform, "chat_id": post.chat_id, "author": item.hold.author_name,
        "label": label, "label_name": fmt.display_name(label) if label else None,
        "at": item.hold.created_at.isoformat(),
    }


class GovernanceViews:
    def __init__(self, console: Console, run_command: RunCommand) -> None:
        self.console = console
        self.storage = console.storage
        self.run_command = run_command  # as the console's operator

    def routes(self, admin_only: Callable[[Handler], Handler]) -> list[web.RouteDef]:
        return [
            web.get("/api/desk", admin_only(self.desk)),
            web.post("/api/desk", admin_only(self.review)),
            web.get("/api/chats", admin_only(self.chats)),
            web.post("/api/chats", admin_only(self.set_trust)),
            web.get("/api/holds", admin_only(self.holds)),
            web.post("/api/holds/{post_id:[0-9]{1,18}}", admin_only(self.decide_hold)),
            web.get("/api/audit", admin_only(self.audit)),
            web.get("/api/posts/{post_id:[0-9]{1,18}}/history", admin_only(self.history)),
            web.post("/api/corrections/{correction_id:[0-9]{1,18}}/undo", admin_only(self.undo)),
        ]

    async def desk(self, request: web.Request) -> web.Response:
        limit = int_param(request, "limit", 100, 1, 500)
        offset = int_param(request, "offset", 0, 0, 1_000_000)
        items = await self.storage.pending_corrections(limit=limit, offset=offset)
        return web.json_response({"items": [pending_json(i) for i in items],
                                  "pending": await self.storage.count_pending_corrections()})

    async def review(self, request: web.Request) -> web.Response:
        """{"ids": [...], "action": "approve" | "reject"}."""
        body = await json_body(request)
        ids = body.get("ids") if isinstance(body, dict) else None
        action = body.get("action") if isinstance(body, dict) else None
        if (action not in ("approve", "reject") or not isinstance(ids, list) or not ids
                or len(ids) > MAX_IDS or not all(isinstance(i, int) for i in ids)):
            return json_error(400, f"Send \"action\" (approve or reject) and \"ids\" (1-{MAX_IDS} "
                                   "correction ids).")
        try:
            changed = await self.storage.review_corrections(
                ids, approve=action == "approve", by=self.console.operator.qualified_id)
        except InvalidInputError as exc:
            return json_error(400, str(exc))
        self.console.service.recall.refresh()  # approved: counts in every chat from now on
        verb = "Approved" if action == "approve" else "Rejected"
        return web.json_response({"changed": changed,
                                  "message": f"{verb} {len(changed)} correction(s).",
                                  "pending": await self.storage.count_pending_corrections()})

    async def holds(self, request: web.Request) -> web.Response:
        """Off-topic memes held from any chat, waiting for an admin's Allow / Keep removed."""
        items = await self.storage.pending_holds(limit=int_param(request, "limit", 100, 1, 500))
        labels = await self.storage.current_labels(item.post.id for item in items)
        return web.json_response({"items": [
            hold_json(item, labels.get(item.post.id)) for item in items]})

    async def decide_hold(self, request: web.Request) -> web.Response:
        """{"decision": "allow" | "keep"}: as the admins' chat's buttons, by the operator.
        Allow re-posts through the meme's platform, so that platform must run here."""
        body = await json_body(request)
        decision = body.get("decision") if isinstance(body, dict) else None
        if decision not in ("allow", "keep"):
            return json_error(400, "Send \"decision\": allow or keep.")
        try:
            post = await self.storage.get_post(int(request.match_info["post_id"]))
        except (NotFoundError, InvalidInputError):
            return json_error(404, "No such meme.")
        service = self.console.service
        outbox = (self.console.outbox if post.platform == "console"
                  else service.outboxes.get(post.platform))
        if decision == "allow" and outbox is None:
            return json_error(409, fmt.not_connected_text(post.platform))
        outcome = await admin_press(service, self.console.operator,
                                    decision_payload(post.id, allow=decision == "allow"),
                                    outbox)
        if outcome.alert or not outcome.changed:
            return json_error(409, outcome.notice)
        return web.json_response({"notice": outcome.notice})

    async def chats(self, request: web.Request) -> web.Response:
        chats = await self.storage.trusted_chats()
        return web.json_response({"chats": [
            {"chat": f"{c.platform}:{c.chat_id}", "level": c.level.value,
             "granted_by": c.granted_by,
             "updated_at": c.updated_at.isoformat() if c.updated_at else None}
            for c in chats
        ]})

    async def set_trust(self, request: web.Request) -> web.Response:
        """{"chat": "platform:id", "level": "untrusted" | "trusted" | "delegated"}."""
        body = await json_body(request)
        chat = body.get("chat") if isinstance(body, dict) else None
        level = body.get("level") if isinstance(body, dict) else None
        if not isinstance(chat, str) or ":" not in chat or level not in LEVEL_COMMANDS:
            return json_error(400, "Send \"chat\" (platform:id) and \"level\" (untrusted, "
                                   "trusted or delegated).")
        message = ""
        for name, off in LEVEL_COMMANDS[level]:
            result = await self.run_command(name, (chat.strip(), "off") if off
                                                    else (chat.strip(),))
            if not result.ok:
                return json_error(400, result.reply.text)
            message = result.reply.text
        return web.json_response({"message": message})

    async def audit(self, request: web.Request) -> web.Response:
        query = request.query
        post = query.get("post")
        try:
            entries = await self.storage.audit_log(
                action=query.get("action") or None,
                post_id=int(post) if post and post.isdigit() else None,
                before_id=int_param(request, "before", 0, 0, 2**62) or None,
                limit=int_param(request, "limit", 100, 1, 500),
            )
        except InvalidInputError as exc:
            return json_error(400, str(exc))
        return web.json_response({"entries": [audit_json(e) for e in entries]})

    async def history(self, request: web.Request) -> web.Response:
        post_id = int(request.match_info["post_id"])
        try:
            item = await self.console.item_for_post(post_id)
        except (NotFoundError, InvalidInputError):
            return json_error(404, "No such meme.")
        entries = await self.storage.post_history(post_id)
        decisions = await self.storage.corrections_for(post_id)
        return web.json_response({
            "item": item, "history": [audit_json(e) for e in entries],
            # What can still be taken back: the decisions no retrain used yet.
            "undoable": [c.id for c in decisions if c.trained_job_id is None],
        })

    async def undo(self, request: web.Request) -> web.Response:
        correction_id = int(request.match_info["correction_id"])
        try:
            correction = await self.storage.get_correction(correction_id)
            post = await self.storage.get_post(correction.post_id)
        except (NotFoundError, InvalidInputError):
            return json_error(404, "No such correction (undone already?).")
        outcome = await self.console.service.handle_button(
            ChatRef(post.platform, post.chat_id), self.console.operator,
            undo_payload(correction_id), None, self.console.outbox,
        )
        if outcome.alert:
            return json_error(409, outcome.notice)
        item = await self.console.item_for_post(post.id)
        self.console.bus.publish("item", item)
        return web.json_response({"notice": outcome.notice, "item": item})

