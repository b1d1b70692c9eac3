"""Content negotiation and HTTP-level errors: every error body is an OperationOutcome."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from tests.api.fhir import assert_outcome, create, patient, search
from tests.conftest import client_of, second_app

SMALL_LIMIT = 2_000


@pytest.fixture(scope="module")
async def small_app(database_url: str) -> AsyncIterator[object]:
    """A second app on the same database with a small body limit."""
    async with second_app(database_url, max_body_bytes=SMALL_LIMIT) as application:
        yield application


@pytest.fixture
async def small_client(
    small_app: object,
    client: httpx.AsyncClient,
) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(small_app, {"content-type": "application/fhir+json"}) as c:
        yield c


async def test_unparseable_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/Patient", content=b'{"resourceType": "Patient", ')
    assert_outcome(r, 400, "structure")
    r = await client.put("/Patient/x", content=b"not json")
    assert_outcome(r, 400)
    r = await client.post("/", content=b"[1, 2")
    assert_outcome(r, 400)


async def test_empty_and_non_object_bodies(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.post("/Patient", content=b""), 400)
    assert_outcome(await client.post("/Patient", content=b"[]"), 400)
    assert_outcome(await client.post("/Patient", content=b'"Patient"'), 400)


async def test_unknown_resource_type_is_404(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.get("/Patientt"), 404)
    assert_outcome(await client.get("/Patientt/1"), 404)
    assert_outcome(await client.post("/Patientt", json={"resourceType": "Patientt"}), 404)
    assert_outcome(await client.get("/MedicinalProductX/_history"), 404)


async def test_body_type_differs_from_url_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post("/Observation", json=patient("Wrong"))
    assert_outcome(r, 400, expression="resourceType")
    r = await client.put("/Observation/x", json=patient("Wrong", id="x"))
    assert_outcome(r, 400, expression="resourceType")
    bundle = await search(client, "/Patient")
    assert bundle["total"] == 0


async def test_unknown_resource_type_in_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/Patient", json={"resourceType": "Patientt"})
    assert_outcome(r, 400, expression="resourceType")


async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    body = b'{"resourceType": "Patient"}'
    for ctype in ("application/xml", "text/plain", "application/fhir+xml"):
        r = await client.post("/Patient", content=body, headers={"content-type": ctype})
        assert_outcome(r, 415)
    # both JSON media types are accepted, with parameters
    for ctype in ("application/json", "application/fhir+json; charset=utf-8"):
        r = await client.post("/Patient", content=body, headers={"content-type": ctype})
        assert r.status_code == 201, r.text


async def test_xml_is_406(client: httpx.AsyncClient) -> None:
    created = await create(client, patient("Xml"))
    path = f"/Patient/{created['id']}"
    assert_outcome(await client.get(path, headers={"accept": "application/fhir+xml"}), 406)
    assert_outcome(await client.get(path, params={"_format": "xml"}), 406)
    assert_outcome(await client.get("/Patient", params={"_format": "xml"}), 406)
    assert_outcome(await client.get("/metadata", headers={"accept": "application/xml"}), 406)
    # JSON asked in any of the usual ways
    for accept in (
        "application/fhir+json",
        "application/json",
        "*/*",
        "application/fhir+xml;q=0.9, application/fhir+json",
    ):
        r = await client.get(path, headers={"accept": accept})
        assert r.status_code == 200, (accept, r.text)
    for fmt in ("json", "application/fhir+json"):
        assert (await client.get(path, params={"_format": fmt})).status_code == 200


async def test_oversized_body_is_413(small_client: httpx.AsyncClient) -> None:
    big = patient(
        "Big",
        text={
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">' + "x" * SMALL_LIMIT + "</div>",
        },
    )
    r = await small_client.post("/Patient", json=big)
    assert_outcome(r, 413)
    # also when the size is not announced (chunked upload)
    raw = orjson.dumps(big)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(raw), 500):
            yield raw[i : i + 500]

    r = await small_client.post("/Patient", content=chunks())
    assert_outcome(r, 413)
    r = await small_client.post(
        "/",
        json={
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": big, "request": {"method": "POST", "url": "Patient"}}],
        },
    )
    assert_outcome(r, 413)
    # a small body still goes through
    r = await small_client.post("/Patient", json=patient("Small"))
    assert r.status_code == 201


async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    for path in ("/Patient/1/2/3/4", "/Patient/1/$unknown-op", "/foo/bar/baz/qux"):
        r = await client.get(path)
        oo = assert_outcome(r, 404)
        assert "Traceback" not in r.text, oo


async def test_method_not_allowed_is_outcome(client: httpx.AsyncClient) -> None:
    r = await client.delete("/metadata")
    assert r.status_code in (404, 405)
    assert_outcome(r, r.status_code)


async def test_bad_search_values_are_400(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.get("/Patient", params={"birthdate": "not-a-date"}), 400)
    assert_outcome(await client.get("/Patient", params={"_count": "many"}), 400)
    assert_outcome(await client.get("/Observation", params={"value-quantity": "abc"}), 400)
    assert_outcome(await client.get("/Patient", params={"_sort": "nonsense"}), 400)
    assert_outcome(await client.get("/Patient", params={"_summary": "maybe"}), 400)
    assert_outcome(await client.get("/Patient", params={"gender:exact": "male"}), 400)
    assert_outcome(await client.get("/Patient", params={"_cursor": "!!!"}), 400)


async def test_history_bad_since_is_400(client: httpx.AsyncClient) -> None:
    assert_outcome(await client.get("/Patient/_history", params={"_since": "yesterday"}), 400)


async def test_error_responses_never_leak_traces(client: httpx.AsyncClient) -> None:
    deep = b'{"resourceType": "Patient", "extension": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    r = await client.post("/Patient", content=deep)
    assert r.status_code in (400, 422)
    assert_outcome(r, r.status_code)
    r = await client.post("/Patient", content=b'{"resourceType": "Patient", "id": 5}')
    assert_outcome(r, 422, expression="Patient.id")


def _cursor(values: list[object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


@pytest.fixture
async def raw_client(app: object, client: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """A client that receives 500 responses instead of the app's exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"content-type": "application/fhir+json"},
    ) as c:
        yield c


MALFORMED = [
    "/Observation?value-quantity=1e999",
    "/Observation?value-quantity=nan",
    "/Observation?value-quantity=inf|http://unitsofmeasure.org|%25",
    "/RiskAssessment?probability=0.000e400",
    "/Patient?_has:Observation:subject:_has:x=y",
    "/Patient?_has:Observation=x",
    "/Patient?name:missing=maybe",
    "/Patient?_lastUpdated:missing=perhaps",
    "/Patient?_lastUpdated:exact=2020",
    f"/_history?_cursor={_cursor(['a', 2, 3])}",
    f"/Patient/_history?_cursor={_cursor([1.5, 2, 3])}",
    f"/Patient?_sort=family&_cursor={_cursor([5, 1])}",
    f"/Patient?_sort=birthdate&_cursor={_cursor(['x', 1])}",
    f"/Patient?_cursor={_cursor(['x'])}",
    "/Patient?_cursor=%%%",
    "/Observation?code-value-quantity=x$y$z",
    "/Observation?subject:Nope.name=x",
    "/Patient?birthdate=2020-02-30",
]


@pytest.mark.parametrize("url", MALFORMED)
async def test_malformed_requests_are_4xx_outcomes(raw_client: httpx.AsyncClient, url: str) -> None:
    r = await raw_client.get(url)
    assert 400 <= r.status_code < 500, r.text
    assert_outcome(r, r.status_code)


async def test_internal_error_is_an_outcome_without_details(
    raw_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.store import reads

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret detail: Patient Janssens 85010112345")

    monkeypatch.setattr(reads, "read_version", broken)
    r = await raw_client.get("/Patient/some-id")
    oo = assert_outcome(r, 500, "exception")
    assert "secret" not in r.text and "Janssens" not in r.text
    assert "RuntimeError" not in r.text
    assert oo["issue"][0]["severity"] in ("error", "fatal")
