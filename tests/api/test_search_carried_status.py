"""Token rows carry their resource's status codes (fhir_profiles/search/carried-status.json),
so `code=...&status=...` is answered from the code rows. It must find exactly what the status
index alone finds: for one status, none, several codings (NULL: looked up), `:not`, lists of
codes, and after an update."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import create, ids, search

SNOMED = "http://snomed.info/sct"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
T2D = "44054006"


def _concept(system: str, *codes: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": c} for c in codes]}


def condition(
    clinical: list[str] | None,
    verification: list[str] | None = None,
    code: str = T2D,
    text_only: bool = False,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Condition",
        "code": _concept(SNOMED, code),
        "subject": {"reference": "Patient/carried"},
    }
    if clinical is not None:
        body["clinicalStatus"] = {"text": "active"} if text_only else _concept(CLINICAL, *clinical)
    if verification is not None:
        body["verificationStatus"] = _concept(VERIFICATION, *verification)
    return body


@pytest.fixture
async def conditions(client: httpx.AsyncClient) -> dict[str, str]:
    await client.put("/Patient/carried", json={"resourceType": "Patient", "id": "carried"})
    bodies = {
        "active": condition(["active"], ["confirmed"]),
        "resolved": condition(["resolved"], ["confirmed"]),
        "relapse": condition(["relapse"], ["refuted"]),
        "no-status": condition(None),  # carries ''
        "text-only": condition(["active"], text_only=True),  # a status without a code
        # two codings: the rows carry NULL and the status rows are looked up
        "two-codings": condition(["active", "recurrence"], ["unconfirmed", "provisional"]),
        "other-code": condition(["active"], code="38341003"),
    }
    return {k: (await create(client, b))["id"] for k, b in bodies.items()}


CLAUSES = [
    [("clinical-status", "active")],
    [("clinical-status", "active,relapse")],
    [("clinical-status", "recurrence")],
    [("clinical-status:not", "active")],
    [("clinical-status:not", "resolved,relapse")],
    [("verification-status:not", "refuted,entered-in-error")],
    [("verification-status", "provisional")],
    [("clinical-status", "active"), ("verification-status:not", "refuted")],
    [("clinical-status", "active"), ("clinical-status", "recurrence")],
    [("clinical-status", f"{CLINICAL}|active")],  # with a system: not carried, same answer
    [("clinical-status", "nonsense")],
]


@pytest.mark.parametrize("clauses", CLAUSES, ids=lambda c: "&".join(f"{k}={v}" for k, v in c))
async def test_status_with_a_code_finds_what_the_status_alone_finds(
    client: httpx.AsyncClient, conditions: dict[str, str], clauses: list[tuple[str, str]]
) -> None:
    alone = ids(await search(client, "/Condition", clauses))
    coded = [c for c in conditions.values() if c != conditions["other-code"]]
    expected = alone & set(coded)
    with_code = ids(await search(client, "/Condition", [("code", f"{SNOMED}|{T2D}"), *clauses]))
    assert with_code == expected
    # the status before the code in the query: the code still leads
    reversed_order = ids(await search(client, "/Condition", [*clauses, ("code", T2D)]))
    assert reversed_order == expected


async def test_status_semantics(client: httpx.AsyncClient, conditions: dict[str, str]) -> None:
    def find(*names: str) -> set[str]:
        return {conditions[n] for n in names}

    base = [("code", T2D)]
    assert ids(await search(client, "/Condition", [*base, ("clinical-status", "active")])) == find(
        "active", "two-codings"
    )
    assert ids(
        await search(client, "/Condition", [*base, ("clinical-status:not", "active")])
    ) == find("resolved", "relapse", "no-status", "text-only")
    assert ids(
        await search(
            client,
            "/Condition",
            [
                *base,
                ("clinical-status", "active,recurrence,relapse"),
                ("verification-status:not", "refuted,entered-in-error"),
            ],
        )
    ) == find("active", "two-codings")


async def test_carried_status_follows_an_update(
    client: httpx.AsyncClient, conditions: dict[str, str]
) -> None:
    params = [("code", T2D), ("clinical-status", "active")]
    before = ids(await search(client, "/Condition", params))
    assert conditions["resolved"] not in before
    read = (await client.get(f"/Condition/{conditions['resolved']}")).json()
    read["clinicalStatus"] = _concept(CLINICAL, "active")
    assert (await client.put(f"/Condition/{conditions['resolved']}", json=read)).status_code == 200
    assert ids(await search(client, "/Condition", params)) == before | {conditions["resolved"]}
    read["clinicalStatus"] = _concept(CLINICAL, "active", "relapse")  # now two codings
    await client.put(f"/Condition/{conditions['resolved']}", json=read)
    assert conditions["resolved"] in ids(
        await search(client, "/Condition", [("code", T2D), ("clinical-status", "relapse")])
    )
    del read["clinicalStatus"]
    await client.put(f"/Condition/{conditions['resolved']}", json=read)
    assert conditions["resolved"] in ids(
        await search(client, "/Condition", [("code", T2D), ("clinical-status:not", "active")])
    )


async def test_observation_status(client: httpx.AsyncClient) -> None:
    made = {}
    for status in ("final", "amended", "preliminary", "cancelled"):
        body = {
            "resourceType": "Observation",
            "status": status,
            "code": _concept("http://loinc.org", "4548-4"),
        }
        made[status] = (await create(client, body))["id"]
    got = ids(
        await search(
            client, "/Observation", [("code", "4548-4"), ("status", "final,amended,corrected")]
        )
    )
    assert got == {made["final"], made["amended"]}
