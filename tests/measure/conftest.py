"""Fixtures for the measure tests: a client whose database holds the shipped ValueSets,
CodeSystems and Measures (the per-test emptying deletes what the app loaded at start-up)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from sqlalchemy import text

from app.store.profiles import load_profiles
from tests.conftest import client_of, second_app


@pytest.fixture
async def measure_client(
    app: object, client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """`client` on an emptied database with `fhir_profiles/` reloaded."""
    await load_profiles(app.state.db)  # type: ignore[attr-defined]
    yield client


@pytest.fixture
def analyze(app: object) -> Callable[[], Awaitable[None]]:
    """Refresh the planner statistics after a large load, as autovacuum would a minute later
    (`phm seed` does it too): with the statistics of the emptied tables, PostgreSQL plans the
    retrieves as nested loops and a 50-bundle evaluation takes minutes."""

    async def run() -> None:
        db = app.state.db  # type: ignore[attr-defined]
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()

    return run


@pytest.fixture(scope="module")
async def structural_app(database_url: str) -> AsyncIterator[object]:
    """A second app on the same database that validates structure only (no fhir.resources
    models): loading external bundles is several times faster, and they are valid R4."""
    async with second_app(
        database_url, validation="structural", load_profiles=False
    ) as application:
        yield application


@pytest.fixture
async def loader(
    structural_app: object, measure_client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of `structural_app` on the database of `measure_client`."""
    async with client_of(structural_app) as c:
        yield c
