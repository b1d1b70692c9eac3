"""The store's batched flush on both databases: existing resources rewritten in bulk (resource
rows, index rows) inside the caller's transaction, which either writes everything or nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.fhir.dates import now_us
from app.store.schema import INDEX_TABLES, resource
from app.store.writer import flush, stage
from tests.api.fhir import create, ids, observation, patient, put, search


async def _observations(client: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    pat = await create(client, patient("Bulk"))
    return [
        await create(client, observation(f"Patient/{pat['id']}", code=f"c{k}")) for k in range(n)
    ]


async def _observation_pks(app: Any) -> dict[str, int]:
    """id -> pk of the stored Observations."""
    async with app.state.db.read() as conn:
        rows = await conn.execute(
            select(resource.c.id, resource.c.pk).where(resource.c.res_type == "Observation")
        )
        return {rid: pk for rid, pk in rows}


async def _current(app: Any, ids_: list[str]) -> dict[str, tuple[int, int]]:
    """id -> (version, number of index rows)."""
    db = app.state.db
    out = {}
    async with db.read() as conn:
        for rid in ids_:
            pk, version = (
                await conn.execute(
                    select(resource.c.pk, resource.c.version).where(
                        resource.c.res_type == "Observation", resource.c.id == rid
                    )
                )
            ).one()
            rows = 0
            for t in INDEX_TABLES.values():
                q = select(func.count()).select_from(t).where(t.c.res_pk == pk)
                rows += int((await conn.execute(q)).scalar() or 0)
            out[rid] = (version, rows)
    return out


async def test_bulk_rewrite_replaces_versions_and_index_rows(
    client: httpx.AsyncClient, app: Any
) -> None:
    made = await _observations(client, 30)
    before = await _current(app, [o["id"] for o in made])
    cur = {o["id"]: o for o in made}
    pks = await _observation_pks(app)
    now = now_us()
    writes = []
    for k, (rid, body) in enumerate(cur.items()):
        if k % 10 == 9:
            writes.append(stage("Observation", rid, None, "DELETE", 2, now, pks[rid]))
        else:
            new = {**body, "code": {"coding": [{"system": "urn:t", "code": "new"}]}}
            writes.append(stage("Observation", rid, new, "PUT", 2, now, pks[rid]))
    async with app.state.db.write() as conn:
        await flush(conn, writes, mark=False)
    after = await _current(app, list(cur))
    gone = {w.id for w in writes if w.content is None}
    assert {rid for rid, (v, _) in after.items() if v == 2} == set(cur)
    assert all(after[rid][1] == 0 for rid in gone)
    assert all(after[rid][1] == before[rid][1] for rid in set(cur) - gone)
    found = await search(client, "/Observation", {"code": "urn:t|new", "_count": "100"})
    assert ids(found) == set(cur) - gone
    for k in range(30):
        assert (await search(client, "/Observation", {"code": f"c{k}"}))["total"] == 0
    for rid in gone:
        assert (await client.get(f"/Observation/{rid}")).status_code == 410


async def test_a_failed_bulk_rewrite_writes_nothing(client: httpx.AsyncClient, app: Any) -> None:
    """The last write reuses a version that exists: the flush fails on the version key after
    the resource rows were updated and the index rows deleted; the rollback undoes all of it."""
    made = await _observations(client, 12)
    before = await _current(app, [o["id"] for o in made])
    pks = await _observation_pks(app)
    now = now_us()
    writes = [
        stage(
            "Observation",
            o["id"],
            {**o, "code": {"coding": [{"system": "urn:t", "code": "after"}]}},
            "PUT",
            1 if k == len(made) - 1 else 2,
            now,
            pks[o["id"]],
        )
        for k, o in enumerate(made)
    ]
    with pytest.raises(Exception, match="(?i)unique|duplicate"):
        async with app.state.db.write() as conn:
            await flush(conn, writes, mark=False)
    assert await _current(app, [o["id"] for o in made]) == before
    assert (await search(client, "/Observation", {"code": "urn:t|after"}))["total"] == 0
    for k, o in enumerate(made):
        assert ids(await search(client, "/Observation", {"code": f"c{k}"})) == {o["id"]}
        got = (await client.get(f"/Observation/{o['id']}")).json()
        assert got["meta"]["versionId"] == "1"


async def _index_rows(app: Any, res_type: str, rid: str) -> list[tuple[Any, ...]]:
    """Every index row of a resource, without its key, sorted."""
    async with app.state.db.read() as conn:
        pk = (
            await conn.execute(
                select(resource.c.pk).where(resource.c.res_type == res_type, resource.c.id == rid)
            )
        ).scalar_one()
        out = []
        for kind, t in INDEX_TABLES.items():
            cols = [c for c in t.columns if c.name != "res_pk"]
            for row in await conn.execute(select(*cols).where(t.c.res_pk == pk)):
                out.append((kind, *row))
    return sorted(out, key=repr)


async def test_a_rewrite_leaves_the_rows_a_fresh_write_would(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Only the difference between the stored and the new index rows is written: members
    that stay keep their row (once), members that leave lose it, new ones get one; the result
    is row for row what writing the same content afresh gives."""
    people = [await create(client, patient(f"M{k}")) for k in range(6)]

    def group(gid: str, members: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "resourceType": "Group",
            "id": gid,
            "type": "person",
            "actual": True,
            "name": f"{len(members)} members",
        } | (
            {"member": [{"entity": {"reference": f"Patient/{p['id']}"}} for p in members]}
            if members
            else {}
        )

    await put(client, group("g-rewritten", people[:4]))
    await put(client, group("g-rewritten", people[2:6]))  # 0, 1 leave; 4, 5 join
    await put(client, group("g-fresh", people[2:6]))
    rewritten = await _index_rows(app, "Group", "g-rewritten")
    fresh = await _index_rows(app, "Group", "g-fresh")
    assert rewritten == fresh
    assert len(rewritten) == len(set(rewritten))
    for k, p in enumerate(people):
        found = await search(client, "/Group", {"member": f"Patient/{p['id']}"})
        assert ids(found) == ({"g-rewritten", "g-fresh"} if k >= 2 else set()), k
    await put(client, group("g-rewritten", people[2:6]))  # the same content again
    assert await _index_rows(app, "Group", "g-rewritten") == fresh
    await put(client, group("g-rewritten", []))
    assert [r for r in await _index_rows(app, "Group", "g-rewritten") if r[1] == "member"] == []
