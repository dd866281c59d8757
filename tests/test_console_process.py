"""`memebot run` with no chat token serves the console: it prints the URL (and, at first start
only, the admin sign-in link), never loads torch, never logs the admin token, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import stat
import sys
from pathlib import Path

import aiohttp

from bot.console.runner import ConsoleServer, announce
from bot.console.security import TOKEN_FILE, AdminToken
from tests.support.imagegen import encode, make_image
from tests.support.paths import ROOT
from tests.support.processes import PROBE


async def test_memebot_run_without_a_token_serves_the_console(
    tmp_path: Path, tiny_model: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")},
        "PYTHONPATH": str(ROOT),
        "MEMEBOT_DATA_DIR": str(tmp_path / "data"),
        "MEMEBOT_MODEL_DIR": str(tiny_model),
        "MEMEBOT_CONSOLE_PORT": "0",
    }
    # The log goes to a file: a pipe nobody reads until the end fills up and blocks the bot.
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PROBE, cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=log_file,
        )
    assert proc.stdout is not None
    printed: list[str] = []
    try:
        while not any("login#" in line for line in printed):
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line, "memebot run exited before printing the console URL"
            printed.append(line.decode())
        url = re.search(r"memebot console: (http://127\.0\.0\.1:\d+/)", "".join(printed))
        assert url, printed
        base = url.group(1)
        token = printed[-1].strip().split("login#", 1)[1]
        token_file = tmp_path / "data" / TOKEN_FILE
        assert token_file.read_text().strip() == token
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         timeout=aiohttp.ClientTimeout(total=120)) as s:
            async with s.get(base) as r:
                assert r.status == 200 and "Channel" in await r.text()
            csrf = next(c.value for c in s.cookie_jar if c.key == "memebot_csrf")
            form = aiohttp.FormData()
            form.add_field("file", encode(make_image("doom", 1), "JPEG"), filename="a.jpg",
                           content_type="image/jpeg")
            async with s.post(base + "api/upload", data=form, headers={"X-CSRF-Token": csrf}) as r:
                body = await r.json()
                assert r.status == 200 and body["results"][0]["ok"], body
            async with s.post(base + "api/retrain", headers={
                "X-CSRF-Token": csrf, "Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = log_path.read_text()
    out = "".join(printed) + stdout.decode()
    assert proc.returncode == 0, log[-3000:]
    assert "torch loaded: False" in out
    assert out.count(token) == 1  # printed once, on the start that generated it
    assert token not in log


def test_later_starts_do_not_print_the_token(capsys, tmp_path: Path) -> None:
    stored = AdminToken("secret-value", str(tmp_path / TOKEN_FILE), generated=False)
    announce(ConsoleServer(None, None, "http://127.0.0.1:8080/", stored))  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8080/" in out and "secret-value" not in out and TOKEN_FILE in out
