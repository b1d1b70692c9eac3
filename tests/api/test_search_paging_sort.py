"""Sorting, paging (next/previous links), _total, _summary, _elements, unknown parameters and
POST _search."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import assert_outcome, create, entries, ids, link, patient, search

FAMILIES = ["Aerts", "Bosmans", "Claes", "Dubois", "Engels"]


@pytest.fixture
async def crowd(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """23 patients: 5 families, birth dates spread so (family, -birthdate) is a total order."""
    out = []
    for i in range(23):
        body = patient(
            FAMILIES[i % 5],
            f"G{i:02d}",
            birthDate=f"19{50 + i}-01-0{1 + i % 9}",
            gender="female" if i % 2 else "male",
        )
        out.append(await create(client, body))
    return out


async def _page_through(
    client: httpx.AsyncClient, first: str, params: Any = None, between: Any = None
) -> list[list[str]]:
    pages = []
    bundle = await search(client, first, params)
    while True:
        pages.append([e["resource"]["id"] for e in entries(bundle)])
        nxt = link(bundle, "next")
        if nxt is None:
            return pages
        if between is not None:
            await between(len(pages))
        bundle = await search(client, nxt)
        assert len(pages) < 50, "paging does not end"


async def test_sort_several_keys(client: httpx.AsyncClient, crowd: list[dict[str, Any]]) -> None:
    b = await search(client, "/Patient", {"_sort": "family,-birthdate", "_count": "100"})
    got = [e["resource"] for e in entries(b)]
    want = sorted(crowd, key=lambda p: p["birthDate"], reverse=True)
    want = sorted(want, key=lambda p: p["name"][0]["family"])
    assert [p["id"] for p in got] == [p["id"] for p in want]
    b = await search(client, "/Patient", {"_sort": "-family,birthdate", "_count": "100"})
    got = [e["resource"] for e in entries(b)]
    want = sorted(
        sorted(crowd, key=lambda p: p["birthDate"]),
        key=lambda p: p["name"][0]["family"],
        reverse=True,
    )
    assert [p["id"] for p in got] == [p["id"] for p in want]


async def test_sort_by_last_updated_and_id(
    client: httpx.AsyncClient, crowd: list[dict[str, Any]]
) -> None:
    b = await search(client, "/Patient", {"_sort": "-_lastUpdated,_id", "_count": "100"})
    got = [e["resource"] for e in entries(b)]
    want = sorted(
        sorted(crowd, key=lambda p: p["id"]), key=lambda p: p["meta"]["lastUpdated"], reverse=True
    )
    assert [p["id"] for p in got] == [p["id"] for p in want]
    b = await search(client, "/Patient", {"_sort": "_id", "_count": "100"})
    assert [e["resource"]["id"] for e in entries(b)] == sorted(p["id"] for p in crowd)


async def test_sort_missing_values_last(client: httpx.AsyncClient) -> None:
    a = await create(client, patient("Z", birthDate="1990-01-01"))
    b = await create(client, patient("Y"))
    c = await create(client, patient("X", birthDate="1980-01-01"))
    up = await search(client, "/Patient", {"_sort": "birthdate"})
    assert [e["resource"]["id"] for e in entries(up)] == [c["id"], a["id"], b["id"]]
    down = await search(client, "/Patient", {"_sort": "-birthdate"})
    assert [e["resource"]["id"] for e in entries(down)] == [a["id"], c["id"], b["id"]]


@pytest.mark.parametrize("sort", [None, "family,-birthdate", "-_lastUpdated", "gender,_id"])
async def test_paging_visits_each_match_once(
    client: httpx.AsyncClient, crowd: list[dict[str, Any]], sort: str | None
) -> None:
    params = {"_count": "5"} | ({"_sort": sort} if sort else {})
    first = await search(client, "/Patient", params)
    assert first["total"] == 23
    assert len(entries(first)) == 5
    assert link(first, "previous") is None
    self_link = link(first, "self")
    assert self_link is not None and "_count=5" in self_link
    pages = await _page_through(client, "/Patient", params)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)) == 23
    assert set(flat) == {p["id"] for p in crowd}
    if sort is None:  # without _sort, pages come in a stable order too
        assert flat == [
            e["resource"]["id"]
            for e in entries(await search(client, "/Patient", {"_count": "100"}))
        ]


async def test_previous_links_walk_back(
    client: httpx.AsyncClient, crowd: list[dict[str, Any]]
) -> None:
    params = {"_count": "5", "_sort": "family,-birthdate"}
    forward = await _page_through(client, "/Patient", params)
    bundle = await search(client, "/Patient", params)
    while (nxt := link(bundle, "next")) is not None:
        bundle = await search(client, nxt)
    backward = [[e["resource"]["id"] for e in entries(bundle)]]
    while (prev := link(bundle, "previous")) is not None:
        bundle = await search(client, prev)
        backward.append([e["resource"]["id"] for e in entries(bundle)])
        assert len(backward) < 50
    assert list(reversed(backward)) == forward


@pytest.mark.parametrize("sort", [None, "family", "-_lastUpdated"])
async def test_paging_while_new_matches_arrive(
    client: httpx.AsyncClient, crowd: list[dict[str, Any]], sort: str | None
) -> None:
    added: list[str] = []

    async def add_more(page: int) -> None:
        for j in range(2):
            body = patient(FAMILIES[(page + j) % 5], f"New{page}{j}", birthDate="2000-01-01")
            added.append((await create(client, body))["id"])

    params = {"_count": "4"} | ({"_sort": sort} if sort else {})
    pages = await _page_through(client, "/Patient", params, between=add_more)
    flat = [i for p in pages for i in p]
    assert len(flat) == len(set(flat)), "a resource came twice"
    assert {p["id"] for p in crowd} <= set(flat), "a resource present all along was skipped"
    assert set(flat) <= {p["id"] for p in crowd} | set(added)


async def test_total_modes(client: httpx.AsyncClient, crowd: list[dict[str, Any]]) -> None:
    b = await search(client, "/Patient", {"_count": "5", "_total": "accurate"})
    assert b["total"] == 23
    nxt = link(b, "next")
    assert nxt is not None
    assert (await search(client, nxt))["total"] == 23
    b = await search(client, "/Patient", {"_count": "5", "_total": "none"})
    assert "total" not in b
    assert len(entries(b)) == 5
    b = await search(client, "/Patient", {"gender": "male", "_total": "accurate", "_count": "2"})
    assert b["total"] == 12


async def test_summary_count_and_count_zero(
    client: httpx.AsyncClient, crowd: list[dict[str, Any]]
) -> None:
    b = await search(client, "/Patient", {"_summary": "count"})
    assert b["total"] == 23
    assert "entry" not in b
    b = await search(client, "/Patient", {"_summary": "count", "family": "aerts"})
    assert b["total"] == 5
    b = await search(client, "/Patient", {"_count": "0"})
    assert b["total"] == 23
    assert "entry" not in b


async def test_summary_true_and_elements(client: httpx.AsyncClient) -> None:
    body = patient(
        "Summ",
        gender="male",
        birthDate="1970-01-01",
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Summ</div>'},
        maritalStatus={"text": "married"},
        contact=[{"name": {"family": "Kin"}}],
    )
    created = await create(client, body)
    b = await search(client, "/Patient", {"_summary": "true"})
    res = entries(b)[0]["resource"]
    assert res["id"] == created["id"]
    assert res["name"] == created["name"] and res["gender"] == "male"
    assert "text" not in res and "maritalStatus" not in res and "contact" not in res
    assert any(t["code"] == "SUBSETTED" for t in res["meta"]["tag"])
    b = await search(client, "/Patient", {"_elements": "gender,birthDate"})
    res = entries(b)[0]["resource"]
    assert set(res) == {"resourceType", "id", "meta", "gender", "birthDate"}
    assert any(t["code"] == "SUBSETTED" for t in res["meta"]["tag"])
    # the stored resource is untouched
    assert (await client.get(f"/Patient/{created['id']}")).json() == created
    r = await client.get(f"/Patient/{created['id']}", params={"_elements": "gender"})
    assert set(r.json()) == {"resourceType", "id", "meta", "gender"}


async def test_unknown_parameter_warns_or_fails_strictly(
    client: httpx.AsyncClient, crowd: list[dict[str, Any]]
) -> None:
    b = await search(client, "/Patient", {"family": "aerts", "shoe-size": "42"})
    assert b["total"] == 5
    outcomes = entries(b, "outcome")
    assert len(outcomes) == 1
    oo = outcomes[0]["resource"]
    assert oo["resourceType"] == "OperationOutcome"
    assert oo["issue"][0]["severity"] == "warning"
    assert "shoe-size" in oo["issue"][0]["diagnostics"]
    assert len(entries(b)) == 5
    r = await client.get(
        "/Patient",
        params={"family": "aerts", "shoe-size": "42"},
        headers={"prefer": "handling=strict"},
    )
    oo = assert_outcome(r, 400)
    assert "shoe-size" in oo["issue"][0]["diagnostics"]
    r = await client.get(
        "/Patient", params={"family": "aerts"}, headers={"prefer": "handling=strict"}
    )
    assert r.status_code == 200
    assert entries(r.json(), "outcome") == []


async def test_post_search_with_form_body(
    client: httpx.AsyncClient, crowd: list[dict[str, Any]]
) -> None:
    r = await client.post(
        "/Patient/_search",
        content=b"family=claes&_count=2",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    b = r.json()
    assert b["type"] == "searchset"
    assert b["total"] == 5
    assert len(entries(b)) == 2
    # parameters from the URL and the body combine
    r = await client.post(
        "/Patient/_search?gender=male",
        data={"family": "claes"},
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    got = ids(r.json())
    want = ids(await search(client, "/Patient", {"family": "claes", "gender": "male"}))
    assert got == want and len(got) == 3
    # the next link pages through the rest with GET
    pages = await _page_through(client, link(b, "next") or "")
    assert sum(len(p) for p in pages) == 3
    r = await client.post("/Patient/_search", json={"family": "claes"})
    assert_outcome(r, 415)
