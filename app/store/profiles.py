"""Load the conformance resources shipped under `fhir_profiles/` (ValueSets, CodeSystems,
Measures, ...) into the database, so they can be read, searched and used like any other.

Each file is one FHIR resource with a fixed `id`; it is written (as a new version) only when
its content differs from what is stored, so loading at every start-up is cheap and idempotent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from app.fhir.dates import now_us
from app.fhir.definitions import PROFILES
from app.fhir.validation import validate_resource
from app.store import reads
from app.store.db import Database
from app.store.writer import flush, stage

FOLDERS = ("codesystems", "valuesets", "measures", "stratification")


def profile_files(root: Path = PROFILES) -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (root / folder).glob("*.json")
                  if p.is_file())


def _comparable(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k != "meta"}
    meta = {k: v for k, v in (body.get("meta") or {}).items()
            if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    return out


async def load_profiles(db: Database, root: Path = PROFILES) -> int:
    """Write the shipped resources whose content changed; return how many were written."""
    resources = []
    for path in profile_files(root):
        body = orjson.loads(path.read_bytes())
        if not isinstance(body, dict) or "resourceType" not in body or "id" not in body:
            continue  # e.g. a JSON Schema or a map in a format of our own
        validate_resource(body)
        resources.append(body)
    if not resources:
        return 0
    now = now_us()
    staged = []
    async with db.write() as conn:
        if not db.is_sqlite:  # several workers start at once: one loads, the others wait
            await conn.execute(text("SELECT pg_advisory_xact_lock(7146211)"))
        for body in resources:
            rt, rid = body["resourceType"], body["id"]
            found = await reads.read_version(conn, rt, rid)
            if found is not None and found.content is not None and \
                    _comparable(orjson.loads(found.content)) == _comparable(body):
                continue
            cur = await reads.current(conn, rt, rid)
            version = 1 if cur is None else cur.version + 1
            staged.append(stage(rt, rid, body, "PUT", version, now, cur.pk if cur else None))
        await flush(conn, staged)
    return len(staged)
