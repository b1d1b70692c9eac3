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


async def load(db: Database, batches: Iterable[list[dict[str, Any]]],
               validate_every: int = 0) -> int:
    """Write every batch in its own transaction; return the number of resources written.

    Batches are generated, validated and indexed in a worker thread while the previous batch is
    being written, so Python work overlaps the database's."""
    it = iter(batches)
    seen = [0]

    def produce() -> list[StagedWrite] | None:
        batch = next(it, None)
        if batch is None:
            return None
        now = now_us()
        staged = []
        for res in batch:
            seen[0] += 1
            if validate_every and seen[0] % validate_every == 0:
                validate_resource(res)
            staged.append(stage(res["resourceType"], res["id"], res, "POST", 1, now, None))
        return staged

    written = 0
    upcoming = asyncio.create_task(asyncio.to_thread(produce))
    while (staged := await upcoming) is not None:
        upcoming = asyncio.create_task(asyncio.to_thread(produce))
        try:
            async with db.write() as conn:
                await flush(conn, staged)
        except BaseException:
            upcoming.cancel()
            raise
        written += len(staged)
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
    return written


async def is_empty(db: Database) -> bool:
    async with db.read() as conn:
        row = (await conn.execute(text("SELECT pk FROM resource LIMIT 1"))).first()
    return row is None
