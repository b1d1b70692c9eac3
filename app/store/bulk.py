"""The bulk path: resources with literal ids and references written through the same staging,
indexing and batched flush as the API, many per database transaction.

Used by `phm seed` and the benchmarks. It trusts its input's references (the generator's tests
prove them) and validates a sample (`validate_every`): every Nth resource goes through the full
validator, and a failure stops the load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from sqlalchemy import text

from app.fhir.dates import now_us
from app.fhir.validation import validate_resource
from app.store.db import Database
from app.store.writer import StagedWrite, flush, stage


def stage_batch(batch: list[dict[str, Any]], validate_every: int = 0,
                offset: int = 0) -> list[StagedWrite]:
    """Validate a sample of a batch and stage it (indexing and serialising every resource).
    Pure and picklable, so it can run in a worker process."""
    now = now_us()
    staged = []
    for i, res in enumerate(batch, start=offset + 1):
        if validate_every and i % validate_every == 0:
            validate_resource(res)
        staged.append(stage(res["resourceType"], res["id"], res, "POST", 1, now, None))
    return staged


async def write_staged(db: Database, staged: list[StagedWrite]) -> int:
    """One batch in one transaction."""
    async with db.write() as conn:
        await flush(conn, staged)
    return len(staged)


async def load(db: Database, batches: Iterable[list[dict[str, Any]]],
               validate_every: int = 0) -> int:
    """Write every batch in its own transaction; return the number of resources written.

    Each batch is staged in a worker thread while the previous one is being written."""
    it = iter(batches)
    seen = [0]

    def produce() -> list[StagedWrite] | None:
        batch = next(it, None)
        if batch is None:
            return None
        out = stage_batch(batch, validate_every, seen[0])
        seen[0] += len(batch)
        return out

    written = 0
    upcoming = asyncio.create_task(asyncio.to_thread(produce))
    while (staged := await upcoming) is not None:
        upcoming = asyncio.create_task(asyncio.to_thread(produce))
        try:
            written += await write_staged(db, staged)
        except BaseException:
            upcoming.cancel()
            raise
    await finish(db)
    return written


async def finish(db: Database) -> None:
    """After a bulk load: planner statistics (and a WAL checkpoint on SQLite)."""
    if db.is_sqlite:
        async with db.engine.connect() as conn:
            # statistics, so the planner knows a (res_type, param) range is not selective
            await conn.execute(text("PRAGMA analysis_limit=2000"))
            await conn.execute(text("ANALYZE"))
            await conn.commit()
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    else:
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()


async def is_empty(db: Database) -> bool:
    async with db.read() as conn:
        row = (await conn.execute(text("SELECT pk FROM resource LIMIT 1"))).first()
    return row is None
