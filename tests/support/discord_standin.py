"""A small stand-in of Discord (aiohttp, 127.0.0.1, port 0): the REST routes discord.py 2.x
calls, the gateway websocket and the CDN's attachment downloads, for driving the real
library; plus a harness that runs the real bot against it.

What it models, because discord.py depends on it: JSON answers carry a Content-Type of
exactly `application/json` (the library decodes nothing else); `login()` reads
`/users/@me` then `/oauth2/applications/@me`; the gateway says HELLO, checks IDENTIFY's token
and intents, ACKs heartbeats, sends READY (guilds unavailable) then GUILD_CREATE per guild of
the shard, numbers every dispatch and replays what a dropped connection missed on RESUME;
reaction events carry `"type": 0`; interactions carry `attachment_size_limit` and are
answered on `/interactions/{id}/{token}/callback` without the bot's Authorization header.
Any route or gateway opcode it does not implement is answered with an error and recorded in
`unexpected`, which `stop()` turns into an AssertionError.

Memes beyond attachments: sticker items (their images served under /stickers/, as Discord's
media server does), forwarded messages (`message_snapshots` under a forward reference), link
previews (`embeds`) sent with the message or added later by MESSAGE_UPDATE (`update`), and
`MediaHost`, a stand-in for a GIF site's media server (Tenor) that serves a preview's clip.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import WSMsgType, web

from tests.support.standin_server import StandInServer

TOKEN = "MTIzNDU2Nzg5.standin.SecretDiscordTokenValue_0123456789"
BOT_ID = 900_000_000_000_000_001
APP_ID = 900_000_000_000_000_002
GUILD_ID = 910_000_000_000_000_000
CHANNEL_ID = 920_000_000_000_000_001
ADMIN_CHANNEL_ID = 920_000_000_000_000_002
OTHER_CHANNEL_ID = 920_000_000_000_000_003
MOD_ROLE_ID = 930_000_000_000_000_001  # has Manage Messages
MEME_ADMIN_ROLE_ID = 930_000_000_000_000_002  # no permission; the bot's configured admin role
MEME_ADMIN_ROLE = "Meme admins"
BOT_ROLE_ID = 930_000_000_000_000_003  # the bot's own role (what inviting it granted)
MANAGER_ROLE_ID = 930_000_000_000_000_004  # has Manage Server (and Manage Messages)
MANAGE_MESSAGES = 1 << 13
MANAGE_GUILD = 1 << 5
ATTACH_FILES = 1 << 15
SEND_MESSAGES = 1 << 11
ADD_REACTIONS = 1 << 6
EVERYONE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 16) | (1 << 6)  # view, send, history, react
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | ATTACH_FILES | (1 << 14)  # + attach files, embed links
# The application's flags: Message Content intent enabled in the developer portal (below 100
# guilds Discord sets the "limited" flag).
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
HEARTBEAT_INTERVAL_MS = 2_000
API_VERSION = 10

# What a bot that labels memes must ask for, and what the stand-in checks IDENTIFY against.
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_GUILD_MESSAGE_REACTIONS = 1 << 10
INTENT_MESSAGE_CONTENT = 1 << 15
REQUIRED_INTENTS = (INTENT_GUILDS | INTENT_GUILD_MESSAGES | INTENT_GUILD_MESSAGE_REACTIONS
                    | INTENT_MESSAGE_CONTENT)

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE = 0, 1, 2, 3
OP_RESUME, OP_RECONNECT, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 6, 7, 9, 10, 11


DISCORD_EPOCH_MS = 1_420_070_400_000


class Snowflakes:
    """Ids as Discord makes them: the creation time in the top bits, so that discord.py's
    `created_at` (and any comparison of ids with times) is right; strictly increasing."""

    def __init__(self) -> None:
        self._last = 0

    def __iter__(self) -> Snowflakes:
        return self

    def __next__(self) -> int:
        self._last = max(self._last + 1, self.at(datetime.now(UTC)))
        return self._last

    @staticmethod
    def at(when: datetime) -> int:
        return (int(when.timestamp() * 1000) - DISCORD_EPOCH_MS) << 22


def _now() -> str:
    return datetime.now(UTC).isoformat()


def user(user_id: int, name: str = "Alice", bot: bool = False) -> dict[str, Any]:
    return {"id": str(user_id), "username": name.lower(), "global_name": name,
            "discriminator": "0", "avatar": None, "bot": bot}


BOT_USER = user(BOT_ID, "Memebot", bot=True)


@dataclass(frozen=True)
class Person:
    """A guild member as the stand-in hands it out (roles decide the permissions)."""

    user_id: int
    name: str
    roles: tuple[int, ...] = ()
    bot: bool = False

    @property
    def user(self) -> dict[str, Any]:
        return user(self.user_id, self.name, bot=self.bot)

    def member(self, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"roles": [str(r) for r in self.roles], "joined_at": _now(),
                                "deaf": False, "mute": False, "flags": 0, "nick": None}
        if with_user:
            data["user"] = self.user
        return data

    @property
    def permissions(self) -> int:
        value = EVERYONE_PERMISSIONS
        if MOD_ROLE_ID in self.roles:
            value |= MANAGE_MESSAGES
        if MANAGER_ROLE_ID in self.roles:
            value |= MANAGE_MESSAGES | MANAGE_GUILD
        return value


@dataclass
class SentMessage:
    """A message the bot created (REST) or a reply it gave to an interaction."""

    message_id: int
    channel_id: int
    content: str
    reply_to: int | None
    components: list[dict[str, Any]]
    sent_at: float
    flags: int = 0
    edits: list[str] = field(default_factory=list)
    files: list[bytes] = field(default_factory=list)  # uploaded with the message

    @property
    def buttons(self) -> list[dict[str, Any]]:
        return [c for row in self.components for c in row.get("components", [])]

    @property
    def ephemeral(self) -> bool:
        return bool(self.flags & 64)


@dataclass
class InteractionAnswer:
    interaction_id: int
    kind: int  # 4: a message, 7: the component's message updated
    content: str | None
    ephemeral: bool
    authorization: str | None  # the header the callback came with (must be none)


@dataclass
class Connection:
    ws: web.WebSocketResponse
    shard: tuple[int, int] = (0, 1)
    session_id: str | None = None


@dataclass
class Session:
    session_id: str
    shard: tuple[int, int]
    intents: int
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # every dispatch, for RESUME
    connection: Connection | None = None


class DiscordStandIn(StandInServer):
    def __init__(self, token: str = TOKEN, shards: int = 1, port: int = 0) -> None:
        super().__init__(port)
        self.token = token
        self.shards = shards
        self._ids = Snowflakes()
        self.history: dict[int, list[dict[str, Any]]] = {}  # channel -> members' messages
        self._sessions = itertools.count(1)
        self.sessions: dict[str, Session] = {}
        self.connections: list[Connection] = []
        self.identifies: list[dict[str, Any]] = []
        self.resumes: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.files: dict[str, bytes] = {}  # attachment path -> bytes
        self.sticker_files: dict[str, bytes] = {}  # "ID.png" -> bytes
        self.messages: dict[int, dict[str, Any]] = {}  # id -> members' messages as posted
        self.sent: list[SentMessage] = []
        self.posted: set[int] = set()  # ids of members' messages (post)
        self.deleted: list[tuple[int, int]] = []  # (channel, message) removed by the bot
        # Channels where the bot lacks Manage Messages: deleting members' messages is refused.
        self.no_manage_messages: set[int] = set()
        self.reactions: list[tuple[int, int, str]] = []  # the bot's own: channel, message, emoji
        self.answers: list[InteractionAnswer] = []
        self.synced: dict[int | None, list[dict[str, Any]]] = {}  # guild (None: global) -> cmds
        self.calls: list[str] = []
        self.event_times: dict[int, float] = {}  # message id -> when its MESSAGE_CREATE left
        self._interactions: dict[int, dict[str, Any]] = {}  # id -> payload (+ "answered")
        self.sends_open = asyncio.Event()  # cleared: Discord stalls every message create
        self.sends_open.set()
        self.rate_limit_next_sends = 0  # answer this many message creates with 429 first
        self.rate_limited = 0
        self._offline = itertools.count(1)  # keeps ids made for one instant apart
        self.app_flags = GATEWAY_MESSAGE_CONTENT_LIMITED  # 0: the portal's intent is off
        # channel -> permission bits denied to the bot there (a member overwrite in the guild)
        self.bot_denied: dict[int, int] = {}
        self._routes = self._route_table()

    # ------------------------------------------------------------------------ server life

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/"

    @property
    def cdn_url(self) -> str:
        return f"{self.base}/attachments"

    @property
    def sticker_url(self) -> str:
        return f"{self.base}/stickers"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway/", self._gateway)
        app.router.add_get("/attachments/{path:.+}", self._file)
        app.router.add_get("/stickers/{name}", self._sticker)
        app.router.add_route("*", f"/api/v{API_VERSION}/{{path:.*}}", self._api)
        app.router.add_route("*", "/{path:.*}", self._unknown)

    async def stop(self) -> None:
        for connection in list(self.connections):
            await connection.ws.close(code=1001)
        await super().stop()

    # ------------------------------------------------------------------------------- REST

    def _route_table(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
        table = [
            ("GET", r"users/@me", self._r_me),
            ("GET", r"oauth2/applications/@me", self._r_application),
            ("GET", r"gateway/bot", self._r_gateway_bot),
            ("GET", r"gateway", self._r_gateway),
            ("PUT", r"applications/(?P<app>\d+)/commands", self._r_sync),
            ("PUT", r"applications/(?P<app>\d+)/guilds/(?P<guild>\d+)/commands", self._r_sync),
            ("POST", r"channels/(?P<channel>\d+)/messages", self._r_create_message),
            ("GET", r"channels/(?P<channel>\d+)/messages", self._r_history),
            ("PATCH", r"channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self._r_edit),
            ("DELETE", r"channels/(?P<channel>\d+)/messages/(?P<message>\d+)", self._r_delete),
            ("PUT", r"channels/(?P<channel>\d+)/messages/(?P<message>\d+)/reactions/"
                    r"(?P<emoji>[^/]+)/@me", self._r_react),
            ("POST", r"interactions/(?P<id>\d+)/(?P<token>[^/]+)/callback", self._r_callback),
            ("POST", r"webhooks/(?P<app>\d+)/(?P<token>[^/]+)", self._r_followup),
        ]
        return [(m, re.compile(p + "$"), h) for m, p, h in table]

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unexpected.append(f"{request.method} {request.path}")
        return _json({"message": "stand-in: not implemented", "code": 0}, status=404)

    async def _api(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        self.calls.append(f"{request.method} {path}")
        for method, pattern, route in self._routes:
            match = pattern.match(path)
            if method == request.method and match:
                handler = route
                break
        else:
            self.unexpected.append(f"{request.method} /{path}")
            return _json({"message": f"stand-in: no {request.method} /{path}", "code": 0},
                         status=500)
        is_callback = handler == self._r_callback
        auth = request.headers.get("Authorization")
        if not is_callback and auth != f"Bot {self.token}":
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        result = await handler(request, **match.groupdict())
        await self.changed()
        return result if isinstance(result, web.Response) else _json(result)

    async def _r_me(self, request: web.Request) -> Any:
        return {**BOT_USER, "flags": 0, "mfa_enabled": False, "verified": True}

    async def _r_application(self, request: web.Request) -> Any:
        return {"id": str(APP_ID), "name": "Memebot", "icon": None, "description": "",
                "bot_public": True, "bot_require_code_grant": False, "verify_key": "00",
                "flags": self.app_flags, "owner": user(1, "Owner"), "team": None,
                "interactions_endpoint_url": None, "rpc_origins": [], "tags": []}

    async def _r_gateway_bot(self, request: web.Request) -> Any:
        return {"url": self.gateway_url, "shards": self.shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                        "max_concurrency": 1}}

    async def _r_gateway(self, request: web.Request) -> Any:
        return {"url": self.gateway_url}

    async def _r_sync(self, request: web.Request, app: str, guild: str | None = None) -> Any:
        payload = await request.json()
        assert int(app) == APP_ID, f"commands synced for application {app}"
        commands = [{**cmd, "id": str(next(self._ids)), "application_id": str(APP_ID),
                     "version": "1", "guild_id": guild, "type": cmd.get("type", 1),
                     "options": cmd.get("options", [])} for cmd in payload]
        self.synced[int(guild) if guild else None] = commands
        return commands

    async def _r_history(self, request: web.Request, channel: str) -> Any:
        """Messages after `after` (the oldest `limit` of them), newest first, as Discord."""
        after = int(request.query.get("after", "0"))
        limit = min(int(request.query.get("limit", "50")), 100)
        newer = sorted((m for m in self.history.get(int(channel), []) if int(m["id"]) > after),
                       key=lambda m: int(m["id"]))
        return list(reversed(newer[:limit]))

    async def _r_create_message(self, request: web.Request, channel: str) -> Any:
        payload = await _payload(request)
        await self.sends_open.wait()
        if self.rate_limit_next_sends > 0:
            self.rate_limit_next_sends -= 1
            self.rate_limited += 1
            # discord.py takes a 429 without a Via header for a Cloudflare ban and gives up.
            return _json({"message": "You are being rate limited.", "retry_after": 0.2,
                          "global": False}, status=429,
                         headers={"Via": "1.1 google", "X-RateLimit-Scope": "user"})
        reference = payload.get("message_reference") or {}
        sent = SentMessage(
            message_id=next(self._ids),
            channel_id=int(channel),
            content=str(payload.get("content") or ""),
            reply_to=int(reference["message_id"]) if reference.get("message_id") else None,
            components=payload.get("components") or [],
            sent_at=time.perf_counter(),
            files=await _files(request),
        )
        self.sent.append(sent)
        return self.message_json(sent)

    async def _r_delete(self, request: web.Request, channel: str, message: str) -> web.Response:
        sent = self.find_sent(int(message))
        if sent is not None and sent.channel_id == int(channel):
            self.sent.remove(sent)
        elif int(message) not in self.posted:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        elif int(channel) in self.no_manage_messages:
            return _json({"message": "Missing Permissions", "code": 50013}, status=403)
        self.deleted.append((int(channel), int(message)))
        return web.Response(status=204)

    async def _r_react(self, request: web.Request, channel: str, message: str, emoji: str
                       ) -> web.Response:
        if int(message) not in self.posted:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        self.reactions.append((int(channel), int(message), urllib.parse.unquote(emoji)))
        return web.Response(status=204)

    async def _r_edit(self, request: web.Request, channel: str, message: str) -> Any:
        payload = await _payload(request)
        sent = self.find_sent(int(message))
        if sent is None or sent.channel_id != int(channel):
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        self._apply_edit(sent, payload)
        return self.message_json(sent)

    def _apply_edit(self, sent: SentMessage, payload: dict[str, Any]) -> None:
        sent.edits.append(sent.content)
        if "content" in payload:
            sent.content = str(payload["content"] or "")
        if "components" in payload:
            sent.components = payload["components"] or []

    async def _r_callback(self, request: web.Request, id: str, token: str) -> Any:
        payload = await _payload(request)
        kind, data = payload["type"], payload.get("data") or {}
        interaction = self._interactions.get(int(id))
        if interaction is None or interaction["token"] != token:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if interaction.get("answered"):
            return _json({"message": "Interaction has already been acknowledged.",
                          "code": 40060}, status=400)
        interaction["answered"] = True
        flags = int(data.get("flags") or 0)
        self.answers.append(InteractionAnswer(int(id), kind, data.get("content"),
                                              bool(flags & 64),
                                              request.headers.get("Authorization")))
        channel_id = int(interaction["channel_id"])
        if kind == 7:  # update the message the component is on
            sent = self.find_sent(int(interaction["message"]["id"]))
            assert sent is not None, "an update of a message the bot never sent"
            self._apply_edit(sent, data)
        elif kind == 4:
            sent = SentMessage(next(self._ids), channel_id, str(data.get("content") or ""),
                               None, data.get("components") or [], time.perf_counter(), flags)
            self.sent.append(sent)
        else:
            self.unexpected.append(f"interaction callback type {kind}")
            return _json({"message": "stand-in: callback type", "code": 0}, status=500)
        body = {"interaction": {"id": id, "type": interaction["type"],
                                "response_message_id": str(sent.message_id),
                                "response_message_loading": False,
                                "response_message_ephemeral": bool(flags & 64)},
                "resource": {"type": kind, "message": self.message_json(sent)}}
        return body

    async def _r_followup(self, request: web.Request, app: str, token: str) -> Any:
        payload = await _payload(request)
        interaction = next((i for i in self._interactions.values()
                            if i["token"] == token), None)
        if interaction is None:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        flags = int(payload.get("flags") or 0)
        sent = SentMessage(next(self._ids), int(interaction["channel_id"]),
                           str(payload.get("content") or ""), None,
                           payload.get("components") or [], time.perf_counter(), flags)
        self.sent.append(sent)
        return self.message_json(sent)

    async def _file(self, request: web.Request) -> web.StreamResponse:
        return self.serve_file(self.files.get(request.match_info["path"]))

    async def _sticker(self, request: web.Request) -> web.StreamResponse:
        return self.serve_file(self.sticker_files.get(request.match_info["name"]))

    # ---------------------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.query.get("v") != str(API_VERSION) or request.query.get("encoding") != "json":
            self.unexpected.append(f"gateway query {dict(request.query)}")
            await ws.close(code=4012)
            return ws
        connection = Connection(ws)
        self.connections.append(connection)
        await self._send(connection, {"op": OP_HELLO, "d": {"heartbeat_interval":
                                                             HEARTBEAT_INTERVAL_MS}})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                await self._on_gateway(connection, json.loads(msg.data))
                await self.changed()
        finally:
            self.connections.remove(connection)
            session = self.sessions.get(connection.session_id or "")
            if session is not None and session.connection is connection:
                session.connection = None
            await self.changed()
        return ws

    async def _on_gateway(self, connection: Connection, msg: dict[str, Any]) -> None:
        op, data = msg.get("op"), msg.get("d")
        if op == OP_HEARTBEAT:
            self.heartbeats += 1
            await self._send(connection, {"op": OP_HEARTBEAT_ACK})
        elif op == OP_IDENTIFY:
            await self._identify(connection, data)
        elif op == OP_RESUME:
            await self._resume(connection, data)
        elif op == OP_PRESENCE:
            pass
        else:
            self.unexpected.append(f"gateway op {op}")
            await connection.ws.close(code=4001)

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        if data.get("token") != self.token:
            await connection.ws.close(code=4004)
            return
        intents = int(data.get("intents", 0))
        if intents & INTENT_MESSAGE_CONTENT == 0 or intents & REQUIRED_INTENTS != REQUIRED_INTENTS:
            # The real gateway only enforces privileged intents (4014); a bot missing the
            # others connects but never hears about memes, which is as much a failure here.
            self.unexpected.append(f"IDENTIFY without the needed intents ({intents})")
            await connection.ws.close(code=4014 if intents & INTENT_MESSAGE_CONTENT == 0
                                      else 4013)
            return
        shard = tuple(data.get("shard") or (0, 1))
        session = Session(f"session{next(self._sessions)}", (shard[0], shard[1]), intents)
        self.sessions[session.session_id] = session
        connection.shard, connection.session_id = session.shard, session.session_id
        session.connection = connection
        guilds = [g for g in (GUILD_ID,) if self._shard_of(g, shard[1]) == shard[0]]
        await self._dispatch(session, "READY", {
            "v": API_VERSION, "user": BOT_USER, "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url, "shard": list(shard),
            "application": {"id": str(APP_ID), "flags": self.app_flags},
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
        })
        for g in guilds:
            await self._dispatch(session, "GUILD_CREATE", self.guild_json(g))

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> None:
        self.resumes.append(data)
        session = self.sessions.get(data.get("session_id") or "")
        if session is None or data.get("token") != self.token:
            await self._send(connection, {"op": OP_INVALID_SESSION, "d": False})
            return
        connection.shard, connection.session_id = session.shard, session.session_id
        session.connection = connection
        missed = [e for e in session.events if e["s"] > int(data.get("seq") or 0)]
        for event in missed:
            await self._send(connection, event)
        await self._dispatch(session, "RESUMED", {})

    async def _send(self, connection: Connection, payload: dict[str, Any]) -> None:
        if not connection.ws.closed:
            await connection.ws.send_str(json.dumps(payload))

    async def _dispatch(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        payload = {"op": OP_DISPATCH, "t": event, "s": session.seq, "d": data}
        session.events.append(payload)
        if session.connection is not None:  # else kept for the RESUME
            await self._send(session.connection, payload)

    @staticmethod
    def _shard_of(guild_id: int, count: int) -> int:
        return (guild_id >> 22) % count

    def _session_for(self, guild_id: int) -> Session:
        live = [s for s in self.sessions.values()
                if s.shard[0] == self._shard_of(guild_id, s.shard[1])]
        assert live, "the bot has not identified for this guild's shard"
        return live[-1]

    async def dispatch(self, event: str, data: dict[str, Any], guild_id: int = GUILD_ID) -> None:
        await self._dispatch(self._session_for(guild_id), event, data)

    async def drop(self, code: int = 4000) -> None:
        """Close every gateway connection as an outage would (4000: resumable)."""
        for connection in list(self.connections):
            await connection.ws.close(code=code)

    # ------------------------------------------------------------------- objects, events

    def guild_json(self, guild_id: int = GUILD_ID) -> dict[str, Any]:
        role = {"hoist": False, "managed": False, "mentionable": False, "color": 0,
                "flags": 0, "icon": None, "unicode_emoji": None}
        channel = {"type": 0, "permission_overwrites": [], "nsfw": False, "topic": None,
                   "parent_id": None, "rate_limit_per_user": 0, "last_message_id": None}
        return {
            "id": str(guild_id), "name": "Meme guild", "owner_id": "1", "icon": None,
            "unavailable": False, "large": False, "member_count": 4, "features": [],
            "joined_at": _now(), "emojis": [], "stickers": [], "presences": [],
            "voice_states": [], "threads": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "mfa_level": 0,
            "verification_level": 0, "explicit_content_filter": 0,
            "default_message_notifications": 0,
            "preferred_locale": "en-US", "premium_tier": 0, "nsfw_level": 0,
            "system_channel_flags": 0, "afk_timeout": 300,
            "roles": [
                {**role, "id": str(guild_id), "name": "@everyone", "position": 0,
                 "permissions": str(EVERYONE_PERMISSIONS)},
                {**role, "id": str(MOD_ROLE_ID), "name": "Moderators", "position": 2,
                 "permissions": str(EVERYONE_PERMISSIONS | MANAGE_MESSAGES)},
                {**role, "id": str(MEME_ADMIN_ROLE_ID), "name": MEME_ADMIN_ROLE, "position": 1,
                 "permissions": str(EVERYONE_PERMISSIONS)},
                {**role, "id": str(BOT_ROLE_ID), "name": "Memebot", "position": 1,
                 "permissions": str(BOT_PERMISSIONS), "managed": True},
                {**role, "id": str(MANAGER_ROLE_ID), "name": "Managers", "position": 3,
                 "permissions": str(EVERYONE_PERMISSIONS | MANAGE_MESSAGES | MANAGE_GUILD)},
            ],
            "channels": [
                {**channel, "id": str(channel_id), "name": name, "position": position,
                 "permission_overwrites": self._bot_overwrites(channel_id)}
                for position, (channel_id, name) in enumerate(
                    ((CHANNEL_ID, "memes"), (ADMIN_CHANNEL_ID, "meme-admins"),
                     (OTHER_CHANNEL_ID, "general")))
            ],
            "members": [{"user": BOT_USER, "roles": [str(BOT_ROLE_ID)], "joined_at": _now(),
                         "deaf": False, "mute": False, "flags": 0}],
        }

    def _bot_overwrites(self, channel_id: int) -> list[dict[str, Any]]:
        denied = self.bot_denied.get(channel_id, 0)
        if not denied:
            return []
        return [{"id": str(BOT_ID), "type": 1, "allow": "0", "deny": str(denied)}]

    def message_json(self, sent: SentMessage) -> dict[str, Any]:
        data = self._message(sent.message_id, sent.channel_id, BOT_USER, sent.content,
                             attachments=[], embeds=[])
        data["components"] = sent.components
        data["flags"] = sent.flags
        if sent.reply_to is not None:
            data["message_reference"] = {"message_id": str(sent.reply_to),
                                         "channel_id": str(sent.channel_id),
                                         "guild_id": str(GUILD_ID)}
            data["type"] = 19
        return data

    def _message(self, message_id: int, channel_id: int, author: dict[str, Any], content: str,
                 **extra: Any) -> dict[str, Any]:
        return {"id": str(message_id), "channel_id": str(channel_id), "guild_id": str(GUILD_ID),
                "author": author, "content": content, "timestamp": _now(),
                "edited_timestamp": None, "tts": False, "mention_everyone": False,
                "mentions": [], "mention_roles": [], "pinned": False, "type": 0, "flags": 0,
                "components": [], **extra}

    def add_file(self, data: bytes, filename: str) -> str:
        path = f"{CHANNEL_ID}/{next(self._ids)}/{filename}"
        self.files[path] = data
        return f"{self.cdn_url}/{path}"

    def attachment(self, data: bytes, filename: str, content_type: str | None,
                   size: int | None = None) -> dict[str, Any]:
        url = self.add_file(data, filename)
        attachment: dict[str, Any] = {"id": str(next(self._ids)), "filename": filename,
                                      "size": size if size is not None else len(data),
                                      "url": url, "proxy_url": url}
        if content_type:
            attachment["content_type"] = content_type
        return attachment

    def sticker(self, data: bytes | None, format_type: int, name: str = "meme") -> dict[str, Any]:
        """A sticker item (format 1 PNG, 2 APNG, 3 Lottie, 4 GIF), its image served."""
        sticker_id = next(self._ids)
        extension = {3: "json", 4: "gif"}.get(format_type, "png")
        if data is not None:
            self.sticker_files[f"{sticker_id}.{extension}"] = data
        return {"id": str(sticker_id), "name": name, "format_type": format_type}

    def snapshot(self, content: str = "", *, attachments: list[dict[str, Any]] | None = None,
                 embeds: list[dict[str, Any]] | None = None,
                 stickers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A forwarded message as the forward carries it (no author: only its content)."""
        return {"message": {"type": 0, "content": content, "embeds": embeds or [],
                            "attachments": attachments or [], "timestamp": _now(),
                            "edited_timestamp": None, "flags": 0, "mentions": [],
                            "mention_roles": [], "sticker_items": stickers or [],
                            "components": []}}

    async def post(self, author: Person, content: str = "", *,
                   attachments: list[dict[str, Any]] | None = None,
                   embeds: list[dict[str, Any]] | None = None,
                   stickers: list[dict[str, Any]] | None = None,
                   forwarded: dict[str, Any] | None = None,
                   channel_id: int = CHANNEL_ID) -> int:
        """A member's message; `forwarded` (a `snapshot`) makes it a forward."""
        message_id = next(self._ids)
        data = self._message(message_id, channel_id, author.user, content,
                             attachments=attachments or [], embeds=embeds or [])
        if stickers:
            data["sticker_items"] = stickers
        if forwarded is not None:
            data["message_reference"] = {"type": 1, "message_id": str(next(self._ids)),
                                         "channel_id": str(OTHER_CHANNEL_ID),
                                         "guild_id": str(GUILD_ID)}
            data["message_snapshots"] = [forwarded]
        self.history.setdefault(channel_id, []).append(dict(data))
        data["member"] = author.member(with_user=False)
        self.event_times[message_id] = time.perf_counter()
        self.posted.add(message_id)
        self.messages[message_id] = data
        await self.dispatch("MESSAGE_CREATE", data)
        return message_id

    async def update(self, message_id: int, *, embeds: list[dict[str, Any]] | None = None,
                     content: str | None = None) -> None:
        """MESSAGE_UPDATE of a member's message, as Discord sends it when it has unfurled the
        message's links (`embeds`) or the author edited it (`content`): the whole message."""
        data = dict(self.messages[message_id])
        if embeds is not None:
            data["embeds"] = embeds
        if content is not None:
            data["content"] = content
            data["edited_timestamp"] = _now()
        self.messages[message_id] = data
        await self.dispatch("MESSAGE_UPDATE", data)

    def post_offline(self, author: Person, data: bytes, *, ago: timedelta = timedelta(0),
                     channel_id: int = CHANNEL_ID, filename: str = "meme.png") -> int:
        """An image posted while the bot is not connected (`ago` in the past): only the
        channel's history has it."""
        message_id = (next(self._ids) if not ago
                      else Snowflakes.at(datetime.now(UTC) - ago) + next(self._offline))
        message = self._message(message_id, channel_id, author.user, "", attachments=[
            self.attachment(data, filename, "image/png")], embeds=[])
        message["timestamp"] = (datetime.now(UTC) - ago).isoformat()
        self.history.setdefault(channel_id, []).append(message)
        self.posted.add(message_id)
        return message_id

    async def post_image(self, author: Person, data: bytes, filename: str = "meme.jpg",
                         content_type: str | None = "image/jpeg", size: int | None = None,
                         channel_id: int = CHANNEL_ID) -> int:
        return await self.post(author, attachments=[self.attachment(data, filename, content_type,
                                                                    size)],
                               channel_id=channel_id)

    async def react(self, person: Person | None, message_id: int, emoji: str,
                    user_id: int | None = None, channel_id: int = CHANNEL_ID) -> None:
        """A reaction added; `person` None with `user_id` is the bot's own (no member)."""
        data: dict[str, Any] = {
            "user_id": str(person.user_id if person else user_id), "channel_id": str(channel_id),
            "message_id": str(message_id), "guild_id": str(GUILD_ID),
            "emoji": {"id": None, "name": emoji}, "type": 0, "burst": False,
            "burst_colors": [],
        }
        data["member"] = person.member() if person else {
            "user": BOT_USER, "roles": [], "joined_at": _now(), "deaf": False, "mute": False,
            "flags": 0}
        await self.dispatch("MESSAGE_REACTION_ADD", data)

    async def unreact(self, person: Person, message_id: int, emoji: str,
                      channel_id: int = CHANNEL_ID) -> None:
        """A reaction taken back: Discord sends who and which emoji, without the member."""
        await self.dispatch("MESSAGE_REACTION_REMOVE", {
            "user_id": str(person.user_id), "channel_id": str(channel_id),
            "message_id": str(message_id), "guild_id": str(GUILD_ID),
            "emoji": {"id": None, "name": emoji}, "burst": False, "type": 0,
        })

    def _interaction(self, person: Person, kind: int, data: dict[str, Any],
                     channel_id: int = CHANNEL_ID, **extra: Any) -> dict[str, Any]:
        interaction_id = next(self._ids)
        member = {**person.member(), "permissions": str(person.permissions)}
        payload = {
            "id": str(interaction_id), "application_id": str(APP_ID), "type": kind,
            "token": f"itoken{interaction_id}", "version": 1, "guild_id": str(GUILD_ID),
            "channel_id": str(channel_id),
            "channel": {"id": str(channel_id), "type": 0, "guild_id": str(GUILD_ID),
                        "name": "memes", "position": 0, "permission_overwrites": [],
                        "nsfw": False, "parent_id": None},
            "member": member, "data": data, "locale": "en-US", "guild_locale": "en-US",
            "app_permissions": str(EVERYONE_PERMISSIONS), "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0,
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT, **extra,
        }
        self._interactions[interaction_id] = payload
        return payload

    async def press(self, person: Person, message: SentMessage, custom_id: str) -> int:
        payload = self._interaction(person, 3, {"custom_id": custom_id, "component_type": 2},
                                    channel_id=message.channel_id,
                                    message=self.message_json(message))
        await self.dispatch("INTERACTION_CREATE", payload)
        return int(payload["id"])

    async def select(self, person: Person, message: SentMessage, custom_id: str,
                     values: list[str]) -> int:
        """Pick `values` in a select menu of `message` (an ephemeral one, too)."""
        payload = self._interaction(person, 3, {"custom_id": custom_id, "component_type": 3,
                                                "values": values},
                                    channel_id=message.channel_id,
                                    message=self.message_json(message))
        await self.dispatch("INTERACTION_CREATE", payload)
        return int(payload["id"])

    async def slash(self, person: Person, command_name: str, /, *, in_channel: int = CHANNEL_ID,
                    **options: Any) -> int:
        command = next((c for cmds in self.synced.values() for c in cmds
                        if c["name"] == command_name), None)
        assert command is not None, f"/{command_name} was never synced"
        opts = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
        payload = self._interaction(person, 2, {"id": command["id"], "name": command_name,
                                                "type": 1,
                                                "options": opts,
                                                "guild_id": command.get("guild_id")},
                                    channel_id=in_channel)
        await self.dispatch("INTERACTION_CREATE", payload)
        return int(payload["id"])

    # ------------------------------------------------------------------------- waiting

    def find_sent(self, message_id: int) -> SentMessage | None:
        return next((s for s in self.sent if s.message_id == message_id), None)

    def replies_to(self, message_id: int) -> list[SentMessage]:
        return [s for s in self.sent if s.reply_to == message_id]

    async def reply_to(self, message_id: int, timeout: float = 20.0) -> SentMessage:
        replies = await self.wait_for(lambda: self.replies_to(message_id), timeout)
        return replies[0]

    def answer_to(self, interaction_id: int) -> InteractionAnswer | None:
        return next((a for a in self.answers if a.interaction_id == interaction_id), None)

    async def answer(self, interaction_id: int, timeout: float = 20.0) -> InteractionAnswer:
        return await self.wait_for(lambda: self.answer_to(interaction_id), timeout)

    def connected(self) -> bool:
        """Every shard has a live session and the commands are synced."""
        live = {s.shard for s in self.sessions.values() if s.connection is not None}
        return len(live) >= self.shards and bool(self.synced)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py decodes JSON only under exactly this Content-Type (no "; charset=...").
    return web.Response(body=json.dumps(body).encode(), status=status,
                        headers={"Content-Type": "application/json", **(headers or {})})


async def _files(request: web.Request) -> list[bytes]:
    """The files of a multipart message (discord.py names them files[0], files[1], ...)."""
    if request.content_type != "multipart/form-data":
        return []
    form = await request.post()  # cached by aiohttp: _payload read the same form
    return [field.file.read() for name, field in form.items() if name.startswith("files[")
            and hasattr(field, "file")]


async def _payload(request: web.Request) -> dict[str, Any]:
    """The JSON body, or the `payload_json` part of a multipart one (messages with files)."""
    if request.content_type == "multipart/form-data":
        form = await request.post()
        return json.loads(str(form["payload_json"]))
    if not request.can_read_body:
        return {}
    return await request.json()


@asynccontextmanager
async def standin(shards: int = 1, port: int = 0) -> AsyncIterator[DiscordStandIn]:
    server = DiscordStandIn(shards=shards, port=port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# --------------------------------------------------------------------------- bot harness


@asynccontextmanager
async def running_bot(server: DiscordStandIn, settings: Any,
                      loader: Callable[..., Any] | None = None) -> AsyncIterator[Any]:
    """The real bot (core runtime + discord.py client) against `server`; yields the
    `CoreRuntime` once every shard is connected and the commands are synced."""
    from bot.core.runtime import open_runtime
    from bot.discord.media import download_origins
    from bot.discord.runner import run

    stop = asyncio.Event()
    async with open_runtime(settings, file_origins=download_origins(settings),
                            loader=loader) as runtime:
        task = asyncio.create_task(run(runtime, stop))
        try:
            await server.wait_for(lambda: task.done() or server.connected())
            if task.done():
                task.result()
            yield runtime
        finally:
            stop.set()
            await task


def gifv_embed(page_url: str, video_url: str, thumbnail_url: str) -> dict[str, Any]:
    """The preview Discord makes of a Tenor or Giphy link: a "gifv" embed whose clip is an
    MP4 on the site's media server (Discord adds proxy URLs, which the bot does not use)."""
    return {"type": "gifv", "url": page_url,
            "provider": {"name": "Tenor", "url": "https://tenor.co"},
            "thumbnail": {"url": thumbnail_url, "proxy_url": thumbnail_url,
                          "width": 96, "height": 96},
            "video": {"url": video_url, "proxy_url": video_url, "width": 96, "height": 96}}


class MediaHost(StandInServer):
    """A GIF site's media server (Tenor's media.tenor.com): serves files, counts downloads."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, bytes] = {}
        self._ids = itertools.count(1)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/{path:.+}", self._file)

    def add(self, data: bytes, name: str) -> str:
        path = f"m{next(self._ids)}/{name}"
        self.files[path] = data
        return f"{self.origin}/{path}"

    async def _file(self, request: web.Request) -> web.StreamResponse:
        return self.serve_file(self.files.get(request.match_info["path"]))


@asynccontextmanager
async def media_host() -> AsyncIterator[MediaHost]:
    host = MediaHost()
    await host.start()
    try:
        yield host
    finally:
        await host.stop()
