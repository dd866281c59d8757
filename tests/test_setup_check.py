"""The setup check (issue 23) against the stand-ins: at start (logged) and by an admin's /check
(answered), what is missing on Telegram (privacy mode, the bot's admin rights for reactions and
deletes) and on Discord (the Message Content intent, channel permissions), with the fix."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.support import discord_bot as dcb
from tests.support import discord_standin as dc
from tests.support import telegram_bot as tgb
from tests.support import telegram_standin as tg
from tests.support.fakes import FakeClassifier


def start_warnings(caplog: pytest.LogCaptureFixture, platform: str) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.getMessage().startswith(f"{platform} setup:")]


async def test_telegram_check_reports_privacy_mode_and_missing_admin_rights(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    chat, admin = tgb.CHAT, tgb.BOB
    async with tg.standin() as server:
        server.members[(chat["id"], admin["id"])] = "administrator"
        server.privacy_mode = True
        settings = tgb.make_settings(server, tmp_path, tmp_path / "models", trainer="off")
        async with tg.running_bot(server, settings, loader=FakeClassifier) as bot:
            [warning] = start_warnings(caplog, "telegram")
            assert "Privacy mode is on" in warning and "@BotFather" in warning
            await bot.storage.update_chat_settings("telegram", str(chat["id"]),
                                                   repost_mode="delete")

            refused = await server.reply_to(server.post_text(chat, tgb.ALICE, "/check"))
            assert "admins" in refused.text.lower()

            report = (await server.reply_to(server.post_text(chat, admin, "/check"))).text
            assert report.startswith("Setup check: 3 things to fix.")
            assert "Privacy mode is on and I am not an admin in this group" in report
            assert "reactions never reach me" in report
            assert "may not delete messages in this group" in report
            assert report.count("Fix:") == 3

            server.members[(chat["id"], tg.BOT_ID)] = "administrator"  # without delete right
            report = (await server.reply_to(server.post_text(chat, admin, "/check"))).text
            assert report.startswith("Setup check: 1 thing to fix.")
            assert "right to delete messages" in report

            server.can_delete.add(chat["id"])
            report = (await server.reply_to(server.post_text(chat, admin, "/check"))).text
            assert report == "Setup check: everything I need works here."


async def test_discord_check_reports_a_missing_permission_and_the_intent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with dc.standin() as server:
        server.bot_denied[dc.CHANNEL_ID] = dc.ATTACH_FILES | dc.ADD_REACTIONS
        server.app_flags = 0  # the portal's Message Content intent is off
        settings = dcb.make_settings(server, tmp_path, tmp_path / "models",
                                     discord_admin_channel_id=dc.ADMIN_CHANNEL_ID)
        async with dc.running_bot(server, settings, loader=FakeClassifier):
            await server.wait_for(lambda: bool(start_warnings(caplog, "discord")))
            logged = start_warnings(caplog, "discord")
            assert any("Message Content intent is off" in w for w in logged)
            assert any("I lack the permission Attach Files in #memes" in w for w in logged)
            assert not any("#general" in w or "#meme-admins" in w for w in logged)

            refused = await server.answer(await server.slash(dcb.ALICE, "check"))
            assert refused.ephemeral and "admins" in (refused.content or "").lower()
            answer = await server.answer(await server.slash(dcb.MOD, "check"))
            report = answer.content or ""
            assert answer.ephemeral and report.startswith("Setup check: 3 things to fix.")
            assert "I lack the permission Attach Files in #memes" in report
            assert "I lack the permission Add Reactions in #memes" in report
            assert "Privileged Gateway Intents" in report
            assert "Manage Messages" not in report  # reposts are noted, not deleted


async def test_discord_all_granted_reports_nothing(tmp_path: Path) -> None:
    async with dc.standin() as server:
        settings = dcb.make_settings(server, tmp_path, tmp_path / "models")
        async with dc.running_bot(server, settings, loader=FakeClassifier):
            answer = await server.answer(await server.slash(dcb.MOD, "check"))
    assert answer.content == "Setup check: everything I need works here."


async def test_discord_check_covers_the_places_memes_are_sorted_to(tmp_path: Path) -> None:
    async with dc.standin() as server:
        server.bot_denied[dc.OTHER_CHANNEL_ID] = dc.ATTACH_FILES
        settings = dcb.make_settings(server, tmp_path, tmp_path / "models")
        async with dc.running_bot(server, settings, loader=FakeClassifier) as bot:
            await bot.storage.update_chat_settings(
                "discord", str(dc.CHANNEL_ID),
                sort_places={"doom": str(dc.OTHER_CHANNEL_ID), "other": "123"})
            answer = await server.answer(await server.slash(dcb.MOD, "check"))
    report = answer.content or ""
    assert report.startswith("Setup check: 2 things to fix."), report
    assert "I lack the permission Attach Files in #general" in report
    assert "I cannot see the channel 123, which my settings name." in report
