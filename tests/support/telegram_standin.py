"""A small stand-in of the Telegram Bot API (aiohttp, 127.0.0.1, port 0) for driving the real
python-telegram-bot client, plus a harness that runs the real bot against it.

What it models, because PTB depends on it: every call is a POST (form-encoded, JSON values
such as `reply_markup` inside the form); getFile returns a relative `file_path` that PTB
then GETs under the file URL; objects are complete (a getChatMember "administrator" needs
all its `can_*` fields); `allowed_updates` filters what getUpdates delivers (reactions are
off unless asked for); pending long polls are released on stop. Any method it does not
implement answers HTTP 500 and is recorded in `unexpected`, which `stop()` turns into an
AssertionError.

Memes as Telegram sends them: photos, documents, stickers (static WebP, animated TGS, video
WebM), GIFs as MP4 "animations" (which also fill `document`), videos, video notes (no MIME type
or name), and albums: one message per item sharing a `media_group_id`, the caption on the first.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.standin_server import StandInServer

TOKEN = "123456789:AAHstandinSecretTokenValue_0123456789"
BOT_ID = 123456789
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "Memebot", "username": "meme_test_bot",
            "can_join_groups": True, "can_read_all_group_messages": True,
            "supports_inline_queries": False, "can_connect_to_business": False,
            "has_main_web_app": False}
# Telegram leaves these out unless a bot asks for them by name.
DEFAULT_EXCLUDED = {"chat_member", "message_reaction", "message_reaction_count"}
MAX_GETFILE_BYTES = 20 * 1024 * 1024  # the real API refuses getFile above this


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class SentMessage:
    message_id: int
    chat_id: int
    text: str
    reply_to: int | None
    reply_markup: dict[str, Any] | None
    sent_at: float
    edits: list[str] = field(default_factory=list)
    photo: bytes | None = None  # sendPhoto: the image (`text` is its caption)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [button for row in rows for button in row]


@dataclass
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool


def user(user_id: int, name: str = "Alice") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": name, "username": name.lower()}


def group(chat_id: int = -1001, title: str = "Memes") -> dict[str, Any]:
    return {"id": chat_id, "type": "supergroup", "title": title}


class TelegramStandIn(StandInServer):
    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self._ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._updates: list[dict[str, Any]] = []
        self._update_event = asyncio.Event()
        self._closing = False
        self.allowed_updates: list[str] | None = None
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self.members: dict[tuple[int, int], str] = {}  # (chat, user) -> status
        self.sent: list[SentMessage] = []
        self.answers: list[CallbackAnswer] = []
        self.calls: list[str] = []
        self.messages: dict[int, dict[str, Any]] = {}  # message id -> the posted message
        self.update_times: dict[int, float] = {}  # message id -> when its update was queued
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.my_commands: list[tuple[str, str]] = []  # the command menu (setMyCommands)
        self.get_updates_calls = 0
        self.flood_next_sends = 0  # answer this many sendMessage calls with 429 first
        self.copies: list[dict[str, Any]] = []  # copyMessage calls that succeeded
        self.deleted: list[tuple[int, int]] = []  # (chat, message) removed by deleteMessage
        self.can_delete: set[int] = set()  # chats where the bot may delete others' messages
        # Users who opened a private chat with the bot: Telegram refuses a bot's first message
        # to anyone else ("bot can't initiate conversation with a user").
        self.started: set[int] = set()
        self.reactions: list[tuple[int, int, str]] = []  # setMessageReaction: chat, msg, emoji
        self.deleted_by_members: set[int] = set()  # messages their authors deleted
        self.privacy_mode = False  # on: getMe says the bot cannot read all group messages
        self.polling_down = False  # getUpdates fails (Telegram unreachable)

    # ------------------------------------------------------------------------ server life

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._file)

    async def stop(self) -> None:
        self._closing = True
        self._update_event.set()  # release pending long polls at once
        await super().stop()

    # ----------------------------------------------------------------------- HTTP handlers

    async def _file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        return self.serve_file(next((d for p, d in self.files.values() if p == path), None))

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.calls.append(method)
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            self.unexpected.append(method)
            return web.json_response(
                {"ok": False, "error_code": 500, "description": f"stand-in: no {method}"},
                status=500,
            )
        params = {k: _decode(v) for k, v in (await request.post()).items()}
        if method == "getUpdates":
            self.get_updates_calls += 1
            await self.changed()  # a waiter may be waiting for the bot to start polling
        try:
            result = await handler(params)
        except ApiError as exc:
            body: dict[str, Any] = {"ok": False, "error_code": exc.code,
                                    "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.code)
        await self.changed()
        return web.json_response({"ok": True, "result": result})

    # ---------------------------------------------------------------------- API methods

    async def _m_getMe(self, p: dict[str, Any]) -> Any:
        return {**BOT_USER, "can_read_all_group_messages": not self.privacy_mode}

    async def _m_setMyCommands(self, p: dict[str, Any]) -> Any:
        self.my_commands = [(c["command"], c["description"]) for c in p["commands"]]
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook_url = None
        return True

    async def _m_setWebhook(self, p: dict[str, Any]) -> Any:
        self.webhook_url = p["url"]
        self.webhook_secret = p.get("secret_token")
        self.allowed_updates = p.get("allowed_updates")
        return True

    async def deliver_to_webhook(self, secret: str | None = None) -> list[int]:
        """POST the pending updates to the bot's webhook, as Telegram would; HTTP statuses."""
        import aiohttp

        assert self.webhook_url, "the bot has not set a webhook"
        ready = [u for u in self._updates if self._allowed(u)]
        self._updates = []
        header = secret if secret is not None else self.webhook_secret
        headers = {"X-Telegram-Bot-Api-Secret-Token": header} if header else {}
        statuses = []
        async with aiohttp.ClientSession() as session:
            for update in ready:
                async with session.post(self.webhook_url, json=update, headers=headers) as r:
                    statuses.append(r.status)
        return statuses

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:
        if self.polling_down:
            raise ApiError(502, "Bad Gateway")
        if "allowed_updates" in p:
            self.allowed_updates = p["allowed_updates"]
        offset = int(p.get("offset", 0))
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + float(p.get("timeout", 0))
        while not self._closing:
            ready = [u for u in self._updates if self._allowed(u)]
            if ready:
                return ready[: int(p.get("limit", 100))]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            self._update_event.clear()
            try:
                await asyncio.wait_for(self._update_event.wait(), remaining)
            except TimeoutError:
                return []
        return []

    def _allowed(self, update: dict[str, Any]) -> bool:
        kind = next(k for k in update if k != "update_id")
        if self.allowed_updates is None or self.allowed_updates == []:
            return kind not in DEFAULT_EXCLUDED
        return kind in self.allowed_updates

    async def _m_sendMessage(self, p: dict[str, Any]) -> Any:
        if self.flood_next_sends > 0:
            self.flood_next_sends -= 1
            raise ApiError(429, "Too Many Requests: retry after 1", retry_after=1)
        chat_id = int(p["chat_id"])
        if chat_id > 0 and chat_id not in self.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        parameters = p.get("reply_parameters") or {}
        reply_to = parameters.get("message_id") or p.get("reply_to_message_id")
        if reply_to is not None and int(reply_to) in self.deleted_by_members:
            if not parameters.get("allow_sending_without_reply"):
                raise ApiError(400, "Bad Request: message to reply to not found")
            reply_to = None
        sent = SentMessage(
            message_id=next(self._message_ids),
            chat_id=chat_id,
            text=str(p["text"]),
            reply_to=int(reply_to) if reply_to is not None else None,
            reply_markup=p.get("reply_markup"),
            sent_at=time.perf_counter(),
        )
        self.sent.append(sent)
        return self._message_json(sent)

    async def _m_sendPhoto(self, p: dict[str, Any]) -> Any:
        photo = p["photo"]
        data = photo.file.read() if hasattr(photo, "file") else str(photo).encode()
        sent = SentMessage(
            message_id=next(self._message_ids), chat_id=int(p["chat_id"]),
            text=str(p.get("caption") or ""), reply_to=None,
            reply_markup=p.get("reply_markup"), sent_at=time.perf_counter(), photo=data,
        )
        self.sent.append(sent)
        return self._message_json(sent)

    async def _m_editMessageCaption(self, p: dict[str, Any]) -> Any:
        return self._edit(p, str(p.get("caption") or ""), photo=True)

    async def _m_setMessageReaction(self, p: dict[str, Any]) -> Any:
        chat_id, message_id = int(p["chat_id"]), int(p["message_id"])
        if message_id not in self.messages:
            raise ApiError(400, "Bad Request: message to react not found")
        for reaction in p.get("reaction") or []:
            self.reactions.append((chat_id, message_id, reaction["emoji"]))
        return True

    async def _m_editMessageText(self, p: dict[str, Any]) -> Any:
        return self._edit(p, str(p["text"]), photo=False)

    def _edit(self, p: dict[str, Any], text: str, *, photo: bool) -> Any:
        chat_id, message_id = int(p["chat_id"]), int(p["message_id"])
        for sent in self.sent:
            if (sent.chat_id, sent.message_id) == (chat_id, message_id):
                if (sent.photo is not None) != photo:
                    raise ApiError(400, "Bad Request: there is no text in the message to edit"
                                   if photo is False else "Bad Request: there is no caption")
                if sent.text == text and sent.reply_markup == p.get("reply_markup"):
                    raise ApiError(400, "Bad Request: message is not modified")
                sent.edits.append(sent.text)
                sent.text = text
                sent.reply_markup = p.get("reply_markup")
                return self._message_json(sent)
        raise ApiError(400, "Bad Request: message to edit not found")

    async def _m_copyMessage(self, p: dict[str, Any]) -> Any:
        from_chat, message_id = int(p["from_chat_id"]), int(p["message_id"])
        if message_id not in self.messages or (message_id, from_chat) in (
            (m, c) for c, m in self.deleted
        ):
            raise ApiError(400, "Bad Request: message to copy not found")
        copy_id = next(self._message_ids)
        self.copies.append({
            "message_id": copy_id, "chat_id": int(p["chat_id"]), "from_chat_id": from_chat,
            "source_message_id": message_id, "caption": p.get("caption"),
            "message_thread_id": p.get("message_thread_id"),
        })
        return {"message_id": copy_id}

    async def _m_deleteMessage(self, p: dict[str, Any]) -> Any:
        chat_id, message_id = int(p["chat_id"]), int(p["message_id"])
        own = any(c["chat_id"] == chat_id and c["message_id"] == message_id for c in self.copies)
        if not own and chat_id not in self.can_delete:
            raise ApiError(400, "Bad Request: message can't be deleted")
        self.deleted.append((chat_id, message_id))
        return True

    async def _m_answerCallbackQuery(self, p: dict[str, Any]) -> Any:
        self.answers.append(
            CallbackAnswer(str(p["callback_query_id"]), p.get("text"), bool(p.get("show_alert")))
        )
        return True

    async def _m_getChatMember(self, p: dict[str, Any]) -> Any:
        chat_id, user_id = int(p["chat_id"]), int(p["user_id"])
        status = self.members.get((chat_id, user_id), "member")
        member: dict[str, Any] = {"status": status, "user": user(user_id, f"user{user_id}")}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update(
                can_be_edited=False, is_anonymous=False, can_manage_chat=True,
                # The bot itself may delete where the test allowed it (`can_delete`).
                can_delete_messages=user_id != BOT_ID or chat_id in self.can_delete,
                can_manage_video_chats=True,
                can_restrict_members=True, can_promote_members=False, can_change_info=True,
                can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False, can_pin_messages=True, can_manage_topics=False,
            )
        return member

    async def _m_getFile(self, p: dict[str, Any]) -> Any:
        file_id = str(p["file_id"])
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        if len(data) > MAX_GETFILE_BYTES:
            raise ApiError(400, "Bad Request: file is too big")
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(data),
                "file_path": path}

    # ------------------------------------------------------------------ objects, updates

    def _message_json(self, sent: SentMessage) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": group(sent.chat_id),
            "from": BOT_USER,
        }
        if sent.photo is not None:
            message["caption"] = sent.text
            message["photo"] = [{"file_id": f"sent{sent.message_id}",
                                 "file_unique_id": f"s{sent.message_id}", "width": 64,
                                 "height": 64}]
        else:
            message["text"] = sent.text
        if sent.reply_markup:
            message["reply_markup"] = sent.reply_markup
        return message

    def _push(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = next(self._ids)
        self._updates.append({"update_id": update_id, kind: payload})
        self._update_event.set()
        return update_id

    def add_file(self, data: bytes, extension: str) -> tuple[str, str]:
        n = next(self._file_ids)
        file_id = f"file{n}"
        self.files[file_id] = (f"documents/file_{n}.{extension}", data)
        return file_id, f"uniq{n}"

    def _message(self, chat: dict[str, Any], sender: dict[str, Any], **content: Any) -> int:
        message_id = next(self._message_ids)
        self.update_times[message_id] = time.perf_counter()
        message = {"message_id": message_id, "date": int(time.time()), "chat": chat,
                   "from": sender, **content}
        self.messages[message_id] = message
        self._push("message", message)
        return message_id

    def delete_by_member(self, message_id: int) -> None:
        """Its author deletes a message (Telegram tells bots nothing; replies to it fail)."""
        self.deleted_by_members.add(message_id)

    def bot_membership(self, chat: dict[str, Any], by: dict[str, Any], status: str) -> int:
        """The bot's own membership changes ("left", "kicked", "member"): my_chat_member."""
        old = "member" if status in ("left", "kicked") else "left"
        new: dict[str, Any] = {"status": status, "user": BOT_USER}
        if status == "kicked":
            new["until_date"] = 0
        return self._push("my_chat_member", {
            "chat": chat, "from": by, "date": int(time.time()),
            "old_chat_member": {"status": old, "user": BOT_USER}, "new_chat_member": new})

    def redeliver(self, message_id: int) -> None:
        """The same message again under a new update id (Telegram retries after a crash)."""
        self._push("message", self.messages[message_id])

    def post_photo(self, chat: dict[str, Any], sender: dict[str, Any], data: bytes,
                   size: int | None = None, caption: str | None = None) -> int:
        return self._message(chat, sender, **self.photo_content(data, size, caption))

    def photo_content(self, data: bytes, size: int | None = None, caption: str | None = None
                      ) -> dict[str, Any]:
        """A photo message's fields (for `post_album` and `post_photo`)."""
        file_id, unique = self.add_file(data, "jpg")
        photo = [
            {"file_id": f"{file_id}-thumb", "file_unique_id": f"{unique}t", "width": 90,
             "height": 90, "file_size": 1000},
            {"file_id": file_id, "file_unique_id": unique, "width": 800, "height": 800,
             "file_size": size if size is not None else len(data)},
        ]
        return {"photo": photo, **({"caption": caption} if caption else {})}

    def _clip(self, data: bytes, extension: str, size: int | None, **fields: Any
              ) -> dict[str, Any]:
        file_id, unique = self.add_file(data, extension)
        return {"file_id": file_id, "file_unique_id": unique,
                "file_size": size if size is not None else len(data), **fields}

    def animation_content(self, data: bytes, size: int | None = None,
                          caption: str | None = None) -> dict[str, Any]:
        """What Telegram makes of a posted GIF: an MP4 "animation", also shown as a document."""
        animation = self._clip(data, "mp4", size, width=320, height=240, duration=2,
                               file_name="meme.gif.mp4", mime_type="video/mp4")
        document = {k: animation[k] for k in ("file_id", "file_unique_id", "file_size",
                                                "file_name", "mime_type")}
        return {"animation": animation, "document": document,
                **({"caption": caption} if caption else {})}

    def video_content(self, data: bytes, size: int | None = None, caption: str | None = None,
                      mime_type: str = "video/mp4") -> dict[str, Any]:
        extension = "webm" if mime_type == "video/webm" else "mp4"
        video = self._clip(data, extension, size, width=320, height=240, duration=2,
                           file_name=f"meme.{extension}", mime_type=mime_type)
        return {"video": video, **({"caption": caption} if caption else {})}

    def post_animation(self, chat: dict[str, Any], sender: dict[str, Any], data: bytes,
                       size: int | None = None, caption: str | None = None) -> int:
        return self._message(chat, sender, **self.animation_content(data, size, caption))

    def post_video(self, chat: dict[str, Any], sender: dict[str, Any], data: bytes,
                   size: int | None = None, caption: str | None = None,
                   mime_type: str = "video/mp4") -> int:
        return self._message(chat, sender, **self.video_content(data, size, caption, mime_type))

    def post_video_note(self, chat: dict[str, Any], sender: dict[str, Any], data: bytes) -> int:
        """A round video message: square, always MP4, no MIME type or name declared."""
        note = self._clip(data, "mp4", None, length=240, duration=2)
        return self._message(chat, sender, video_note=note)

    def post_album(self, chat: dict[str, Any], sender: dict[str, Any],
                   items: list[dict[str, Any]], caption: str | None = None) -> list[int]:
        """An album: one message per item (`photo_content`, `video_content`, ...) sharing a
        media_group_id, the caption on the first one only, as Telegram sends them."""
        group_id = str(13_000_000 + next(self._ids))
        ids = []
        for n, content in enumerate(items):
            fields = {k: v for k, v in content.items() if k != "caption"}
            if n == 0 and caption:
                fields["caption"] = caption
            ids.append(self._message(chat, sender, media_group_id=group_id, **fields))
        return ids

    def post_document(self, chat: dict[str, Any], sender: dict[str, Any], data: bytes,
                      mime_type: str, file_name: str, size: int | None = None) -> int:
        file_id, unique = self.add_file(data, file_name.rsplit(".", 1)[-1])
        document = {"file_id": file_id, "file_unique_id": unique, "file_name": file_name,
                    "mime_type": mime_type, "file_size": size if size is not None else len(data)}
        return self._message(chat, sender, document=document)

    def post_sticker(self, chat: dict[str, Any], sender: dict[str, Any], data: bytes,
                     animated: bool = False, video: bool = False) -> int:
        """A static (WebP), animated (TGS: gzipped Lottie) or video (WebM) sticker."""
        extension = "tgs" if animated else "webm" if video else "webp"
        file_id, unique = self.add_file(data, extension)
        sticker = {"file_id": file_id, "file_unique_id": unique, "type": "regular",
                   "width": 512, "height": 512, "is_animated": animated, "is_video": video,
                   "file_size": len(data)}
        return self._message(chat, sender, sticker=sticker)

    def post_text(self, chat: dict[str, Any], sender: dict[str, Any], text: str) -> int:
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            command = text.split()[0]
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        return self._message(chat, sender, **content)

    def migrate(self, old: dict[str, Any], new: dict[str, Any], sender: dict[str, Any]
                ) -> tuple[int, int]:
        """A group upgraded to a supergroup: the service message in each (old chat:
        migrate_to_chat_id, new chat: migrate_from_chat_id); their message ids. The history
        goes with it, message ids kept (as memebot's storage assumes): the bot's messages are
        edited under the new id."""
        for sent in self.sent:
            if sent.chat_id == old["id"]:
                sent.chat_id = new["id"]
        to_new = self._message(old, sender, migrate_to_chat_id=new["id"])
        from_old = self._message(new, sender, migrate_from_chat_id=old["id"])
        return to_new, from_old

    def press(self, sender: dict[str, Any], reply: SentMessage, data: str) -> str:
        query_id = f"q{next(self._ids)}"
        self._push("callback_query", {
            "id": query_id, "from": sender, "chat_instance": "ci1", "data": data,
            "message": self._message_json(reply),
        })
        return query_id

    def react(self, chat: dict[str, Any], sender: dict[str, Any], message_id: int,
              emoji: str, *, removed: bool = False) -> None:
        """A reaction set, or (`removed`) taken back: Telegram sends the old and new sets."""
        reaction = [{"type": "emoji", "emoji": emoji}]
        self._push("message_reaction", {
            "chat": chat, "message_id": message_id, "user": sender, "date": int(time.time()),
            "old_reaction": reaction if removed else [],
            "new_reaction": [] if removed else reaction,
        })

    def private_to(self, user_id: int) -> list[SentMessage]:
        """What the bot said in its private chat with a user."""
        return [s for s in self.sent if s.chat_id == user_id]

    # ------------------------------------------------------------------------- waiting

    def replies_to(self, message_id: int) -> list[SentMessage]:
        return [s for s in self.sent if s.reply_to == message_id]

    async def reply_to(self, message_id: int, timeout: float = 20.0) -> SentMessage:
        replies = await self.wait_for(lambda: self.replies_to(message_id), timeout)
        return replies[0]


def _decode(value: Any) -> Any:
    """PTB puts JSON inside the form: numbers, booleans, objects and lists arrive as text."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


@asynccontextmanager
async def standin() -> AsyncIterator[TelegramStandIn]:
    server = TelegramStandIn()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# --------------------------------------------------------------------------- bot harness


@asynccontextmanager
async def running_bot(
    server: TelegramStandIn, settings: Any, loader: Callable[..., Any] | None = None
) -> AsyncIterator[Any]:
    """The real bot (core runtime + PTB Application) against `server`; yields the
    `CoreRuntime` once the bot polls (or has set its webhook)."""
    from bot.core.runtime import open_runtime
    from bot.telegram.runner import run

    stop = asyncio.Event()
    origins = [settings.telegram_file_url]
    async with open_runtime(settings, file_origins=origins, loader=loader) as runtime:
        task = asyncio.create_task(run(runtime, stop))
        try:
            await server.wait_for(
                lambda: server.get_updates_calls > 0 or server.webhook_url or task.done()
            )
            if task.done():
                task.result()
            yield runtime
        finally:
            stop.set()
            await task
