"""All configuration of a memebot process, from the environment (prefix MEMEBOT_) and `.env`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ReplyMode(str, Enum):
    every = "every"  # reply to every meme
    confident = "confident"  # reply only when the label is confident
    silent = "silent"  # never reply in the chat; log to the admin chat


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
    super_admins: list[str] = Field(default_factory=list, description="platform:user_id")
    admin_chat_id: str | None = None
    reply_mode: ReplyMode = ReplyMode.every
    confidence_threshold: float = Field(0.6, ge=0.0, le=1.0)

    max_download_bytes: int = Field(20 * 1024 * 1024, gt=0)
    download_timeout_s: float = Field(30.0, gt=0)
    queue_size: int = Field(256, gt=0)
    inference_threads: int = Field(1, gt=0)

    # Bot process (issue 4). The API URLs only change to point the bot at a local Bot API
    # server (or a test stand-in); downloads are refused from any other origin.
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    telegram_webhook_url: str | None = Field(None, description="public URL: webhook mode")
    telegram_webhook_listen: str = "0.0.0.0"
    telegram_webhook_port: int = Field(8443, ge=0, le=65535)
    telegram_webhook_secret: SecretStr | None = None
    # Measured on 2 cores (benchmarks/bench_bot.py): bigger values barely add throughput but
    # hold more decoded images and ORT activations at once, pushing peak RSS past 300 MB.
    concurrent_updates: int = Field(16, gt=0, description="updates handled at the same time")
    classify_batch_size: int = Field(2, gt=0)
    model_check_interval_s: float = Field(60.0, gt=0, description="poll for a promoted model")
    reaction_labels: dict[str, str] = Field(
        default_factory=lambda: {"😈": "doom", "🦄": "animal_crossing", "🤷": "other", "👍": "+"},
        description='admin emoji reaction -> label ("+": the predicted label is right)',
    )
    log_json: bool = Field(False, description="one JSON object per log line")

    console_host: str = "127.0.0.1"
    console_port: int = Field(8080, ge=0, le=65535)
    console_admin_token: SecretStr | None = None
    console_enabled: bool | None = Field(
        None, description="run the web console (default: only when no chat token is set)"
    )
    min_examples_new_label: int = Field(5, gt=0)

    @field_validator("super_admins", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'memebot.db').resolve()}"
