"""Reading a request's JSON body and whole-number query parameters, with a clear 400 for bad
input (shared by the console's views)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def json_body(request: web.Request, *, allow_empty: bool = False) -> Any:
    if allow_empty and not request.can_read_body:
        return {}
    try:
        return await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="The request body must be JSON.") from None


def int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a whole number.") from None
    return max(low, min(high, value))
