"""All configuration of a memebot process, from the environment (prefix MEMEBOT_) and `.env`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TrainerMode = Literal["subprocess", "external", "off"]


class ReplyMode(StrEnum):
    every = "every"  # reply to every meme
    confident = "confident"  # reply only when the label is confident
    silent = "silent"  # never reply in the chat; log to the admin chat
    react = "react"  # react to the meme with its label's emoji instead of a reply


class RepostMode(StrEnum):
    off = "off"  # never check
    note = "note"  # reply "Repost: first posted by ..."
    delete = "delete"  # remove the repost where the bot may delete messages, else note it


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MEMEBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(Path("var"), description="blobs, SQLite database, caches")
    model_dir: Path = Field(Path("models"), description="folder of exported model versions")
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir")
    dataset_dir: Path | None = Field(None, description="base labelled dataset (class folders)")

    telegram_token: SecretStr | None = None
    discord_token: SecretStr | None = None
    # NoDecode: pydantic-settings would parse a list from the environment as JSON only;
    # `_split_csv` takes "telegram:1,telegram:2" as well as '["telegram:1", "telegram:2"]'.
    super_admins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="platform:user_id, comma-separated or a JSON list"
    )
    admin_chat_id: str | None = None
    reply_mode: ReplyMode = ReplyMode.every
    confidence_threshold: float = Field(0.6, ge=0.0, le=1.0)
    # Reposts (issue 16): chats may override mode and window (/reposts). The thresholds were
    # chosen with benchmarks/bench_reposts.py (README, "Reposts and sorting").
    repost_mode: RepostMode = RepostMode.note
    repost_window_days: int = Field(
        365, ge=1, le=36_500, description="how far back an original counts"
    )
    repost_hash_distance: int = Field(
        8, ge=0, le=32, description="pHash bits that may differ between a meme and its copy"
    )
    repost_cosine: float = Field(
        0.90, ge=0.0, le=1.0,
        description="embedding cosine from which a post is a copy when pictures cannot be compared",
    )
    repost_checked_cosine: float = Field(
        0.80, ge=0.0, le=1.0,
        description="embedding cosine from which a post's picture is compared with an earlier one",
    )
    read_text: bool = Field(
        True,
        description=(
            "read memes' text with Tesseract (~0.14 s CPU a meme) when the model has a word model"
        ),
    )

    max_download_bytes: int = Field(20 * 1024 * 1024, gt=0)
    download_timeout_s: float = Field(30.0, gt=0)
    queue_size: int = Field(256, gt=0)
    # The bytes the waiting images may hold between them (MEMEBOT_QUEUE_MAX_BYTES).
    queue_max_bytes: int = Field(64 * 2**20, gt=0)
    inference_threads: int = Field(1, gt=0)
    # Clips (videos, GIFs, animated stickers; inference/clips.py): frames classified at most,
    # and the bounds on one clip's decode. Files are capped by max_download_bytes.
    clip_frames: int = Field(8, ge=1, le=32, description="frames of a clip classified at most")
    clip_decode_timeout_s: float = Field(20.0, gt=0, description="longest decode of one clip")
    clip_max_duration_s: float = Field(600.0, gt=0, description="longest clip read")
    clip_max_pixels: int = Field(4096 * 4096, gt=0, description="largest clip frame (pixels)")

    # Bot process (issue 4). The API URLs only change to point the bot at a local Bot API
    # server (or a test stand-in); downloads are refused from any other origin.
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    telegram_webhook_url: str | None = Field(None, description="public URL: webhook mode")
    telegram_webhook_listen: str = "0.0.0.0"
    telegram_webhook_port: int = Field(8443, ge=0, le=65535)
    telegram_webhook_secret: SecretStr | None = None
    # An album's items arrive as separate updates: gathered until none came for this long,
    # then answered with one reply (issue 22).
    telegram_album_window_s: float = Field(
        1.0, gt=0, le=10, description="quiet time that ends a Telegram album"
    )
    # Measured on 2 cores (benchmarks/bench_bot.py): bigger values barely add throughput but
    # hold more decoded images and ORT activations at once, pushing peak RSS past 300 MB.
    concurrent_updates: int = Field(16, gt=0, description="updates handled at the same time")
    classify_batch_size: int = Field(2, gt=0)
    # glibc malloc in `memebot run` (bot/run_cli.py): at most this many arenas, and the mmap
    # threshold pinned at 128 KiB so that freed image and onnxruntime buffers go back to the
    # OS. Measured (bench_bot.py, burst of 100): peak RSS 406 -> 277 MB, idle 245 -> 200 MB.
    # 0 leaves glibc's defaults (8 arenas a core, a threshold that grows to 32 MiB).
    malloc_arena_max: int = Field(
        2, ge=0, description="glibc malloc arenas of the bot process (0: glibc's defaults)"
    )
    model_check_interval_s: float = Field(60.0, gt=0, description="poll for a promoted model")
    reaction_labels: dict[str, str] = Field(
        default_factory=lambda: {"😈": "doom", "🦄": "animal_crossing", "🤷": "other", "👍": "+"},
        description='admin emoji reaction -> label ("+": the predicted label is right)',
    )
    log_json: bool = Field(False, description="one JSON object per log line")
    # Health and metrics (issue 23): /healthz, /readyz, /metrics. Off unless a port is set
    # (docker-compose.yml sets one; its healthchecks read /readyz).
    health_port: int | None = Field(
        None, ge=0, le=65535, description="port of /healthz, /readyz and /metrics (unset: off)"
    )
    health_host: str = "127.0.0.1"
    health_queue_stall_s: float = Field(
        120.0, gt=0, description="/readyz fails when waiting images see no progress this long"
    )
    # People's data (issue 23): how long what the bot keeps stays (README "Your data").
    retention_days: int | None = Field(
        None, ge=1, description="delete posts no admin labelled after this many days, with "
        "their images and captions (unset: keep)"
    )
    purge_after_leave_days: int | None = Field(
        30, ge=0, description="purge a chat this many days after the bot left or was removed "
        "(unset: never)"
    )
    lifecycle_interval_s: float = Field(
        3600.0, gt=0, description="how often retention and purges of left chats run"
    )
    # Catch-up (issue 23): what the bot missed while it was down.
    quiet_after_minutes: int | None = Field(
        60, ge=0, description="a post older than this when the bot sees it is labelled "
        "quietly: stored and sorted, no reply (unset: always answer)"
    )
    discord_catch_up_hours: float = Field(
        24.0, ge=0, description="at start, read each channel's history since the last message "
        "seen, this far back at most (0: off)"
    )
    discord_catch_up_max: int = Field(
        200, ge=0, description="messages read per channel at most when catching up"
    )
    backups_kept: int = Field(
        3, ge=0, description="automatic backups before a schema migration kept in "
        "data_dir/backups (0: none taken)"
    )

    # Discord (issue 13). The URLs only change to point the bot at a test stand-in; images are
    # downloaded from `discord_file_origins` only (attachments and image embeds).
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="guilds whose slash commands are synced at start (instant); empty: global",
    )
    discord_admin_role: str | None = Field(
        None, description="role name or id whose members may correct labels and /retrain"
    )
    discord_admin_channel_id: int | None = Field(
        None, description="channel for retrain reports, silent-mode labels and held memes"
    )
    discord_shard_count: int | None = Field(
        None, gt=0, description="total shards (default: what Discord recommends)"
    )
    discord_shard_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="shards this process runs (default: all)"
    )
    discord_guild_ready_timeout_s: float = Field(
        2.0, gt=0, description="wait for guilds after connecting before 'ready'"
    )
    discord_api_url: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    discord_file_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https://cdn.discordapp.com", "https://media.discordapp.net"]
    )
    # Link previews (gifv, video and image embeds) are fetched from these origins only: the
    # GIF sites' own media servers, https. Any other embed is ignored (issue 22).
    discord_embed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "https://media.tenor.com", "https://c.tenor.com", "https://media1.tenor.com",
            "https://media.giphy.com", "https://i.giphy.com", "https://media0.giphy.com",
            "https://media1.giphy.com", "https://media2.giphy.com", "https://media3.giphy.com",
            "https://media4.giphy.com",
        ],
        description="origins of gifv/video/image embeds the bot may download (Tenor, Giphy)",
    )
    # Where sticker images are served (`{url}/{id}.png` or `.gif`); only changes for a test
    # stand-in. Must be one of discord_file_origins.
    discord_sticker_url: str = "https://media.discordapp.net/stickers"

    console_host: str = "127.0.0.1"
    console_port: int = Field(8080, ge=0, le=65535)
    console_admin_token: SecretStr | None = None
    console_enabled: bool | None = Field(
        None, description="run the web console (default: only when no chat token is set)"
    )
    min_examples_new_label: int = Field(5, gt=0)

    # The trainer (`memebot trainer`, issue 6). "subprocess": `memebot run` starts and
    # supervises it (one command runs everything); "external": it runs as its own service
    # (another container or machine sharing the database and model folder); "off": none, a
    # /retrain stays queued. Default: "subprocess" with SQLite (the embedded set-up), else
    # "external" (PostgreSQL means a bigger set-up, where the trainer is its own service).
    trainer: TrainerMode | None = Field(None, description="subprocess | external | off")
    trainer_nice: int = Field(10, ge=0, le=19, description="the trainer's CPU niceness")
    trainer_threads: int | None = Field(None, gt=0, description="torch threads (default: all)")
    trainer_poll_s: float = Field(5.0, gt=0, description="the trainer's queue poll interval")
    trainer_stop_timeout_s: float = Field(10.0, gt=0, description="SIGTERM -> kill after this")
    trainer_restart_max_s: float = Field(60.0, gt=0, description="longest restart back-off")
    job_check_interval_s: float = Field(
        5.0, gt=0, description="poll for finished retrain jobs (admin summaries)"
    )

    @field_validator("super_admins", "discord_guild_ids", "discord_shard_ids",
                     "discord_file_origins", "discord_embed_origins", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [v.strip() for v in text.split(",") if v.strip()]
        return value

    @property
    def uses_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def effective_trainer(self) -> TrainerMode:
        if self.trainer is not None:
            return self.trainer
        return "subprocess" if self.uses_sqlite else "external"

    @property
    def effective_database_url(self) -> str:
        sqlite_file = (self.data_dir / "memebot.db").resolve()
        return self.database_url or f"sqlite+aiosqlite:///{sqlite_file}"

    def admin_chats(self) -> dict[str, str]:
        """platform -> its admins' chat (held memes, silent mode's log, retrain reports)."""
        chats = {"telegram": self.admin_chat_id,
                 "discord": (str(self.discord_admin_channel_id)
                             if self.discord_admin_channel_id is not None else None)}
        return {platform: chat for platform, chat in chats.items() if chat}

    def token_for(self, platform: Literal["telegram", "discord"]) -> str:
        """The platform's bot token; a ValueError naming the setting when there is none."""
        secret = self.telegram_token if platform == "telegram" else self.discord_token
        if secret is None:
            raise ValueError(f"no {platform.title()} token: set MEMEBOT_{platform.upper()}_TOKEN")
        return secret.get_secret_value()
