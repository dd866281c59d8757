"""The web console with a plain aiohttp client: its settings, a `Client` that behaves like the
console's own page, and the `runtime`, `console`, `client` and `admin` fixtures (tests/conftest.py
loads this module with `pytest_plugins`). Real core, SQLite and the tiny model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from bot.console.runner import ConsoleServer, start_console
from bot.console.security import CSRF_COOKIE
from bot.core.runtime import CoreRuntime, open_runtime
from config.settings import Settings

ADMIN_TOKEN = "console-test-admin-token-123"


def console_settings(tmp_path: Path, model_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data",
        model_dir=model_dir,
        console_admin_token=ADMIN_TOKEN,
        console_port=0,
        model_check_interval_s=3600,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Client:
    """An aiohttp session that behaves like the console's own page (cookies + CSRF header)."""

    session: aiohttp.ClientSession
    base: str

    @property
    def csrf(self) -> str:
        cookies = self.session.cookie_jar.filter_cookies(URL(self.base))
        return cookies[CSRF_COOKIE].value if CSRF_COOKIE in cookies else ""

    async def open(self) -> Client:
        async with self.session.get(self.base) as response:
            assert response.status == 200
        assert self.csrf
        return self

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf, **(extra or {})}

    async def post_json(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = kw.pop("headers", None) or self.headers()
        async with self.session.post(self.base + path, json=body, headers=headers, **kw) as r:
            return r.status, await r.json()

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as r:
            return r.status, await r.json()

    async def upload(self, *files: tuple[str, bytes, str], headers: dict[str, str] | None = None
                     ) -> tuple[int, Any]:
        form = aiohttp.FormData(quote_fields=False)
        for name, data, content_type in files:
            form.add_field("file", data, filename=name, content_type=content_type)
        async with self.session.post(
            self.base + "api/upload", data=form,
            headers=self.headers() if headers is None else headers,
        ) as r:
            return r.status, await r.json()

    async def sign_in(self) -> None:
        status, body = await self.post_json("api/login", {"token": ADMIN_TOKEN})
        assert status == 200 and body == {"admin": True}


@pytest.fixture
async def runtime(tmp_path: Path, tiny_model: Path) -> AsyncIterator[CoreRuntime]:
    async with open_runtime(console_settings(tmp_path, tiny_model), file_origins=()) as rt:
        yield rt


@pytest.fixture
async def console(runtime: CoreRuntime) -> AsyncIterator[ConsoleServer]:
    server = await start_console(runtime)
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def client(console: ConsoleServer) -> AsyncIterator[Client]:
    # unsafe=True: the jar must keep cookies of an IP-address host (127.0.0.1).
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield await Client(session, console.url).open()


@pytest.fixture
async def admin(console: ConsoleServer) -> AsyncIterator[Client]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        c = await Client(session, console.url).open()
        await c.sign_in()
        yield c
