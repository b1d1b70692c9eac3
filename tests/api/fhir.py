"""Small helpers shared by the HTTP tests: create resources, run searches, read Bundles and
OperationOutcomes. Plain functions, so every test still reads as a sequence of HTTP calls."""

from __future__ import annotations

from typing import Any

import httpx

BASE = "http://testserver"


async def create(
    client: httpx.AsyncClient, resource: dict[str, Any], **headers: str
) -> dict[str, Any]:
    """POST a resource to its type and return the stored JSON (asserting 201)."""
    r = await client.post(f"/{resource['resourceType']}", json=resource, headers=headers)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def put(client: httpx.AsyncClient, resource: dict[str, Any]) -> dict[str, Any]:
    """PUT a resource with a client-chosen id (update or create); asserts 200/201."""
    r = await client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
    assert r.status_code in (200, 201), r.text
    body: dict[str, Any] = r.json()
    return body


async def search(
    client: httpx.AsyncClient, path: str, params: Any = None, **headers: str
) -> dict[str, Any]:
    """GET a search and return the Bundle (asserting 200 and a searchset)."""
    r = await client.get(path, params=params, headers=headers)
    assert r.status_code == 200, r.text
    bundle: dict[str, Any] = r.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    return bundle


def entries(bundle: dict[str, Any], mode: str | None = "match") -> list[dict[str, Any]]:
    return [
        e
        for e in bundle.get("entry", [])
        if mode is None or e.get("search", {}).get("mode") == mode
    ]


def ids(bundle: dict[str, Any], mode: str | None = "match") -> set[str]:
    """The ids of the entries in one search mode (match, include, outcome)."""
    return {e["resource"]["id"] for e in entries(bundle, mode)}


def typed_ids(bundle: dict[str, Any], mode: str | None = "match") -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in entries(bundle, mode)}


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for lk in bundle.get("link", []):
        if lk["relation"] == relation:
            url: str = lk["url"]
            return url[len(BASE) :] if url.startswith(BASE) else url
    return None


def assert_outcome(
    r: httpx.Response, status: int, code: str | None = None, expression: str | None = None
) -> dict[str, Any]:
    """The response is an OperationOutcome error with this status (and issue code, and an
    issue whose expression mentions `expression`)."""
    assert r.status_code == status, f"{r.status_code}: {r.text}"
    assert r.headers["content-type"].startswith("application/fhir+json"), r.headers
    oo: dict[str, Any] = r.json()
    assert oo["resourceType"] == "OperationOutcome", oo
    assert oo["issue"], oo
    for issue in oo["issue"]:
        assert issue["severity"] in ("fatal", "error", "warning", "information"), issue
        assert isinstance(issue["code"], str) and issue["code"], issue
        assert issue.get("diagnostics"), issue
        assert "Traceback" not in issue["diagnostics"]
    if code is not None:
        assert any(i["code"] == code for i in oo["issue"]), oo
    if expression is not None:
        exprs = [x for i in oo["issue"] for x in i.get("expression", [])]
        assert any(expression in x for x in exprs), oo
    return oo


def patient(family: str, given: str = "An", **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], **extra}


def observation(
    subject: str, code: str = "8867-4", system: str = "http://loinc.org", **extra: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": subject},
        **extra,
    }
