"""Engine and transactions: one URL picks SQLite (embedded default) or PostgreSQL.

SQLite allows one writer at a time. Writes therefore go through `Database.write()`, which
serialises them in-process with an asyncio.Lock (100 memes at once queue up instead of
failing) and opens them with BEGIN IMMEDIATE, so a second process waits on busy_timeout for
the write lock up front instead of failing with "database is locked" when a deferred read
transaction tries to upgrade to a write.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.dml import Insert

from storage.errors import InvalidInputError

SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_OPTION = "memebot_write"


def default_sqlite_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(Path(data_dir) / 'memebot.db').resolve()}"


class Database:
    """An async engine plus read/write session factories; no ORM objects escape it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @classmethod
    def connect(cls, url: str, *, schema: str | None = None, **engine_kwargs: Any) -> Database:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if parsed.drivername != "sqlite+aiosqlite":
                raise InvalidInputError("use the async SQLite driver: sqlite+aiosqlite:///path")
            _make_sqlite_parent(parsed)
            engine = create_async_engine(parsed, **engine_kwargs)
            _configure_sqlite(engine)
        elif backend == "postgresql":
            if parsed.drivername != "postgresql+asyncpg":
                raise InvalidInputError("use the async PostgreSQL driver: postgresql+asyncpg://")
            if schema:
                # A dedicated schema (tests, a server shared with other apps) via search_path.
                connect_args = engine_kwargs.setdefault("connect_args", {})
                connect_args.setdefault("server_settings", {})["search_path"] = schema
            engine_kwargs.setdefault("pool_pre_ping", True)
            engine = create_async_engine(parsed, **engine_kwargs)
        else:
            raise InvalidInputError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")
        return cls(engine)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction: one consistent snapshot for several queries."""
        async with self._reads() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: commits on success, rolls back entirely on any exception."""
        async with AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._writes())
            await stack.enter_async_context(session.begin())
            yield session

    @asynccontextmanager
    async def write_connection(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a write transaction (for migrations)."""
        async with AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            conn = await stack.enter_async_context(self._write_engine.begin())
            yield conn

    async def serialize(self, session: AsyncSession, name: str) -> None:
        """Serialise a read-then-write section across processes on PostgreSQL.

        SQLite needs nothing: BEGIN IMMEDIATE already made this the only writer.
        """
        if not self.is_sqlite:
            key = zlib.crc32(name.encode())  # stable across processes, unlike hash()
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    def insert_ignore(self, model: type[DeclarativeBase]) -> Insert:
        """INSERT ... ON CONFLICT DO NOTHING, the idempotent insert on both backends."""
        if self.is_sqlite:
            return sqlite.insert(model).on_conflict_do_nothing()
        return postgresql.insert(model).on_conflict_do_nothing()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _make_sqlite_parent(url: URL) -> None:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over BEGIN from the driver so that writes can say BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # FULL: a committed meme survives a power cut, matching the fsync'd blob files.
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
