"""Races against a two-worker server: conditional creates (plain and in transaction Bundles)
from many clients at once create one resource, and `If-Match` lets exactly one of the writers
holding the same ETag win, so no update is lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import FHIR_JSON, fresh_database
from tests.server.conftest import serve

SYSTEM = "https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/ssin"
CLIENTS = 6
RACERS = 36


@pytest.fixture(scope="module")
def server_url(backend: str) -> Iterator[str]:
    with fresh_database(backend) as url, serve(url, workers=2) as server:
        yield server.url


def _clients(url: str) -> list[httpx.AsyncClient]:
    return [httpx.AsyncClient(base_url=url, headers=FHIR_JSON, timeout=120) for _ in range(CLIENTS)]


async def _race(url: str, send: Any, n: int = RACERS) -> list[httpx.Response]:
    """`send(client, i)` for i in range(n), spread over several clients, all at once."""
    clients = _clients(url)
    try:
        # open the connections first, so the racers start together
        await asyncio.gather(*(c.get("/metadata") for c in clients))
        return list(await asyncio.gather(*(send(clients[i % CLIENTS], i) for i in range(n))))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


def _assert_outcome(resp: httpx.Response) -> None:
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome", resp.text
    assert all(i["severity"] and i["code"] and i["diagnostics"] for i in body["issue"])


async def _patients(url: str, value: str) -> list[str]:
    async with httpx.AsyncClient(base_url=url, headers=FHIR_JSON) as c:
        r = await c.get("/Patient", params={"identifier": f"{SYSTEM}|{value}"})
        assert r.status_code == 200, r.text
        return [e["resource"]["id"] for e in r.json().get("entry", [])]


async def test_conditional_create_race(server_url: str) -> None:
    for _ in range(3):
        value = str(uuid.uuid4().int)[:11]
        patient = {
            "resourceType": "Patient",
            "identifier": [{"system": SYSTEM, "value": value}],
            "name": [{"family": "Race"}],
        }

        async def send(
            client: httpx.AsyncClient,
            _i: int,
            value: str = value,
            patient: dict[str, Any] = patient,
        ) -> httpx.Response:
            return await client.post(
                "/Patient", json=patient, headers={"If-None-Exist": f"identifier={SYSTEM}|{value}"}
            )

        responses = await _race(server_url, send)
        statuses = sorted(r.status_code for r in responses)
        assert set(statuses) <= {200, 201}, [r.text for r in responses if r.status_code >= 300]
        assert statuses.count(201) == 1
        ids = {r.json()["id"] for r in responses}
        assert len(ids) == 1
        assert await _patients(server_url, value) == list(ids)


async def test_conditional_create_race_in_transactions(server_url: str) -> None:
    value = str(uuid.uuid4().int)[:11]
    criteria = f"identifier={SYSTEM}|{value}"

    async def send(client: httpx.AsyncClient, i: int) -> httpx.Response:
        patient_url = f"urn:uuid:{uuid.uuid4()}"
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": patient_url,
                    "resource": {
                        "resourceType": "Patient",
                        "identifier": [{"system": SYSTEM, "value": value}],
                    },
                    "request": {"method": "POST", "url": "Patient", "ifNoneExist": criteria},
                },
                {
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                        "subject": {"reference": patient_url},
                        "valueQuantity": {"value": 6 + i / 10, "unit": "%"},
                    },
                    "request": {"method": "POST", "url": "Observation"},
                },
            ],
        }
        return await client.post("/", json=bundle)

    responses = await _race(server_url, send, n=32)
    assert [r.status_code for r in responses] == [200] * 32, [
        r.text for r in responses if r.status_code != 200
    ]
    patient_status = sorted(r.json()["entry"][0]["response"]["status"] for r in responses)
    assert patient_status == ["200 OK"] * 31 + ["201 Created"]
    patient_ids = {r.json()["entry"][0]["response"]["location"].split("/")[1] for r in responses}
    assert len(patient_ids) == 1
    assert await _patients(server_url, value) == list(patient_ids)
    async with httpx.AsyncClient(base_url=server_url, headers=FHIR_JSON) as c:
        r = await c.get(
            "/Observation", params={"subject": f"Patient/{patient_ids.pop()}", "_summary": "count"}
        )
        assert r.json()["total"] == 32


async def test_if_match_race(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url, headers=FHIR_JSON) as c:
        r = await c.post("/Patient", json={"resourceType": "Patient", "gender": "other"})
        patient_id = r.json()["id"]
        r = await c.post(
            "/CarePlan",
            json={
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "subject": {"reference": f"Patient/{patient_id}"},
                "title": "Diabetes follow-up",
            },
        )
        assert r.status_code == 201, r.text
        plan = r.json()
    plan_id = plan["id"]

    # round one: everyone holds version 1
    async def overwrite(client: httpx.AsyncClient, i: int) -> httpx.Response:
        body = {**plan, "description": f"written by racer {i}"}
        return await client.put(f"/CarePlan/{plan_id}", json=body, headers={"If-Match": 'W/"1"'})

    responses = await _race(server_url, overwrite)
    statuses = [r.status_code for r in responses]
    assert sorted(statuses) == [200] + [412] * (RACERS - 1), statuses
    for r in responses:
        if r.status_code == 412:
            _assert_outcome(r)
    winner = statuses.index(200)
    async with httpx.AsyncClient(base_url=server_url, headers=FHIR_JSON) as c:
        current = (await c.get(f"/CarePlan/{plan_id}")).json()
    assert current["meta"]["versionId"] == "2"
    assert current["description"] == f"written by racer {winner}"

    # round two: read, modify, write with If-Match, and retry on 412: every note survives
    writers = 12

    async def append_note(client: httpx.AsyncClient, i: int) -> httpx.Response:
        for _ in range(200):
            got = await client.get(f"/CarePlan/{plan_id}")
            body = got.json()
            body["note"] = [*body.get("note", []), {"text": f"note {i}"}]
            put = await client.put(
                f"/CarePlan/{plan_id}", json=body, headers={"If-Match": got.headers["etag"]}
            )
            if put.status_code != 412:
                return put
            _assert_outcome(put)
        raise AssertionError(f"writer {i} never got its update in")

    responses = await _race(server_url, append_note, n=writers)
    assert [r.status_code for r in responses] == [200] * writers
    async with httpx.AsyncClient(base_url=server_url, headers=FHIR_JSON) as c:
        final = (await c.get(f"/CarePlan/{plan_id}")).json()
        history = (await c.get(f"/CarePlan/{plan_id}/_history", params={"_count": 100})).json()
    assert sorted(n["text"] for n in final["note"]) == sorted(f"note {i}" for i in range(writers))
    assert final["meta"]["versionId"] == str(2 + writers)
    assert final["description"] == f"written by racer {winner}"
    assert history["total"] == 2 + writers
