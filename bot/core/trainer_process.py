"""The trainer as a supervised child of `memebot run` (`Settings.trainer == "subprocess"`).

With the embedded defaults (SQLite, a local model folder) one command runs everything: the
bot starts `python -m bot.cli trainer` (the `memebot trainer` command), restarts it with
back-off when it dies, and stops it when the bot stops (SIGTERM, then kill). Its output is
logged under the `memebot.trainer` logger, through the bot's handlers (so the bot's secret
redaction applies) and redacted here as well.

The child gets only what it needs: the settings the trainer reads (absolute paths, the
database URL), PATH/HOME/locale and the Python path; no chat token or console token. It runs
in the data directory, so a `.env` holding the bot's tokens is not read by it either.

This module never imports torch: whether the [train] extra is installed is asked with
`importlib.util.find_spec`, and without it the bot logs one warning and serves on (a /retrain
then stays queued, and the reply says that no trainer is running).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import bot
from bot.core import formatting as fmt
from bot.logs import RedactSecrets
from config.settings import Settings

log = logging.getLogger(__name__)
output_log = logging.getLogger("memebot.trainer")

# Inherited from the bot's environment when set; nothing else is (no MEMEBOT_* secrets).
PASSED_ENV = (
    "PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "VIRTUAL_ENV",
    "LD_LIBRARY_PATH", "SSL_CERT_FILE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "TORCH_HOME", "XDG_CACHE_HOME", "HF_HOME",
)
STABLE_AFTER_S = 60.0  # a child that ran this long resets the back-off
MAX_LINE = 1 << 20
# The trainer's log lines: "2026-01-01 12:00:00,123 WARNING model_training.retrain: ..."
LEVEL = re.compile(r"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def torch_installed() -> bool:
    """Is the [train] extra here? (Finds the package without importing it.)"""
    return importlib.util.find_spec("torch") is not None


@dataclass
class TrainerStatus:
    """What the bot knows about its trainer; `MemeService` words /retrain replies with it."""

    mode: str  # Settings.trainer: "subprocess", "external" or "off"
    running: bool = False
    problem: str | None = None  # why no trainer runs here right now
    pid: int | None = None
    starts: int = 0
    # Every trainer touches <data_dir>/trainer.alive at each poll: a fresh one means some
    # trainer (maybe another container sharing the data volume) will take the job.
    health_file: Path | None = None
    fresh_s: float = 60.0

    def other_trainer_alive(self) -> bool:
        if self.health_file is None:
            return False
        try:
            return time.time() - self.health_file.stat().st_mtime <= self.fresh_s
        except OSError:
            return False

    def queued_note(self) -> str | None:
        """A sentence for the /retrain reply when nothing will pick the job up soon."""
        if self.mode == "external" or self.running or self.other_trainer_alive():
            return None  # an external service: this process cannot see it
        return fmt.no_trainer_text(self.problem, switched_off=self.mode == "off")


class TrainerSupervisor:
    def __init__(
        self,
        settings: Settings,
        status: TrainerStatus,
        *,
        secrets: Iterable[str] = (),
        python: str = sys.executable,
        initial_backoff_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.status = status
        self._redact = RedactSecrets(secrets).redact
        self._python = python
        self._initial_backoff_s = initial_backoff_s
        self._level = logging.INFO
        self.process: asyncio.subprocess.Process | None = None

    # ------------------------------------------------------------------------- the child

    def command(self) -> list[str]:
        s = self.settings
        cmd = [
            self._python, "-m", "bot.cli", "trainer",
            "--poll", f"{s.trainer_poll_s:g}",
            "--nice", str(s.trainer_nice),
            "--model-dir", str(Path(s.model_dir).resolve()),
        ]
        if s.dataset_dir is not None:
            cmd += ["--dataset-dir", str(Path(s.dataset_dir).resolve())]
        if s.trainer_threads is not None:
            cmd += ["--threads", str(s.trainer_threads)]
        return cmd

    def environment(self) -> dict[str, str]:
        s = self.settings
        env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}
        # `-m bot.cli` must import this very source tree, installed or not.
        paths = [str(Path(bot.__file__).resolve().parent.parent)]
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        env["MEMEBOT_DATA_DIR"] = str(Path(s.data_dir).resolve())
        env["MEMEBOT_MODEL_DIR"] = str(Path(s.model_dir).resolve())
        env["MEMEBOT_MIN_EXAMPLES_NEW_LABEL"] = str(s.min_examples_new_label)
        if s.database_url:
            env["MEMEBOT_DATABASE_URL"] = s.database_url
        if s.dataset_dir is not None:
            env["MEMEBOT_DATASET_DIR"] = str(Path(s.dataset_dir).resolve())
        return env

    async def _spawn(self) -> asyncio.subprocess.Process:
        workdir = Path(self.settings.data_dir).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        proc = await asyncio.create_subprocess_exec(
            *self.command(),
            cwd=workdir,
            env=self.environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=MAX_LINE,
        )
        self.process = proc
        self.status.running, self.status.problem, self.status.pid = True, None, proc.pid
        self.status.starts += 1
        log.info("trainer started (pid %d, nice %d)", proc.pid, self.settings.trainer_nice)
        return proc

    # ---------------------------------------------------------------------- supervision

    async def run(self, stop: asyncio.Event) -> None:
        """Keep a trainer running until `stop` is set; then stop it cleanly."""
        if not torch_installed():
            self.status.problem = "the [train] extra (torch) is not installed"
            log.warning(
                "no trainer: the [train] extra (torch) is not installed, so /retrain jobs stay "
                "queued. Install it (pip install 'memebot[train]'), or run `memebot trainer` "
                "elsewhere and set MEMEBOT_TRAINER=external."
            )
            return
        backoff = self._initial_backoff_s
        while not stop.is_set():
            started = time.monotonic()
            code: int | None = None
            try:
                proc = await self._spawn()
                code = await self._supervise(proc, stop)
            except OSError as exc:
                log.warning("cannot start the trainer: %s", exc)
            except Exception:  # supervision itself must not end: the bot would lose its trainer
                log.warning("trainer supervision failed", exc_info=True)
            self.status.running, self.status.pid = False, None
            if stop.is_set():
                break
            if time.monotonic() - started >= STABLE_AFTER_S:
                backoff = self._initial_backoff_s
            self.status.problem = f"it exited with code {code}; restarting in {backoff:g} s"
            log.warning("trainer exited with code %s after %.1f s; restarting in %g s",
                        code, time.monotonic() - started, backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, self.settings.trainer_restart_max_s)
        self.status.problem = "the bot is stopping"

    async def _supervise(self, proc: asyncio.subprocess.Process, stop: asyncio.Event) -> int:
        assert proc.stdout is not None and proc.stderr is not None
        pumps = [asyncio.create_task(self._pump(proc.stdout)),
                 asyncio.create_task(self._pump(proc.stderr))]
        exited = asyncio.create_task(proc.wait())
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not exited.done():
                await self.terminate(proc)
            code = await exited
            await asyncio.gather(*pumps, return_exceptions=True)
        return code

    async def terminate(self, proc: asyncio.subprocess.Process) -> None:
        """SIGTERM (the trainer finishes its heartbeat and exits), then kill after a timeout.

        A job killed mid-way is marked failed by the next trainer's recovery; the active model
        is never touched by a half-done job.
        """
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.settings.trainer_stop_timeout_s)
            log.info("trainer stopped (exit code %s)", proc.returncode)
        except TimeoutError:
            log.warning("trainer did not stop within %g s of SIGTERM: killed",
                        self.settings.trainer_stop_timeout_s)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than MAX_LINE: log it in pieces
                raw = await stream.read(MAX_LINE)
            if not raw:
                return
            self.log_line(raw.decode("utf-8", "replace").rstrip())

    def log_line(self, line: str) -> None:
        """One line of the child's output, at its own level (capped at WARNING: the bot keeps
        ERROR for its own failures; a failed job reaches the admins in its report)."""
        if not line.strip():
            return
        match = LEVEL.match(line)
        if match:
            self._level = min(logging.getLevelNamesMapping()[match.group(1)], logging.WARNING)
        output_log.log(self._level, "%s", self._redact(line))

