"""Optimistic locking (If-Match) and conditional create, update and delete (R4 3.1.0.4.2,
3.1.0.5.1, 3.1.0.7.1, 3.1.0.8.1)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.api.fhir import assert_outcome, create, ids, patient, search

NIHDI = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"


def care_plan(subject: str, title: str) -> dict[str, Any]:
    return {
        "resourceType": "CarePlan",
        "status": "active",
        "intent": "plan",
        "title": title,
        "subject": {"reference": subject},
    }


async def test_two_apps_editing_one_care_plan(client: httpx.AsyncClient) -> None:
    pat = await create(client, patient("Smets"))
    plan = await create(client, care_plan(f"Patient/{pat['id']}", "diabetes"))
    pid = plan["id"]
    # both apps read version 1
    app_a = (await client.get(f"/CarePlan/{pid}")).json()
    app_b = (await client.get(f"/CarePlan/{pid}")).json()
    etag = 'W/"1"'
    r = await client.put(
        f"/CarePlan/{pid}", json={**app_a, "title": "diabetes (nurse)"}, headers={"if-match": etag}
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == 'W/"2"'
    r = await client.put(
        f"/CarePlan/{pid}", json={**app_b, "title": "diabetes (GP)"}, headers={"if-match": etag}
    )
    assert_outcome(r, 412)
    current = (await client.get(f"/CarePlan/{pid}")).json()
    assert current["title"] == "diabetes (nurse)"  # no lost update
    assert current["meta"]["versionId"] == "2"
    # the GP re-reads and reapplies
    r = await client.put(
        f"/CarePlan/{pid}",
        json={**current, "title": "diabetes (GP)"},
        headers={"if-match": 'W/"2"'},
    )
    assert r.status_code == 200
    assert r.json()["meta"]["versionId"] == "3"


async def test_concurrent_writes_with_same_etag_one_wins(client: httpx.AsyncClient) -> None:
    pat = await create(client, patient("Jansen"))
    plan = await create(client, care_plan(f"Patient/{pat['id']}", "start"))
    pid = plan["id"]

    async def edit(title: str) -> httpx.Response:
        return await client.put(
            f"/CarePlan/{pid}", json={**plan, "title": title}, headers={"if-match": 'W/"1"'}
        )

    results = await asyncio.gather(*(edit(f"edit {i}") for i in range(4)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200, 412, 412, 412], [r.text for r in results]
    winner = next(r.json() for r in results if r.status_code == 200)
    current = (await client.get(f"/CarePlan/{pid}")).json()
    assert current["title"] == winner["title"]
    history = (await client.get(f"/CarePlan/{pid}/_history")).json()
    assert history["total"] == 2


async def test_if_match_on_delete_and_patch(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Vermeulen"))
    pid = created["id"]
    await client.put(f"/Patient/{pid}", json={**created, "gender": "male"})
    r = await client.delete(f"/Patient/{pid}", headers={"if-match": 'W/"1"'})
    assert_outcome(r, 412)
    r = await client.patch(
        f"/Patient/{pid}",
        headers={"if-match": 'W/"1"', "content-type": "application/json-patch+json"},
        json=[{"op": "replace", "path": "/gender", "value": "female"}],
    )
    assert_outcome(r, 412)
    assert (await client.get(f"/Patient/{pid}")).json()["gender"] == "male"
    r = await client.delete(f"/Patient/{pid}", headers={"if-match": 'W/"2"'})
    assert r.status_code in (200, 204)
    assert (await client.get(f"/Patient/{pid}")).status_code == 410


async def test_if_match_malformed_is_400(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Bosmans"))
    r = await client.put(f"/Patient/{created['id']}", json=created, headers={"if-match": "banana"})
    assert_outcome(r, 400)


async def test_if_none_exist_conditional_create(client: httpx.AsyncClient) -> None:
    ident = [{"system": NIHDI, "value": "85010112345"}]
    first = await create(client, patient("Michiels", identifier=ident))
    cond = {"if-none-exist": f"identifier={NIHDI}|85010112345"}
    r = await client.post(
        "/Patient", json=patient("Michiels", given="Other", identifier=ident), headers=cond
    )
    assert r.status_code == 200, r.text
    assert r.json() == first  # the existing resource, unchanged
    assert r.headers["etag"] == 'W/"1"'
    bundle = await search(client, "/Patient", {"identifier": f"{NIHDI}|85010112345"})
    assert bundle["total"] == 1
    # the criteria may also be written as a relative URL
    r = await client.post(
        "/Patient",
        json=patient("Michiels"),
        headers={"if-none-exist": f"Patient?identifier={NIHDI}|85010112345"},
    )
    assert r.status_code == 200
    assert r.json()["id"] == first["id"]
    # no match: created
    r = await client.post(
        "/Patient", json=patient("Aerts"), headers={"if-none-exist": f"identifier={NIHDI}|99999"}
    )
    assert r.status_code == 201
    # several matches: 412, nothing created
    await create(client, patient("Michiels", given="Twin", identifier=ident))
    r = await client.post(
        "/Patient", json=patient("Michiels", given="Third", identifier=ident), headers=cond
    )
    assert_outcome(r, 412)
    bundle = await search(client, "/Patient", {"family": "Michiels"})
    assert bundle["total"] == 2


async def test_concurrent_conditional_creates_make_one(client: httpx.AsyncClient) -> None:
    ident = [{"system": NIHDI, "value": "70070712345"}]
    cond = {"if-none-exist": f"identifier={NIHDI}|70070712345"}
    results = await asyncio.gather(
        *(
            client.post("/Patient", json=patient("Race", identifier=ident), headers=cond)
            for _ in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 200, 200, 201]
    assert len({r.json()["id"] for r in results}) == 1
    bundle = await search(client, "/Patient", {"identifier": f"{NIHDI}|70070712345"})
    assert bundle["total"] == 1


async def test_conditional_update(client: httpx.AsyncClient) -> None:
    query = f"identifier={NIHDI}|60010154321"
    ident = [{"system": NIHDI, "value": "60010154321"}]
    # no match: created
    r = await client.put(f"/Patient?{query}", json=patient("Leroy", identifier=ident))
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    # one match: updated in place
    r = await client.put(
        f"/Patient?{query}", json=patient("Leroy", identifier=ident, gender="male")
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == pid
    assert r.json()["meta"]["versionId"] == "2"
    assert (await client.get(f"/Patient/{pid}")).json()["gender"] == "male"
    # a body id that is not the match's id is refused
    r = await client.put(f"/Patient?{query}", json=patient("Leroy", id="other", identifier=ident))
    assert_outcome(r, 400)
    # several matches: 412
    await create(client, patient("Leroy", given="Bis", identifier=ident))
    r = await client.put(f"/Patient?{query}", json=patient("Leroy", identifier=ident))
    assert_outcome(r, 412)
    bundle = await search(client, "/Patient", {"identifier": f"{NIHDI}|60010154321"})
    assert bundle["total"] == 2


async def test_conditional_delete(client: httpx.AsyncClient) -> None:
    a = await create(client, patient("Desmet", identifier=[{"system": NIHDI, "value": "1"}]))
    await create(client, patient("Desmet", identifier=[{"system": NIHDI, "value": "2"}]))
    await create(client, patient("Desmet", identifier=[{"system": NIHDI, "value": "2"}]))
    r = await client.delete(f"/Patient?identifier={NIHDI}|1")
    assert r.status_code in (200, 204)
    assert (await client.get(f"/Patient/{a['id']}")).status_code == 410
    r = await client.delete(f"/Patient?identifier={NIHDI}|2")
    assert_outcome(r, 412)
    r = await client.delete(f"/Patient?identifier={NIHDI}|none")
    assert r.status_code in (200, 204)
    bundle = await search(client, "/Patient", {"family": "Desmet"})
    assert bundle["total"] == 2
    assert a["id"] not in ids(bundle)


async def test_concurrent_update_as_create_same_id(client: httpx.AsyncClient) -> None:
    results = await asyncio.gather(
        *(client.put("/Patient/race-1", json=patient(f"Race{i}", id="race-1")) for i in range(4))
    )
    assert sorted(r.status_code for r in results) == [200, 200, 200, 201], [r.text for r in results]
    assert sorted(r.json()["meta"]["versionId"] for r in results) == ["1", "2", "3", "4"]
    history = (await client.get("/Patient/race-1/_history")).json()
    assert history["total"] == 4


async def test_concurrent_conditional_updates_make_one(client: httpx.AsyncClient) -> None:
    ident = [{"system": NIHDI, "value": "50050512345"}]
    results = await asyncio.gather(
        *(
            client.put(
                f"/Patient?identifier={NIHDI}|50050512345", json=patient(f"Cu{i}", identifier=ident)
            )
            for i in range(4)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 200, 200, 201]
    bundle = await search(client, "/Patient", {"identifier": f"{NIHDI}|50050512345"})
    assert bundle["total"] == 1
    assert bundle["entry"][0]["resource"]["meta"]["versionId"] == "4"
