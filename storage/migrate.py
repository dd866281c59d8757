"""Schema migrations with Alembic, configured in code (no alembic.ini to lose when installed)."""

from __future__ import annotations

import logging

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage.db import Database

SCRIPT_LOCATION = "storage:migrations"  # package resource: works from a wheel or a checkout


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to `revision`; safe when several processes start at once."""
    async with db.write_connection() as conn:
        if not db.is_sqlite:
            # The write transaction alone does not stop two servers from both creating tables.
            await conn.exec_driver_sql("SELECT pg_advisory_xact_lock(737373)")
        await conn.run_sync(_upgrade, revision)


async def current_revision(db: Database) -> str | None:
    _quiet_startup()
    async with db.engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


class _StartupChatter(logging.Filter):
    """Alembic says which dialect it uses on every start ("Context impl SQLiteImpl.", "Will
    assume non-transactional DDL."): noise in the bot's and the trainer's logs at each start.
    Lines of an actual migration ("Running upgrade 0001 -> 0002") still pass, one line each,
    without the revision's docstring (a paragraph per revision on a new database's first
    start)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Running %s" and isinstance(record.args, tuple) and record.args:
            short = getattr(record.args[0], "short_log", None)
            if isinstance(short, str):
                record.args = (short,)
        return not str(record.msg).startswith(("Context impl", "Will assume"))


_CHATTER = _StartupChatter()


def _quiet_startup() -> None:
    # Alembic announces each of its plugins at INFO on every start: noise in the bot's log.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    migration_log = logging.getLogger("alembic.runtime.migration")
    if _CHATTER not in migration_log.filters:
        migration_log.addFilter(_CHATTER)


def _upgrade(connection: Connection, revision: str) -> None:
    _quiet_startup()
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
