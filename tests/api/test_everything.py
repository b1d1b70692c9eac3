"""Patient/{id}/$everything: the patient, its compartment, and what they reference."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import assert_outcome, create, entries, link, observation, patient, search


def ref(resource: dict[str, Any]) -> dict[str, str]:
    return {"reference": f"{resource['resourceType']}/{resource['id']}"}


def key(r: dict[str, Any]) -> str:
    return f"{r['resourceType']}/{r['id']}"


@pytest.fixture
async def record(client: httpx.AsyncClient) -> dict[str, Any]:
    org = await create(client, {"resourceType": "Organization", "name": "Ziekenhuis"})
    gp = await create(client, {"resourceType": "Practitioner", "name": [{"family": "Gp"}]})
    pat = await create(
        client, patient("Every", managingOrganization=ref(org), generalPractitioner=[ref(gp)])
    )
    other = await create(client, patient("Elsewhere"))
    mine = [
        await create(client, observation(f"Patient/{pat['id']}", performer=[ref(gp)])),
        await create(client, observation(f"Patient/{pat['id']}", "4548-4")),
        await create(
            client,
            {
                "resourceType": "Condition",
                "subject": ref(pat),
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
            },
        ),
        await create(
            client,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": ref(pat),
                "serviceProvider": ref(org),
            },
        ),
    ]
    theirs = await create(client, observation(f"Patient/{other['id']}"))
    return {"org": org, "gp": gp, "pat": pat, "other": other, "mine": mine, "theirs": theirs}


async def _all_pages(
    client: httpx.AsyncClient, path: str, params: Any = None
) -> tuple[list[dict[str, Any]], int]:
    out: list[dict[str, Any]] = []
    b = await search(client, path, params)
    pages = 1
    while True:
        out += b.get("entry", [])
        nxt = link(b, "next")
        if nxt is None:
            return out, pages
        b = await search(client, nxt)
        pages += 1
        assert pages < 50


async def test_everything(client: httpx.AsyncClient, record: dict[str, Any]) -> None:
    rec = record
    b = await search(client, f"/Patient/{rec['pat']['id']}/$everything")
    got = [key(e["resource"]) for e in b["entry"]]
    assert len(got) == len(set(got))
    want = {key(rec["pat"]), key(rec["org"]), key(rec["gp"]), *(key(m) for m in rec["mine"])}
    assert set(got) == want
    assert key(rec["other"]) not in got and key(rec["theirs"]) not in got


async def test_everything_paging(client: httpx.AsyncClient, record: dict[str, Any]) -> None:
    rec = record
    everything, pages = await _all_pages(
        client, f"/Patient/{rec['pat']['id']}/$everything", {"_count": "2"}
    )
    got = [key(e["resource"]) for e in everything]
    want = {key(rec["pat"]), key(rec["org"]), key(rec["gp"]), *(key(m) for m in rec["mine"])}
    assert pages == 3  # 5 compartment resources, 2 a page
    assert set(got) == want
    matches = [key(e["resource"]) for e in everything if e["search"]["mode"] == "match"]
    assert len(matches) == len(set(matches)) == 5


async def test_everything_type_filter(client: httpx.AsyncClient, record: dict[str, Any]) -> None:
    rec = record
    b = await search(client, f"/Patient/{rec['pat']['id']}/$everything", {"_type": "Observation"})
    assert {key(e["resource"]) for e in entries(b)} == {key(m) for m in rec["mine"][:2]}


async def test_everything_unknown_and_deleted(
    client: httpx.AsyncClient, record: dict[str, Any]
) -> None:
    assert_outcome(await client.get("/Patient/nobody/$everything"), 404)
    # the patient is referenced: its observation goes first (referential integrity)
    assert (await client.delete(f"/Observation/{record['theirs']['id']}")).status_code == 204
    assert (await client.delete(f"/Patient/{record['other']['id']}")).status_code == 204
    assert_outcome(await client.get(f"/Patient/{record['other']['id']}/$everything"), 410)
