"""Migrations that fill in derived columns of stored rows must give what the writer gives.

Resources are written at the head revision, the database is taken back to the revision before
a derivation and brought forward again: the migration then fills in the rows the writer had
filled in, and they must be equal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alembic import command
from sqlalchemy import create_engine, text

from app.config import Settings
from app.main import create_app
from app.store.migrate import alembic_config
from tests.api.test_search_carried_status import CLINICAL, SNOMED, VERIFICATION, _concept
from tests.conftest import FHIR_JSON, fresh_database

ROWS = (
    "SELECT res_pk, param, coalesce(system, ''), coalesce(code, ''), status1, status2 "
    "FROM idx_token ORDER BY 1, 2, 3, 4"
)


@pytest.fixture
def fresh_url(backend: str) -> Iterator[str]:
    """A database of its own (this test takes it back and forth through revisions)."""
    with fresh_database(backend, "phm_migrations") as url:
        yield url


def _rows(url: str) -> list[tuple[Any, ...]]:
    sync = url.replace("+aiosqlite", "").replace("+asyncpg", "+psycopg")
    engine = create_engine(sync)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text(ROWS))]
    engine.dispose()
    return rows


def _condition(*clinical: str, verification: tuple[str, ...] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Condition",
        "code": _concept(SNOMED, "44054006"),
        "subject": {"reference": "Patient/m1"},
    }
    if clinical:
        body["clinicalStatus"] = _concept(CLINICAL, *clinical)
    if verification:
        body["verificationStatus"] = _concept(VERIFICATION, *verification)
    return body


async def test_carried_statuses_filled_in_as_the_writer_does(fresh_url: str) -> None:
    app = create_app(
        Settings(database_url=fresh_url, base_url="http://testserver", load_profiles=False)
    )
    entries = [
        {"resourceType": "Patient", "id": "m1", "active": True},
        _condition("active", verification=("confirmed",)),
        _condition("active", "recurrence", verification=("refuted",)),  # several: NULL
        _condition(),  # none: ''
        {
            "resourceType": "Observation",
            "status": "final",
            "code": _concept("http://loinc.org", "4548-4"),
            "subject": {"reference": "Patient/m1"},
        },
        {
            "resourceType": "Group",
            "type": "person",
            "actual": True,
            "code": _concept(SNOMED, "1"),
        },  # a type that carries nothing
    ]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=FHIR_JSON
        ) as client:
            bundle = {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {"resource": r, "request": {"method": "PUT", "url": f"Patient/{r['id']}"}}
                    if r["resourceType"] == "Patient"
                    else {"resource": r, "request": {"method": "POST", "url": r["resourceType"]}}
                    for r in entries
                ],
            }
            r = await client.post("/", json=bundle)
            assert r.status_code == 200, r.text
    written = _rows(fresh_url)
    carried = {(row[1], row[4], row[5]) for row in written if row[1] == "code"}
    assert ("code", "active", "confirmed") in carried
    assert ("code", None, None) in carried  # the Condition with several codings
    assert ("code", "", "") in carried
    assert ("code", "final", None) in carried
    cfg = alembic_config(fresh_url)
    await asyncio.to_thread(command.downgrade, cfg, "0003")
    await asyncio.to_thread(command.upgrade, cfg, "head")
    assert _rows(fresh_url) == written
