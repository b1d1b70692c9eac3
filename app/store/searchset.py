"""Run a parsed search: one page of matches (keyset paging), the total, and includes."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import ColumnElement, and_, func, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.definitions import patient_compartment
from app.fhir.errors import FhirError, Issue
from app.fhir.query import Include, ParsedQuery
from app.fhir.search_params import registry
from app.fhir.validation import CONTROL_CHARS
from app.store.schema import idx_reference, resource, resource_version
from app.store.search import (
    CompileContext,
    Compiler,
    keyset_condition,
    order_by,
    r,
    sort_expression,
)

MAX_INCLUDED = 10_000
_v = resource_version


@dataclass(slots=True)
class Hit:
    pk: int
    res_type: str
    id: str
    content: bytes


@dataclass
class SearchPage:
    matches: list[Hit]
    included: list[Hit] = field(default_factory=list)
    total: int | None = None
    next_cursor: str | None = None
    prev_cursor: str | None = None
    warnings: list[Issue] = field(default_factory=list)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode_cursor(token: str) -> list[Any]:
    try:
        values = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise FhirError.of(400, "invalid", "the paging cursor is not valid") from None
    if not isinstance(values, list) or not values or not isinstance(values[-1], int) or any(
            isinstance(v, int) and not -(2**63) <= v < 2**63 for v in values):
        raise FhirError.of(400, "invalid", "the paging cursor is not valid")
    return values


def _fits(value: Any, expr: ColumnElement[Any]) -> bool:
    """A cursor value has the type of its sort key (a forged cursor must not reach SQL)."""
    if value is None:
        return True
    if isinstance(value, bool) or isinstance(value, str) and CONTROL_CHARS.search(value):
        return False
    try:
        py = expr.type.python_type
    except NotImplementedError:
        return False
    return isinstance(value, int | float) if py is float else isinstance(value, py)


def compile_where(res_type: str | None, pq: ParsedQuery,
                  ctx: CompileContext) -> ColumnElement[bool]:
    if res_type is None:
        if pq.clauses:
            raise FhirError.of(400, "not-supported", "search across all types takes no criteria")
        return true()
    return Compiler(ctx).clauses(res_type, pq.clauses)


def _of_type(res_type: str | None) -> ColumnElement[bool]:
    return r.c.res_type == res_type if res_type is not None else true()


async def count(conn: AsyncConnection, res_type: str | None, where: ColumnElement[bool],
                extra: ColumnElement[bool] | None = None) -> int:
    q = select(func.count()).select_from(r).where(_of_type(res_type), ~r.c.deleted, where)
    if extra is not None:
        q = q.where(extra)
    return int((await conn.execute(q)).scalar() or 0)


async def run_search(conn: AsyncConnection, res_type: str | None, pq: ParsedQuery,
                     ctx: CompileContext, page_size: int,
                     extra: ColumnElement[bool] | None = None) -> SearchPage:
    if pq.summary == "count" or page_size == 0:
        where = compile_where(res_type, pq, ctx)
        if extra is not None:
            where = and_(where, extra)
        return SearchPage([], total=await count(conn, res_type, where), warnings=ctx.warnings)
    if res_type is None and pq.sort:
        raise FhirError.of(400, "not-supported", "_sort needs a resource type")
    keys = [(sort_expression(res_type, s.name, s.descending), s.descending)
            for s in pq.sort] if res_type is not None else []
    backwards = pq.direction == "prev"
    cond: ColumnElement[bool] = true()
    if pq.cursor:
        values = decode_cursor(pq.cursor)
        if len(values) != len(keys) + 1 or not all(
                _fits(v, k) for v, (k, _) in zip(values, keys, strict=False)):
            raise FhirError.of(400, "invalid", "the paging cursor does not fit this search")
        cond = keyset_condition(keys, values[:-1], values[-1], backwards)
        if not keys:
            ctx.pk_after, ctx.pk_before = (None, values[-1]) if backwards else (values[-1], None)
    where = compile_where(res_type, pq, ctx)
    if extra is not None:
        where = and_(where, extra)
    labels = [k.label(f"k{i}") for i, (k, _) in enumerate(keys)]
    q = (
        select(r.c.pk, r.c.res_type, r.c.id, _v.c.content, *labels)
        .select_from(r.join(_v, and_(_v.c.res_pk == r.c.pk, _v.c.version == r.c.version)))
        .where(_of_type(res_type), ~r.c.deleted, where, cond)
        .order_by(*order_by(keys, backwards))
        .limit(page_size + 1)
    )
    rows = list(await conn.execute(q))
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()
    page = SearchPage([Hit(row[0], row[1], row[2], row[3]) for row in rows],
                      warnings=ctx.warnings)
    if rows:
        first, last = rows[0], rows[-1]
        nk = len(keys)
        has_next = more if not backwards else True
        has_prev = (pq.cursor is not None) if not backwards else more
        if has_next:
            page.next_cursor = encode_cursor([*last[4:4 + nk], last[0]])
        if has_prev:
            page.prev_cursor = encode_cursor([*first[4:4 + nk], first[0]])
    if pq.total == "accurate" or (pq.total in (None, "estimate") and not pq.cursor):
        if not more and not pq.cursor:
            page.total = len(rows)
        else:
            if ctx.pk_after is not None or ctx.pk_before is not None:
                ctx.pk_after = ctx.pk_before = None  # the total counts every page
                where = compile_where(res_type, pq, ctx)
                if extra is not None:
                    where = and_(where, extra)
            page.total = await count(conn, res_type, where)
    if pq.includes and page.matches:
        page.included = await includes(conn, page.matches, pq.includes)
    return page


async def _select_hits(conn: AsyncConnection, q: Any) -> list[Hit]:
    return [Hit(*row) for row in await conn.execute(q)]


async def includes(conn: AsyncConnection, matches: list[Hit], specs: list[Include],
                   outside_compartment: str | None = None) -> list[Hit]:
    """Resources the matches reference (_include) or that reference them (_revinclude);
    `outside_compartment` skips targets already in that Patient's compartment ($everything)."""
    seen = {h.pk for h in matches}
    out: list[Hit] = []
    frontier = matches
    first = True
    for _ in range(5):
        new: list[Hit] = []
        for inc in specs:
            if not first and not inc.iterate:
                continue
            new += await _one_include(conn, frontier, inc, outside_compartment)
        fresh = []
        for h in new:
            if h.pk not in seen:
                seen.add(h.pk)
                fresh.append(h)
        out += fresh
        if not fresh or len(out) >= MAX_INCLUDED or not any(i.iterate for i in specs):
            break
        frontier = fresh
        first = False
    return out[:MAX_INCLUDED]


async def _one_include(conn: AsyncConnection, frontier: list[Hit], inc: Include,
                       outside_compartment: str | None = None) -> list[Hit]:
    x = idx_reference
    t = resource.alias("t")
    if not inc.reverse:
        anywhere = inc.source_type == "*"
        sources = [h.pk for h in frontier if anywhere or h.res_type == inc.source_type]
        if not sources:
            return []
        if not anywhere and inc.param != "*" and \
                registry().get(inc.source_type, inc.param) is None:
            raise FhirError.of(400, "invalid",
                               f"_include: {inc.source_type} has no parameter '{inc.param}'")
        q = (
            select(t.c.pk)
            .select_from(x.join(t, and_(t.c.res_type == x.c.target_type,
                                        t.c.id == x.c.target_id)))
            .where(x.c.res_pk.in_(sources), ~t.c.deleted)
        )
        if not anywhere:
            q = q.where(x.c.res_type == inc.source_type)
        if outside_compartment is not None:
            # $everything: follow references to types that are never in a Patient's
            # compartment (Practitioner, Organization, Medication, Location, ...); the
            # compartment's own resources are already in the result
            q = q.where(x.c.target_type.not_in(sorted(compartment_types())))
        if inc.param != "*":
            q = q.where(_param_filter(inc.source_type, inc.param))
        if inc.target_type:
            q = q.where(x.c.target_type == inc.target_type)
        return await _with_content(conn, q)
    if registry().get(inc.source_type, inc.param) is None and inc.param != "*":
        raise FhirError.of(400, "invalid",
                           f"_revinclude: {inc.source_type} has no parameter '{inc.param}'")
    hits: list[Hit] = []
    by_type: dict[str, list[str]] = {}
    for h in frontier:
        by_type.setdefault(h.res_type, []).append(h.id)
    for target_type, ids in by_type.items():
        if inc.target_type and inc.target_type != target_type:
            continue
        q = (
            select(t.c.pk)
            .select_from(x.join(t, t.c.pk == x.c.res_pk))
            .where(x.c.res_type == inc.source_type, x.c.target_type == target_type,
                   x.c.target_id.in_(ids), ~t.c.deleted)
        )
        if inc.param != "*":
            q = q.where(_param_filter(inc.source_type, inc.param))
        hits += await _with_content(conn, q)
    return hits


async def _with_content(conn: AsyncConnection, pks: Any) -> list[Hit]:
    """The resources whose pks a query selects, with their current JSON: de-duplicated on
    the key before the (large) content is fetched."""
    t = resource.alias("t")
    wanted = pks.distinct().limit(MAX_INCLUDED).subquery()
    q = (select(t.c.pk, t.c.res_type, t.c.id, _v.c.content)
         .select_from(t.join(_v, and_(_v.c.res_pk == t.c.pk, _v.c.version == t.c.version)))
         .where(t.c.pk.in_(select(wanted.c.pk))))
    return await _select_hits(conn, q)


def compartment_types() -> frozenset[str]:
    return frozenset(patient_compartment()) | {"Patient"}


def _param_filter(res_type: str, param: str) -> ColumnElement[bool]:
    """Index rows of a reference parameter, through its alias if it is one."""
    sp = registry().get(res_type, param)
    x = idx_reference
    if sp is None:
        return x.c.param == param
    cond = x.c.param.in_(sp.index_params())
    return and_(cond, x.c.target_type == sp.target_filter) if sp.target_filter else cond
