"""Population membership as sets of patient ids, computed in the database.

Each retrieve is one SQL statement over the index tables (the search compiler's), run once per
evaluation and cached, so the populations of every Measure in a library share their retrieves;
`and`/`or`/`not` are set operations on the patient ids. Stratifier values come from one grouped
query per stratifier over the subject's patients, never from one evaluation per stratum.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.definitions import PROFILES
from app.fhir.errors import FhirError
from app.fhir.search_params import registry
from app.measure.criteria import And, Count, Has, Not, Or, Retrieve, clauses_for
from app.store.schema import idx_date, idx_reference, idx_string, idx_token, resource
from app.store.search import CompileContext, Compiler, r, sort_expression
from app.store.terminology import expand

_OPS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
        "<": operator.lt, "<=": operator.le}


@functools.cache
def evaluation_context() -> dict[str, Any]:
    """Where the context variables (%ageBand, %neighbourhoodTeam, %stratum) come from: data."""
    path: Path = PROFILES / "measures" / "evaluation-context.json"
    loaded: dict[str, Any] = orjson.loads(path.read_bytes())
    return loaded


@dataclass
class Subject:
    """The patients an evaluation covers: one patient, a Group's members, a practitioner's
    panel, or everyone (None)."""

    kind: str  # all | patient | group | practitioner
    reference: str | None = None
    select: Select[Any] | None = None  # SQL selecting the patient ids (None: all patients)


def _replace_r(expr: Any, pk: Any) -> Any:
    """The sort expression with the search alias' pk replaced by another column."""
    from sqlalchemy.sql import visitors

    def swap(el: Any) -> Any:
        if el is r.c.pk:
            return pk
        return None

    return visitors.replacement_traverse(expr, {}, swap)


def _key(rv: Retrieve) -> tuple[Any, ...]:
    latest = (rv.latest.name, rv.latest.descending) if rv.latest else None
    return (rv.res_type, rv.clauses, latest, rv.then)


@dataclass
class Evaluator:
    conn: AsyncConnection
    period: tuple[str, str]
    subject: Subject
    _retrieved: dict[tuple[Any, ...], set[str]] = field(default_factory=dict)
    _counts: dict[tuple[Any, ...], dict[str, int]] = field(default_factory=dict)
    _valuesets: dict[str, list[tuple[str | None, str | None]]] = field(default_factory=dict)
    _universe: set[str] | None = None
    _strata: dict[str, dict[str, str]] = field(default_factory=dict)

    # -- the subject ------------------------------------------------------------------------

    async def universe(self) -> set[str]:
        if self._universe is None:
            q = select(r.c.id).where(r.c.res_type == "Patient", ~r.c.deleted)
            if self.subject.select is not None:
                q = q.where(r.c.id.in_(self.subject.select))
            self._universe = {row[0] for row in await self.conn.execute(q)}
        return self._universe

    # -- retrieves --------------------------------------------------------------------------

    async def _where(self, res_type: str,
                     pairs: tuple[tuple[str, str], ...]) -> ColumnElement[bool]:
        clauses = clauses_for(pairs, self.period)
        ctx = CompileContext(strict=True)
        for c in clauses:
            if c.modifier in ("in", "not-in"):
                for url in c.values:
                    if url not in self._valuesets:
                        self._valuesets[url] = await expand(self.conn, url)
                    ctx.valuesets[url] = self._valuesets[url]
        return Compiler(ctx).clauses(res_type, clauses)

    async def _base(self, rv: Retrieve) -> Select[Any]:
        where = await self._where(rv.res_type, rv.clauses)
        q = select(r.c.pk, r.c.patient_id).where(
            r.c.res_type == rv.res_type, ~r.c.deleted, r.c.patient_id.is_not(None), where)
        if self.subject.select is not None:
            q = q.where(r.c.patient_id.in_(self.subject.select))
        return q

    async def matching(self, rv: Retrieve) -> Select[Any]:
        """SELECT (pk, patient_id) of the resources a retrieve keeps."""
        base = await self._base(rv)
        if rv.latest is None:
            return base
        # sort values joined once (not a correlated sub-select per row), then ranked
        # MATERIALIZED: compute the matches once; SQLite would otherwise re-run the index
        # semi-joins for every row the window function reads
        matches = base.cte(f"m{len(self._retrieved) + len(self._counts)}").prefix_with(
            "MATERIALIZED")
        sort = sort_expression(rv.res_type, rv.latest.name, rv.latest.descending)
        keyed = select(matches.c.pk, matches.c.patient_id,
                       _replace_r(sort, matches.c.pk).label("s")).subquery()
        ordered = keyed.c.s.desc() if rv.latest.descending else keyed.c.s.asc()
        ranked = select(keyed.c.pk, keyed.c.patient_id, func.row_number().over(
            partition_by=keyed.c.patient_id, order_by=[keyed.c.s.is_(None), ordered,
                                                       keyed.c.pk.desc()]
        ).label("rn")).subquery()
        q = select(ranked.c.pk, ranked.c.patient_id).where(ranked.c.rn == 1)
        if rv.then:
            then = await self._where(rv.res_type, rv.then)
            kept = q.subquery()
            q = select(kept.c.pk, kept.c.patient_id).select_from(
                kept.join(r, r.c.pk == kept.c.pk)).where(then)
        return q

    async def patients_of(self, rv: Retrieve) -> set[str]:
        key = _key(rv)
        if key not in self._retrieved:
            sub = (await self.matching(rv)).subquery()
            rows = await self.conn.execute(select(sub.c.patient_id).distinct())
            self._retrieved[key] = {row[0] for row in rows}
        return self._retrieved[key]

    async def counts_of(self, rv: Retrieve) -> dict[str, int]:
        key = _key(rv)
        if key not in self._counts:
            sub = (await self.matching(rv)).subquery()
            rows = await self.conn.execute(
                select(sub.c.patient_id, func.count()).group_by(sub.c.patient_id))
            self._counts[key] = {row[0]: int(row[1]) for row in rows}
        return self._counts[key]

    async def resources_of(self, rv: Retrieve, patient_id: str) -> list[str]:
        """`Type/id` of the resources a retrieve keeps for one patient (evaluatedResource)."""
        sub = (await self.matching(rv)).subquery()
        q = (select(resource.c.res_type, resource.c.id)
             .where(resource.c.pk.in_(select(sub.c.pk).where(sub.c.patient_id == patient_id))))
        return [f"{row[0]}/{row[1]}" for row in await self.conn.execute(q)]

    # -- patient plans ----------------------------------------------------------------------

    async def patients(self, plan: Any) -> set[str]:
        if isinstance(plan, Has):
            return await self.patients_of(plan.source) & await self.universe()
        if isinstance(plan, Count):
            counts = await self.counts_of(plan.source)
            test = _OPS[plan.op]
            hits = {p for p, n in counts.items() if test(n, plan.n)}
            if test(0, plan.n):  # "count() < 3" includes patients with none
                hits |= await self.universe() - set(counts)
            return hits & await self.universe()
        if isinstance(plan, And):
            out = await self.patients(plan.parts[0])
            for part in plan.parts[1:]:
                out = out & await self.patients(part)
            return out
        if isinstance(plan, Or):
            out = set()
            for part in plan.parts:
                out |= await self.patients(part)
            return out
        if isinstance(plan, Not):
            return await self.universe() - await self.patients(plan.part)
        if isinstance(plan, Retrieve):
            return await self.patients_of(plan) & await self.universe()
        raise FhirError.of(500, "exception", f"unknown plan {type(plan).__name__}")

    # -- stratifier values ------------------------------------------------------------------

    async def values(self, variable: str) -> dict[str, str]:
        """patient id -> stratum value for a context variable or `Patient.<param>`."""
        if variable in self._strata:
            return self._strata[variable]
        ctx = evaluation_context()
        if variable in ("ageBand",):
            out = await self._age_bands(ctx["ageBands"])
        elif variable == "sex":
            out = await self._patient_param("gender")
        elif variable.startswith("Patient."):
            out = await self._patient_param(variable.split(".", 1)[1])
        elif variable in ctx.get("groups", {}):
            out = await self._group_values(ctx["groups"][variable])
        else:
            raise FhirError.of(400, "not-supported", f"no stratifier value '%{variable}'")
        self._strata[variable] = out
        return out

    def _subject_filter(self, column: Any) -> list[ColumnElement[bool]]:
        return [column.in_(self.subject.select)] if self.subject.select is not None else []

    async def _patient_param(self, code: str) -> dict[str, str]:
        sp = registry().get("Patient", code)
        if sp is None:
            raise FhirError.of(400, "not-supported", f"Patient has no parameter '{code}'")
        name = sp.index_params()[0]
        table, col = {"token": (idx_token, "code"), "string": (idx_string, "exact"),
                      "date": (idx_date, "low"), "reference": (idx_reference, "target_id")}.get(
            sp.type, (idx_token, "code"))
        q = select(table.c.patient_id, func.min(table.c[col])).where(
            table.c.res_type == "Patient", table.c.param == name,
            *self._subject_filter(table.c.patient_id)).group_by(table.c.patient_id)
        return {row[0]: str(row[1]) for row in await self.conn.execute(q)}

    async def _age_bands(self, bands: list[dict[str, Any]]) -> dict[str, str]:
        end = date.fromisoformat(self.period[1])
        q = select(idx_date.c.patient_id, func.min(idx_date.c.low)).where(
            idx_date.c.res_type == "Patient", idx_date.c.param == "birthdate",
            *self._subject_filter(idx_date.c.patient_id)).group_by(idx_date.c.patient_id)
        out: dict[str, str] = {}
        epoch = date(1970, 1, 1).toordinal()
        for pid, low in await self.conn.execute(q):
            born = date.fromordinal(epoch + int(low) // 86_400_000_000)
            age = end.year - born.year - ((end.month, end.day) < (born.month, born.day))
            for band in bands:
                if band["min"] <= age and (band.get("max") is None or age <= band["max"]):
                    out[pid] = band["label"]
                    break
        return out

    async def _group_values(self, spec: dict[str, Any]) -> dict[str, str]:
        """Membership of Groups selected by an identifier or code system: the patient's value
        is that Group's identifier value (or code)."""
        x, t = idx_reference, idx_token
        param = "identifier" if "identifierSystem" in spec else "code"
        system = spec.get("identifierSystem") or spec.get("codeSystem")
        q = (select(x.c.target_id, func.min(t.c.code))
             .select_from(x.join(t, and_(t.c.res_pk == x.c.res_pk)))
             .where(x.c.res_type == "Group", x.c.param == "member",
                    x.c.target_type == "Patient", t.c.res_type == "Group",
                    t.c.param == param, t.c.system == system,
                    *([t.c.code.in_(spec["codes"])] if spec.get("codes") else []),
                    x.c.res_pk.in_(select(resource.c.pk).where(~resource.c.deleted,
                                                               resource.c.res_type == "Group")),
                    *self._subject_filter(x.c.target_id))
             .group_by(x.c.target_id))
        out = {row[0]: str(row[1]) for row in await self.conn.execute(q)}
        if spec.get("default"):  # e.g. "none": outside every Group of this axis
            for pid in await self.universe():
                out.setdefault(pid, spec["default"])
        return out
