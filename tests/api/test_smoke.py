"""The basic create-read-search loop, on both databases."""

from __future__ import annotations

import httpx


async def test_create_read_search(client: httpx.AsyncClient) -> None:
    r = await client.post("/Patient", json={"resourceType": "Patient", "gender": "female",
                                            "name": [{"family": "Janssens", "given": ["An"]}]})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/Patient/{pid}/_history/1")
    r = await client.get(f"/Patient/{pid}")
    assert r.status_code == 200
    assert r.json()["name"][0]["family"] == "Janssens"
    r = await client.get("/Patient", params={"family": "janss"})
    assert r.json()["total"] == 1
