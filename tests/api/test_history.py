"""History at instance, type and system level, with _since, _at and _count paging."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.api.fhir import assert_outcome, create, link, observation, patient


async def history(client: httpx.AsyncClient, path: str, params: Any = None) -> dict[str, Any]:
    r = await client.get(path, params=params)
    assert r.status_code == 200, r.text
    b: dict[str, Any] = r.json()
    assert b["resourceType"] == "Bundle"
    assert b["type"] == "history"
    return b


def versions(b: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, resource url, versionId) for each history entry."""
    out = []
    for e in b.get("entry", []):
        vid = e["response"]["etag"][3:-1]
        out.append((e["request"]["method"], e["fullUrl"].split("testserver/")[1], vid))
    return out


async def test_instance_history(client: httpx.AsyncClient) -> None:
    v1 = await create(client, patient("Hist"))
    pid = v1["id"]
    await asyncio.sleep(0.002)
    v2 = (await client.put(f"/Patient/{pid}", json={**v1, "gender": "male"})).json()
    await asyncio.sleep(0.002)
    await client.patch(
        f"/Patient/{pid}",
        json=[{"op": "add", "path": "/active", "value": True}],
        headers={"content-type": "application/json-patch+json"},
    )
    await asyncio.sleep(0.002)
    await client.delete(f"/Patient/{pid}")
    b = await history(client, f"/Patient/{pid}/_history")
    assert b["total"] == 4
    url = f"Patient/{pid}"
    assert versions(b) == [
        ("DELETE", url, "4"),
        ("PUT", url, "3"),
        ("PUT", url, "2"),
        ("POST", url, "1"),
    ]
    by_version = {e["response"]["etag"]: e for e in b["entry"]}
    assert by_version['W/"1"']["resource"] == v1
    assert by_version['W/"2"']["resource"] == v2
    assert by_version['W/"3"']["resource"]["active"] is True
    assert by_version['W/"1"']["response"]["status"].startswith("201")
    assert by_version['W/"4"']["response"]["status"].startswith("204")
    assert by_version['W/"1"']["request"]["url"] == "Patient"
    assert by_version['W/"2"']["request"]["url"] == url
    for e in b["entry"]:
        assert e["response"]["lastModified"].endswith("Z")
    assert_outcome(await client.get("/Patient/unknown/_history"), 404)


async def test_type_and_system_history(client: httpx.AsyncClient) -> None:
    p = await create(client, patient("Sys"))
    await asyncio.sleep(0.002)  # distinct lastUpdated instants (millisecond precision)
    o = await create(client, observation(f"Patient/{p['id']}"))
    await asyncio.sleep(0.002)
    await client.put(f"/Patient/{p['id']}", json={**p, "gender": "female"})
    b = await history(client, "/Patient/_history")
    assert b["total"] == 2
    assert versions(b) == [("PUT", f"Patient/{p['id']}", "2"), ("POST", f"Patient/{p['id']}", "1")]
    b = await history(client, "/Observation/_history")
    assert versions(b) == [("POST", f"Observation/{o['id']}", "1")]
    b = await history(client, "/_history")
    assert b["total"] == 3
    assert [v[1] for v in versions(b)] == [
        f"Patient/{p['id']}",
        f"Observation/{o['id']}",
        f"Patient/{p['id']}",
    ]
    assert_outcome(await client.get("/Nope/_history"), 404)


async def test_since_and_at(client: httpx.AsyncClient) -> None:
    v1 = await create(client, patient("Since"))
    pid = v1["id"]
    await asyncio.sleep(0.02)
    v2 = (await client.put(f"/Patient/{pid}", json={**v1, "gender": "male"})).json()
    await asyncio.sleep(0.02)
    other = await create(client, patient("Later"))
    t2 = v2["meta"]["lastUpdated"]
    b = await history(client, "/Patient/_history", {"_since": t2})
    assert versions(b) == [("POST", f"Patient/{other['id']}", "1"), ("PUT", f"Patient/{pid}", "2")]
    b = await history(client, f"/Patient/{pid}/_history", {"_since": t2})
    assert versions(b) == [("PUT", f"Patient/{pid}", "2")]
    future = "2999-01-01T00:00:00Z"
    b = await history(client, "/_history", {"_since": future})
    assert b.get("entry", []) == []
    # _at: the version current at that instant
    b = await history(client, f"/Patient/{pid}/_history", {"_at": v1["meta"]["lastUpdated"]})
    assert versions(b) == [("POST", f"Patient/{pid}", "1")]
    b = await history(client, "/Patient/_history", {"_at": t2})
    assert versions(b) == [("PUT", f"Patient/{pid}", "2")]
    b = await history(client, "/Patient/_history", {"_at": "2000"})
    assert b.get("entry", []) == []


async def test_history_paging(client: httpx.AsyncClient) -> None:
    p = await create(client, patient("Pages"))
    for i in range(6):
        await client.put(f"/Patient/{p['id']}", json={**p, "birthDate": f"200{i}"})
    for _ in range(4):
        await create(client, patient("Others"))
    b = await history(client, "/Patient/_history", {"_count": "3"})
    assert b["total"] == 11
    seen = []
    while True:
        seen += versions(b)
        assert len(b.get("entry", [])) <= 3
        nxt = link(b, "next")
        if nxt is None:
            break
        b = await history(client, nxt)
        # a write between pages does not disturb the pages already cut
        if len(seen) == 3:
            await create(client, patient("Intruder"))
    assert len(seen) == 11 == len(set(seen))
    mine = [v for v in seen if v[1] == f"Patient/{p['id']}"]
    assert [v[2] for v in mine] == ["7", "6", "5", "4", "3", "2", "1"]
    b = await history(client, f"/Patient/{p['id']}/_history", {"_count": "2"})
    pages = 1
    while (nxt := link(b, "next")) is not None:
        b = await history(client, nxt)
        pages += 1
    assert pages == 4
