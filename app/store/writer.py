"""Batched writes: resource rows, versions and search-index rows in a handful of statements.

Writes are never one SQL round trip per index row: a flush allocates primary keys in one
statement, then sends each table's rows as one executemany (SQLite) or one binary COPY
(PostgreSQL), inside the caller's transaction. Resources written before are updated with one
statement, and only the difference between their stored and their new index rows is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.dates import to_instant
from app.store.indexer import IndexRows, compartment_owner, index_resource
from app.store.schema import INDEX_TABLES

_INDEX_COLUMNS: dict[str, list[str]] = {
    kind: [c.name for c in table.columns] for kind, table in INDEX_TABLES.items()
}


@dataclass(slots=True)
class StagedWrite:
    res_type: str
    id: str
    method: str  # POST | PUT | PATCH | DELETE
    version: int
    last_updated: int
    pk: int | None  # None: a new logical resource
    content: bytes | None  # None for DELETE
    patient_id: str | None
    rows: IndexRows | None


def finish_resource(body: dict[str, Any], res_id: str, version: int, last_updated: int) -> bytes:
    """Set id and meta.versionId/lastUpdated (keeping the rest of meta) and serialise."""
    body["id"] = res_id
    meta = body.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta["versionId"] = str(version)
    meta["lastUpdated"] = to_instant(last_updated)
    # keep meta in a conventional position: right after id
    ordered = {"resourceType": body["resourceType"], "id": res_id, "meta": meta}
    for k, v in body.items():
        if k not in ordered:
            ordered[k] = v
    body.clear()
    body.update(ordered)
    return orjson.dumps(body)


def stage(
    res_type: str,
    res_id: str,
    body: dict[str, Any] | None,
    method: str,
    version: int,
    last_updated: int,
    pk: int | None,
) -> StagedWrite:
    if body is None:
        return StagedWrite(res_type, res_id, method, version, last_updated, pk, None, None, None)
    content = finish_resource(body, res_id, version, last_updated)
    rows = index_resource(res_type, body)
    owner = compartment_owner(res_type, res_id, rows)
    return StagedWrite(res_type, res_id, method, version, last_updated, pk, content, owner, rows)


async def allocate_pks(conn: AsyncConnection, n: int) -> list[int]:
    if n == 0:
        return []
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            text("SELECT nextval('resource_pk_seq') FROM generate_series(1, :n)"), {"n": n}
        )
        return [r[0] for r in result]
    # SQLite: the write transaction holds the database lock (BEGIN IMMEDIATE).
    first = (await conn.execute(text("SELECT coalesce(max(pk), 0) + 1 FROM resource"))).scalar()
    return list(range(int(first), int(first) + n))


async def _bulk_insert(conn: AsyncConnection, table: str, columns: list[str],
                       rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    driver = await _driver(conn)
    if conn.dialect.name == "postgresql":
        await driver.copy_records_to_table(table, records=rows, columns=columns)  # type: ignore[union-attr]
    else:
        marks = ",".join("?" * len(columns))
        await driver.executemany(  # type: ignore[union-attr]
            f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", rows
        )


async def _driver(conn: AsyncConnection) -> Any:
    """The DBAPI driver's own connection (asyncpg / aiosqlite), inside the caller's transaction.

    SQLAlchemy's asyncpg adapter opens the transaction lazily, at the first statement it runs
    itself: before that, the driver's statements would each commit on their own (a failed
    flush would leave half its writes). SQLite's BEGIN is issued when the connection begins."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if conn.dialect.name == "postgresql" and not driver.is_in_transaction():
        await conn.execute(text("SELECT 1"))
        assert driver.is_in_transaction()
    return driver


async def _update_resources(conn: AsyncConnection, writes: list[StagedWrite]) -> None:
    """New versions of existing resources: one statement, not one round trip per row.

    PostgreSQL joins the rows to `unnest` of one array per column; SQLite (in process, no
    round trips) runs one prepared UPDATE per row."""
    latest = {w.pk: w for w in writes}  # a resource written twice: the last write wins
    rows = sorted(
        (pk, w.version, w.last_updated, w.content is None, w.patient_id)
        for pk, w in latest.items()
    )
    driver = await _driver(conn)
    if conn.dialect.name == "postgresql":
        pks, versions, updated, deleted, patients = (list(c) for c in zip(*rows, strict=True))
        await driver.execute(
            "UPDATE resource AS r SET version = v.version, last_updated = v.last_updated,"
            " deleted = v.deleted, patient_id = v.patient_id"
            " FROM unnest($1::bigint[], $2::integer[], $3::bigint[], $4::boolean[],"
            " $5::varchar[]) AS v(pk, version, last_updated, deleted, patient_id)"
            " WHERE r.pk = v.pk",
            pks, versions, updated, deleted, patients,
        )
    else:
        await driver.executemany(
            "UPDATE resource SET version = ?, last_updated = ?, deleted = ?, patient_id = ?"
            " WHERE pk = ?",
            [(v, lu, d, p, pk) for pk, v, lu, d, p in rows],
        )


async def _stored_index_rows(
    conn: AsyncConnection, table: str, columns: list[str], pks: list[int]
) -> dict[tuple[Any, ...], list[Any]]:
    """The index rows of these resources in one table: row values -> physical row ids (ctid
    on PostgreSQL, rowid on SQLite; stable here, as the caller holds the resources' rows)."""
    driver = await _driver(conn)
    out: dict[tuple[Any, ...], list[Any]] = {}
    if conn.dialect.name == "postgresql":
        records = await driver.fetch(
            f"SELECT ctid, {','.join(columns)} FROM {table} WHERE res_pk = ANY($1::bigint[])",
            pks,
        )
        for r in records:
            out.setdefault(tuple(r)[1:], []).append(r[0])
        return out
    cursor = await driver.execute(
        f"SELECT rowid, {','.join(columns)} FROM {table}"
        " WHERE res_pk IN (SELECT value FROM json_each(?))",
        (orjson.dumps(pks).decode(),),
    )
    for r in await cursor.fetchall():
        out.setdefault(tuple(r[1:]), []).append(r[0])
    await cursor.close()
    return out


async def _delete_rows(conn: AsyncConnection, table: str, row_ids: list[Any]) -> None:
    if not row_ids:
        return
    driver = await _driver(conn)
    if conn.dialect.name == "postgresql":
        await driver.execute(f"DELETE FROM {table} WHERE ctid = ANY($1::tid[])", row_ids)
    else:
        cursor = await driver.execute(
            f"DELETE FROM {table} WHERE rowid IN (SELECT value FROM json_each(?))",
            (orjson.dumps(row_ids).decode(),),
        )
        await cursor.close()


async def _write_index_rows(
    conn: AsyncConnection, kind: str, rows: list[tuple[Any, ...]], rewritten: list[int]
) -> None:
    """Make the table's rows for these resources exactly `rows`. For the resources written
    before (`rewritten`), only the difference is written: the stored rows that are no longer
    wanted are deleted, the missing ones inserted. A new version usually keeps most of its
    index rows (a RiskAssessment whose rationale changed keeps all of them, a Group gaining
    one member keeps the other members' rows), and deleting and inserting rows costs far
    more than reading them."""
    table, columns = INDEX_TABLES[kind].name, _INDEX_COLUMNS[kind]
    if rewritten:
        stored = await _stored_index_rows(conn, table, columns, rewritten)
        if stored:
            missing = []
            for row in rows:
                have = stored.get(row)
                if have:
                    have.pop()
                else:
                    missing.append(row)
            rows = missing
            await _delete_rows(conn, table, [i for ids in stored.values() for i in ids])
    await _bulk_insert(conn, table, columns, rows)


async def flush(conn: AsyncConnection, writes: list[StagedWrite], mark: bool = True) -> None:
    """Persist staged writes: resource rows, versions, index rows; mark compartments.

    `mark=False` leaves the touched patients unmarked: the stratification engine writes
    RiskAssessments (in the patient compartment) and must not queue its own output."""
    if not writes:
        return
    new = [w for w in writes if w.pk is None]
    existing = [w for w in writes if w.pk is not None]
    for w, pk in zip(new, await allocate_pks(conn, len(new)), strict=True):
        w.pk = pk
    await _bulk_insert(
        conn, "resource",
        ["pk", "res_type", "id", "version", "last_updated", "deleted", "patient_id"],
        [(w.pk, w.res_type, w.id, w.version, w.last_updated, w.content is None, w.patient_id)
         for w in new],
    )
    rewritten = sorted({w.pk for w in existing if w.pk is not None})
    if existing:
        await _update_resources(conn, existing)  # first: it locks the rows on PostgreSQL
    await _bulk_insert(
        conn, "resource_version",
        ["res_pk", "version", "res_type", "id", "last_updated", "method", "content"],
        [(w.pk, w.version, w.res_type, w.id, w.last_updated, w.method, w.content)
         for w in writes],
    )
    per_table: dict[str, list[tuple[Any, ...]]] = {k: [] for k in INDEX_TABLES}
    for w in writes:
        if w.rows is None:
            continue
        head = (w.pk, w.res_type)
        for kind, rows in w.rows.tables():
            if rows:
                bucket = per_table[kind]
                bucket.extend((*head, *r, w.patient_id) for r in rows)
    for kind, rows in per_table.items():
        await _write_index_rows(conn, kind, rows, rewritten)
    if not mark:
        return
    patients = {w.patient_id for w in writes if w.patient_id}
    patients |= {w.id for w in writes if w.res_type == "Patient"}
    if patients:
        await mark_patients(conn, sorted(patients), writes[0].last_updated)


async def mark_patients(conn: AsyncConnection, patient_ids: list[str], at: int) -> None:
    """Queue patients whose compartment changed, for the stratification engine."""
    if conn.dialect.name == "postgresql":
        sql = ("INSERT INTO patient_dirty (patient_id, marked_at) VALUES (:p, :t) "
               "ON CONFLICT (patient_id) DO UPDATE SET marked_at = excluded.marked_at")
    else:
        sql = "INSERT OR REPLACE INTO patient_dirty (patient_id, marked_at) VALUES (:p, :t)"
    await conn.execute(text(sql), [{"p": p, "t": at} for p in patient_ids])
