"""The console's /settings panel: the console chat's rules as the core's `SettingsMenu`
(GET /api/settings) and changed all at once (POST /api/settings {"changes": {NAME: VALUE}}),
through the same /settings command the chats use, so a bad value changes nothing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from bot.console.security import json_error
from bot.core.chat_rules import BY_NAME
from bot.core.outcomes import CommandResult, SettingsMenu

RunCommand = Callable[[str, tuple[str, ...]], Awaitable[CommandResult]]


def menu_json(menu: SettingsMenu) -> dict[str, Any]:
    return {"scope": menu.scope, "rows": [asdict(row) for row in menu.rows]}


class SettingsPanel:
    def __init__(self, run: RunCommand) -> None:
        self.run = run  # a console admin's /settings, as the chats' command

    async def show(self, request: web.Request) -> web.Response:
        result = await self.run("settings", ())
        if not isinstance(result.data, SettingsMenu):
            return json_error(400, result.reply.text)
        return web.json_response({"settings": menu_json(result.data), "text": result.reply.text})

    async def change(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return json_error(400, "The request body must be JSON.")
        changes = body.get("changes") if isinstance(body, dict) else None
        if (not isinstance(changes, dict) or not changes
                or not all(isinstance(k, str) and isinstance(v, str)
                           for k, v in changes.items())):
            return json_error(400, "Send {\"changes\": {\"replies\": \"silent\", ...}}.")
        unknown = [name for name in changes if name not in BY_NAME]
        if unknown:
            return json_error(400, f"No such setting: {', '.join(sorted(unknown))}.")
        words: list[str] = []
        for name, value in changes.items():
            words += [name, *(value.split() or [""])]
        result = await self.run("settings", tuple(w for w in words if w))
        if not result.ok or not isinstance(result.data, SettingsMenu):
            return json_error(400, result.reply.text)
        return web.json_response({"settings": menu_json(result.data),
                                  "message": result.reply.text.rsplit("\n", 1)[-1]})
