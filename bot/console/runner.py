"""Running the console: an aiohttp site beside (or instead of) the chat adapters.

`run(runtime, stop)` is an `AdapterRunner` for `bot.process.serve`. It prints the console's URL
on stdout (and, on the start that generated it, the admin sign-in link with the token; the
token is never written to a log).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web

from bot.console.app import Console
from bot.console.security import AdminToken, is_loopback, load_admin_token
from bot.core.runtime import CoreRuntime

log = logging.getLogger(__name__)


@dataclass
class ConsoleServer:
    console: Console
    runner: web.AppRunner
    url: str
    admin_token: AdminToken

    async def close(self) -> None:
        self.console.bus.close()  # end the live streams, or shutdown waits for them
        await self.runner.cleanup()


def _url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


async def start_console(
    runtime: CoreRuntime, *, host: str | None = None, port: int | None = None
) -> ConsoleServer:
    settings = runtime.settings
    host = settings.console_host if host is None else host
    port = settings.console_port if port is None else port
    configured = settings.console_admin_token
    token = await asyncio.to_thread(
        load_admin_token,
        configured.get_secret_value() if configured is not None else None,
        settings.data_dir,
    )
    console = Console(runtime, token.value, loopback_only=is_loopback(host))
    runner = web.AppRunner(console.build_app(), access_log=None, shutdown_timeout=3.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = port
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            bound_port = address[1]
            break
    return ConsoleServer(console, runner, _url(host, bound_port), token)


def announce(server: ConsoleServer) -> None:
    """Tell the person who started the bot where the console is (stdout, not the log)."""
    lines = [f"memebot console: {server.url}"]
    token = server.admin_token
    if token.generated:
        lines.append(f"  admin sign-in (shown once; the token is stored in {token.source}):")
        lines.append(f"  {server.url}login#{token.value}")
    elif token.source == "settings":
        lines.append("  admin: sign in with MEMEBOT_CONSOLE_ADMIN_TOKEN")
    else:
        lines.append(f"  admin: sign in with the token stored in {token.source}")
    print("\n".join(lines), flush=True)


async def run(runtime: CoreRuntime, stop: asyncio.Event) -> None:
    """Serve the console until `stop` is set."""
    server = await start_console(runtime)
    announce(server)
    log.info("console: serving on %s", server.url)
    gone = runtime.readiness.connected("console", lambda: True)
    try:
        await stop.wait()
    finally:
        gone()
        await server.close()
