"""The console's aiohttp application: pages, the JSON API, server-sent events, images.

Every action goes through the core: uploads through `MemeService.handle_upload` (the same
store -> classify -> record path as a chat's `handle_post`), corrections and confirmations through
`handle_button`, and add-label / retrain / rollback through `handle_command`, with the console
admin (proven by the admin token) as the actor the platform vouches for.

Pages: /  (the channel: upload, live feed), /review, /models, /login.
API (JSON): see `Console.routes`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader, hdrs, web

from bot.console import models_info
from bot.console.events import EventBus
from bot.console.governance import GovernanceViews
from bot.console.media import MEDIA_TYPES, media_json
from bot.console.outbox import ConsoleOutbox
from bot.console.pages import PAGES, STATIC_DIR, render_page
from bot.console.params import int_param as _int_param
from bot.console.params import json_body as _json_body
from bot.console.security import Guard, json_error, middleware
from bot.console.settings_panel import SettingsPanel
from bot.console.uploads import NameMemory, display_file_name
from bot.core import formatting as fmt
from bot.core.downloads import megabytes
from bot.core.media import READABLE, READABLE_CLIPS, claims_media
from bot.core.messages import Actor, ChatRef, Command, ImagePost
from bot.core.moderation import EXEMPT, NOT_REPOST, repost_payload
from bot.core.outcomes import (
    CommandResult,
    LabelAdded,
    ModelServing,
    PostStatus,
    RetrainQueued,
    SortPlaces,
)
from bot.core.runtime import CoreRuntime
from bot.core.service import button_payload
from storage.blobs import BlobStore
from storage.errors import InvalidInputError, NotFoundError, StorageError
from storage.records import JobStatus, Post, PredictionRecord, RetrainJob, ReviewItem

log = logging.getLogger(__name__)

PLATFORM = "console"


@dataclass(frozen=True)
class PredictionShown:
    """What a card shows of a prediction (a stored record, or one the core just made)."""

    id: int
    label: str
    confidence: float
    model_version: str
    remembered: bool = False  # the label came from the correction memory


CHAT = ChatRef(PLATFORM, "channel")
ADMIN = Actor(PLATFORM, "admin", "console admin")
VIEWER = Actor(PLATFORM, "viewer", "console visitor")
MAX_FILES_PER_REQUEST = 20
MAX_TITLE_BYTES = 16 * 1024  # a title is a few words; 4,096 characters are kept (storage)
CHUNK = 64 * 1024
SSE_KEEPALIVE_S = 15.0
# What an upload that was not labelled answers, by the core's status.
HTTP_STATUS = {
    PostStatus.disabled: 409,
    PostStatus.busy: 503,
    PostStatus.shutting_down: 503,
    PostStatus.too_large: 413,
    PostStatus.unsupported: 415,
    PostStatus.unreadable: 422,
    PostStatus.not_downloaded: 422,
    PostStatus.redelivered: 409,
}
JobJSON = dict[str, Any]


async def _platform_says_admin() -> bool:
    """The console's answer to "does this actor administer the chat?": only asked after the
    console itself checked the admin token."""
    return True


class Console:
    def __init__(self, runtime: CoreRuntime, admin_token: str, *, loopback_only: bool) -> None:
        self.runtime = runtime
        self.storage = runtime.storage
        self.service = runtime.service
        self.max_bytes = runtime.settings.max_download_bytes
        self.guard = Guard(admin_token, loopback_only=loopback_only)
        self.bus = EventBus()
        self.outbox = ConsoleOutbox(self.bus)
        self.names = NameMemory()
        self.blobs = BlobStore(self.storage.blob_root)
        # The admin token makes the console's visitor an operator (bot.core.governance).
        self.operator = ADMIN
        self.governance = GovernanceViews(self, self._command)
        self.settings_panel = SettingsPanel(self._command)

    # ------------------------------------------------------------------------ application

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[middleware(self.guard)])
        app.add_routes(self.routes())
        app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
        app.on_shutdown.append(self._on_shutdown)
        return app

    def routes(self) -> list[web.RouteDef]:
        pages = [web.get(path, self._page(path)) for path in PAGES]
        return [
            *pages,
            web.get("/img/{sha256:[0-9a-f]{64}}", self.image),
            web.get("/api/session", self.session),
            web.post("/api/login", self.login),
            web.post("/api/logout", self.logout),
            web.get("/api/feed", self.feed),
            web.post("/api/upload", self.upload),
            web.get("/api/events", self.events),
            web.get("/api/review", self.review),
            web.get("/api/stats", self.stats),
            web.get("/api/labels", self.labels),
            web.post("/api/labels", self.admin_only(self.add_label)),
            web.get("/api/posts/{post_id:[0-9]{1,18}}", self.post),
            web.post("/api/posts/{post_id:[0-9]{1,18}}/label", self.admin_only(self.set_label)),
            web.post("/api/posts/{post_id:[0-9]{1,18}}/confirm", self.admin_only(self.confirm)),
            web.get("/api/models", self.models),
            web.get("/api/models/{version}/files/{name}", self.model_file),
            web.post("/api/models/rollback", self.admin_only(self.rollback)),
            web.post("/api/retrain", self.admin_only(self.retrain)),
            web.get("/api/jobs", self.jobs),
            web.get("/api/jobs/{job_id:[0-9]{1,18}}", self.job),
            web.get("/api/sort", self.sort_places),
            web.post("/api/sort", self.admin_only(self.set_sort)),
            web.get("/api/sorted", self.sorted_items),
            web.post("/api/reposts", self.admin_only(self.set_reposts)),
            web.post("/api/posts/{post_id:[0-9]{1,18}}/repost", self.admin_only(self.judge_repost)),
            *self.governance.routes(self.admin_only),
            web.get("/api/settings", self.admin_only(self.settings_panel.show)),
            web.post("/api/settings", self.admin_only(self.settings_panel.change)),
        ]

    async def _on_shutdown(self, app: web.Application) -> None:
        self.bus.close()

    def _page(self, path: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        html = render_page(path)

        async def page(request: web.Request) -> web.StreamResponse:
            return web.Response(text=html, content_type="text/html",
                                headers={hdrs.CACHE_CONTROL: "no-cache"})

        return page

    def admin_only(
        self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def checked(request: web.Request) -> web.StreamResponse:
            if not self.guard.is_admin(request):
                return json_error(403, "Only admins can do that: sign in with the admin token.")
            return await handler(request)

        return checked

    # --------------------------------------------------------------------------- JSON views

    def label_json(self, name: str) -> dict[str, str]:
        return {"name": name, "display": fmt.display_name(name)}

    def item_json(
        self,
        post: Post,
        prediction: PredictionShown | PredictionRecord | None,
        effective_label: str | None,
        corrected: bool,
    ) -> dict[str, Any]:
        item: dict[str, Any] = {
            "post_id": post.id,
            "sha256": post.image.sha256,
            **media_json(post),
            "platform": post.platform,
            "chat_id": post.chat_id,
            "posted_at": post.posted_at.isoformat(),
            "name": self.names.get(post.id) if post.platform == PLATFORM else None,
            "caption": post.caption,
            "prediction_id": None,
            "label": None,
            "label_name": None,
            "confidence": None,
            "text": None,
            "model_version": None,
            "remembered": False,
            "effective_label": effective_label,
            "effective_name": fmt.display_name(effective_label) if effective_label else None,
            "corrected": corrected,
        }
        if prediction is not None:
            item.update(
                prediction_id=prediction.id,
                label=prediction.label,
                label_name=fmt.display_name(prediction.label),
                confidence=prediction.confidence,
                text=self.service.prediction_text(prediction.label, prediction.confidence,
                                                  remembered=prediction.remembered),
                model_version=prediction.model_version,
                remembered=prediction.remembered,
            )
        return item

    def review_item_json(self, item: ReviewItem) -> dict[str, Any]:
        return self.item_json(item.post, item.prediction, item.effective_label, item.corrected)

    async def item_for_post(self, post_id: int) -> dict[str, Any]:
        post = await self.storage.get_post(post_id)
        predictions = await self.storage.predictions_for(post_id)
        effective = await self.storage.effective_label(post.image.sha256)
        corrections = await self.storage.corrections_for(post_id)
        corrected = any(c.kind.value == "correction" for c in corrections)
        return self.item_json(post, predictions[-1] if predictions else None, effective, corrected)

    @staticmethod
    def job_json(job: RetrainJob | None) -> JobJSON | None:
        if job is None:
            return None
        return {
            "id": job.id,
            "kind": job.kind,
            "status": job.status.value,
            "requested_by": job.requested_by,
            "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "log_tail": job.log_tail[-4000:],
            "error": job.error,
            "model_version": job.model_version,
            "finished": job.status in (JobStatus.succeeded, JobStatus.failed),
        }

    # ---------------------------------------------------------------------- session, login

    async def session(self, request: web.Request) -> web.Response:
        labels = [label.name for label in await self.storage.list_labels()]
        return web.json_response({
            "admin": self.guard.is_admin(request),
            "labels": [self.label_json(name) for name in labels],
            "serving": self.runtime.models.current.version,
            "max_upload_bytes": self.max_bytes,
            "max_upload_text": megabytes(self.max_bytes),
        })

    async def login(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not 0 < len(token) <= 256 or not (
            self.guard.token_matches(token.strip())
        ):
            await asyncio.sleep(0.3)  # slows down guessing
            return json_error(403, "That is not the admin token.")
        response = web.json_response({"admin": True})
        self.guard.sign_in(response)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.json_response({"admin": False})
        self.guard.sign_out(response)
        return response

    # ------------------------------------------------------------------------------- feed

    async def feed(self, request: web.Request) -> web.Response:
        limit = _int_param(request, "limit", 60, 1, 200)
        offset = _int_param(request, "offset", 0, 0, 1_000_000)
        items = await self.storage.recent_predictions(
            platform=CHAT.platform, chat_id=CHAT.chat_id, limit=limit, offset=offset
        )
        return web.json_response({"items": [self.review_item_json(i) for i in items]})

    async def upload(self, request: web.Request) -> web.Response:
        try:
            reader = await request.multipart()
        except (AssertionError, ValueError, KeyError):
            return json_error(400, "Send the images as multipart/form-data (field \"file\").")
        actor = ADMIN if self.guard.is_admin(request) else VIEWER
        results: list[dict[str, Any]] = []
        caption: str | None = None  # a "title" part applies to the files after it
        while True:
            part = await reader.next()
            if part is None:
                break
            if isinstance(part, BodyPartReader) and part.name == "title":
                raw = await _read_limited(part, MAX_TITLE_BYTES)
                if raw is None:
                    return json_error(
                        413, f"The title is too long (at most {MAX_TITLE_BYTES} bytes)."
                    )
                caption = raw.decode("utf-8", errors="replace")
                continue
            if not isinstance(part, BodyPartReader) or part.name != "file":
                await part.release()
                continue
            name = display_file_name(part.filename)
            if len(results) >= MAX_FILES_PER_REQUEST:
                results.append(
                    _failed(name, 413, f"At most {MAX_FILES_PER_REQUEST} files at once.")
                )
                await part.release()
                break
            if not claims_media(part.headers.get(hdrs.CONTENT_TYPE), name):
                await part.release()
                kinds = (f"{READABLE.replace(' and ', ', ')}, "
                         f"{READABLE_CLIPS.replace(' and ', ' or ')}")
                results.append(_failed(
                    name, 415, f"This is not an image or a clip: upload {kinds}."
                ))
                continue
            data = await _read_limited(part, self.max_bytes)
            if data is None:
                results.append(_failed(
                    name, 413, f"The file is too large (the limit is {megabytes(self.max_bytes)})."
                ))
                continue
            results.append(await self._post_upload(name, data, actor, caption))
        if not results:
            return json_error(400, "No file received (field \"file\").")
        status = 200 if any(r["ok"] for r in results) else results[0]["status"]
        return web.json_response({"results": results}, status=status)

    async def _post_upload(
        self, name: str, data: bytes, actor: Actor, caption: str | None = None
    ) -> dict[str, Any]:
        post = ImagePost(chat=CHAT, message_id=uuid.uuid4().hex, author=actor, caption=caption)
        outcome = await self.service.handle_upload(post, data, self.outbox)
        stored, prediction = outcome.post, outcome.prediction
        if stored is None or prediction is None or outcome.prediction_id is None:
            reason = outcome.reply.text if outcome.reply else "The console channel is switched off."
            return _failed(name, HTTP_STATUS.get(outcome.status, 500), reason)
        self.names.remember(stored.id, name)
        # A new post: only the image's earlier admin label can differ from what the core had.
        effective = await self.storage.effective_label(stored.image.sha256)
        shown = PredictionShown(outcome.prediction_id, prediction.label, prediction.confidence,
                                prediction.model_version, outcome.remembered)
        item = self.item_json(stored, shown, effective, False)
        if outcome.repost is not None and outcome.repost_note is not None:
            # The console never deletes: the admin decides.
            item["repost"] = {"text": outcome.repost_note.text,
                              "original_post_id": outcome.repost.original_post_id}
        self.bus.publish("item", item)
        return {"ok": True, "status": 200, "name": name, "item": item}

    async def events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={
            hdrs.CONTENT_TYPE: "text/event-stream",
            hdrs.CACHE_CONTROL: "no-cache",
            "X-Content-Type-Options": "nosniff",
            "X-Accel-Buffering": "no",
        })
        queue = self.bus.subscribe()
        try:
            await response.prepare(request)
            await response.write(b"retry: 2000\n\n")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if message is None:
                    break
                await response.write(message.encode())
        except ConnectionResetError:  # the page went away
            pass
        finally:
            self.bus.unsubscribe(queue)
        return response

    async def image(self, request: web.Request) -> web.StreamResponse:
        sha256 = request.match_info["sha256"]  # the route only matches 64 lowercase hex digits
        for extension, media_type in MEDIA_TYPES.items():
            path = self.blobs.path_for(sha256, extension)
            if path.is_file():
                response = web.FileResponse(path, headers={
                    hdrs.CONTENT_TYPE: media_type,
                    hdrs.CACHE_CONTROL: "private, max-age=31536000, immutable",
                    hdrs.CONTENT_DISPOSITION: "inline",
                })
                return response
        return json_error(404, "No such image.")

    # ----------------------------------------------------------------------------- review

    async def review(self, request: web.Request) -> web.Response:
        query = request.query
        label = query.get("label") or None
        choices = {"": None, "any": None, "yes": True, "no": False}
        corrected = choices.get(query.get("corrected", ""))
        if query.get("corrected", "") not in ("", "any", "yes", "no"):
            return json_error(400, "corrected must be yes, no or any.")
        try:
            min_conf = _probability(query.get("min_confidence"))
            max_conf = _probability(query.get("max_confidence"))
        except ValueError as exc:
            return json_error(400, str(exc))
        platform = query.get("platform") or None
        try:
            items = await self.storage.recent_predictions(
                label=label,
                min_confidence=min_conf,
                max_confidence=max_conf,
                corrected=corrected,
                platform=platform,
                low_confidence_first=query.get("order", "low") != "new",
                limit=_int_param(request, "limit", 50, 1, 200),
                offset=_int_param(request, "offset", 0, 0, 1_000_000),
            )
        except InvalidInputError as exc:
            return json_error(400, str(exc))
        return web.json_response({
            "items": [self.review_item_json(i) for i in items],
            "stats": await self._stats_json(),
        })

    async def _stats_json(self) -> dict[str, Any]:
        stats = await self.storage.stats()
        return {
            "memes_seen": stats.memes_seen,
            "unique_images": stats.unique_images,
            "predicted_per_label": stats.predicted_per_label,
            "labelled_per_label": stats.labelled_per_label,
            "corrections": stats.corrections,
            "confirmations": stats.confirmations,
            "active_model": stats.active_model,
            "queued_jobs": stats.queued_jobs,
            "running_jobs": stats.running_jobs,
        }

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(await self._stats_json())

    async def post(self, request: web.Request) -> web.Response:
        try:
            item = await self.item_for_post(int(request.match_info["post_id"]))
        except (NotFoundError, InvalidInputError):
            return json_error(404, "No such meme.")
        return web.json_response({"item": item})

    # ------------------------------------------------------------------ labels (admin)

    async def labels(self, request: web.Request) -> web.Response:
        labels = await self.storage.list_labels()
        model_labels = set(self.runtime.models.current.labels)
        return web.json_response({"labels": [
            {**self.label_json(label.name), "in_model": label.name in model_labels,
             "added_by": label.added_by}
            for label in labels
        ]})

    async def add_label(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            return json_error(
                400, "A label is 1-32 lowercase letters, digits or underscores (e.g. genshin)."
            )
        result = await self._command("addlabel", (name,))
        if not isinstance(result.data, LabelAdded):
            return json_error(400, result.reply.text)
        labels = sorted(label.name for label in await self.storage.list_labels())
        self.bus.publish("labels", {"labels": [self.label_json(n) for n in labels]})
        return web.json_response({"message": result.reply.text, "added": [result.data.name]})

    async def set_label(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        label = body.get("label") if isinstance(body, dict) else None
        if not isinstance(label, str) or not label:
            return json_error(400, "Say which label (\"label\").")
        return await self._apply_label(int(request.match_info["post_id"]), label)

    async def confirm(self, request: web.Request) -> web.Response:
        post_id = int(request.match_info["post_id"])
        try:
            predictions = await self.storage.predictions_for(post_id)
        except StorageError:
            predictions = []
        if not predictions:
            return json_error(404, "This meme has no label to confirm.")
        return await self._apply_label(post_id, predictions[-1].label)

    async def _apply_label(self, post_id: int, label: str) -> web.Response:
        try:
            post = await self.storage.get_post(post_id)
        except (NotFoundError, InvalidInputError):
            return json_error(404, "No such meme.")
        # The post's own chat: the core refuses buttons pressed in another chat.
        outcome = await self.service.handle_button(
            ChatRef(post.platform, post.chat_id), ADMIN, button_payload(post_id, label),
            _platform_says_admin, self.outbox,
        )
        if outcome.alert:
            return json_error(400, outcome.notice)
        item = await self.item_for_post(post_id)
        self.bus.publish("item", item)
        return web.json_response({"notice": outcome.notice, "changed": outcome.changed,
                                  "item": item})

    # ------------------------------------------------------------- reposts and sorting

    async def sort_places(self, request: web.Request) -> web.Response:
        settings = await self.storage.chat_settings(CHAT.platform, CHAT.chat_id)
        return web.json_response(
            {"places": settings.sort_places, "repost_mode": settings.repost_mode}
        )

    async def set_sort(self, request: web.Request) -> web.Response:
        """{"label": L, "tab": T} sorts L's memes into tab T; "tab": null stops sorting L."""
        body = await _json_body(request)
        label = body.get("label") if isinstance(body, dict) else None
        tab = body.get("tab") if isinstance(body, dict) else None
        if not isinstance(label, str) or not (tab is None or isinstance(tab, str)):
            return json_error(400, "Say which label (\"label\") and tab (\"tab\", or null).")
        if isinstance(tab, str) and (not tab.strip() or tab.strip().lower() == "off"):
            return json_error(400, "A tab needs a name.")
        result = await self._command("sort", (label, tab if tab is not None else "off"))
        if not isinstance(result.data, SortPlaces):
            return json_error(400, result.reply.text)
        places = result.data.places
        self.bus.publish("places", {"places": places})
        return web.json_response({"message": result.reply.text, "places": places})

    async def sorted_items(self, request: web.Request) -> web.Response:
        tab = request.query.get("tab", "")
        if not tab:
            return json_error(400, "Say which tab (?tab=NAME).")
        limit = _int_param(request, "limit", 60, 1, 200)
        offset = _int_param(request, "offset", 0, 0, 1_000_000)
        forwards = await self.storage.forwards_in(CHAT.platform, CHAT.chat_id, tab,
                                                  limit=limit, offset=offset)
        items = [await self.item_for_post(f.post_id) for f in forwards]
        return web.json_response({"tab": tab, "items": items})

    async def set_reposts(self, request: web.Request) -> web.Response:
        """{"mode": "off"|"note"} and/or {"window_days": N}; the console never deletes."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            return json_error(400, "Send {\"mode\": ...} or {\"window_days\": ...}.")
        mode, days = body.get("mode"), body.get("window_days")
        if mode not in (None, "off", "note") or not (days is None or isinstance(days, int)):
            return json_error(400, "mode is off or note; window_days a number of days.")
        texts = []
        for args in ([mode] if mode else [], ["window", str(days)] if days is not None else []):
            if not args:
                continue
            result = await self._command("reposts", tuple(args))
            if not result.ok:
                return json_error(400, result.reply.text)
            texts.append(result.reply.text)
        settings = await self.storage.chat_settings(CHAT.platform, CHAT.chat_id)
        return web.json_response({"message": " ".join(texts), "mode": settings.repost_mode,
                                  "window_days": settings.repost_window_days})

    async def judge_repost(self, request: web.Request) -> web.Response:
        """{"action": "not_repost" | "exempt", "original_post_id": N}: the admin's word on a
        flagged upload, stored like a correction."""
        body = await _json_body(request)
        action = body.get("action") if isinstance(body, dict) else None
        original = body.get("original_post_id") if isinstance(body, dict) else None
        kinds = {"not_repost": NOT_REPOST, "exempt": EXEMPT}
        if action not in kinds or not isinstance(original, int) or original <= 0:
            return json_error(400, "Say not_repost or exempt (\"action\") and the original "
                                   "(\"original_post_id\").")
        post_id = int(request.match_info["post_id"])
        try:
            post = await self.storage.get_post(post_id)
        except (NotFoundError, InvalidInputError):
            return json_error(404, "No such meme.")
        outcome = await self.service.handle_button(
            ChatRef(post.platform, post.chat_id), ADMIN,
            repost_payload(kinds[action], post_id, original), _platform_says_admin, self.outbox,
        )
        if outcome.alert:
            return json_error(400, outcome.notice)
        item = await self.item_for_post(post_id)
        self.bus.publish("item", item)
        return web.json_response({"notice": outcome.notice, "item": item,
                                  "text": outcome.reply.text if outcome.reply else None})

    # --------------------------------------------------------------- models, retrain, jobs

    async def models(self, request: web.Request) -> web.Response:
        versions = await self.storage.list_model_versions()
        serving = self.runtime.models.current.version
        described = await asyncio.to_thread(
            lambda: [models_info.describe(v, serving) for v in reversed(versions)]
        )
        jobs = await self.storage.list_jobs(limit=10)
        return web.json_response({
            "serving": serving,
            "versions": described,
            "jobs": [self.job_json(j) for j in jobs],
        })

    async def model_file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        match = models_info.REPORT_NAME.fullmatch(name)
        if match is None:
            return json_error(404, "No such report.")
        try:
            version = await self.storage.get_model_version(request.match_info["version"])
        except (NotFoundError, InvalidInputError):
            return json_error(404, "No such model version.")
        folder = Path(version.path)
        path = folder / name
        listed = await asyncio.to_thread(models_info.report_files, folder)
        if name not in listed or path.is_symlink() or not path.is_file():
            return json_error(404, "No such report.")
        headers: dict[str, str] = {hdrs.CONTENT_TYPE: models_info.CONTENT_TYPES[match.group(1)]}
        if match.group(1) in ("html", "svg"):
            # A report page may not run scripts or reach anything: shown sandboxed.
            headers["Content-Security-Policy"] = (
                "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
            )
        return web.FileResponse(path, headers=headers)

    async def rollback(self, request: web.Request) -> web.Response:
        body = await _json_body(request, allow_empty=True)
        version = body.get("version") if isinstance(body, dict) else None
        if version is not None and (not isinstance(version, str) or not 0 < len(version) <= 64):
            return json_error(400, "version must be a model version name.")
        result = await self._command("rollback", (version,) if version else ())
        if not isinstance(result.data, ModelServing):
            return json_error(409, result.reply.text)
        self.bus.publish("model", {"serving": result.data.version})
        return web.json_response({"message": result.reply.text, "serving": result.data.version})

    async def retrain(self, request: web.Request) -> web.Response:
        result = await self._command("retrain", ())
        job = None
        if isinstance(result.data, RetrainQueued):
            job = await self.storage.get_job(result.data.job_id)
        return web.json_response({"message": result.reply.text, "job": self.job_json(job)})

    async def _command(self, name: str, args: tuple[str, ...]) -> CommandResult:
        """A console admin's action, run as the chat command of that name."""
        result = await self.service.handle_command(
            Command(CHAT, ADMIN, name, args), _platform_says_admin
        )
        if result is None:  # the table is the core's: a missing name is a bug here
            raise LookupError(f"no command {name!r}")
        return result

    async def jobs(self, request: web.Request) -> web.Response:
        jobs = await self.storage.list_jobs(limit=_int_param(request, "limit", 10, 1, 100))
        return web.json_response({"jobs": [self.job_json(j) for j in jobs]})

    async def job(self, request: web.Request) -> web.Response:
        try:
            job = await self.storage.get_job(int(request.match_info["job_id"]))
        except (NotFoundError, InvalidInputError):
            return json_error(404, "No such retrain job.")
        view = self.job_json(job)
        assert view is not None
        if view["finished"]:
            # The same report the chat admins get (a promoted model serves at once, instead
            # of at the next periodic check).
            view["report"] = (await self.runtime.jobs.report(job)).text
        return web.json_response({
            "job": view,
            "serving": self.runtime.models.current.version,
        })


# ------------------------------------------------------------------------------- helpers


def _failed(name: str, status: int, error: str) -> dict[str, Any]:
    return {"ok": False, "status": status, "name": name, "error": error}


async def _read_limited(part: Any, max_bytes: int) -> bytes | None:
    """The part's bytes, or None (after draining it) when it is larger than `max_bytes`."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            while await part.read_chunk(CHUNK):
                pass
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _probability(raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("confidence bounds must be numbers between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError("confidence bounds must be numbers between 0 and 1")
    return value
