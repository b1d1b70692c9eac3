"""Database engines for SQLite (embedded) and PostgreSQL, with the same transaction semantics.

Write transactions on SQLite start with BEGIN IMMEDIATE, taking the database write lock before
the first read, so read-check-write sequences (versions, conditional creates) are serialised
across connections and processes just as PostgreSQL's row and advisory locks serialise them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from app.config import Settings

# The write transaction running in this task, if any: reads made inside it (a transaction
# Bundle's GET entries, answered after its writes) must see those writes.
_write_conn: ContextVar[AsyncConnection | None] = ContextVar("phm_write_conn", default=None)


@dataclass
class Database:
    engine: AsyncEngine
    dialect: str  # "sqlite" | "postgresql"

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); commits on success."""
        eng = self.engine.execution_options(phm_write=True) if self.is_sqlite else self.engine
        async with eng.begin() as conn:
            token = _write_conn.set(conn)
            try:
                yield conn
            finally:
                _write_conn.reset(token)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only transaction: one consistent snapshot for a search and its includes.
        Inside a write transaction of the same task, that transaction (it sees its writes)."""
        current = _write_conn.get()
        if current is not None:
            yield current
            return
        async with self.engine.connect() as conn:
            if not self.is_sqlite:
                await conn.execute(_text("SET TRANSACTION READ ONLY"))
            yield conn
            await conn.rollback()

    async def dispose(self) -> None:
        await self.engine.dispose()


def _text(sql: str) -> Any:
    from sqlalchemy import text

    return text(sql)


def sync_url(url: str) -> str:
    """The synchronous driver URL for the same database (alembic, bulk tools)."""
    u = make_url(url)
    if u.drivername.startswith("sqlite"):
        return u.set(drivername="sqlite").render_as_string(hide_password=False)
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def ensure_sqlite_folder(database_url: str) -> None:
    """SQLite creates the file, not its folder (./var/ on a fresh clone)."""
    url = make_url(database_url)
    if url.drivername.startswith("sqlite") and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def create_database(settings: Settings) -> Database:
    url = make_url(settings.database_url)
    if url.drivername.startswith("sqlite"):
        ensure_sqlite_folder(settings.database_url)
        engine = create_async_engine(url,
                                     connect_args={"timeout": 60})
        _sqlite_events(engine)
        return Database(engine, "sqlite")
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+asyncpg")
    engine = create_async_engine(
        url, pool_size=settings.pool_size, max_overflow=settings.pool_size, pool_pre_ping=False,
        # Searches are short and their selectivity depends on the values: plan each one with
        # its values (asyncpg prepares statements, and PostgreSQL would otherwise switch to a
        # generic plan after five runs), and skip JIT compilation, which costs more than it saves.
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan", "jit": "off"}},
    )
    return Database(engine, "postgresql")


def _sqlite_events(engine: AsyncEngine) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=60000",
            "cache_size=-200000",
            "temp_store=MEMORY",
            "mmap_size=1073741824",
        ):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(sync, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("phm_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
