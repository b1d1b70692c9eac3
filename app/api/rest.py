"""Type and instance interactions (R4 3.1.0): create, read, vread, update, patch, delete,
history and search, plain and conditional."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError

from app.api.deps import known_type
from app.api.http import (
    base_url,
    check_accept,
    fhir_response,
    prefer,
    read_body,
    version_headers,
)
from app.fhir.bundles import history_bundle, page_url, searchset
from app.fhir.dates import DateError, date_range, http_instant, now_us
from app.fhir.errors import FhirError, Issue, operation_outcome
from app.fhir.query import parse_query
from app.fhir.summary import subset
from app.store import reads
from app.store.repository import Outcome, WriteSession, parse_if_match
from app.store.search import CompileContext
from app.store.searchset import SearchPage, decode_cursor, encode_cursor, run_search
from app.store.terminology import expand

log = logging.getLogger(__name__)
router = APIRouter()
T = TypeVar("T")


async def write(request: Request, fn: Callable[[WriteSession], Awaitable[T]]) -> T:
    """Run `fn` in a write transaction, retrying on lock conflicts and unique-key races."""
    db = request.app.state.db
    settings = request.app.state.settings
    base = base_url(request)
    for attempt in range(5):
        try:
            async with db.write() as conn:
                session = WriteSession(conn, now_us(), base,
                                       settings.enforce_referential_integrity,
                                       settings.validation != "structural")
                result = await fn(session)
                await session.commit()
                return result
        except FhirError:
            raise
        except Exception as exc:  # noqa: BLE001 - bulk writes raise the driver's own errors
            if attempt == 4 or not _retryable(exc):
                raise
            log.info("write conflict, retrying (%s)", type(exc).__name__)
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _retryable(exc: Exception) -> bool:
    """Lock conflicts and unique-key races, raised through SQLAlchemy (DBAPIError) or straight
    from the driver (the writer's COPY/executemany on the raw connection)."""
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in ("40001", "40P01", "23505"):
        return True
    text = str(orig).lower()
    return "database is locked" in text or "unique constraint" in text or "duplicate key" in text


def outcome_response(request: Request, out: Outcome, location: bool = True) -> Response:
    base = base_url(request)
    headers = version_headers(out.res_type, out.id, out.version, out.last_updated, base,
                              location=location)
    mode = prefer(request, "return")
    if mode == "minimal":
        return fhir_response(None, out.status, headers)
    if mode == "OperationOutcome":
        verb = "created" if out.created else "updated" if out.status == 200 else "processed"
        oo = operation_outcome([Issue("informational",
                                      f"{out.res_type}/{out.id} {verb} (version {out.version})",
                                      severity="information")])
        return fhir_response(oo, out.status, headers)
    return fhir_response(out.content, out.status, headers)


# -- history ---------------------------------------------------------------------------------


def _instant_param(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return date_range(value)[0] if name == "_since" else date_range(value)[1]
    except DateError as exc:
        raise FhirError.of(400, "invalid", f"{name}: {exc}") from None


async def history_response(request: Request, res_type: str | None, res_id: str | None) -> Response:
    check_accept(request)
    settings = request.app.state.settings
    params = list(request.query_params.multi_items())
    qp = request.query_params
    since = _instant_param("_since", qp.get("_since"))
    at = _instant_param("_at", qp.get("_at"))
    count = _page_size(qp.get("_count"), settings)
    cursor = None
    if qp.get("_cursor"):
        values = decode_cursor(qp["_cursor"])
        if len(values) != 3 or not all(isinstance(v, int) and not isinstance(v, bool)
                                       for v in values) or abs(values[2]) > reads.MAX_VERSION:
            raise FhirError.of(400, "invalid", "the paging cursor is not valid")
        cursor = (values[0], values[1], values[2])
    async with request.app.state.db.read() as conn:
        if res_id is not None:
            assert res_type is not None
            if await reads.current(conn, res_type, res_id) is None:
                raise FhirError.of(404, "not-found", f"{res_type}/{res_id} is not known")
        rows = await reads.history(conn, res_type, res_id, since, at, count + 1, cursor)
        total = None
        if cursor is None and at is None:
            total = (len(rows) if len(rows) <= count else
                     await reads.count_history(conn, res_type, res_id, since))
    more = len(rows) > count
    rows = rows[:count]
    base = base_url(request)
    path = base + request.url.path[len(request.scope.get("root_path", "")):]
    links = {"self": page_url(path, params, _cursor=qp.get("_cursor"))}
    if more and rows:  # _count=0: the total only, no page to follow
        last = rows[-1]
        links["next"] = page_url(path, params,
                                 _cursor=encode_cursor([last.last_updated, last.pk,
                                                        last.version]))
    return fhir_response(history_bundle(base, rows, links, total))


def _page_size(raw: str | None, settings: Any) -> int:
    if raw is None:
        return int(settings.default_page_size)
    try:
        n = int(raw)
    except ValueError:
        raise FhirError.of(400, "invalid", f"_count must be an integer, got '{raw}'") from None
    if n < 0:
        raise FhirError.of(400, "invalid", "_count must not be negative")
    return min(n, int(settings.max_page_size))


# -- search ----------------------------------------------------------------------------------


async def search_bundle(request: Request, res_type: str, pairs: list[tuple[str, str]],
                        self_path: str) -> bytes:
    settings = request.app.state.settings
    pq = parse_query(pairs)
    size = _page_size(str(pq.count) if pq.count is not None else None, settings)
    ctx = CompileContext(strict=prefer(request, "handling") == "strict")
    async with request.app.state.db.read() as conn:
        urls = [v for c in pq.clauses if c.modifier in ("in", "not-in") for v in c.values]
        for url in urls:
            ctx.valuesets[url] = await expand(conn, url)
        page = await run_search(conn, res_type, pq, ctx, size)
    return render_searchset(request, page, pairs, self_path, pq.summary, pq.elements)


def render_searchset(request: Request, page: SearchPage, pairs: list[tuple[str, str]],
                     self_path: str, summary: str | None, elements: list[str] | None) -> bytes:
    base = base_url(request)
    links = {"self": page_url(self_path, pairs, _cursor=None)}
    if page.prev_cursor:
        links["previous"] = page_url(self_path, pairs, _cursor=page.prev_cursor, _dir="prev")
    if page.next_cursor:
        links["next"] = page_url(self_path, pairs, _cursor=page.next_cursor)
    matches = [(h.res_type, h.id, h.content) for h in page.matches]
    included = [(h.res_type, h.id, h.content) for h in page.included]
    if (summary and summary != "false") or elements is not None:
        matches = [(t, i, orjson.dumps(subset(orjson.loads(c), summary, elements)))
                   for t, i, c in matches]
    outcome = operation_outcome(page.warnings) if page.warnings else None
    return searchset(base, matches, included, links, page.total, outcome)


@router.get("/{res_type}/_history", summary="Type history")
async def type_history(request: Request, res_type: str) -> Response:
    return await history_response(request, known_type(res_type), None)


@router.post("/{res_type}/_search", summary="Search (POST)")
async def search_post(request: Request, res_type: str) -> Response:
    check_accept(request)
    known_type(res_type)
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/x-www-form-urlencoded":
        raise FhirError.of(415, "not-supported",
                           "POST _search takes application/x-www-form-urlencoded parameters")
    body = (await request.body()).decode("utf-8", errors="replace")
    pairs = list(request.query_params.multi_items()) + parse_qsl(body, keep_blank_values=True)
    path = base_url(request) + f"/{res_type}"
    return fhir_response(await search_bundle(request, res_type, pairs, path))


@router.get("/{res_type}", summary="Search")
async def search_get(request: Request, res_type: str) -> Response:
    check_accept(request)
    known_type(res_type)
    pairs = list(request.query_params.multi_items())
    path = base_url(request) + f"/{res_type}"
    return fhir_response(await search_bundle(request, res_type, pairs, path))


@router.post("/{res_type}", summary="Create")
async def create(request: Request, res_type: str) -> Response:
    check_accept(request)
    known_type(res_type)
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    if_none_exist = request.headers.get("if-none-exist")
    if isinstance(body, dict) and "resourceType" not in body:
        raise FhirError.of(400, "required", "the resource has no resourceType", ["resourceType"])
    out = await write(request, lambda s: s.create(res_type, body, res_type,
                                                  if_none_exist=if_none_exist))
    return outcome_response(request, out)


@router.put("/{res_type}", summary="Conditional update")
async def conditional_update(request: Request, res_type: str) -> Response:
    check_accept(request)
    known_type(res_type)
    query = request.url.query
    if not query:
        raise FhirError.of(400, "invalid", "PUT on a type needs search criteria (conditional "
                           "update) or an id: PUT /Type/id")
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    if_match = parse_if_match(request.headers.get("if-match"))
    out = await write(request, lambda s: s.conditional_update(res_type, query, body, res_type,
                                                              if_match))
    return outcome_response(request, out)


@router.delete("/{res_type}", summary="Conditional delete")
async def conditional_delete(request: Request, res_type: str) -> Response:
    known_type(res_type)
    query = request.url.query
    if not query:
        raise FhirError.of(405, "not-supported", "DELETE on a type needs search criteria")
    await write(request, lambda s: s.conditional_delete(res_type, query, res_type))
    return fhir_response(None, 204)


@router.get("/{res_type}/{res_id}", summary="Read")
async def read(request: Request, res_type: str, res_id: str) -> Response:
    check_accept(request)
    known_type(res_type)
    async with request.app.state.db.read() as conn:
        found = await reads.read_version(conn, res_type, res_id)
    if found is None:
        raise FhirError.of(404, "not-found", f"{res_type}/{res_id} is not known")
    headers = version_headers(res_type, res_id, found.version, found.last_updated, "")
    if found.content is None:
        raise FhirError(410, [Issue("deleted", f"{res_type}/{res_id} was deleted "
                                    f"(version {found.version})")], headers)
    if not_modified(request, found.version, found.last_updated):
        return Response(status_code=304, headers=headers)
    summary = request.query_params.get("_summary")
    elements = request.query_params.get("_elements")
    content: bytes | dict[str, Any] = found.content
    if summary or elements:
        content = subset(orjson.loads(found.content), summary,
                         elements.split(",") if elements else None)
    return fhir_response(content, 200, headers)


def not_modified(request: Request, version: int, last_updated: int) -> bool:
    """Conditional read (R4 3.1.0.3): If-None-Match (weak comparison, lists, `*`), else
    If-Modified-Since at the one-second precision of HTTP dates."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/").strip('"') for t in inm.split(",")}
        return "*" in tags or str(version) in tags
    ims = request.headers.get("if-modified-since")
    if ims is not None:
        since = http_instant(ims)
        return since is not None and last_updated // 1_000_000 <= since // 1_000_000
    return False


@router.get("/{res_type}/{res_id}/_history", summary="Instance history")
async def instance_history(request: Request, res_type: str, res_id: str) -> Response:
    return await history_response(request, known_type(res_type), res_id)


@router.get("/{res_type}/{res_id}/_history/{vid}", summary="Version read")
async def vread(request: Request, res_type: str, res_id: str, vid: str) -> Response:
    check_accept(request)
    known_type(res_type)
    if not (vid.isascii() and vid.isdigit()):  # not "¹", which isdigit() accepts
        raise FhirError.of(404, "not-found", f"{res_type}/{res_id} has no version '{vid}'")
    async with request.app.state.db.read() as conn:
        found = await reads.read_version(conn, res_type, res_id, int(vid))
    if found is None:
        raise FhirError.of(404, "not-found", f"{res_type}/{res_id} has no version {vid}")
    headers = version_headers(res_type, res_id, found.version, found.last_updated, "")
    if found.content is None:
        raise FhirError(410, [Issue("deleted", f"version {vid} of {res_type}/{res_id} is its "
                                    "deletion")], headers)
    return fhir_response(found.content, 200, headers)


@router.put("/{res_type}/{res_id}", summary="Update (or create with a client id)")
async def update(request: Request, res_type: str, res_id: str) -> Response:
    check_accept(request)
    known_type(res_type)
    body = await read_body(request, request.app.state.settings.max_body_bytes)
    if_match = parse_if_match(request.headers.get("if-match"))
    if not isinstance(body, dict):
        raise FhirError.of(400, "structure", "the body must be a JSON object holding a resource")
    out = await write(request, lambda s: s.update(res_type, res_id, body,
                                                  f"{res_type}/{res_id}", if_match))
    return outcome_response(request, out)


@router.patch("/{res_type}/{res_id}", summary="JSON Patch")
async def patch(request: Request, res_type: str, res_id: str) -> Response:
    check_accept(request)
    known_type(res_type)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json-patch+json":
        raise FhirError.of(415, "not-supported",
                           "PATCH takes a JSON Patch (Content-Type application/json-patch+json)")
    ops = await read_body(request, request.app.state.settings.max_body_bytes, allow_patch=True)
    if not isinstance(ops, list):
        raise FhirError.of(400, "structure", "a JSON Patch is a JSON array of operations")
    if_match = parse_if_match(request.headers.get("if-match"))
    out = await write(request, lambda s: s.patch(res_type, res_id, ops, f"{res_type}/{res_id}",
                                                 if_match))
    return outcome_response(request, out, location=False)


@router.delete("/{res_type}/{res_id}", summary="Delete")
async def delete(request: Request, res_type: str, res_id: str) -> Response:
    known_type(res_type)
    if_match = parse_if_match(request.headers.get("if-match"))
    out = await write(request, lambda s: s.delete(res_type, res_id, f"{res_type}/{res_id}",
                                                  if_match))
    headers = {"ETag": f'W/"{out.version}"'} if out.version else {}
    return fhir_response(None, 204, headers)
