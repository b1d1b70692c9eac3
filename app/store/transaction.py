"""Transaction and batch Bundles (R4 3.1.0.11): one database transaction per transaction Bundle,
one per entry for a batch.

A transaction is processed in the order the specification gives (DELETE, POST, PUT/PATCH, GET);
`urn:uuid:` and other fullUrls are mapped to the ids the server assigns before any resource is
staged, so references between entries resolve in either direction; any failure rolls back the
whole transaction and names the entry (index and fullUrl).
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson

from app.fhir.errors import FhirError, Issue
from app.fhir.references import ID, parse_reference
from app.fhir.validation import collect_issues, validate_resource
from app.store.repository import Outcome, Rewrite, WriteSession, new_id, parse_if_match

# A GET entry is answered by the API layer: (url) -> (status, resource JSON or None)
GetHandler = Callable[[str], Awaitable[tuple[int, dict[str, Any] | None]]]

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class Entry:
    index: int
    full_url: str | None
    method: str
    url: str
    resource: dict[str, Any] | None
    if_none_exist: str | None
    if_match: int | None
    res_type: str = ""
    res_id: str | None = None
    query: str | None = None
    outcome: Outcome | None = None
    get_result: tuple[int, dict[str, Any] | None] | None = None
    error: FhirError | None = None

    @property
    def label(self) -> str:
        return f"entry[{self.index}]" + (f" ({self.full_url})" if self.full_url else "")


@dataclass
class BundleResult:
    type: str
    entries: list[Entry] = field(default_factory=list)


def parse_entries(bundle: dict[str, Any]) -> list[Entry]:
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise FhirError.of(400, "structure", "Bundle.entry must be an array", ["Bundle.entry"])
    out = []
    for i, e in enumerate(raw):
        where = f"Bundle.entry[{i}]"
        if not isinstance(e, dict):
            raise FhirError.of(400, "structure", f"{where} must be an object", [where])
        req = e.get("request")
        if not isinstance(req, dict) or not isinstance(req.get("method"), str) or \
                not isinstance(req.get("url"), str):
            raise FhirError.of(400, "required", f"{where} needs request.method and request.url",
                               [f"{where}.request"])
        for key, value in (("fullUrl", e.get("fullUrl")), ("request.ifNoneExist",
                           req.get("ifNoneExist")), ("request.ifMatch", req.get("ifMatch"))):
            if value is not None and not isinstance(value, str):
                raise FhirError.of(400, "structure", f"{where}.{key} must be a string",
                                   [f"{where}.{key}"])
        method = req["method"].upper()
        if method not in ORDER:
            raise FhirError.of(400, "not-supported", f"{where}: method {method} is not supported",
                               [f"{where}.request.method"])
        try:
            if_match = parse_if_match(req.get("ifMatch"))
        except FhirError as exc:
            exc.issues[0].diagnostics = f"{where}: {exc.issues[0].diagnostics}"
            raise
        entry = Entry(i, e.get("fullUrl"), method, req["url"].lstrip("/"), e.get("resource"),
                      req.get("ifNoneExist"), if_match)
        _parse_url(entry)
        out.append(entry)
    return out


def _parse_url(e: Entry) -> None:
    if e.method == "GET" or e.method == "HEAD":
        return
    path, q, query = e.url.partition("?")
    parts = [p for p in path.split("/") if p]
    e.res_type = parts[0] if parts else ""
    if q:
        e.query = query
    if len(parts) >= 2:
        e.res_id = parts[1]
    bad = (
        not e.res_type
        or (e.method == "POST" and (len(parts) != 1 or q))
        or (e.method in ("PUT", "PATCH", "DELETE") and not e.res_id and not q)
        or (e.res_id is not None and not ID.match(e.res_id))
    )
    if bad:
        raise FhirError.of(400, "invalid", f"{e.label}: request.url '{e.url}' does not fit "
                           f"{e.method}", [f"Bundle.entry[{e.index}].request.url"])
    if e.method in ("POST", "PUT") and not isinstance(e.resource, dict):
        raise FhirError.of(400, "required", f"{e.label}: {e.method} needs a resource",
                           [f"Bundle.entry[{e.index}].resource"])


def _patch_ops(e: Entry) -> Any:
    res = e.resource
    if isinstance(res, dict) and res.get("resourceType") == "Binary" and "data" in res:
        try:
            return orjson.loads(base64.b64decode(res["data"]))
        except (ValueError, orjson.JSONDecodeError):
            pass
    raise FhirError.of(400, "not-supported", f"{e.label}: PATCH in a Bundle takes a Binary "
                       "resource holding a JSON Patch (contentType application/json-patch+json)")


def validate_entries(entries: list[Entry], full: bool = True) -> None:
    """Validate every entry's resource up front; report them all, by entry."""
    issues: list[Issue] = []
    for e in entries:
        if e.method not in ("POST", "PUT") or e.resource is None:
            continue
        try:
            rt = validate_resource(e.resource, full=full)
        except FhirError as exc:
            for i in exc.issues:
                i.diagnostics = f"{e.label}: {i.diagnostics}"
                if i.expression:
                    i.expression = [f"Bundle.entry[{e.index}].resource.{x.split('.', 1)[1]}"
                                    if "." in x else f"Bundle.entry[{e.index}].resource"
                                    for x in i.expression]
            issues += exc.issues
            continue
        if rt != e.res_type:
            issues.append(Issue("invalid", f"{e.label}: the resource is a {rt} but request.url "
                                f"names {e.res_type}", expression=[
                                    f"Bundle.entry[{e.index}].request.url"]))
    if issues:
        status = 422 if all(i.code not in ("not-supported",) for i in issues) else 400
        raise FhirError(status, issues[:50])


async def run_transaction(session: WriteSession, entries: list[Entry],
                          get: GetHandler | None) -> None:
    validate_entries(entries, session.full_validation)
    ids: dict[str, str] = {}  # fullUrl -> "Type/id"

    def bind(e: Entry, res_id: str) -> None:
        e.res_id = res_id
        if e.full_url:
            ids[e.full_url] = f"{e.res_type}/{res_id}"

    ordered = sorted(entries, key=lambda e: (ORDER[e.method], e.index))
    current: Entry | None = None
    try:
        for e in ordered:
            current = e
            if e.method == "DELETE":
                if e.query is not None:
                    e.outcome = await session.conditional_delete(e.res_type, e.query, e.label)
                else:
                    assert e.res_id is not None
                    e.outcome = await session.delete(e.res_type, e.res_id, e.label, e.if_match)
        # assign ids first, so references between entries resolve whatever their order
        for e in ordered:
            current = e
            if e.method == "POST":
                if e.if_none_exist:
                    await session.lock(e.res_type, e.if_none_exist)
                    found = await session.find(e.res_type, e.if_none_exist)
                    if len(found) > 1:
                        raise FhirError.of(412, "duplicate", f"{e.label}: ifNoneExist "
                                           f"'{e.if_none_exist}' matches more than one resource")
                    if found:
                        bind(e, found[0][1])
                        e.if_none_exist = "matched"
                        continue
                    e.if_none_exist = None
                bind(e, new_id())
            elif e.method == "PUT" and e.query is not None:
                await session.lock(e.res_type, e.query)
                found = await session.find(e.res_type, e.query)
                if len(found) > 1:
                    raise FhirError.of(412, "multiple-matches",
                                       f"{e.label}: '{e.url}' matches more than one resource")
                body_id = e.resource.get("id") if e.resource else None
                bind(e, found[0][1] if found else (body_id or new_id()))
                assert e.resource is not None
                e.resource["id"] = e.res_id
            elif e.method in ("PUT", "PATCH"):
                assert e.res_id is not None
                bind(e, e.res_id)
        # each entry's references are rewritten in the one walk that resolves and notes them
        rewrite = _entry_references(ids)
        for e in ordered:
            current = e
            if e.method == "POST":
                assert e.resource is not None and e.res_id is not None
                if e.if_none_exist == "matched":
                    e.outcome = await session.create(e.res_type, e.resource, e.label,
                                                     if_none_exist=f"_id={e.res_id}")
                else:
                    e.outcome = await session.create(e.res_type, e.resource, e.label,
                                                     res_id=e.res_id, validated=True,
                                                     rewrite=rewrite)
            elif e.method == "PUT":
                assert e.resource is not None and e.res_id is not None
                e.outcome = await session.update(e.res_type, e.res_id, e.resource, e.label,
                                                 e.if_match, validated=True, rewrite=rewrite)
            elif e.method == "PATCH":
                assert e.res_id is not None
                e.outcome = await session.patch(e.res_type, e.res_id, _patch_ops(e), e.label,
                                                e.if_match)
        await session.commit()
        for e in ordered:
            current = e
            if e.method in ("GET", "HEAD"):
                if get is None:
                    raise FhirError.of(400, "not-supported", f"{e.label}: GET is not supported")
                e.get_result = await get(e.url)
                if e.get_result[0] >= 400:
                    raise FhirError.of(e.get_result[0], "processing",
                                       f"{e.label}: GET {e.url} failed")
    except FhirError as exc:
        label = current.label if current is not None else "Bundle"
        for issue in exc.issues:
            if not issue.diagnostics.startswith("entry["):
                issue.diagnostics = f"{label}: {issue.diagnostics}"
        raise


def _entry_references(ids: dict[str, str]) -> Rewrite | None:
    """References to entries (by fullUrl, or relative to an absolute fullUrl) -> Type/id."""
    if not ids:
        return None
    lookup = dict(ids)
    for full_url, target in ids.items():
        parsed = parse_reference(full_url)
        if parsed is not None and not parsed.local:  # absolute fullUrl: relative refs match it
            lookup.setdefault(f"{parsed.type}/{parsed.id}", target)

    def fn(ref: str) -> str | None:
        return lookup.get(ref) or (lookup.get(unquote(ref)) if "%" in ref else None)

    return fn


def entry_issues(e: Entry) -> list[Issue]:
    return collect_issues(e.resource) if e.resource else []
