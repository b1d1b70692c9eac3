"""Create, read, vread, update, patch and delete (R4 3.1.0.2-3.1.0.7)."""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime

import httpx

from tests.api.fhir import BASE, assert_outcome, create, patient

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


async def test_create_assigns_id_and_version(client: httpx.AsyncClient) -> None:
    body = patient("Peeters", id="client-chosen", gender="male")
    r = await client.post("/Patient", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    pid = created["id"]
    assert pid != "client-chosen"  # POST ignores a client id (R4 3.1.0.6)
    assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", pid)
    assert r.headers["location"] == f"{BASE}/Patient/{pid}/_history/1"
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["content-type"].startswith("application/fhir+json")
    meta = created["meta"]
    assert meta["versionId"] == "1"
    assert INSTANT.match(meta["lastUpdated"]), meta
    modified = parsedate_to_datetime(r.headers["last-modified"])
    assert modified.strftime("%Y-%m-%dT%H:%M:%S") == meta["lastUpdated"][:19]
    assert created["name"] == [{"family": "Peeters", "given": ["An"]}]
    assert created["gender"] == "male"


async def test_create_keeps_meta_and_extensions(client: httpx.AsyncClient) -> None:
    ext = [{"url": "http://example.org/fhir/StructureDefinition/x", "valueString": "kept"}]
    body = patient(
        "Maes",
        extension=ext,
        meta={
            "profile": ["http://example.org/StructureDefinition/p"],
            "versionId": "77",
            "tag": [{"system": "http://s", "code": "t"}],
        },
    )
    created = await create(client, body)
    assert created["extension"] == ext
    assert created["meta"]["versionId"] == "1"  # the server owns versionId
    assert created["meta"]["profile"] == ["http://example.org/StructureDefinition/p"]
    assert created["meta"]["tag"] == [{"system": "http://s", "code": "t"}]


async def test_read_returns_stored_resource(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Claes", birthDate="1950-02-03"))
    r = await client.get(f"/Patient/{created['id']}")
    assert r.status_code == 200
    assert r.json() == created
    assert r.headers["etag"] == 'W/"1"'
    assert "last-modified" in r.headers


async def test_read_unknown_id_is_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/Patient/does-not-exist")
    assert_outcome(r, 404, "not-found")


async def test_update_and_vread(client: httpx.AsyncClient) -> None:
    v1 = await create(client, patient("Wouters"))
    pid = v1["id"]
    changed = {**v1, "gender": "female"}
    r = await client.put(f"/Patient/{pid}", json=changed)
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == 'W/"2"'
    v2 = r.json()
    assert v2["meta"]["versionId"] == "2"
    assert v2["gender"] == "female"
    assert v2["meta"]["lastUpdated"] >= v1["meta"]["lastUpdated"]
    r1 = await client.get(f"/Patient/{pid}/_history/1")
    assert r1.status_code == 200
    assert r1.json() == v1
    assert r1.headers["etag"] == 'W/"1"'
    r2 = await client.get(f"/Patient/{pid}/_history/2")
    assert r2.json() == v2
    assert (await client.get(f"/Patient/{pid}")).json() == v2
    assert_outcome(await client.get(f"/Patient/{pid}/_history/3"), 404)
    assert_outcome(await client.get(f"/Patient/{pid}/_history/x"), 404)


async def test_update_as_create_with_client_id(client: httpx.AsyncClient) -> None:
    r = await client.put("/Patient/pat-0001", json=patient("Jacobs", id="pat-0001"))
    assert r.status_code == 201, r.text
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"] == f"{BASE}/Patient/pat-0001/_history/1"
    assert r.json()["id"] == "pat-0001"
    r = await client.get("/Patient/pat-0001")
    assert r.status_code == 200
    assert r.json()["name"][0]["family"] == "Jacobs"


async def test_update_id_mismatch_and_missing_id(client: httpx.AsyncClient) -> None:
    r = await client.put("/Patient/a1", json=patient("Mertens", id="b2"))
    assert_outcome(r, 400, expression="Patient.id")
    r = await client.put("/Patient/a1", json=patient("Mertens"))
    assert_outcome(r, 400, expression="Patient.id")
    assert_outcome(await client.get("/Patient/a1"), 404)


async def test_json_patch(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Willems", gender="male", active=True))
    pid = created["id"]
    ops = [
        {"op": "replace", "path": "/gender", "value": "female"},
        {"op": "add", "path": "/birthDate", "value": "1961-07-01"},
        {"op": "remove", "path": "/active"},
    ]
    r = await client.patch(
        f"/Patient/{pid}", json=ops, headers={"content-type": "application/json-patch+json"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == 'W/"2"'
    body = r.json()
    assert body["gender"] == "female"
    assert body["birthDate"] == "1961-07-01"
    assert "active" not in body
    assert body["meta"]["versionId"] == "2"
    assert (await client.get(f"/Patient/{pid}")).json() == body


async def test_json_patch_failing_test_op(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Goossens", gender="male"))
    pid = created["id"]
    ops = [
        {"op": "test", "path": "/gender", "value": "female"},
        {"op": "replace", "path": "/gender", "value": "other"},
    ]
    r = await client.patch(
        f"/Patient/{pid}", json=ops, headers={"content-type": "application/json-patch+json"}
    )
    assert r.status_code in (409, 422)
    assert_outcome(r, r.status_code)
    current = (await client.get(f"/Patient/{pid}")).json()
    assert current == created  # nothing applied


async def test_json_patch_errors(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Hermans"))
    pid = created["id"]
    patch_json = {"content-type": "application/json-patch+json"}
    # a patch that makes the resource invalid is rejected like an invalid update
    r = await client.patch(
        f"/Patient/{pid}", headers=patch_json, json=[{"op": "add", "path": "/gender", "value": "F"}]
    )
    assert_outcome(r, 422, expression="Patient.gender")
    # a patch must be a JSON Patch document
    r = await client.patch(
        f"/Patient/{pid}", json=[{"op": "replace", "path": "/gender", "value": "male"}]
    )
    assert_outcome(r, 415)
    r = await client.patch(f"/Patient/{pid}", headers=patch_json, json={"gender": "male"})
    assert_outcome(r, 400)
    r = await client.patch(
        "/Patient/nobody",
        headers=patch_json,
        json=[{"op": "add", "path": "/gender", "value": "male"}],
    )
    assert_outcome(r, 404)
    assert (await client.get(f"/Patient/{pid}")).json() == created


async def test_delete_then_read_is_gone(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Dubois"))
    pid = created["id"]
    r = await client.delete(f"/Patient/{pid}")
    assert r.status_code in (200, 204)
    r = await client.get(f"/Patient/{pid}")
    assert_outcome(r, 410)
    # the deleted resource no longer matches a search
    r = await client.get("/Patient", params={"family": "Dubois"})
    assert r.json()["total"] == 0
    # its history shows the deletion, newest first
    h = (await client.get(f"/Patient/{pid}/_history")).json()
    assert h["type"] == "history"
    assert h["total"] == 2
    first, second = h["entry"]
    assert first["request"] == {"method": "DELETE", "url": f"Patient/{pid}"}
    assert "resource" not in first
    assert first["response"]["etag"] == 'W/"2"'
    assert second["request"]["method"] == "POST"
    assert second["resource"] == created
    # the old version is still readable
    assert (await client.get(f"/Patient/{pid}/_history/1")).json() == created
    assert_outcome(await client.get(f"/Patient/{pid}/_history/2"), 410)
    # deleting again is idempotent
    assert (await client.delete(f"/Patient/{pid}")).status_code in (200, 204)
    # and an update brings it back as a new version
    r = await client.put(f"/Patient/{pid}", json=patient("Dubois", id=pid))
    assert r.status_code == 201, r.text
    assert r.json()["meta"]["versionId"] == "3"


async def test_delete_unknown_is_not_an_error(client: httpx.AsyncClient) -> None:
    r = await client.delete("/Patient/never-existed")
    assert r.status_code in (200, 204)
    assert_outcome(await client.get("/Patient/never-existed"), 404)


async def test_if_none_match_on_read(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Lambert"))
    pid = created["id"]
    r = await client.get(f"/Patient/{pid}", headers={"if-none-match": 'W/"1"'})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == 'W/"1"'
    # weak comparison, lists and `*`
    for inm in ('"1"', 'W/"7", W/"1"', "*"):
        r = await client.get(f"/Patient/{pid}", headers={"if-none-match": inm})
        assert r.status_code == 304, inm
    await client.put(f"/Patient/{pid}", json={**created, "gender": "other"})
    r = await client.get(f"/Patient/{pid}", headers={"if-none-match": 'W/"1"'})
    assert r.status_code == 200
    assert r.json()["gender"] == "other"
    assert r.headers["etag"] == 'W/"2"'


async def test_if_modified_since_on_read(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Modified"))
    pid = created["id"]
    r = await client.get(f"/Patient/{pid}")
    last_modified = r.headers["last-modified"]
    r = await client.get(f"/Patient/{pid}", headers={"if-modified-since": last_modified})
    assert r.status_code == 304
    r = await client.get(
        f"/Patient/{pid}", headers={"if-modified-since": "Sat, 01 Jan 2000 00:00:00 GMT"}
    )
    assert r.status_code == 200
    assert r.json() == created
    r = await client.get(f"/Patient/{pid}", headers={"if-modified-since": "garbage"})
    assert r.status_code == 200


async def test_prefer_return(client: httpx.AsyncClient) -> None:
    r = await client.post("/Patient", json=patient("Dupont"), headers={"prefer": "return=minimal"})
    assert r.status_code == 201
    assert r.content == b""
    assert r.headers["etag"] == 'W/"1"'
    location = r.headers["location"]
    pid = location.split("/")[-3]
    r = await client.put(
        f"/Patient/{pid}",
        json=patient("Dupont", id=pid, gender="male"),
        headers={"prefer": "return=OperationOutcome"},
    )
    assert r.status_code == 200
    oo = r.json()
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["severity"] == "information"
    r = await client.put(
        f"/Patient/{pid}",
        json=patient("Dupont", id=pid, gender="female"),
        headers={"prefer": "return=representation"},
    )
    assert r.status_code == 200
    assert r.json()["gender"] == "female"
    assert r.json()["meta"]["versionId"] == "3"
