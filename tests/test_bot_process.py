"""`memebot run` as a real process: it answers through the stand-in, never loads torch, never
logs its token (even at DEBUG, where PTB logs token-bearing URLs), and stops on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.support.imagegen import encode, make_image
from tests.support.paths import ROOT
from tests.support.processes import PROBE
from tests.support.telegram_standin import TOKEN, group, standin, user


async def test_memebot_run_serves_without_torch_and_without_leaking_the_token(
    tmp_path: Path, tiny_model: Path
) -> None:
    async with standin() as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")},
            "PYTHONPATH": str(ROOT),
            "MEMEBOT_TELEGRAM_TOKEN": TOKEN,
            "MEMEBOT_TELEGRAM_API_URL": server.api_url,
            "MEMEBOT_TELEGRAM_FILE_URL": server.file_url,
            "MEMEBOT_DATA_DIR": str(tmp_path / "data"),
            "MEMEBOT_MODEL_DIR": str(tiny_model),
        }
        log_path = tmp_path / "bot.log"  # a file, not a pipe: a full pipe would stall the bot
        with log_path.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PROBE, cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=log_file,
            )
        try:
            await server.wait_for(lambda: server.get_updates_calls > 0, timeout=60)
            meme = server.post_photo(group(), user(5), encode(make_image("doom", 1), "JPEG"))
            reply = await server.reply_to(meme)
            assert reply.buttons
            proc.send_signal(signal.SIGTERM)
            stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    log = log_path.read_text()
    assert proc.returncode == 0, log[-3000:]
    assert "torch loaded: False" in stdout.decode()
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert "[REDACTED]" in log  # PTB did log a URL with the token, and it was redacted
    assert "DEBUG" in log
