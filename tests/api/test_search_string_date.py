"""String search (prefix, case and accent folding, :exact, :contains) and date search (every
prefix, partial dates, periods, time zones, _lastUpdated)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.fhir import create, ids, patient, search

HBA1C = "4548-4"


async def _ids(client: httpx.AsyncClient, path: str, params: Any) -> set[str]:
    return ids(await search(client, path, params))


@pytest.fixture
async def people(client: httpx.AsyncClient) -> dict[str, str]:
    bodies = {
        "muller": patient("Müller", "Jürgen", address=[{"city": "Leuven", "line": ["Straße 1"]}]),
        "mullerx": patient("Mullerson", "Ann", address=[{"city": "Heverlee"}]),
        "dubois": {
            "resourceType": "Patient",
            "name": [
                {"text": "Élodie Dubois-Ménard", "family": "Dubois-Ménard", "given": ["Élodie"]}
            ],
        },
        "ollers": patient("Öllers", "Kees"),
    }
    return {k: (await create(client, b))["id"] for k, b in bodies.items()}


async def test_string_prefix_case_and_accents(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    p = people
    assert await _ids(client, "/Patient", {"family": "muller"}) == {p["muller"], p["mullerx"]}
    assert await _ids(client, "/Patient", {"family": "MÜLLER"}) == {p["muller"], p["mullerx"]}
    assert await _ids(client, "/Patient", {"family": "Müll"}) == {p["muller"], p["mullerx"]}
    assert await _ids(client, "/Patient", {"family": "mullers"}) == {p["mullerx"]}
    assert await _ids(client, "/Patient", {"family": "ller"}) == set()  # prefix, not infix
    assert await _ids(client, "/Patient", {"family": "dubois-menard"}) == {p["dubois"]}
    assert await _ids(client, "/Patient", {"given": "elodie"}) == {p["dubois"]}
    assert await _ids(client, "/Patient", {"given": "jurgen"}) == {p["muller"]}
    # name covers family, given and text
    assert await _ids(client, "/Patient", {"name": "kees"}) == {p["ollers"]}
    assert await _ids(client, "/Patient", {"name": "ollers"}) == {p["ollers"]}
    assert await _ids(client, "/Patient", {"name": "élodie dub"}) == {p["dubois"]}
    assert await _ids(client, "/Patient", {"family": "dubois,ollers"}) == {p["dubois"], p["ollers"]}
    assert await _ids(client, "/Patient", {"address-city": "LEUV"}) == {p["muller"]}
    assert await _ids(client, "/Patient", {"address": "strasse"}) == {p["muller"]}


async def test_string_exact(client: httpx.AsyncClient, people: dict[str, str]) -> None:
    p = people
    assert await _ids(client, "/Patient", {"family:exact": "Müller"}) == {p["muller"]}
    assert await _ids(client, "/Patient", {"family:exact": "muller"}) == set()
    assert await _ids(client, "/Patient", {"family:exact": "Müll"}) == set()
    assert await _ids(client, "/Patient", {"family:exact": "Mullerson,Öllers"}) == {
        p["mullerx"],
        p["ollers"],
    }


async def test_string_contains(client: httpx.AsyncClient, people: dict[str, str]) -> None:
    p = people
    assert await _ids(client, "/Patient", {"family:contains": "ULLE"}) == {
        p["muller"],
        p["mullerx"],
    }
    assert await _ids(client, "/Patient", {"family:contains": "lers"}) == {
        p["mullerx"],
        p["ollers"],
    }
    assert await _ids(client, "/Patient", {"family:contains": "menard"}) == {p["dubois"]}
    assert await _ids(client, "/Patient", {"family:contains": "100%"}) == set()
    assert await _ids(client, "/Patient", {"family:contains": "_"}) == set()


@pytest.fixture
async def dated(client: httpx.AsyncClient) -> dict[str, str]:
    subject = (await create(client, patient("Dates")))["id"]
    effective: dict[str, dict[str, Any]] = {
        "a": {"effectiveDateTime": "2024-03-15T10:00:00Z"},
        "b": {"effectiveDateTime": "2024-03-01"},
        "c": {"effectiveDateTime": "2023-12-31T23:30:00+01:00"},
        "d": {"effectivePeriod": {"start": "2024-02-20", "end": "2024-03-05"}},
        "e": {"effectiveDateTime": "2024-04-01T00:00:00Z"},
        "f": {"effectiveDateTime": "2024"},
        "g": {},  # no date: no date search finds it
    }
    out = {}
    for key, eff in effective.items():
        body = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": HBA1C}], "text": key},
            "subject": {"reference": f"Patient/{subject}"},
            **eff,
        }
        out[key] = (await create(client, body))["id"]
    return out


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-03", "ab"),
        ("eq2024-03", "ab"),
        ("ne2024-03", "cdef"),
        ("2024", "abdef"),
        ("gt2024-03", "ef"),
        ("lt2024-03", "cdf"),
        ("ge2024-03", "abdef"),
        ("le2024-03", "abcdf"),
        ("sa2024-03", "e"),
        ("eb2024-03", "c"),
        ("2024-03-01", "b"),
        ("2023-12-31", "c"),  # 23:30+01:00 is 22:30Z
        ("gt2024-03-15T10:00:00Z", "ef"),
        ("ge2024-03-15T10:00:00Z", "aef"),
        ("2024-03-15T11:00:00+01:00", "a"),
        ("lt2024-03-15T10:00:00Z", "bcdf"),
        ("2025", ""),
        ("9999-12-31T23:59:59Z", ""),
        ("lt9999-12-31", "abcdef"),
        ("eb2000", ""),
        ("2024-03,2023", "abc"),
    ],
)
async def test_date_prefixes(
    client: httpx.AsyncClient, dated: dict[str, str], value: str, expected: str
) -> None:
    got = await _ids(client, "/Observation", {"date": value})
    want = {dated[k] for k in expected}
    names = {v: k for k, v in dated.items()}
    assert got == want, sorted(names[i] for i in got)


@pytest.mark.parametrize("value", [
    "ge2024-03", "gt2024-03", "le2024-03", "lt2024-03", "2024-03", "sa2024-03", "eb2024-03",
    "ge2024-03-15T10:00:00Z", "gt2024-03-15T10:00:00Z", "lt2024-03-15T10:00:00Z", "le2024",
    "ge2025", "2024-03,2023",
])
async def test_date_with_a_code_finds_what_the_date_alone_finds(
    client: httpx.AsyncClient, dated: dict[str, str], value: str
) -> None:
    """Token rows carry the Observation's date (fhir_profiles/search/clinical-date.json), so
    `code=...&date=ge...` is answered from the code rows: it must find exactly what the date
    index finds."""
    alone = await _ids(client, "/Observation", {"date": value})
    with_code = await _ids(client, "/Observation", {"code": f"http://loinc.org|{HBA1C}",
                                                     "date": value})
    assert with_code == alone
    # codes of two systems: one range of the code index, the systems checked on its rows
    url = "http://example.org/fhir/ValueSet/hba1c"
    await create(client, {"resourceType": "ValueSet", "status": "active", "url": url,
                          "compose": {"include": [
                              {"system": "http://loinc.org", "concept": [{"code": HBA1C}]},
                              {"system": "http://snomed.info/sct",
                               "concept": [{"code": "43396009"}]}]}})
    in_valueset = await _ids(client, "/Observation", [("code:in", url), ("date", value)])
    assert in_valueset == alone


async def test_carried_date_follows_an_update(
    client: httpx.AsyncClient, dated: dict[str, str]
) -> None:
    params = [("code", f"http://loinc.org|{HBA1C}"), ("date", "ge2024-03-10"),
              ("date", "lt2024-04-01")]
    # f ("2024") is a range that overlaps
    assert await _ids(client, "/Observation", params) == {dated["a"], dated["f"]}
    read = (await client.get(f"/Observation/{dated['c']}")).json()
    read["effectiveDateTime"] = "2024-03-20"
    r = await client.put(f"/Observation/{dated['c']}", json=read)
    assert r.status_code == 200, r.text
    assert await _ids(client, "/Observation", params) == {dated["a"], dated["c"], dated["f"]}


async def test_date_range_with_two_clauses(
    client: httpx.AsyncClient, dated: dict[str, str]
) -> None:
    got = await _ids(client, "/Observation", [("date", "ge2024-03-01"), ("date", "lt2024-04-01")])
    assert got == {dated[k] for k in "abdf"}


async def test_birthdate_partial(client: httpx.AsyncClient) -> None:
    a = await create(client, patient("Bd", birthDate="1950-02-03"))
    b = await create(client, patient("Bd", birthDate="1950"))
    c = await create(client, patient("Bd", birthDate="1951-01-01"))
    assert await _ids(client, "/Patient", {"birthdate": "1950"}) == {a["id"], b["id"]}
    assert await _ids(client, "/Patient", {"birthdate": "1950-02"}) == {a["id"]}
    assert await _ids(client, "/Patient", {"birthdate": "lt1951"}) == {a["id"], b["id"]}
    assert await _ids(client, "/Patient", {"birthdate": "ge1950-06"}) == {b["id"], c["id"]}


async def test_last_updated(client: httpx.AsyncClient) -> None:
    first = await create(client, patient("Lu1"))
    await asyncio.sleep(0.02)
    second = await create(client, patient("Lu2"))
    t1 = first["meta"]["lastUpdated"]
    assert second["meta"]["lastUpdated"] > t1
    assert await _ids(client, "/Patient", {"_lastUpdated": f"gt{t1}"}) == {second["id"]}
    assert await _ids(client, "/Patient", {"_lastUpdated": f"le{t1}"}) == {first["id"]}
    assert await _ids(client, "/Patient", {"_lastUpdated": t1}) == {first["id"]}
    year = t1[:4]
    assert await _ids(client, "/Patient", {"_lastUpdated": year}) == {first["id"], second["id"]}
    assert await _ids(client, "/Patient", {"_lastUpdated": f"lt{year}"}) == set()


async def test_escaped_separators(client: httpx.AsyncClient) -> None:
    a = await create(client, patient("Smith,Jones", identifier=[{"system": "s", "value": "a|b"}]))
    b = await create(client, patient("Smith"))
    assert await _ids(client, "/Patient", {"family": "Smith\\,Jones"}) == {a["id"]}
    assert await _ids(client, "/Patient", {"family:exact": "Smith\\,Jones"}) == {a["id"]}
    assert await _ids(client, "/Patient", {"family": "Smith,Jones"}) == {a["id"], b["id"]}
    assert await _ids(client, "/Patient", {"identifier": "s|a\\|b"}) == {a["id"]}
    assert await _ids(client, "/Patient", {"identifier": "a\\|b"}) == {a["id"]}
