"""The bulk path: resources with literal ids and references written through the same staging,
indexing and batched flush as the API, many per database transaction.

Used by `phm seed` and the benchmarks. It trusts its input's references (the generator's tests
prove them) and validates a sample (`validate_every`): every Nth resource goes through the full
validator, and a failure stops the load.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text

from app.fhir.dates import now_us
from app.fhir.errors import FhirError
from app.fhir.validation import validate_resource
from app.store.db import Database
from app.store.writer import flush, stage


async def load(db: Database, batches: Iterable[list[dict[str, Any]]],
               validate_every: int = 0, on_batch: Any = None) -> int:
    """Write every batch in its own transaction; return the number of resources written."""
    written = 0
    seen = 0
    for batch in batches:
        now = now_us()
        staged = []
        for res in batch:
            seen += 1
            if validate_every and seen % validate_every == 0:
                try:
                    validate_resource(res)
                except FhirError as exc:
                    raise FhirError(exc.status, [*exc.issues]) from None
            staged.append(stage(res["resourceType"], res["id"], res, "POST", 1, now, None))
        async with db.write() as conn:
            await flush(conn, staged)
        written += len(staged)
        if on_batch is not None:
            on_batch(len(batch))
    if db.is_sqlite:
        async with db.engine.connect() as conn:
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
