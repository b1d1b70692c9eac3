"""Writes: create, update, patch, delete (plain and conditional) with versions and optimistic
locking, staged in a `WriteSession` and flushed in one database transaction.

A transaction Bundle and a single interaction go through the same session, so both get the same
checks: version conflicts (412), conditional matches (412 on several), referential integrity
(422), and race-free conditional creates (an advisory lock on PostgreSQL, the database write
lock on SQLite, held from the search to the commit).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import jsonpatch
import orjson
from sqlalchemy import and_, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.errors import FhirError, Issue
from app.fhir.query import parse_query
from app.fhir.references import (
    ID,
    is_conditional,
    parse_reference,
    rewrite_references,
)
from app.fhir.validation import check_depth, validate_resource
from app.store import reads
from app.store.schema import idx_reference, resource
from app.store.search import CompileContext
from app.store.searchset import compile_where, r
from app.store.writer import StagedWrite, flush, stage

# A transaction's rewriting of references to its entries: reference -> new value, or None
Rewrite = Callable[[str], str | None]


@dataclass(slots=True)
class Outcome:
    status: int
    res_type: str
    id: str
    version: int
    last_updated: int
    content: bytes | None  # the stored JSON (None for deletes)
    created: bool = False
    issues: list[Issue] | None = None


def new_id() -> str:
    return str(uuid.uuid4())


def parse_if_match(header: str | None) -> int | None:
    """`W/"3"` (or `"3"`, `3`) -> 3."""
    if header is None:
        return None
    v = header.strip()
    if v.startswith("W/"):
        v = v[2:]
    v = v.strip('"')
    if not (v.isascii() and v.isdigit()):
        raise FhirError.of(400, "invalid", f"If-Match must be an ETag like W/\"3\", got {header}")
    return int(v)


class WriteSession:
    def __init__(self, conn: AsyncConnection, now: int, base_url: str = "",
                 referential_integrity: bool = True, full_validation: bool = True) -> None:
        self.full_validation = full_validation
        self.conn = conn
        self.now = now
        self.base_url = base_url.rstrip("/")
        self.referential_integrity = referential_integrity
        self.staged: list[StagedWrite] = []
        self.by_key: dict[tuple[str, str], StagedWrite] = {}
        self.refs: list[tuple[str, str, str]] = []  # (type, id, where)
        self.pg = conn.dialect.name == "postgresql"

    # -- lookups -----------------------------------------------------------------------------

    async def current(self, res_type: str, res_id: str) -> reads.Current | None:
        s = self.by_key.get((res_type, res_id))
        if s is not None:
            raise FhirError.of(400, "invalid",
                               f"{res_type}/{res_id} is written twice in one transaction")
        return await reads.current(self.conn, res_type, res_id, for_update=True)

    async def find(self, res_type: str, query: str, limit: int = 2) -> list[tuple[int, str]]:
        """(pk, id) of live resources matching a search (conditional operations)."""
        # clients also send the criteria as a relative URL (`Patient?identifier=...`)
        pairs = parse_qsl(query.removeprefix(f"{res_type}?"), keep_blank_values=True)
        if not pairs:
            raise FhirError.of(400, "invalid", f"a conditional {res_type} needs search criteria")
        pq = parse_query(pairs)
        ctx = CompileContext(strict=True)
        where = compile_where(res_type, pq, ctx)
        # resources this session already deleted (a transaction's DELETEs come first) are gone
        gone = {s.id for s in self.staged if s.res_type == res_type and s.content is None}
        q = select(r.c.pk, r.c.id).where(r.c.res_type == res_type, ~r.c.deleted, where)
        rows = await self.conn.execute(q.limit(limit + len(gone)))
        return [(row[0], row[1]) for row in rows if row[1] not in gone][:limit]

    async def lock(self, res_type: str, query: str) -> None:
        """Serialise conditional operations on the same criteria until commit (the same key
        for a conditional create, update or transaction entry, however the query is spelled)."""
        key = f"{res_type}?{_normal_query(query.removeprefix(f'{res_type}?'))}"
        if self.pg:
            digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
            await self.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": digest})
        # SQLite: the write transaction (BEGIN IMMEDIATE) already excludes other writers.

    # -- references ----------------------------------------------------------------------------

    async def resolve_references(self, body: dict[str, Any], where: str,
                                 rewrite: Rewrite | None = None) -> None:
        """One walk over the body's references: apply `rewrite` (a transaction's map from
        fullUrls to the ids it assigned), make absolute references to this server relative,
        resolve conditional references (`Type?criteria`) to their one match, and note every
        reference for the integrity check at commit."""
        pending: list[str] = []
        final: list[str] = []  # every reference as it ends up, in document order
        base = self.base_url + "/" if self.base_url else None

        def visit(ref: str) -> str | None:
            new = rewrite(ref) if rewrite is not None else None
            value = ref if new is None else new
            if is_conditional(value):
                pending.append(value)
            elif base is not None and value.startswith(base):
                value = new = value[len(base):]
            final.append(value)
            return new

        rewrite_references(body, visit)
        if pending:
            resolved: dict[str, str] = {}
            for ref in dict.fromkeys(pending):
                res_type, _, query = ref.partition("?")
                matches = await self.find(res_type, query)
                if len(matches) != 1:
                    how = "no" if not matches else "more than one"
                    raise FhirError.of(
                        412 if matches else 422, "processing",
                        f"conditional reference '{ref}' in {where} matches {how} resource",
                    )
                resolved[ref] = f"{res_type}/{matches[0][1]}"
            rewrite_references(body, lambda ref: resolved.get(ref))
            final = [resolved.get(ref, ref) for ref in final]
        self._note_references(final, where)

    def _note_references(self, refs: list[str], where: str) -> None:
        for ref in refs:
            if ref.startswith("#"):
                continue
            if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
                raise FhirError.of(422, "processing",
                                   f"{where}: reference '{ref}' does not resolve to an entry")
            parsed = parse_reference(ref)
            if parsed is not None and parsed.local:
                self.refs.append((parsed.type, parsed.id, where))

    async def verify_references(self) -> None:
        if not self.referential_integrity or not self.refs:
            return
        wanted: dict[str, set[str]] = {}
        for t, i, _ in self.refs:
            s = self.by_key.get((t, i))
            if s is not None and s.content is not None:
                continue
            wanted.setdefault(t, set()).add(i)
        if not wanted:
            return
        found: set[tuple[str, str]] = set()
        items = [(t, sorted(ids)) for t, ids in wanted.items()]
        for start in range(0, len(items), 50):
            conds = [and_(resource.c.res_type == t, resource.c.id.in_(ids))
                     for t, ids in items[start:start + 50]]
            q = select(resource.c.res_type, resource.c.id).where(~resource.c.deleted, or_(*conds))
            found |= {(row[0], row[1]) for row in await self.conn.execute(q)}
        missing = [(t, i, w) for t, i, w in self.refs
                   if (t, i) not in found and not (
                       (s := self.by_key.get((t, i))) is not None and s.content is not None)]
        if missing:
            issues = [Issue("processing", f"{w}: reference '{t}/{i}' points to no resource "
                            "on this server", expression=None) for t, i, w in missing[:20]]
            raise FhirError(422, issues)

    # -- staging -----------------------------------------------------------------------------

    def _stage(self, res_type: str, res_id: str, body: dict[str, Any] | None, method: str,
               version: int, pk: int | None, patient_id: str | None = None) -> StagedWrite:
        s = stage(res_type, res_id, body, method, version, self.now, pk)
        if body is None:
            s.patient_id = patient_id
        self.staged.append(s)
        self.by_key[(res_type, res_id)] = s
        return s

    async def create(self, res_type: str, body: dict[str, Any], where: str,
                     if_none_exist: str | None = None, res_id: str | None = None,
                     validated: bool = False, rewrite: Rewrite | None = None) -> Outcome:
        if if_none_exist:
            await self.lock(res_type, if_none_exist)
            matches = await self.find(res_type, if_none_exist)
            if len(matches) > 1:
                raise FhirError.of(412, "duplicate", f"{where}: If-None-Exist '{if_none_exist}'"
                                   " matches more than one resource")
            if matches:
                found = await reads.read_version(self.conn, res_type, matches[0][1])
                assert found is not None
                return Outcome(200, res_type, found.id, found.version, found.last_updated,
                               found.content)
        if not validated:
            validate_resource(body, res_type, self.full_validation)
        await self.resolve_references(body, where, rewrite)
        rid = res_id or new_id()
        s = self._stage(res_type, rid, body, "POST", 1, None)
        return Outcome(201, res_type, rid, 1, self.now, s.content, created=True)

    async def update(self, res_type: str, res_id: str, body: dict[str, Any], where: str,
                     if_match: int | None = None, validated: bool = False,
                     method: str = "PUT", rewrite: Rewrite | None = None) -> Outcome:
        if not ID.match(res_id):
            raise FhirError.of(400, "invalid", f"'{res_id}' is not a valid resource id")
        if not validated:
            validate_resource(body, res_type, self.full_validation)
        body_id = body.get("id")
        if body_id is None:
            raise FhirError.of(400, "invalid", f"{where}: the resource has no id; an update "
                               f"needs the id '{res_id}' in the body", [f"{res_type}.id"])
        if body_id != res_id:
            raise FhirError.of(400, "invalid", f"{where}: the body's id '{body_id}' differs "
                               f"from the id '{res_id}' in the URL", [f"{res_type}.id"])
        cur = await self.current(res_type, res_id)
        if if_match is not None:
            if cur is None:
                raise FhirError.of(412, "conflict",
                                   f"{where}: {res_type}/{res_id} does not exist (If-Match)")
            if cur.version != if_match:
                raise FhirError.of(412, "conflict",
                                   f"{where}: version conflict: {res_type}/{res_id} is at "
                                   f"version {cur.version}, not {if_match}; read it again "
                                   "and reapply your change")
        await self.resolve_references(body, where, rewrite)
        version = 1 if cur is None else cur.version + 1
        s = self._stage(res_type, res_id, body, method, version, cur.pk if cur else None)
        created = cur is None or cur.deleted
        return Outcome(201 if created else 200, res_type, res_id, version, self.now, s.content,
                       created=created)

    async def conditional_update(self, res_type: str, query: str, body: dict[str, Any],
                                 where: str, if_match: int | None = None) -> Outcome:
        validate_resource(body, res_type, self.full_validation)
        await self.lock(res_type, query)
        matches = await self.find(res_type, query)
        if len(matches) > 1:
            raise FhirError.of(412, "multiple-matches",
                               f"{where}: '{res_type}?{query}' matches more than one resource")
        if not matches:
            if body.get("id") is not None:
                return await self.update(res_type, body["id"], body, where, if_match, True)
            return await self.create(res_type, body, where, validated=True)
        rid = matches[0][1]
        if body.get("id") not in (None, rid):
            raise FhirError.of(400, "invalid", f"{where}: the body's id '{body.get('id')}' is "
                               f"not the id '{rid}' of the matching resource")
        body["id"] = rid
        return await self.update(res_type, rid, body, where, if_match, validated=True)

    async def patch(self, res_type: str, res_id: str, ops: Any, where: str,
                    if_match: int | None = None) -> Outcome:
        found = await reads.read_version(self.conn, res_type, res_id)
        if found is None or found.content is None:
            raise FhirError.of(404 if found is None else 410, "not-found",
                               f"{res_type}/{res_id} " + ("is not known" if found is None
                                                          else "has been deleted"))
        if if_match is not None and found.version != if_match:
            raise FhirError.of(412, "conflict", f"version conflict: {res_type}/{res_id} is at "
                               f"version {found.version}, not {if_match}")
        current_body = orjson.loads(found.content)
        try:
            patched = jsonpatch.apply_patch(current_body, ops)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError,
                ValueError) as exc:
            code = 409 if isinstance(exc, jsonpatch.JsonPatchTestFailed) else 422
            raise FhirError.of(code, "processing", f"{where}: the JSON Patch failed: {exc}") \
                from None
        if not isinstance(patched, dict) or patched.get("id") != res_id or \
                patched.get("resourceType") != res_type:
            raise FhirError.of(422, "processing",
                               f"{where}: a patch may not change resourceType or id")
        check_depth(patched, f"{where}: the patched resource")  # patches can nest deeper
        return await self.update(res_type, res_id, patched, where, found.version,
                                 method="PATCH")

    async def delete(self, res_type: str, res_id: str, where: str,
                     if_match: int | None = None) -> Outcome:
        cur = await self.current(res_type, res_id)
        if cur is None or cur.deleted:
            return Outcome(204, res_type, res_id, cur.version if cur else 0,
                           cur.last_updated if cur else self.now, None)
        if if_match is not None and cur.version != if_match:
            raise FhirError.of(412, "conflict", f"{where}: version conflict: {res_type}/{res_id}"
                               f" is at version {cur.version}, not {if_match}")
        self._stage(res_type, res_id, None, "DELETE", cur.version + 1, cur.pk, cur.patient_id)
        return Outcome(204, res_type, res_id, cur.version + 1, self.now, None)

    async def conditional_delete(self, res_type: str, query: str, where: str) -> Outcome:
        matches = await self.find(res_type, query)
        if len(matches) > 1:
            raise FhirError.of(412, "multiple-matches",
                               f"{where}: '{res_type}?{query}' matches more than one resource")
        if not matches:
            return Outcome(204, res_type, "", 0, self.now, None)
        return await self.delete(res_type, matches[0][1], where)

    async def verify_deletes(self) -> None:
        """After the flush: no live resource may still reference a resource this session
        deleted (HAPI's referential integrity on delete: 409 Conflict)."""
        if not self.referential_integrity:
            return
        gone = [(s.res_type, s.id) for s in self.staged if s.content is None]
        if not gone:
            return
        x = idx_reference
        for start in range(0, len(gone), 50):
            conds = [and_(x.c.target_type == t, x.c.target_id == i)
                     for t, i in gone[start:start + 50]]
            q = (select(resource.c.res_type, resource.c.id, x.c.target_type, x.c.target_id)
                 .select_from(x.join(resource, resource.c.pk == x.c.res_pk))
                 .where(~resource.c.deleted, or_(*conds)).limit(5))
            rows = list(await self.conn.execute(q))
            if rows:
                raise FhirError(409, [Issue("conflict", f"cannot delete {tt}/{ti}: {st}/{si} "
                                            "still references it") for st, si, tt, ti in rows])

    async def commit(self) -> None:
        """Write what is staged (idempotent: a second call writes nothing more)."""
        await self.verify_references()
        await flush(self.conn, self.staged)
        await self.verify_deletes()
        self.staged, self.refs = [], []


def _normal_query(query: str) -> str:
    return "&".join(sorted(f"{k}={v}" for k, v in parse_qsl(query, keep_blank_values=True)))

