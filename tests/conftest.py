"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

The PostgreSQL URL comes from PHM_TEST_POSTGRES_URL (default: the local server); a fresh
database is created for the session and dropped after. In CI a missing server fails the run.
"""

from __future__ import annotations

import contextlib
import os
import tarfile
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.engine import make_url

from app.config import Settings
from app.main import create_app
from app.store.schema import metadata

# No background stratification in tests (it would write RiskAssessments and Groups while a
# test counts resources); tests/stratify starts it explicitly.
os.environ.setdefault("PHM_STRATIFY_INTERVAL", "0")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
PG_URL = os.environ.get("PHM_TEST_POSTGRES_URL",
                        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
FHIR_JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}


def _pg_admin_dsn(url: str) -> str:
    u = make_url(url)
    return f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}" + (
        f" password={u.password}" if u.password else "")


@contextlib.contextmanager
def fresh_database(backend: str, prefix: str = "phm_server") -> Iterator[str]:
    """An empty database of its own (a SQLite file, or a database on the PostgreSQL server of
    PHM_TEST_POSTGRES_URL), dropped afterwards; whoever uses it creates the schema."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"{prefix}_") as folder:
            yield f"sqlite+aiosqlite:///{folder}/phm.db"
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = _pg_admin_dsn(PG_URL)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with fresh_database("postgresql", "phm_test") as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "phm.db"
        return f"sqlite+aiosqlite:///{path}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture(scope="session")
async def app(database_url: str) -> AsyncIterator[object]:
    application = create_app(Settings(database_url=database_url, base_url="http://testserver"))
    async with application.router.lifespan_context(application):
        yield application


async def _truncate(application: object) -> None:
    db = application.state.db  # type: ignore[attr-defined]
    async with db.write() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.exec_driver_sql(f"DELETE FROM {table.name}")


@contextlib.asynccontextmanager
async def second_app(database_url: str, **settings: Any) -> AsyncIterator[object]:
    """Another app on the test database (already migrated) with other settings."""
    application = create_app(Settings(database_url=database_url, base_url="http://testserver",
                                      auto_migrate=False, **settings))
    async with application.router.lifespan_context(application):
        yield application


@contextlib.asynccontextmanager
async def client_of(application: object, headers: dict[str, str] | None = None
                    ) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of an app, through ASGI."""
    transport = httpx.ASGITransport(app=application)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver",
                                 headers=FHIR_JSON if headers is None else headers) as c:
        yield c


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on an empty database (tables emptied before each test)."""
    await _truncate(app)
    async with client_of(app) as c:
        yield c


@pytest.fixture(scope="module")
async def lenient_app(database_url: str) -> AsyncIterator[object]:
    async with second_app(database_url, enforce_referential_integrity=False) as application:
        yield application


@pytest.fixture
async def lenient_client(
    lenient_app: object,
    client: httpx.AsyncClient,
) -> AsyncIterator[httpx.AsyncClient]:
    """Like `client` (same emptied database) but references need not resolve."""
    async with client_of(lenient_app) as c:
        yield c


@pytest.fixture(scope="session")
def synthea_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 617 Synthea bundles unpacked into a temporary folder (read from ../shared)."""
    target = tmp_path_factory.mktemp("synthea")
    with tarfile.open(SHARED / "synthea-r4" / "synthea-r4-617.tgz") as tar:
        tar.extractall(target, filter="data")
    return target / "R4"
