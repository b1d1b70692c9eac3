"""System-level interactions: transaction/batch Bundles, capabilities, system history."""

from __future__ import annotations

import copy
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.capabilities import capability_statement
from app.api.http import base_url, check_accept, fhir_response, prefer, read_body
from app.api.rest import history_response, write
from app.fhir.dates import to_instant
from app.fhir.errors import FhirError, Issue, operation_outcome
from app.store.transaction import Entry, parse_entries, run_transaction

router = APIRouter()

_STATUS_TEXT = {200: "200 OK", 201: "201 Created", 204: "204 No Content"}
# A Bundle is up to seconds of CPU in one worker process, and a kept-alive connection pins the
# client's next Bundle to that process: uvicorn's workers share one listening socket and the
# first to wake accepts every pending connection, so four clients connecting at once all
# landed on one of two workers (8.7 vs 1.1 CPU seconds in bench/ingest.py). Closing after a
# Bundle lets the next one go to the worker that accepts first, the idle one; a reconnect
# costs far less than a Bundle.
_BUNDLE_HEADERS = {"Connection": "close"}


@router.get("/metadata", summary="CapabilityStatement")
async def metadata(request: Request) -> Response:
    check_accept(request)
    return fhir_response(capability_statement(base_url(request)))


@router.get("/_history", summary="System history")
async def system_history(request: Request) -> Response:
    return await history_response(request, None, None)


def _response_entry(request: Request, e: Entry, with_resource: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if e.get_result is not None:
        status, body = e.get_result
        out["response"] = {"status": _STATUS_TEXT.get(status, str(status))}
        if status >= 400 and body is not None:  # a failed GET answers with an outcome
            out["response"]["outcome"] = body
        elif body is not None:
            out["resource"] = body
        return out
    o = e.outcome
    assert o is not None
    resp: dict[str, Any] = {"status": _STATUS_TEXT.get(o.status, str(o.status))}
    if (o.content is not None or o.version) and o.id:
        resp["location"] = f"{o.res_type}/{o.id}/_history/{o.version}"
        resp["etag"] = f'W/"{o.version}"'
        resp["lastModified"] = to_instant(o.last_updated)
    if with_resource and o.content is not None:
        out["fullUrl"] = f"{base_url(request)}/{o.res_type}/{o.id}"
        out["resource"] = orjson.loads(o.content)
    out["response"] = resp
    return out


async def _get_entry(request: Request, url: str) -> tuple[int, dict[str, Any] | None]:
    """Answer a GET entry by routing it through this app (read, vread, search, history)."""
    from httpx import ASGITransport, AsyncClient

    transport = ASGITransport(app=request.app)
    async with AsyncClient(transport=transport, base_url=base_url(request)) as client:
        resp = await client.get("/" + url.lstrip("/"), headers={"accept": "application/fhir+json"})
    body = resp.json() if resp.content else None
    return resp.status_code, body


@router.post("/", summary="Transaction or batch Bundle")
async def bundle(request: Request) -> Response:
    check_accept(request)
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise FhirError.of(400, "invalid", "POST / takes a Bundle of type transaction or batch",
                           ["resourceType"])
    btype = body.get("type")
    with_resource = prefer(request, "return") == "representation"

    async def get(url: str) -> tuple[int, dict[str, Any] | None]:
        return await _get_entry(request, url)

    if btype == "transaction":
        entries = parse_entries(body)
        attempts = 0

        async def run(session: Any) -> None:
            nonlocal entries, attempts
            if attempts:  # a retry starts again from the original request
                entries = parse_entries(orjson.loads(request.state.raw_body))
            attempts += 1
            await run_transaction(session, entries, get)

        await write(request, run)
        resp = {"resourceType": "Bundle", "type": "transaction-response",
                "entry": [_response_entry(request, e, with_resource) for e in entries]}
        return fhir_response(resp, headers=_BUNDLE_HEADERS)
    if btype == "batch":
        entries = parse_entries(body)
        out = []
        for e in entries:
            out.append(await _batch_entry(request, e, get, with_resource))
        return fhir_response({"resourceType": "Bundle", "type": "batch-response", "entry": out},
                             headers=_BUNDLE_HEADERS)
    raise FhirError.of(400, "invalid", f"Bundle.type must be transaction or batch, not {btype!r}",
                       ["Bundle.type"])


async def _batch_entry(request: Request, e: Entry, get: Any, with_resource: bool) -> dict[str, Any]:
    try:
        if e.method in ("GET", "HEAD"):
            e.get_result = await get(e.url)
            return _response_entry(request, e, with_resource)
        original = copy.deepcopy(e.resource)

        async def run(session: Any) -> None:
            e.resource = copy.deepcopy(original)
            await run_transaction(session, [e], None)

        await write(request, run)
        return _response_entry(request, e, with_resource)
    except FhirError as exc:
        return {"response": {"status": str(exc.status), "outcome": exc.outcome()}}


def error_outcome(status: int, msg: str) -> dict[str, Any]:
    return operation_outcome([Issue("processing", msg)])
