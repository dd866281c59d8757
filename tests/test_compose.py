"""docker-compose.yml cannot run here (no Docker): check its structure instead (issue 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_commands(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"telegram", "discord", "trainer", "postgres"}
    assert services["telegram"]["command"] == ["memebot", "run"]
    assert services["discord"]["command"] == ["memebot", "run"]
    assert services["trainer"]["command"][:2] == ["memebot", "trainer"]
    # bots are built without torch; only the trainer image has the [train] extra
    assert (services["telegram"]["build"]["target"] == services["discord"]["build"]["target"]
            == "serve")
    assert services["trainer"]["build"]["target"] == "trainer"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert (re.search(r"^FROM .* AS serve$", dockerfile, re.M)
            and re.search(r"^FROM serve AS trainer$", dockerfile, re.M))
    assert '".[train]"' in dockerfile


def test_serve_image_can_back_up_the_compose_postgres(compose: dict) -> None:
    # `memebot db backup` runs pg_dump, which refuses a server of a newer major version.
    serve = (ROOT / "Dockerfile").read_text().split("FROM serve AS trainer")[0]
    installs = re.search(r"apt-get install [^&]*", serve.replace("\\\n", " "))
    assert installs and "postgresql-client" in installs.group(0).split()
    debian = re.search(r"^FROM python:[\d.]+-slim-(\w+) AS serve$", serve, re.M)
    client_major = {"bookworm": 15, "trixie": 17}[debian.group(1) if debian else "?"]
    server = re.fullmatch(r"postgres:(\d+)(-alpine)?", compose["services"]["postgres"]["image"])
    assert server and int(server.group(1)) <= client_major


def test_shared_volume_env_and_restart(compose: dict) -> None:
    assert "memebot-data" in compose["volumes"]
    for name in ("telegram", "discord", "trainer"):
        svc = compose["services"][name]
        assert "memebot-data:/data" in svc["volumes"], name
        env = svc["environment"]
        assert (env["MEMEBOT_DATA_DIR"].startswith("/data/")
                and env["MEMEBOT_MODEL_DIR"].startswith("/data/"))
        assert env["MEMEBOT_DATASET_DIR"] == "/dataset"
        # empty: SQLite in the volume
        assert env["MEMEBOT_DATABASE_URL"] == "${MEMEBOT_DATABASE_URL:-}"
        assert env["MEMEBOT_TRAINER"] == "external"  # the trainer service; bots never spawn one
        assert [f["path"] for f in svc["env_file"]] == [".env"]  # secrets come from .env
        assert svc["restart"] in ("unless-stopped", "always")
        assert svc["depends_on"]["postgres"]["required"] is False
    # each bot gets only its own platform's token
    tg = compose["services"]["telegram"]["environment"]
    dc = compose["services"]["discord"]["environment"]
    assert "MEMEBOT_TELEGRAM_TOKEN" in tg and "MEMEBOT_DISCORD_TOKEN" not in tg
    assert "MEMEBOT_DISCORD_TOKEN" in dc and "MEMEBOT_TELEGRAM_TOKEN" not in dc


def test_healthchecks(compose: dict) -> None:
    for name, svc in compose["services"].items():
        hc = svc["healthcheck"]
        assert hc["test"][0] in ("CMD", "CMD-SHELL") and hc["interval"] and hc["retries"] >= 1, name
    # the trainer's check reads the file the trainer touches
    from model_training.trainer import TrainerOptions  # noqa: F401  (import check: no torch at import)

    test = " ".join(compose["services"]["trainer"]["healthcheck"]["test"])
    env = compose["services"]["trainer"]["environment"]
    assert f"{env['MEMEBOT_DATA_DIR']}/trainer.alive" in test


def test_postgres_profile_matches_database_url(compose: dict) -> None:
    pg = compose["services"]["postgres"]
    assert pg["profiles"] == ["postgres"]
    assert "postgres-data" in compose["volumes"]
    env = pg["environment"]
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / ".env.example").read_text()
    url = f"postgresql+asyncpg://{env['POSTGRES_USER']}:"
    assert url in text and f"@postgres:5432/{env['POSTGRES_DB']}" in text
    assert compose["services"]["telegram"]["profiles"] == ["telegram"]
    assert compose["services"]["discord"]["profiles"] == ["discord"]
    assert "profiles" not in compose["services"]["trainer"]  # always runs


def test_env_example_and_dockerignore() -> None:
    example = (ROOT / ".env.example").read_text()
    for key in ("TELEGRAM_TOKEN=", "DISCORD_TOKEN=", "POSTGRES_PASSWORD=", "COMPOSE_PROFILES="):
        assert key in example
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".env" in ignored and ".git" in ignored and ".venv*" in ignored


def test_bots_health_endpoint(compose: dict) -> None:
    """The bots' healthchecks read /readyz on the port the bots serve it on (issue 23)."""
    for name in ("telegram", "discord"):
        svc = compose["services"][name]
        port = svc["environment"]["MEMEBOT_HEALTH_PORT"]
        test = " ".join(svc["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/readyz" in test, name
