"""The real PTB Application and core against the Bot API stand-in: the chat and its people,
the bot's settings, the `server` and `bot` fixtures (tests/conftest.py loads this module with
`pytest_plugins`), and the stored post behind a message."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.core.runtime import CoreRuntime
from config.settings import Settings
from tests.support.telegram_standin import TOKEN, TelegramStandIn, group, running_bot, standin, user

CHAT = group(-1001)
ALICE = user(11, "Alice")  # an ordinary member
BOB = user(22, "Bob")  # a chat administrator
ROOT = user(33, "Root")  # a configured super-admin
LABEL_TEXT = re.compile(r"^(not sure: maybe )?(Doom|Animal Crossing) \(\d{1,3}%\)$|^other: not a ")


def make_settings(server: TelegramStandIn, tmp_path: Path, model_dir: Path, **overrides: Any
                  ) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data",
        model_dir=model_dir,
        telegram_token=TOKEN,
        telegram_api_url=server.api_url,
        telegram_file_url=server.file_url,
        super_admins=[f"telegram:{ROOT['id']}"],
        download_timeout_s=10,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
async def server() -> AsyncIterator[TelegramStandIn]:
    async with standin() as s:
        s.members[(CHAT["id"], BOB["id"])] = "administrator"
        yield s


@pytest.fixture
async def bot(server: TelegramStandIn, tmp_path: Path, tiny_model: Path
              ) -> AsyncIterator[CoreRuntime]:
    async with running_bot(server, make_settings(server, tmp_path, tiny_model)) as runtime:
        yield runtime


async def stored_post(runtime: CoreRuntime, message_id: int) -> Any:
    return await runtime.storage.find_post("telegram", str(CHAT["id"]), str(message_id))
