"""Fuzzing through the ASGI app: schemathesis on the app's own OpenAPI document (filled in with
the FHIR parameters and bodies the endpoints read), and hypothesis with malformed FHIR JSON,
broken Bundles and broken search, history and paging queries. Whatever arrives, the answer is
never a 5xx, and every 4xx carries an OperationOutcome."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.conftest import FHIR_JSON, _truncate
from tests.server.fuzz import queries
from tests.server.fuzz.bodies import dumps
from tests.server.fuzz.openapi import fhir_openapi
from tests.server.fuzz.requests import read_requests, write_requests
from tests.server.fuzz.resources import Request, seed_resources

FUZZ = settings(
    deadline=None, database=None, print_blob=True, suppress_health_check=list(HealthCheck)
)
ISSUE_SEVERITIES = {"fatal", "error", "warning", "information"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fuzz_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the shared test app (emptied before and after), with the seed resources in
    place and the search parameters of every type (from /metadata) handed to the strategies."""
    await _truncate(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=FHIR_JSON, timeout=60
    ) as client:
        caps = (await client.get("/metadata")).json()
        queries.SEARCH_PARAMS.update(
            {
                r["type"]: [(p["name"], p["type"]) for p in r.get("searchParam", [])]
                for r in caps["rest"][0]["resource"]
            }
        )
        await seed(client)
        yield client
    await _truncate(app)


async def seed(client: httpx.AsyncClient) -> None:
    for resource in seed_resources():
        r = await client.put(f"/{resource['resourceType']}/{resource['id']}", json=resource)
        assert r.status_code in (200, 201), r.text


def assert_fhir_answer(resp: httpx.Response, what: str) -> None:
    """No server error; a 4xx answers with an OperationOutcome saying what went wrong."""
    assert resp.status_code < 500, f"{what} -> {resp.status_code}: {resp.text[:2000]}"
    if resp.status_code < 400:
        return
    try:
        body = orjson.loads(resp.content)
    except orjson.JSONDecodeError:
        raise AssertionError(
            f"{what} -> {resp.status_code} without JSON: {resp.text[:500]}"
        ) from None
    assert body.get("resourceType") == "OperationOutcome", f"{what} -> {resp.text[:500]}"
    issues = body.get("issue")
    assert isinstance(issues, list) and issues, f"{what} -> {resp.text[:500]}"
    for issue in issues:
        assert issue.get("severity") in ISSUE_SEVERITIES, f"{what} -> {issue}"
        assert isinstance(issue.get("code"), str) and issue["code"], f"{what} -> {issue}"
        assert isinstance(issue.get("diagnostics"), str), f"{what} -> {issue}"
    assert resp.headers["content-type"].startswith("application/fhir+json")


async def send(client: httpx.AsyncClient, req: Request) -> None:
    resp = await client.request(
        req.method, req.url, content=req.body, headers={**FHIR_JSON, **req.headers}
    )
    what = f"{req.method} {req.url} {req.headers} {(req.body or b'')[:300]!r}"
    assert_fhir_answer(resp, what)


# -- schemathesis --------------------------------------------------------------------------------


def _schema(app: Any) -> Any:
    return schemathesis.openapi.from_dict(fhir_openapi(app.openapi()))


@pytest.fixture(scope="module")
def api_cases(app: Any) -> st.SearchStrategy[Any]:
    schema = _schema(app)
    return st.one_of(
        schema.as_strategy(schemathesis.GenerationMode.POSITIVE),
        schema.as_strategy(schemathesis.GenerationMode.NEGATIVE),
    )


@settings(FUZZ, max_examples=300)
@given(data=st.data())
async def test_schemathesis_openapi(
    fuzz_client: httpx.AsyncClient, api_cases: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    case = data.draw(api_cases)
    kwargs = case.as_transport_kwargs(base_url="http://testserver")
    body = kwargs.pop("json", None)
    content = kwargs.pop("data", None)
    if body is not None:
        content = dumps(body)
    elif isinstance(content, dict):
        content = httpx.QueryParams(content).__str__().encode()
    headers = {
        k: v
        for k, v in (kwargs.pop("headers", None) or {}).items()
        if k.lower() != "content-length"
    }
    resp = await fuzz_client.request(
        kwargs["method"],
        kwargs["url"],
        params=kwargs.get("params"),
        headers=headers,
        content=content,
    )
    case.validate_response(resp, checks=[not_a_server_error])
    assert_fhir_answer(resp, f"{case.method} {case.formatted_path} {case.query} {body!r:.300}")


# -- hypothesis: malformed FHIR ------------------------------------------------------------------


@settings(FUZZ, max_examples=700)
@given(req=write_requests())
async def test_malformed_writes(fuzz_client: httpx.AsyncClient, req: Request) -> None:
    await send(fuzz_client, req)


@settings(FUZZ, max_examples=800)
@given(req=read_requests())
async def test_malformed_queries(fuzz_client: httpx.AsyncClient, req: Request) -> None:
    await send(fuzz_client, req)


async def test_seed_still_answers(fuzz_client: httpx.AsyncClient) -> None:
    """After the fuzzing, the server still reads, searches and writes."""
    await seed(fuzz_client)
    r = await fuzz_client.get("/Observation", params={"subject": "Patient/fuzz-p1", "_count": 5})
    assert r.status_code == 200
    assert "fuzz-o1" in {e["resource"]["id"] for e in r.json().get("entry", [])}
