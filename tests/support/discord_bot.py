"""The real discord.py client and core against the Discord stand-in: the guild's people, the
bot's settings and the stored post behind a message. (The `server` and `bot` fixtures live in
test_discord_bot.py, their only user: the Telegram ones that tests/conftest.py loads have the
same names.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core.runtime import CoreRuntime
from config.settings import Settings
from tests.support.discord_standin import (
    CHANNEL_ID,
    MANAGER_ROLE_ID,
    MEME_ADMIN_ROLE,
    MEME_ADMIN_ROLE_ID,
    MOD_ROLE_ID,
    TOKEN,
    DiscordStandIn,
    Person,
)

ALICE = Person(11, "Alice")  # an ordinary member
MOD = Person(22, "Mod", roles=(MOD_ROLE_ID,))  # Manage Messages
CURATOR = Person(33, "Curator", roles=(MEME_ADMIN_ROLE_ID,))  # the configured admin role
ROOT = Person(44, "Root")  # a configured super-admin
MANAGER = Person(55, "Manager", roles=(MANAGER_ROLE_ID,))  # Manage Server (and Messages)


def make_settings(server: DiscordStandIn, tmp_path: Path, model_dir: Path, **overrides: Any
                  ) -> Settings:
    values: dict[str, Any] = dict(
        data_dir=tmp_path / "data",
        model_dir=model_dir,
        discord_token=TOKEN,
        discord_api_url=server.api_url,
        discord_gateway_url=server.gateway_url,
        discord_file_origins=[server.base],
        discord_guild_ready_timeout_s=0.1,
        discord_admin_role=MEME_ADMIN_ROLE,
        super_admins=[f"discord:{ROOT.user_id}"],
        download_timeout_s=10,
        trainer="off",
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


async def stored_post(runtime: CoreRuntime, message_id: int) -> Any:
    return await runtime.storage.find_post("discord", str(CHANNEL_ID), str(message_id))
