"""A real FHIR client library (fhirpy 2.x, `AsyncFHIRClient`) against a running `phm serve`,
used the way an application uses it: save and read resources, page through searches by their
`next` links, send a transaction Bundle, and update conditionally."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, ResourceNotFound

from tests.conftest import fresh_database
from tests.server.conftest import serve

SYSTEM = "https://phm-fhir.be/fhir/NamingSystem/test-patient"
LOINC = "http://loinc.org"


@pytest.fixture(scope="module")
def server_url(backend: str) -> Iterator[str]:
    with fresh_database(backend) as url, serve(url) as server:
        yield server.url


@pytest.fixture
def fhir(server_url: str) -> AsyncFHIRClient:
    return AsyncFHIRClient(server_url)


def _identifier() -> dict[str, str]:
    return {"system": SYSTEM, "value": uuid.uuid4().hex}


async def _patient(fhir: AsyncFHIRClient, family: str) -> Any:
    patient = fhir.resource(
        "Patient",
        identifier=[_identifier()],
        gender="female",
        birthDate="1948-05-17",
        name=[{"family": family, "given": ["An"]}],
    )
    await patient.save()
    return patient


def _glucose(patient_id: str, when: str, value: float) -> dict[str, Any]:
    return {
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2339-0", "display": "Glucose"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectiveDateTime": when,
        "valueQuantity": {
            "value": value,
            "unit": "mg/dL",
            "system": "http://unitsofmeasure.org",
            "code": "mg/dL",
        },
    }


async def test_save_read_update_delete(fhir: AsyncFHIRClient) -> None:
    patient = await _patient(fhir, "Claes")
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    read = await fhir.reference("Patient", patient.id).to_resource()
    assert read.serialize() == patient.serialize()
    assert (await fhir.get("Patient", patient.id))["name"][0]["family"] == "Claes"

    patient["name"][0]["family"] = "Claes-Janssens"
    patient["telecom"] = [{"system": "phone", "value": "+32 16 00 00 00", "use": "home"}]
    await patient.save()
    assert patient["meta"]["versionId"] == "2"
    again = fhir.resource("Patient", id=patient.id, meta={"versionId": "1"})
    await again.refresh()
    assert again["name"][0]["family"] == "Claes-Janssens"
    assert again["telecom"][0]["value"] == "+32 16 00 00 00"
    assert again["meta"]["versionId"] == "2"

    await patient.delete()
    with pytest.raises(ResourceNotFound):
        await fhir.get("Patient", patient.id)


async def test_search_pages_through_next_links(fhir: AsyncFHIRClient) -> None:
    patient = await _patient(fhir, "Peeters")
    # 47 Observations, many sharing a date, so keyset paging must break ties correctly
    dates = [f"2024-0{1 + i % 3}-15T08:00:00+01:00" for i in range(47)]
    observations = [
        fhir.resource("Observation", **_glucose(patient.id, d, 90 + i)) for i, d in enumerate(dates)
    ]
    await asyncio.gather(*(o.save() for o in observations))
    created = {o.id for o in observations}
    assert len(created) == 47

    search = fhir.resources("Observation").search(subject=f"Patient/{patient.id}").limit(10)
    assert await search.count() == 47

    seen = [o.id for o in await search.sort("-date").fetch_all()]
    assert len(seen) == len(set(seen)) == 47
    assert set(seen) == created

    # the same search, page by page as an app would page a list view
    ids: list[str] = []
    dates_seen: list[str] = []
    pages = 0
    bundle = await search.sort("date").fetch_raw()
    while True:
        pages += 1
        assert bundle["type"] == "searchset"
        assert pages > 1 or bundle["total"] == 47
        ids += [e["resource"]["id"] for e in bundle["entry"]]
        dates_seen += [e["resource"]["effectiveDateTime"] for e in bundle["entry"]]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        assert nxt[0].startswith(fhir.url)
        bundle = await fhir.execute(nxt[0], method="get")
    assert pages == 5
    assert len(ids) == len(set(ids)) == 47 and set(ids) == created
    assert dates_seen == sorted(dates_seen)

    by_code = fhir.resources("Observation").search(
        code=f"{LOINC}|2339-0", subject=f"Patient/{patient.id}"
    )
    assert {o.id for o in await by_code.limit(7).fetch_all()} == created
    assert (
        await fhir.resources("Observation")
        .search(subject=f"Patient/{patient.id}", date="ge2024-03-01")
        .count()
        == 15
    )


async def test_transaction_bundle(fhir: AsyncFHIRClient) -> None:
    ident = _identifier()
    patient_url = f"urn:uuid:{uuid.uuid4()}"
    entries: list[dict[str, Any]] = [
        {
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "identifier": [ident],
                "gender": "male",
                "name": [{"family": "Wouters"}],
            },
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
            },
        }
    ]
    for i in range(3):
        obs = {"resourceType": "Observation", **_glucose("x", f"2025-02-0{i + 1}", 101 + i)}
        obs["subject"] = {"reference": patient_url}
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}

    response = await fhir.execute("/", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    statuses = [e["response"]["status"] for e in response["entry"]]
    assert statuses == ["201 Created"] * 4
    refs = [e["response"]["location"].split("/_history")[0] for e in response["entry"]]
    patient_ref = refs[0]
    patient = await fhir.reference(reference=patient_ref).to_resource()
    assert patient["identifier"] == [ident]
    for ref, sent in zip(refs[1:], entries[1:], strict=True):
        obs = await fhir.reference(reference=ref).to_resource()
        assert obs["subject"].reference == patient_ref
        assert obs["valueQuantity"] == sent["resource"]["valueQuantity"]

    # sent again: the Patient entry matches (200), the Observations are new
    again = await fhir.execute("/", method="post", data=bundle)
    assert again["entry"][0]["response"]["status"] == "200 OK"
    assert again["entry"][0]["response"]["location"].startswith(patient_ref + "/")
    listed = await fhir.resources("Observation").search(subject=patient_ref).fetch_all()
    assert len(listed) == 6
    assert (
        len(
            await fhir.resources("Patient")
            .search(identifier=f"{ident['system']}|{ident['value']}")
            .fetch_all()
        )
        == 1
    )


async def test_conditional_update(fhir: AsyncFHIRClient) -> None:
    ident = _identifier()
    by_identifier = fhir.resources("Patient").search(
        identifier=f"{ident['system']}|{ident['value']}"
    )

    first = fhir.resource("Patient", identifier=[ident], name=[{"family": "Maes"}])
    stored, created = await by_identifier.update(first)
    assert created
    assert stored["meta"]["versionId"] == "1"

    second = fhir.resource(
        "Patient", identifier=[ident], name=[{"family": "Maes"}], birthDate="1961-11-30"
    )
    updated, created = await by_identifier.update(second)
    assert not created
    assert updated.id == stored.id
    assert updated["meta"]["versionId"] == "2"

    read = await fhir.get("Patient", stored.id)
    assert read["birthDate"] == "1961-11-30"
    assert [p.id for p in await by_identifier.fetch_all()] == [stored.id]

    # a second resource with the same identifier makes the criteria ambiguous: 412
    await fhir.resource("Patient", identifier=[ident]).save()
    with pytest.raises(MultipleResourcesFound):
        await by_identifier.update(fhir.resource("Patient", identifier=[ident]))
