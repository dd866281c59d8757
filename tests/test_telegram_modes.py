"""Bot variants: webhook mode, reply modes, a full queue, flood control, model switching."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from inference.classifier import Classifier, Prediction
from inference.metadata import META_FILE, file_sha256, resolve_model_dir
from tests.support.imagegen import jpeg
from tests.support.telegram_bot import ALICE, BOB, CHAT, LABEL_TEXT, ROOT, make_settings
from tests.support.telegram_standin import running_bot, standin


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode_sets_the_webhook_and_checks_its_secret(
    tmp_path: Path, tiny_model: Path
) -> None:
    port = free_port()
    async with standin() as server:
        settings = make_settings(
            server, tmp_path, tiny_model,
            telegram_webhook_url=f"http://127.0.0.1:{port}/telegram-hook",
            telegram_webhook_listen="127.0.0.1", telegram_webhook_port=port,
            telegram_webhook_secret="hook-secret",
        )
        async with running_bot(server, settings):
            assert "message_reaction" in (server.allowed_updates or [])
            assert server.get_updates_calls == 0
            server.post_photo(CHAT, ALICE, jpeg("doom"))
            assert await server.deliver_to_webhook(secret="wrong") == [403]
            meme = server.post_photo(CHAT, ALICE, jpeg("doom", 1))
            assert await server.deliver_to_webhook() == [200]
            reply = await server.reply_to(meme)
            assert LABEL_TEXT.match(reply.text)
            assert len(server.sent) == 1


class UnsureClassifier(Classifier):
    """A real classifier whose every answer is only 50% sure (the tiny model is overconfident)."""

    def predict(self, images: Any, **kw: Any) -> Any:
        return [replace(p, confidence=0.5) if isinstance(p, Prediction) else p
                for p in super().predict(images, **kw)]


async def test_confident_mode_stays_quiet_below_the_threshold(
    tmp_path: Path, tiny_model: Path
) -> None:
    async with standin() as server:
        settings = make_settings(server, tmp_path, tiny_model, reply_mode="confident",
                                 confidence_threshold=0.6)
        async with running_bot(server, settings, loader=UnsureClassifier) as bot:
            quiet = server.post_photo(CHAT, ALICE, jpeg("doom"))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                post = await bot.storage.find_post("telegram", str(CHAT["id"]), str(quiet))
                if post and await bot.storage.predictions_for(post.id):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the meme was never classified")
            await asyncio.sleep(0.2)  # a reply, if any, would be sent right after recording
            assert not server.replies_to(quiet)


async def test_silent_mode_reports_to_the_admin_chat(tmp_path: Path, tiny_model: Path) -> None:
    async with standin() as server:
        settings = make_settings(server, tmp_path, tiny_model, reply_mode="silent",
                                 admin_chat_id="-2002")
        async with running_bot(server, settings):
            meme = server.post_photo(CHAT, ALICE, jpeg("doom"))
            [log] = await server.wait_for(lambda: [s for s in server.sent if s.chat_id == -2002])
            assert f"message {meme} by @alice: " in log.text
            assert log.photo and len(log.buttons) == 3  # the image, a button per label
            assert not server.replies_to(meme)


class SlowClassifier(Classifier):
    """A real classifier that takes its time, so that a burst fills a small queue."""

    def predict(self, images: Any, **kw: Any) -> Any:
        time.sleep(0.3)
        return super().predict(images, **kw)


async def test_a_full_queue_answers_busy_and_every_meme_gets_an_answer(
    tmp_path: Path, tiny_model: Path
) -> None:
    async with standin() as server:
        settings = make_settings(server, tmp_path, tiny_model, queue_size=2,
                                 classify_batch_size=1)
        async with running_bot(server, settings, loader=SlowClassifier) as bot:
            memes = [server.post_photo(CHAT, ALICE, jpeg("doom", i)) for i in range(10)]
            await server.wait_for(lambda: all(server.replies_to(m) for m in memes), timeout=30)
            texts = [server.replies_to(m)[0].text for m in memes]
            busy = [t for t in texts if t.startswith("I'm busy")]
            labelled = [t for t in texts if LABEL_TEXT.match(t)]
            assert busy and labelled and len(busy) + len(labelled) == 10
            stats = await bot.storage.stats()
            assert sum(stats.predicted_per_label.values()) == len(labelled)


async def test_flood_control_is_waited_out(tmp_path: Path, tiny_model: Path) -> None:
    async with standin() as server:
        server.flood_next_sends = 1
        async with running_bot(server, make_settings(server, tmp_path, tiny_model)):
            meme = server.post_photo(CHAT, ALICE, jpeg("doom"))
            reply = await server.reply_to(meme)
            assert LABEL_TEXT.match(reply.text) and server.flood_next_sends == 0


def copy_model(source: Path, target_root: Path, version: str) -> Path:
    folder = target_root / version
    shutil.copytree(resolve_model_dir(source), folder)
    meta = json.loads((folder / META_FILE).read_text())
    meta["version"] = version
    (folder / META_FILE).write_text(json.dumps(meta))
    return folder


async def test_a_promoted_model_is_swapped_in_and_rollback_is_the_operators(
    tmp_path: Path, tiny_model: Path
) -> None:
    first = resolve_model_dir(tiny_model).name
    newer = copy_model(tiny_model, tmp_path / "models", "v-newer")
    async with standin() as server:
        server.members[(CHAT["id"], BOB["id"])] = "administrator"
        async with running_bot(server, make_settings(server, tmp_path, tiny_model)) as bot:
            assert bot.models.current.version == first
            # What a trainer does after a retrain: register and promote a version.
            await bot.storage.register_model_version(
                "v-newer", path=newer, sha256=file_sha256(newer / "model.onnx"))
            await bot.storage.activate_model_version("v-newer")
            assert await bot.switcher.sync()
            meme = server.post_photo(CHAT, ALICE, jpeg("doom"))
            await server.reply_to(meme)
            post = await bot.storage.find_post("telegram", str(CHAT["id"]), str(meme))
            [prediction] = await bot.storage.predictions_for(post.id)
            assert prediction.model_version == "v-newer"

            for person in (ALICE, BOB):  # a member; an admin of this (untrusted) group
                refused = await server.reply_to(server.post_text(CHAT, person, "/rollback"))
                assert refused.text.startswith("Only the bot's operators can use /rollback")
            assert bot.models.current.version == "v-newer"
            done = await server.reply_to(server.post_text(CHAT, ROOT, "/rollback"))
            assert done.text == f"Now serving model {first}."
            [logged] = await bot.storage.audit_log(action="rollback")
            assert (logged.actor_id, logged.from_value, logged.to_value) == (
                f"telegram:{ROOT['id']}", "v-newer", first)
            assert bot.models.current.version == first
            assert (await bot.storage.active_model_version()).version == first
            again = await server.reply_to(server.post_text(CHAT, ROOT, "/rollback nope"))
            assert again.text.startswith("Cannot roll back: model version 'nope'")
