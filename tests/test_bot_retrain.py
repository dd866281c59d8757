"""The bot side of /retrain (issue 6): the supervised trainer subprocess, the admin report when a
job ends, the hot swap with memes in flight, uploads through the core, and Settings parsing.

Real processes where it matters: `memebot run` starting the real `memebot trainer`, which
retrains the tiny model; the supervisor restarting a real trainer killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.core import trainer_process
from bot.core.messages import Actor, ChatRef, Command, ImagePost
from bot.core.runtime import open_runtime
from bot.core.trainer_process import TrainerStatus, TrainerSupervisor
from config.settings import Settings
from inference.metadata import META_FILE, resolve_model_dir
from inference.preprocess import load_image
from tests.support.imagegen import encode, make_image
from tests.support.paths import ROOT
from tests.support.processes import PROBE
from tests.support.telegram_standin import TOKEN, group, running_bot, standin, user

CHAT = group(-1001)
ADMIN_CHAT = group(-2002, "Admins")
BOSS = user(33, "Boss")  # a configured super-admin


def jpeg(label: str = "doom", seed: int = 0) -> bytes:
    return encode(make_image(label, seed), "JPEG", quality=90)


def private_models(tiny_model: Path, tmp_path: Path) -> Path:
    """A copy of the tiny models folder: retrains write new versions (and ACTIVE) into it."""
    models = tmp_path / "models"
    shutil.copytree(tiny_model, models)
    return models


def clone_version(models: Path, version: str) -> Path:
    """The active model under another version name (a second servable version, no training)."""
    folder = models / version
    shutil.copytree(resolve_model_dir(models), folder)
    meta = json.loads((folder / META_FILE).read_text())
    meta["version"] = version
    (folder / META_FILE).write_text(json.dumps(meta))
    return folder


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


# ---------------------------------------------------------------------------- settings


@pytest.mark.parametrize("raw", ["telegram:1, telegram:2", '["telegram:1", "telegram:2"]'])
def test_super_admins_from_the_environment_comma_or_json(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("MEMEBOT_SUPER_ADMINS", raw)
    assert Settings(_env_file=None).super_admins == ["telegram:1", "telegram:2"]  # type: ignore[call-arg]


def test_trainer_mode_defaults_to_subprocess_with_sqlite_only() -> None:
    assert Settings(_env_file=None).effective_trainer == "subprocess"  # type: ignore[call-arg]
    pg = Settings(_env_file=None, database_url="postgresql+asyncpg://u:p@db/memebot")  # type: ignore[call-arg]
    assert pg.effective_trainer == "external"
    assert Settings(_env_file=None, trainer="off").effective_trainer == "off"  # type: ignore[call-arg]


# ----------------------------------------------------------------- the real trainer, supervised


async def test_memebot_run_supervises_a_real_trainer_and_reports_the_retrain(
    tmp_path: Path, tiny_model: Path
) -> None:
    """One command runs everything: `memebot run` starts `memebot trainer`, which claims the
    /retrain job and retrains the tiny model; the admin who asked and the admin chat get the
    numbers; SIGTERM stops the bot and its trainer; the bot never imports torch, and neither
    the trainer's environment nor the log holds the token."""
    models = private_models(tiny_model, tmp_path)
    async with standin() as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MEMEBOT_")},
            "PYTHONPATH": str(ROOT),
            "MEMEBOT_TELEGRAM_TOKEN": TOKEN,
            "MEMEBOT_TELEGRAM_API_URL": server.api_url,
            "MEMEBOT_TELEGRAM_FILE_URL": server.file_url,
            "MEMEBOT_DATA_DIR": str(tmp_path / "data"),
            "MEMEBOT_MODEL_DIR": str(models),
            "MEMEBOT_DATASET_DIR": str(tiny_model.parent / "data"),
            "MEMEBOT_ADMIN_CHAT_ID": str(ADMIN_CHAT["id"]),
            "MEMEBOT_SUPER_ADMINS": f"telegram:{BOSS['id']},telegram:44",  # the comma form
            "MEMEBOT_TRAINER_POLL_S": "0.5",
            "MEMEBOT_JOB_CHECK_INTERVAL_S": "0.5",
            "MEMEBOT_TRAINER_THREADS": "2",
        }
        log_path = tmp_path / "bot.log"
        with log_path.open("wb") as log_file:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PROBE, cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=log_file,
            )
        trainer_pid = None
        try:
            await server.wait_for(lambda: server.get_updates_calls > 0, timeout=60)
            started = await server.wait_for(
                lambda: re.search(r"trainer started \(pid (\d+)", log_path.read_text()), 60
            )
            trainer_pid = int(started.group(1))
            trainer_env = environ_of(trainer_pid)
            assert TOKEN not in "\0".join(f"{k}={v}" for k, v in trainer_env.items())
            assert not {k for k in trainer_env if k.endswith("_TOKEN")}
            assert trainer_env["MEMEBOT_DATA_DIR"] == str((tmp_path / "data").resolve())

            meme = server.post_photo(CHAT, user(5), jpeg("doom", 1))
            await server.reply_to(meme)
            command = server.post_text(CHAT, BOSS, "/retrain")
            queued = await server.reply_to(command)
            assert queued.text.startswith("Retraining (fast) queued (job #1)"), queued.text
            assert "No trainer" not in queued.text
            await server.wait_for(lambda: len(server.replies_to(command)) >= 2, timeout=300)
            report = server.replies_to(command)[1].text
            await server.wait_for(lambda: [m for m in server.sent if m.chat_id == ADMIN_CHAT["id"]])
            [to_admins] = [m for m in server.sent if m.chat_id == ADMIN_CHAT["id"]]
            proc.send_signal(signal.SIGTERM)
            stdout, _ = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    log = log_path.read_text()
    assert proc.returncode == 0, log[-3000:]
    assert "torch loaded: False" in stdout.decode()
    assert report.startswith("@boss: Retrain job #1 (fast, asked by telegram:33) finished."), (
        report + "\n" + log[-3000:]
    )
    assert "Corrections used:" in report and "Old classes" in report and "Per class:" in report
    assert re.search(r"Now serving model|Still serving model", report)
    assert to_admins.text == report.removeprefix("@boss: ")
    assert "memebot.trainer" in log  # the trainer's own output, through the bot's log
    assert TOKEN not in log and TOKEN.split(":")[1] not in log
    assert trainer_pid is not None and not Path(f"/proc/{trainer_pid}").exists()


async def test_supervisor_restarts_a_killed_trainer_and_stops_it_cleanly(
    tmp_path: Path, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path / "data", model_dir=private_models(tiny_model, tmp_path),
        telegram_token=TOKEN, trainer_poll_s=0.3, trainer_stop_timeout_s=20,
    )
    status = TrainerStatus("subprocess")
    supervisor = TrainerSupervisor(settings, status, secrets=[TOKEN], initial_backoff_s=0.2)
    stop = asyncio.Event()
    caplog.set_level(logging.INFO)
    task = asyncio.create_task(supervisor.run(stop))
    health = tmp_path / "data" / "trainer.alive"  # touched by the real trainer at every poll
    # Deadlines, not expectations: a trainer imports torch before its first poll, which took
    # over 90 s on a 2-core machine under load (they only bound a hang).
    try:
        await _until(lambda: status.running and health.exists(), 300)
        first = status.pid
        assert first is not None and TOKEN not in str(environ_of(first))
        assert status.queued_note() is None
        os.kill(first, signal.SIGKILL)
        await _until(lambda: status.starts == 2 and status.running, 300)
        assert status.pid != first
        second = supervisor.process
        assert second is not None
        health.unlink()
        await _until(health.exists, 300)  # the restarted trainer polls the queue
        stop.set()
        await asyncio.wait_for(task, 40)
    finally:
        stop.set()
        if not task.done():
            task.cancel()
    assert second.returncode is not None  # stopped (SIGTERM) before the supervisor returned
    assert not status.running
    assert "trainer exited with code -9" in caplog.text and "restarting in 0.2 s" in caplog.text
    assert any(r.name == "memebot.trainer" for r in caplog.records)
    supervisor.log_line(f"2026-01-01 00:00:00,000 INFO x: url /bot{TOKEN}/getMe")
    assert caplog.records[-1].getMessage().endswith("/bot[REDACTED]/getMe")


async def _until(predicate: Any, timeout: float) -> None:
    async def wait() -> None:
        while not predicate():
            await asyncio.sleep(0.05)

    await asyncio.wait_for(wait(), timeout)


async def test_without_torch_one_warning_and_retrain_says_no_trainer_runs(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(trainer_process, "torch_installed", lambda: False)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", model_dir=tiny_model)  # type: ignore[call-arg]
    async with open_runtime(settings, file_origins=()) as runtime:
        supervisor = TrainerSupervisor(settings, runtime.trainer)
        await asyncio.wait_for(supervisor.run(asyncio.Event()), 5)  # returns: nothing to run
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "torch" in warnings[0].getMessage()
        actor = Actor("console", "admin", "admin")

        async def yes() -> bool:
            return True

        result = await runtime.service.handle_command(
            Command(ChatRef("console", "channel"), actor, "retrain"), yes
        )
        assert result is not None and result.reply.text.startswith("Retraining (fast) queued")
        assert "No trainer is running right now (the [train] extra (torch) is not installed)" in (
            result.reply.text
        )


# ---------------------------------------------------------------- reports and the hot swap


async def test_finished_jobs_are_reported_to_the_admin_chat_and_the_admin_who_asked(
    tmp_path: Path, tiny_model: Path
) -> None:
    """The trainer's records (written here through the same Storage API the trainer uses):
    a promoted version is served at once and reported with its summary; a failure with its
    error and log."""
    models = private_models(tiny_model, tmp_path)
    async with standin() as server:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=tmp_path / "data", model_dir=models, telegram_token=TOKEN,
            telegram_api_url=server.api_url, telegram_file_url=server.file_url,
            super_admins=[f"telegram:{BOSS['id']}"], admin_chat_id=str(ADMIN_CHAT["id"]),
            job_check_interval_s=0.2,
        )
        async with running_bot(server, settings) as runtime:
            old = runtime.models.current.version
            command = server.post_text(CHAT, BOSS, "/retrain")
            assert "queued (job #1)" in (await server.reply_to(command)).text
            storage = runtime.storage
            job = await storage.claim_next_job("host:1")
            assert job is not None
            folder = clone_version(models, "v-new")
            summary = ("Retrain (fast) -> model v-new: PROMOTED\nCorrections used: 7\n"
                       "Per class: doom 80.0% -> 90.0% (n=10)")
            await storage.register_model_version(
                "v-new", path=str(folder), sha256="0" * 64,
                metadata={"summary": summary, "promoted": True, "reason": "better"},
            )
            await storage.activate_model_version("v-new")
            await storage.finish_job(job.id, succeeded=True, log_tail="done",
                                     model_version="v-new")
            await server.wait_for(lambda: len(server.replies_to(command)) >= 2, timeout=20)
            report = server.replies_to(command)[1].text
            await server.wait_for(lambda: [m for m in server.sent if m.chat_id == ADMIN_CHAT["id"]])
            assert report.startswith("@boss: Retrain job #1 (fast, asked by telegram:33) finished.")
            assert summary in report and "Now serving model v-new." in report
            assert runtime.models.current.version == "v-new" != old
            [admins] = [m for m in server.sent if m.chat_id == ADMIN_CHAT["id"]]
            assert admins.text == report.removeprefix("@boss: ")

            # A failure, asked for in the admin chat itself: one message, the reply.
            asked = server.post_text(ADMIN_CHAT, BOSS, "/retrain full")
            await server.reply_to(asked)
            job = await storage.claim_next_job("host:1")
            assert job is not None
            await storage.finish_job(job.id, succeeded=False, log_tail="line 1\nline 2",
                                     error="RetrainError: no base dataset")
            await server.wait_for(lambda: len(server.replies_to(asked)) >= 2, timeout=20)
            failed = server.replies_to(asked)[1].text
            assert ("Retrain job #2 (full, asked by telegram:33) failed: RetrainError: no base"
                    in failed)
            assert "Still serving model v-new." in failed and "line 2" in failed
            assert len([m for m in server.sent if m.chat_id == ADMIN_CHAT["id"]]) == 3


async def test_hot_swap_finishes_memes_in_flight_on_the_old_model_and_drops_none(
    tmp_path: Path, tiny_model: Path
) -> None:
    models = private_models(tiny_model, tmp_path)
    settings = Settings(_env_file=None, data_dir=tmp_path / "data", model_dir=models,  # type: ignore[call-arg]
                        classify_batch_size=2, queue_size=512)
    async with open_runtime(settings, file_origins=()) as runtime:
        service = runtime.service
        old = runtime.models.current
        # Hold the old model's next batch inside predict while the swap happens.
        in_predict, release, swapped_now = threading.Event(), threading.Event(), threading.Event()
        real_predict = old.predict
        on_old: list[bytes] = []  # the pixels of the pictures the old model labelled
        old_calls_after_swap = 0

        def slow_predict(images: Any, **kw: Any) -> Any:
            nonlocal old_calls_after_swap
            old_calls_after_swap += swapped_now.is_set()
            # The worker hands the classifier the pictures it decoded.
            on_old.extend(image.tobytes() for image in images)
            in_predict.set()
            release.wait(30)
            return real_predict(images, **kw)

        old.predict = slow_predict  # type: ignore[method-assign]
        folder = clone_version(models, "v-swapped")
        await runtime.storage.register_model_version("v-swapped", path=str(folder), sha256="1" * 64)
        await runtime.storage.activate_model_version("v-swapped")

        images = [jpeg(("doom", "animal_crossing", "other")[i % 3], 500 + i) for i in range(60)]
        sent = 0
        swapped = asyncio.Event()

        async def post(data: bytes) -> Any:
            author = Actor("console", "poster", "poster")
            return await service.handle_upload(
                ImagePost(ChatRef("console", "channel"), uuid.uuid4().hex, author), data
            )

        async def poster() -> list[Any]:
            nonlocal sent
            tasks = []
            for data in images:  # continuously, before, during and after the swap
                tasks.append(asyncio.create_task(post(data)))
                sent += 1
                await asyncio.sleep(0.01 if not swapped.is_set() else 0.03)
            return await asyncio.gather(*tasks)

        posting = asyncio.create_task(poster())
        await asyncio.to_thread(in_predict.wait, 30)
        in_flight_before_swap = sent
        assert await runtime.switcher.sync()  # swaps while a batch runs on the old model
        swapped_now.set()
        swapped.set()
        release.set()
        outcomes = await asyncio.wait_for(posting, 120)
        assert runtime.models.current.version == "v-swapped"
    assert len(outcomes) == len(images)
    assert all(o.post_id is not None and o.label is not None and o.reply for o in outcomes)
    async with open_runtime(settings, file_origins=()) as runtime:
        versions = [
            (await runtime.storage.predictions_for(o.post_id))[-1].model_version for o in outcomes
        ]
    assert set(versions) == {old.version, "v-swapped"}
    # The batch held in predict when the swap happened finished on the old model; every other
    # meme (before it was queued or after) was labelled by the new one, each by one model.
    assert old_calls_after_swap == 0
    labelled_old = [load_image(images[i]).tobytes() for i, v in enumerate(versions)
                    if v == old.version]
    assert sorted(labelled_old) == sorted(on_old) and 0 < len(on_old) <= in_flight_before_swap
    assert versions[in_flight_before_swap:] == ["v-swapped"] * (len(images) - in_flight_before_swap)
