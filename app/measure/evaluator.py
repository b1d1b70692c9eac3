"""Population membership as sets of patient ids, computed in the database.

Each retrieve is one SQL statement over the index tables (the search compiler's), run once per
evaluation and cached, so the populations of every Measure in a library share their retrieves;
`and`/`or`/`not` are set operations on the patient ids. Stratifier values come from one grouped
query per stratifier over the subject's patients, never from one evaluation per stratum.
"""

from __future__ import annotations

import calendar
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BinaryExpression
from sqlalchemy.sql.operators import in_op, not_in_op
from sqlalchemy.sql.util import ClauseAdapter

from app.fhir.definitions import PROFILES
from app.fhir.errors import FhirError
from app.fhir.search_params import clinical_dates, registry
from app.measure import fallback
from app.measure.criteria import Retrieve, clauses_for
from app.store.pklist import pk_in
from app.store.schema import (
    INDEX_TABLES,
    idx_date,
    idx_reference,
    idx_string,
    idx_token,
    resource,
    resource_version,
)
from app.store.search import CompileContext, Compiler, opaque, r, sort_expression
from app.store.terminology import expand

OPS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
        "<": operator.lt, "<=": operator.le}


@functools.cache
def evaluation_context() -> dict[str, Any]:
    """Where the context variables (%ageBand, %neighbourhoodTeam, %stratum) come from: data."""
    path: Path = PROFILES / "measures" / "evaluation-context.json"
    loaded: dict[str, Any] = orjson.loads(path.read_bytes())
    return loaded


def patient_rows(table: Any) -> ColumnElement[bool]:
    """`res_type = 'Patient'` on an index table (or its alias), as a literal: a look-up of a
    Patient's own rows then may use the partial index of those rows (migration 0005), which
    SQLite considers only for terms it can see, not for bound values."""
    return table.c.res_type == literal_column("'Patient'")


@dataclass
class Subject:
    """The patients an evaluation covers: one patient, a Group's members, a practitioner's
    panel, or everyone (None)."""

    kind: str  # all | patient | group | practitioner
    reference: str | None = None
    select: Select[Any] | None = None  # SQL selecting the patient ids (None: all patients)


def _index_select(pred: Any, negated: bool = False) -> Select[Any] | None:
    """The `SELECT res_pk FROM idx_x WHERE ...` of a predicate `r.pk IN (...)` (or, when
    `negated`, `r.pk NOT IN (...)`), else None."""
    op = not_in_op if negated else in_op
    if not isinstance(pred, BinaryExpression) or pred.operator is not op \
            or pred.left is not r.c.pk:
        return None
    sub = getattr(pred.right, "element", None)
    if not isinstance(sub, Select) or len(sub.selected_columns) != 1:
        return None
    col = sub.selected_columns[0]
    return sub if col.name == "res_pk" and getattr(col, "table", None) in INDEX_TABLES.values() \
        else None


def _probe(pred: Any, pk: Any) -> Any:
    """A clause about the resource `pk` as a correlated EXISTS probe of its index rows.
    `pk IN (SELECT res_pk ...)` would let SQLite build an ephemeral index of every row the
    sub-select matches (all Observation dates before the period's end) to drive from;
    EXISTS makes it look up the few rows of each candidate. PostgreSQL plans both alike."""
    for negated in (False, True):
        sub = _index_select(pred, negated)
        if sub is not None:
            # its own alias: the candidate may come from the same index table
            rows = sub.selected_columns[0].table.alias()
            sub = ClauseAdapter(rows).traverse(sub)
            probe = exists(sub.where(rows.c.res_pk == pk))
            return ~probe if negated else probe
    return _replace_r(pred, pk)


def _only_pk(expr: Any) -> bool:
    """Whether an expression over the search alias `r` reads nothing of it but `pk`."""
    return all(c is r.c.pk for c in visitors.iterate(expr) if isinstance(c, Column)
               and c.table is r)


def _replace_r(expr: ColumnElement[Any], pk: Any) -> ColumnElement[Any]:
    """An expression over the search alias with its pk replaced by another column."""
    def swap(el: Any) -> Any:
        if el is r.c.pk:
            return pk
        return None

    return visitors.replacement_traverse(expr, {}, swap)


@dataclass
class Evaluator:
    conn: AsyncConnection
    period: tuple[str, str]
    subject: Subject
    _valuesets: dict[str, list[tuple[str | None, str | None]]] = field(default_factory=dict)
    _ctes: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    _names: int = 0
    universe: Any = None  # the CTE of the subject's patients in the statement being built

    # -- the subject ------------------------------------------------------------------------

    async def universe_select(self) -> Select[Any]:
        """SELECT pid: the subject's patients."""
        q = select(r.c.id.label("pid")).where(r.c.res_type == "Patient", ~r.c.deleted)
        if self.subject.select is not None:
            q = q.where(r.c.id.in_(self.subject.select))
        return q

    def live_patient(self, pid: Any, exists_known: bool = False) -> list[ColumnElement[bool]]:
        """Tests that `pid` (a patient id found in index rows) is a live Patient of the
        subject, each a look-up per patient (the first unless `exists_known`)."""
        p = resource.alias("live")
        out = [] if exists_known else [opaque(exists().where(
            p.c.res_type == "Patient", p.c.id == pid, ~p.c.deleted))]
        if self.subject.kind == "patient" and self.subject.reference:
            out.append(pid == self.subject.reference.split("/", 1)[1])
        elif self.subject.select is not None:
            out.append(opaque(pid.in_(self._subject_patients())))
        return out

    def _subject_patients(self) -> Any:
        """SELECT of the subject's patients: the statement's universe CTE once there is one
        (a team's members are looked up once, not once per retrieve)."""
        if self.universe is not None:
            return select(self.universe.c.pid)
        return self.subject.select

    # -- retrieves --------------------------------------------------------------------------

    async def _where(self, res_type: str,
                     pairs: tuple[tuple[str, str], ...]) -> list[ColumnElement[bool]]:
        clauses = clauses_for(pairs, self.period)
        ctx = CompileContext(strict=True)
        for c in clauses:
            if c.modifier in ("in", "not-in"):
                for url in c.values:
                    if url not in self._valuesets:
                        self._valuesets[url] = await expand(self.conn, url)
                    ctx.valuesets[url] = self._valuesets[url]
        return Compiler(ctx).clause_list(res_type, clauses)

    async def _base(self, rv: Retrieve, within: Any = None) -> Select[Any]:
        """SELECT pk, patient_id of the resources matching the clauses (a resource may come
        more than once: one row per matching index row of the first clause).

        Index rows exist for live resources only and carry the compartment owner, so the
        statement starts from the first clause's index rows and checks the others by res_pk:
        no probe of the resource table per candidate. It goes through `resource` only when no
        clause can lead (all negated) or a clause reads its columns (`_id`, `_lastUpdated`)."""
        preds = await self._where(rv.res_type, rv.clauses)
        lead = next((p for p in preds if _index_select(p) is not None), None)
        # the patient filter first: SQLite tests the terms in order, and it is the cheap one
        if lead is None or not all(_only_pk(p) for p in preds):
            q = select(r.c.pk, r.c.patient_id).where(
                r.c.res_type == rv.res_type, ~r.c.deleted, r.c.patient_id.is_not(None),
                *self._owner_filter(r.c.patient_id, within), *preds)
        else:
            sub = _index_select(lead)
            assert sub is not None
            table = sub.selected_columns[0].table
            carried = [table.c.low, table.c.high] if table is idx_token else []
            q = sub.with_only_columns(table.c.res_pk.label("pk"), table.c.patient_id,
                                      *carried).where(
                table.c.patient_id.is_not(None),
                *self._owner_filter(table.c.patient_id, within),
                *[_probe(p, table.c.res_pk) for p in preds if p is not lead])
        return q

    def _owner_filter(self, owner: Any, within: Any) -> list[ColumnElement[bool]]:
        """The resources of the subject's patients (and of `within`'s, when given).

        One patient is an index condition. A set of patients is a hashed filter on the
        retrieve's own index range (`opaque`): planned as a join from row estimates the
        index tables cannot give, PostgreSQL would look up every code of a ValueSet for
        each patient of a team."""
        out = []
        if self.subject.kind == "patient" and self.subject.reference:
            out.append(owner == self.subject.reference.split("/", 1)[1])
        elif self.subject.select is not None and within is None:
            # (`within` holds patients of the subject only: one set to test is enough)
            out.append(opaque(owner.in_(self._subject_patients())))
        if within is not None:  # only these patients' resources matter
            out.append(opaque(owner.in_(select(within.c.pid))))
        return out

    def _shared(self, key: tuple[Any, ...], q: Select[Any]) -> Any:
        """One materialised CTE per distinct retrieve part, so that `%HbA1c.exists()` and
        the two `.where()`s on `%LastHbA1c` in one statement read the HbA1c rows once."""
        if key not in self._ctes:
            self._ctes[key] = q.cte(self.cte_name("m")).prefix_with("MATERIALIZED")
        return self._ctes[key]

    def new_statement(self) -> None:
        """Forget the retrieves of the last statement: a CTE serves the statement it is in."""
        self._ctes.clear()
        self.universe = None

    def cte_name(self, prefix: str) -> str:
        """A CTE name unique to this evaluator: its CTEs may meet in one statement."""
        self._names += 1
        return f"{prefix}{self._names}"

    async def matching(self, rv: Retrieve, within: Any = None) -> Select[Any]:
        """SELECT (pk, patient_id) of the resources a retrieve keeps (of the patients of the
        CTE `within` only, when given)."""
        base_key = (rv.res_type, rv.clauses, None if within is None else within.name)
        matches = self._ctes.get(base_key)
        if matches is None:
            everyone = self._ctes.get((rv.res_type, rv.clauses, None))
            if within is not None and everyone is not None:
                # read for every patient already in this statement (the initial population
                # needs an HbA1c, the numerator tests the last one): keep its rows of these
                q = select(*everyone.c).where(
                    opaque(everyone.c.patient_id.in_(select(within.c.pid))))
            else:
                q = await self._base(rv, within)
            matches = self._shared(base_key, q)
        if rv.latest is None:
            q = select(matches.c.pk, matches.c.patient_id)
        else:
            latest_key = (*base_key, rv.latest.name, rv.latest.descending)
            kept = self._ctes.get(latest_key)
            if kept is None:
                kept = self._shared(latest_key, self._latest(matches, rv))
            q = select(kept.c.pk, kept.c.patient_id)
            if rv.then:
                then = await self._where(rv.res_type, rv.then)
                if all(_only_pk(p) for p in then):
                    q = q.where(*[_probe(p, kept.c.pk) for p in then])
                else:
                    q = q.select_from(kept.join(r, r.c.pk == kept.c.pk)).where(*then)
        if rv.fhirpath:
            key = (*base_key, repr(rv.latest), rv.then, rv.fhirpath)
            if key not in self._ctes:
                passed = await self._fallback(q, rv)
                self._ctes[key] = self._shared(key, select(resource.c.pk, resource.c.patient_id)
                                               .where(pk_in(resource.c.pk, passed,
                                                            self.conn.dialect.name)))
            kept = self._ctes[key]
            q = select(kept.c.pk, kept.c.patient_id)
        return q

    async def _fallback(self, candidates: Select[Any], rv: Retrieve) -> list[int]:
        """The pks of the candidates (the resources the SQL part keeps, of the patients that
        matter) for which every FHIRPath conjunct of the retrieve is true."""
        urls = fallback.valuesets(rv.fhirpath)
        for url in urls - set(self._valuesets):
            self._valuesets[url] = await expand(self.conn, url)
        predicates = fallback.Predicates(rv.fhirpath, self.period,
                                         {u: self._valuesets[u] for u in urls})
        sub = candidates.subquery()
        v = resource_version
        q = (select(resource.c.pk, resource.c.id, v.c.content)
             .select_from(resource.join(v, and_(v.c.res_pk == resource.c.pk,
                                                v.c.version == resource.c.version)))
             .where(resource.c.pk.in_(select(sub.c.pk))))
        passed = []
        for pk, res_id, content in await self.conn.execute(q):
            try:
                keep = predicates.holds(orjson.loads(content))
            except ValueError as exc:
                raise FhirError.of(422, "processing", f"the Measure's criterion {exc}, on "
                                   f"{rv.res_type}/{res_id}") from None
            if keep:
                passed.append(pk)
        return passed

    def _latest(self, matches: Any, rv: Retrieve) -> Select[Any]:
        """Each patient's first match in the retrieve's sort order: sort values joined once
        (not a correlated sub-select per row), then ranked."""
        assert rv.latest is not None
        if "high" in matches.c and clinical_dates().get(rv.res_type) == rv.latest.name:
            # the token rows carry this date (the latest end, the earliest start): no look-up
            sort = matches.c.high if rv.latest.descending else matches.c.low
        else:
            sort = _replace_r(sort_expression(rv.res_type, rv.latest.name,
                                              rv.latest.descending), matches.c.pk)
        keyed = select(matches.c.pk, matches.c.patient_id, sort.label("s")).subquery()
        ordered = keyed.c.s.desc() if rv.latest.descending else keyed.c.s.asc()
        ranked = select(keyed.c.pk, keyed.c.patient_id, func.row_number().over(
            partition_by=keyed.c.patient_id, order_by=[keyed.c.s.is_(None), ordered,
                                                       keyed.c.pk.desc()]
        ).label("rn")).subquery()
        return select(ranked.c.pk, ranked.c.patient_id).where(ranked.c.rn == 1)

    async def counts_select(self, rv: Retrieve, within: Any = None) -> Select[Any]:
        """SELECT pid, n: per patient, the number of resources the retrieve keeps."""
        sub = (await self.matching(rv, within)).subquery()
        return select(sub.c.patient_id.label("pid"),
                      func.count(sub.c.pk.distinct()).label("n")).group_by(sub.c.patient_id)

    async def resources_of(self, rv: Retrieve, patient_id: str) -> list[str]:
        """`Type/id` of the resources a retrieve keeps for one patient (evaluatedResource)."""
        sub = (await self.matching(rv)).subquery()
        q = (select(resource.c.res_type, resource.c.id)
             .where(resource.c.pk.in_(select(sub.c.pk).where(sub.c.patient_id == patient_id))))
        return [f"{row[0]}/{row[1]}" for row in await self.conn.execute(q)]

    # -- stratifier values ------------------------------------------------------------------

    def value_source(self, variable: str) -> ValueSource:
        """Where a stratifier's values come from: a context variable or `Patient.<param>`."""
        ctx = evaluation_context()
        if variable == "ageBand":
            return self._age_bands(ctx["ageBands"])
        if variable.startswith("Patient."):
            return self._patient_param(variable.split(".", 1)[1])
        if variable in ctx.get("groups", {}):
            return self._group_values(ctx["groups"][variable])
        raise FhirError.of(400, "not-supported", f"no stratifier value '%{variable}'")

    def _subject_filter(self, column: Any) -> list[ColumnElement[bool]]:
        return [column.in_(self.subject.select)] if self.subject.select is not None else []

    def _patient_param(self, code: str) -> ValueSource:
        sp = registry().get("Patient", code)
        if sp is None:
            raise FhirError.of(400, "not-supported", f"Patient has no parameter '{code}'")
        name = sp.index_params()[0]
        table, col = {"token": (idx_token, "code"), "string": (idx_string, "exact"),
                      "date": (idx_date, "low"), "reference": (idx_reference, "target_id")}.get(
            sp.type, (idx_token, "code"))
        column = table.c[col]
        where = (table.c.res_type == "Patient", table.c.param == name)
        return ValueSource(
            select(table.c.patient_id.label("pid"), column.label("v")).where(
                *where, *self._subject_filter(table.c.patient_id)),
            select(column).distinct().where(*where).order_by(column),
            lambda v: select(table.c.patient_id).where(*where, column == v))

    def _age_bands(self, bands: list[dict[str, Any]]) -> ValueSource:
        """A patient is at least N years old at the end of the period when born before the
        day after the end less N years (29 February counts as 28 February in a common
        year)."""
        end = date.fromisoformat(self.period[1])

        def born_before(years: int) -> int:
            y = end.year - years
            last = calendar.monthrange(y, end.month)[1]
            day = date(y, end.month, min(end.day, last)).toordinal() + 1
            return (day - _EPOCH) * 86_400_000_000

        cuts = {b["label"]: (born_before(b["min"]), None if b.get("max") is None
                             else born_before(b["max"] + 1)) for b in bands}
        d = idx_date

        def in_band(born: Any, label: str) -> ColumnElement[bool]:
            lo, hi = cuts[label]
            return and_(born < lo, *([] if hi is None else [born >= hi]))

        def members(label: str) -> Select[Any]:
            return select(d.c.patient_id).where(
                d.c.res_type == "Patient", d.c.param == "birthdate", in_band(d.c.low, label))

        def band_of(pid: Any) -> ColumnElement[Any]:
            """The band of the patient's birth date, one look-up in the partial index of
            Patients' own dates, rather than hashing every patient of the region into one
            set per band."""
            own = idx_date.alias("birth")
            born = func.min(own.c.low)
            return select(case(*[(in_band(born, label), literal(label)) for label in cuts],
                               else_=literal(None))).where(
                own.c.patient_id == pid, patient_rows(own),
                own.c.param == "birthdate").scalar_subquery()

        return ValueSource(None, list(cuts), members, scalar=band_of)

    def _group_values(self, spec: dict[str, Any]) -> ValueSource:
        """Membership of Groups selected by an identifier or code system: the patient's value
        is that Group's identifier value (or code)."""
        x, t = idx_reference, idx_token
        param = "identifier" if "identifierSystem" in spec else "code"
        system = spec.get("identifierSystem") or spec.get("codeSystem")
        groups = (t.c.res_type == "Group", t.c.param == param, t.c.system == system,
                  *([t.c.code.in_(spec["codes"])] if spec.get("codes") else []))
        member = (x.c.res_type == "Group", x.c.param == "member", x.c.target_type == "Patient")

        return ValueSource(
            select(x.c.target_id.label("pid"), t.c.code.label("v"))
            .select_from(x.join(t, t.c.res_pk == x.c.res_pk))
            .where(*member, *groups, *self._subject_filter(x.c.target_id)),
            select(t.c.code).distinct().where(*groups).order_by(t.c.code),
            # no res_type term on the members: res_pk implies it, and without it SQLite
            # reads the members of these Groups only, not every Group's
            lambda v: select(x.c.target_id).where(
                x.c.res_pk.in_(select(t.c.res_pk).where(*groups, t.c.code == v)),
                *member[1:]),
            spec.get("default"),  # e.g. "none": outside every Group of this axis
            spec.get("codes"))


@dataclass
class ValueSource:
    """A stratifier's values: `rows` (pid, v) lists every value of every patient, `values`
    the distinct values in order (a query, or known), `members(v)` the patients with v.
    `order`, when known, ranks the values: a patient with several (in two stratum Groups)
    has the first."""

    rows: Select[Any] | None
    values: Select[Any] | list[str]
    members: Callable[[Any], Select[Any]]
    default: str | None = None
    order: list[str] | None = None
    scalar: Callable[[Any], ColumnElement[Any]] | None = None  # the value of one patient


_EPOCH = date(1970, 1, 1).toordinal()
