"""Transaction and batch Bundles at POST / (R4 3.1.0.11, 2.36.4)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import httpx
import orjson

from tests.api.fhir import assert_outcome, create, ids, observation, patient, search

SSIN = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
NIHDI = "https://www.ehealth.fgov.be/standards/fhir/NamingSystem/nihdi"


def post(resource: dict[str, Any], full_url: str | None = None, **request: str) -> dict[str, Any]:
    e: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"], **request},
    }
    if full_url:
        e["fullUrl"] = full_url
    return e


def bundle(*entries: dict[str, Any], kind: str = "transaction") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


async def transact(client: httpx.AsyncClient, b: dict[str, Any], **headers: str) -> dict[str, Any]:
    r = await client.post("/", json=b, headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    assert out["resourceType"] == "Bundle"
    assert out["type"] == f"{b['type']}-response"
    assert len(out["entry"]) == len(b["entry"])
    return out


def location_id(entry: dict[str, Any]) -> str:
    loc: str = entry["response"]["location"]
    parts = loc.split("/")
    assert parts[-2] == "_history", loc
    return parts[-3]


async def test_urn_uuid_references_resolve_both_ways(client: httpx.AsyncClient) -> None:
    obs = observation(
        "urn:uuid:6a3e0b4c-0000-4000-8000-000000000001",
        performer=[{"reference": "urn:uuid:6a3e0b4c-0000-4000-8000-000000000003"}],
    )
    pat = patient(
        "Urn", generalPractitioner=[{"reference": "urn:uuid:6a3e0b4c-0000-4000-8000-000000000003"}]
    )
    prac = {"resourceType": "Practitioner", "name": [{"family": "Dokter"}]}
    b = bundle(
        post(obs, "urn:uuid:6a3e0b4c-0000-4000-8000-000000000002"),
        post(pat, "urn:uuid:6a3e0b4c-0000-4000-8000-000000000001"),
        post(prac, "urn:uuid:6a3e0b4c-0000-4000-8000-000000000003"),
    )
    out = await transact(client, b)
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses
    assert all(e["response"]["etag"] == 'W/"1"' for e in out["entry"])
    obs_id, pat_id, prac_id = (location_id(e) for e in out["entry"])
    assert out["entry"][0]["response"]["location"].startswith(f"Observation/{obs_id}")
    stored_obs = (await client.get(f"/Observation/{obs_id}")).json()
    assert stored_obs["subject"] == {"reference": f"Patient/{pat_id}"}
    assert stored_obs["performer"] == [{"reference": f"Practitioner/{prac_id}"}]
    stored_pat = (await client.get(f"/Patient/{pat_id}")).json()
    assert stored_pat["generalPractitioner"] == [{"reference": f"Practitioner/{prac_id}"}]
    # the rewritten references are indexed
    found = await search(client, "/Observation", {"subject": f"Patient/{pat_id}"})
    assert ids(found) == {obs_id}


async def test_absolute_full_urls_and_relative_references(client: httpx.AsyncClient) -> None:
    pat = patient("Abs")
    obs = observation("Patient/123")
    b = bundle(
        post(pat, "http://example.org/fhir/Patient/123"),
        post(obs, "http://example.org/fhir/Observation/456"),
    )
    out = await transact(client, b)
    pat_id = location_id(out["entry"][0])
    assert pat_id != "123"
    obs_id = location_id(out["entry"][1])
    stored = (await client.get(f"/Observation/{obs_id}")).json()
    assert stored["subject"]["reference"] == f"Patient/{pat_id}"


async def test_put_with_client_ids_and_representation(client: httpx.AsyncClient) -> None:
    b = bundle(
        {
            "fullUrl": "http://testserver/Patient/p-1",
            "resource": patient("Put", id="p-1"),
            "request": {"method": "PUT", "url": "Patient/p-1"},
        },
        {
            "resource": observation("Patient/p-1", id="o-1"),
            "request": {"method": "PUT", "url": "Observation/o-1"},
        },
    )
    out = await transact(client, b, prefer="return=representation")
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created", "201 Created"]
    assert out["entry"][0]["resource"]["id"] == "p-1"
    assert out["entry"][1]["resource"]["subject"] == {"reference": "Patient/p-1"}
    assert out["entry"][1]["fullUrl"] == "http://testserver/Observation/o-1"
    # again: both are updates now
    out = await transact(client, b)
    assert [e["response"]["status"] for e in out["entry"]] == ["200 OK", "200 OK"]
    assert [e["response"]["etag"] for e in out["entry"]] == ['W/"2"', 'W/"2"']


async def test_conditional_references(client: httpx.AsyncClient) -> None:
    pat = await create(client, patient("Cond", identifier=[{"system": SSIN, "value": "111"}]))
    prac = await create(
        client,
        {
            "resourceType": "Practitioner",
            "identifier": [{"system": NIHDI, "value": "1-23456-78-901"}],
        },
    )
    obs = observation(
        f"Patient?identifier={SSIN}|111",
        performer=[{"reference": f"Practitioner?identifier={NIHDI}|1-23456-78-901"}],
    )
    out = await transact(client, bundle(post(obs, "urn:uuid:0f0f0f0f-1111-4111-8111-000000000001")))
    stored = (await client.get(f"/Observation/{location_id(out['entry'][0])}")).json()
    assert stored["subject"]["reference"] == f"Patient/{pat['id']}"
    assert stored["performer"][0]["reference"] == f"Practitioner/{prac['id']}"
    # no match: 4xx, several matches: 412 -- and nothing written either time
    r = await client.post(
        "/",
        json=bundle(
            post(
                observation(f"Patient?identifier={SSIN}|999"),
                "urn:uuid:0f0f0f0f-1111-4111-8111-000000000009",
            )
        ),
    )
    assert r.status_code in (404, 412, 422)
    oo = assert_outcome(r, r.status_code)
    assert "entry[0]" in str(oo)
    assert "urn:uuid:0f0f0f0f-1111-4111-8111-000000000009" in str(oo)
    await create(client, patient("Cond2", identifier=[{"system": SSIN, "value": "111"}]))
    r = await client.post("/", json=bundle(post(observation(f"Patient?identifier={SSIN}|111"))))
    assert_outcome(r, 412)
    assert (await search(client, "/Observation"))["total"] == 1


async def test_if_none_exist_in_transaction(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient("Ine", identifier=[{"system": SSIN, "value": "5"}]))
    pat_url = "urn:uuid:0f0f0f0f-2222-4222-8222-000000000001"
    b = bundle(
        post(
            patient("Ine", given="New", identifier=[{"system": SSIN, "value": "5"}]),
            pat_url,
            ifNoneExist=f"identifier={SSIN}|5",
        ),
        post(observation(pat_url), "urn:uuid:0f0f0f0f-2222-4222-8222-000000000002"),
    )
    out = await transact(client, b)
    assert out["entry"][0]["response"]["status"].startswith("200")
    assert location_id(out["entry"][0]) == existing["id"]
    obs = (await client.get(f"/Observation/{location_id(out['entry'][1])}")).json()
    assert obs["subject"]["reference"] == f"Patient/{existing['id']}"
    assert (await search(client, "/Patient"))["total"] == 1
    assert (await client.get(f"/Patient/{existing['id']}")).json() == existing
    # no match: created
    b = bundle(post(patient("Ine2"), ifNoneExist=f"identifier={SSIN}|6"))
    out = await transact(client, b)
    assert out["entry"][0]["response"]["status"].startswith("201")


async def test_if_match_in_transaction(client: httpx.AsyncClient) -> None:
    pat = await create(client, patient("Ifm"))
    pid = pat["id"]
    await client.put(f"/Patient/{pid}", json={**pat, "gender": "male"})
    stale = bundle(
        post(patient("Other"), "urn:uuid:0f0f0f0f-3333-4333-8333-000000000001"),
        {
            "fullUrl": f"http://testserver/Patient/{pid}",
            "resource": {**pat, "gender": "female"},
            "request": {"method": "PUT", "url": f"Patient/{pid}", "ifMatch": 'W/"1"'},
        },
    )
    r = await client.post("/", json=stale)
    oo = assert_outcome(r, 412)
    assert "entry[1]" in str(oo)
    assert f"http://testserver/Patient/{pid}" in str(oo)
    assert (await client.get(f"/Patient/{pid}")).json()["gender"] == "male"
    assert (await search(client, "/Patient", {"family": "Other"}))["total"] == 0
    stale["entry"][1]["request"]["ifMatch"] = 'W/"2"'
    out = await transact(client, stale)
    assert out["entry"][1]["response"]["etag"] == 'W/"3"'


async def test_processing_order_delete_post_put_get(client: httpx.AsyncClient) -> None:
    old = await create(client, patient("Order", identifier=[{"system": SSIN, "value": "42"}]))
    b = bundle(
        # listed first, processed last: sees everything else
        {"request": {"method": "GET", "url": "Patient?family=Order"}},
        # POST is processed after the DELETE below, so ifNoneExist finds nothing
        post(
            patient("Order", given="Again", identifier=[{"system": SSIN, "value": "42"}]),
            ifNoneExist=f"identifier={SSIN}|42",
        ),
        {"request": {"method": "DELETE", "url": f"Patient/{old['id']}"}},
    )
    out = await transact(client, b)
    get_entry, post_entry, delete_entry = out["entry"]
    assert post_entry["response"]["status"].startswith("201")
    new_id = location_id(post_entry)
    assert new_id != old["id"]
    assert delete_entry["response"]["status"][:3] in ("200", "204")
    assert get_entry["response"]["status"].startswith("200")
    found = get_entry["resource"]
    assert found["type"] == "searchset"
    assert ids(found) == {new_id}
    assert (await client.get(f"/Patient/{old['id']}")).status_code == 410


async def test_patch_in_transaction(client: httpx.AsyncClient) -> None:
    pat = await create(client, patient("Patchy"))
    ops = [{"op": "add", "path": "/gender", "value": "other"}]
    b = bundle(
        {
            "resource": {
                "resourceType": "Binary",
                "contentType": "application/json-patch+json",
                "data": base64.b64encode(orjson.dumps(ops)).decode(),
            },
            "request": {"method": "PATCH", "url": f"Patient/{pat['id']}"},
        }
    )
    out = await transact(client, b)
    assert out["entry"][0]["response"]["status"].startswith("200")
    assert (await client.get(f"/Patient/{pat['id']}")).json()["gender"] == "other"


async def test_transaction_is_atomic_on_invalid_entry(client: httpx.AsyncClient) -> None:
    bad_url = "urn:uuid:0f0f0f0f-4444-4444-8444-000000000003"
    b = bundle(
        post(patient("Atom"), "urn:uuid:0f0f0f0f-4444-4444-8444-000000000001"),
        post(
            observation("urn:uuid:0f0f0f0f-4444-4444-8444-000000000001"),
            "urn:uuid:0f0f0f0f-4444-4444-8444-000000000002",
        ),
        post(patient("Atom", gender="F"), bad_url),
    )
    r = await client.post("/", json=b)
    oo = assert_outcome(r, 422)
    text = str(oo)
    assert "entry[2]" in text
    assert bad_url in text
    exprs = [x for i in oo["issue"] for x in i.get("expression", [])]
    assert any(x.startswith("Bundle.entry[2]") and "gender" in x for x in exprs), exprs
    assert (await search(client, "/Patient"))["total"] == 0
    assert (await search(client, "/Observation"))["total"] == 0


async def test_transaction_is_atomic_on_missing_reference(client: httpx.AsyncClient) -> None:
    b = bundle(
        post(patient("Ref"), "urn:uuid:0f0f0f0f-5555-4555-8555-000000000001"),
        post(observation("Patient/nobody"), "urn:uuid:0f0f0f0f-5555-4555-8555-000000000002"),
    )
    r = await client.post("/", json=b)
    oo = assert_outcome(r, 422)
    assert "entry[1]" in str(oo)
    assert "Patient/nobody" in str(oo)
    assert (await search(client, "/Patient"))["total"] == 0
    # an urn:uuid that is no entry's fullUrl is a dangling reference as well
    b = bundle(post(observation("urn:uuid:0f0f0f0f-5555-4555-8555-00000000dead")))
    oo = assert_outcome(await client.post("/", json=b), 422)
    assert "entry[0]" in str(oo)
    assert (await search(client, "/Observation"))["total"] == 0


async def test_transaction_bad_request_url_names_entry(client: httpx.AsyncClient) -> None:
    b = bundle(
        post(patient("Ok")),
        {"resource": patient("Bad"), "request": {"method": "POST", "url": "Patient/1/x"}},
    )
    oo = assert_outcome(await client.post("/", json=b), 400)
    assert "entry[1]" in str(oo)
    b = bundle({"resource": patient("Bad"), "request": {"method": "POST", "url": "Observation"}})
    assert_outcome(await client.post("/", json=b), 422, expression="Bundle.entry[0]")
    b = bundle({"resource": patient("Bad")})
    assert_outcome(await client.post("/", json=b), 400, expression="Bundle.entry[0].request")
    assert (await search(client, "/Patient"))["total"] == 0


async def test_same_resource_twice_is_refused(client: httpx.AsyncClient) -> None:
    entry = {
        "resource": patient("Twice", id="tw"),
        "request": {"method": "PUT", "url": "Patient/tw"},
    }
    assert_outcome(await client.post("/", json=bundle(entry, entry)), 400)
    assert_outcome(await client.get("/Patient/tw"), 404)


async def test_root_post_needs_transaction_or_batch(client: httpx.AsyncClient) -> None:
    assert_outcome(
        await client.post("/", json=bundle(post(patient("C")), kind="collection")),
        400,
        expression="Bundle.type",
    )
    assert_outcome(await client.post("/", json=patient("NotABundle")), 400)


async def test_batch_entries_are_independent(client: httpx.AsyncClient) -> None:
    existing = await create(client, patient("Batch"))
    b = bundle(
        post(patient("B1")),
        post(patient("B2", gender="F")),
        post(observation("Patient/missing")),
        {
            "resource": {**existing, "gender": "male"},
            "request": {"method": "PUT", "url": f"Patient/{existing['id']}"},
        },
        {"request": {"method": "GET", "url": f"Patient/{existing['id']}"}},
        {"request": {"method": "GET", "url": "Patient/nope"}},
        kind="batch",
    )
    out = await transact(client, b)
    statuses = [e["response"]["status"][:3] for e in out["entry"]]
    assert statuses == ["201", "422", "422", "200", "200", "404"]
    bad = out["entry"][1]["response"]["outcome"]
    assert bad["resourceType"] == "OperationOutcome"
    assert any("gender" in x for i in bad["issue"] for x in i.get("expression", []))
    assert out["entry"][4]["resource"]["gender"] == "male"
    assert out["entry"][5]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert (await search(client, "/Patient"))["total"] == 2
    assert (await search(client, "/Observation"))["total"] == 0


async def test_referential_integrity_on_plain_writes(client: httpx.AsyncClient) -> None:
    r = await client.post("/Observation", json=observation("Patient/ghost"))
    oo = assert_outcome(r, 422)
    assert "Patient/ghost" in str(oo)
    pat = await create(client, patient("Real"))
    await client.delete(f"/Patient/{pat['id']}")
    r = await client.post("/Observation", json=observation(f"Patient/{pat['id']}"))
    assert_outcome(r, 422)
    # contained and external references need no target here
    r = await client.post(
        "/Observation", json=observation("#p1", contained=[{"resourceType": "Patient", "id": "p1"}])
    )
    assert r.status_code == 201, r.text
    r = await client.post("/Observation", json=observation("http://other.org/fhir/Patient/1"))
    assert r.status_code == 201, r.text


async def test_conditional_put_in_transaction(client: httpx.AsyncClient) -> None:
    ident = [{"system": SSIN, "value": "77"}]
    entry = {
        "resource": patient("CondPut", identifier=ident),
        "request": {"method": "PUT", "url": f"Patient?identifier={SSIN}|77"},
    }
    out = await transact(client, bundle(entry))
    assert out["entry"][0]["response"]["status"].startswith("201")
    pid = location_id(out["entry"][0])
    out = await transact(client, bundle(entry))
    assert out["entry"][0]["response"]["status"].startswith("200")
    assert location_id(out["entry"][0]) == pid
    assert out["entry"][0]["response"]["etag"] == 'W/"2"'


async def test_concurrent_conditional_transactions_make_one(client: httpx.AsyncClient) -> None:
    """Conditional PUTs, ifNoneExist POSTs and If-None-Exist creates on one identifier, all
    at once: one resource comes out."""
    ident = [{"system": SSIN, "value": "88"}]
    put_tx = bundle(
        {
            "resource": patient("Race", identifier=ident),
            "request": {"method": "PUT", "url": f"Patient?identifier={SSIN}|88"},
        }
    )
    post_tx = bundle(post(patient("Race", identifier=ident), ifNoneExist=f"identifier={SSIN}%7C88"))
    calls = [client.post("/", json=put_tx) for _ in range(3)]
    calls += [client.post("/", json=post_tx) for _ in range(3)]
    calls += [
        client.post(
            "/Patient",
            json=patient("Race", identifier=ident),
            headers={"if-none-exist": f"identifier={SSIN}|88"},
        )
        for _ in range(2)
    ]
    results = await asyncio.gather(*calls)
    assert all(r.status_code in (200, 201) for r in results), [r.text for r in results]
    found = await search(client, "/Patient", {"identifier": f"{SSIN}|88"})
    assert found["total"] == 1


async def test_referential_integrity_on_delete(client: httpx.AsyncClient) -> None:
    pat = await create(client, patient("Kept"))
    obs = await create(client, observation(f"Patient/{pat['id']}"))
    r = await client.delete(f"/Patient/{pat['id']}")
    oo = assert_outcome(r, 409, "conflict")
    assert f"Observation/{obs['id']}" in str(oo)
    assert (await client.get(f"/Patient/{pat['id']}")).status_code == 200
    r = await client.delete(f"/Patient?_id={pat['id']}")
    assert_outcome(r, 409)
    # a transaction deleting both is consistent
    b = bundle(
        {"request": {"method": "DELETE", "url": f"Patient/{pat['id']}"}},
        {"request": {"method": "DELETE", "url": f"Observation/{obs['id']}"}},
    )
    out = await transact(client, b)
    assert [e["response"]["status"][:3] for e in out["entry"]] == ["204", "204"]
    assert (await client.get(f"/Patient/{pat['id']}")).status_code == 410
    # a reference removed by an update no longer blocks the delete
    pat = await create(client, patient("Unlinked"))
    obs = await create(client, observation(f"Patient/{pat['id']}"))
    await client.put(f"/Observation/{obs['id']}", json={**obs, "subject": {"display": "n/a"}})
    assert (await client.delete(f"/Patient/{pat['id']}")).status_code == 204


async def test_many_updates_and_deletes_in_one_transaction(client: httpx.AsyncClient) -> None:
    """Existing resources rewritten and deleted together (the store's bulk update of resource
    rows and index rows): every one gets its new version, its new index rows and none of its
    old ones; the resources the Bundle does not touch keep theirs."""
    pat = await create(client, patient("Many"))
    subject = f"Patient/{pat['id']}"
    made = [await create(client, observation(subject, code=f"old-{k}")) for k in range(12)]
    updated, deleted, kept = made[:8], made[8:10], made[10:]
    b = bundle(
        *(
            {
                "resource": {**o, "code": {"coding": [{"system": "urn:t", "code": "new"}]}},
                "request": {"method": "PUT", "url": f"Observation/{o['id']}"},
            }
            for o in updated
        ),
        *({"request": {"method": "DELETE", "url": f"Observation/{o['id']}"}} for o in deleted),
    )
    out = await transact(client, b)
    assert [e["response"]["etag"] for e in out["entry"][:8]] == ['W/"2"'] * 8
    found = await search(client, "/Observation", {"code": "urn:t|new", "_count": "50"})
    assert ids(found) == {o["id"] for o in updated}
    for k, o in enumerate(made):
        old = await search(client, "/Observation", {"code": f"old-{k}"})
        assert ids(old) == ({o["id"]} if o in kept else set()), k
    for o in deleted:
        assert (await client.get(f"/Observation/{o['id']}")).status_code == 410
    everyone = await search(client, "/Observation", {"subject": subject, "_count": "50"})
    assert ids(everyone) == {o["id"] for o in updated + kept}
    history = (await client.get(f"/Observation/{updated[3]['id']}/_history")).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]



async def test_bundle_responses_close_the_connection(client: httpx.AsyncClient) -> None:
    """After a Bundle the server closes the connection, so a client's next Bundle goes to
    whichever worker process accepts it first (app/api/system.py), not always the same one."""
    for kind in ("transaction", "batch"):
        r = await client.post("/", json=bundle(post(patient("Wouters")), kind=kind))
        assert r.status_code == 200, r.text
        assert r.headers["connection"] == "close"
    r = await client.get("/metadata")
    assert "connection" not in r.headers
