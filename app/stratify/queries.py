"""The SQL behind the per-patient facts: one statement per kind of fact over the index tables,
for a list of patients or for everyone, never a load of resource JSON and never FHIRPath per
patient. Every index row carries its compartment owner (`patient_id`).

Here: demographics (Patient `birthdate`, `gender`, `deceased`), team membership (`member` rows of
the team Groups), conditions (Condition `code` with `clinical-status`, `abatement-date` and a
`verification-status` exclusion on the same `res_pk`), encounters (`class` with `date`), and the
shared plumbing; `observations.py` (latest lab results, coded answers) and `medicines.py` (active
medicines) use it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    exists,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.pklist import pk_in
from app.store.schema import idx_date, idx_reference, idx_token, resource

DAY_US = 86_400_000_000
ACTIVE_CLINICAL = ("active", "recurrence", "relapse")
NOT_CONDITIONS = ("refuted", "entered-in-error")
BAD_OBSERVATION = ("entered-in-error", "cancelled")
BAD_ENCOUNTER = ("entered-in-error", "cancelled")
BAD_DISPENSE = ("entered-in-error", "cancelled", "declined")


@dataclass(frozen=True, slots=True)
class Window:
    """The reference date: `start`/`end` are its first and last microsecond (UTC)."""

    day: date

    @property
    def start(self) -> int:
        return (
            int(datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC).timestamp())
            * 1_000_000
        )

    @property
    def end(self) -> int:
        return self.start + DAY_US - 1

    def since(self, days: int) -> int:
        return self.start - days * DAY_US


@dataclass(slots=True)
class Demographics:
    birth: int | None = None  # epoch us of the birth date
    gender: str | None = None
    deceased: bool = False
    teams: list[str] = field(default_factory=list)


def scope(col: Any, ids: list[str] | None) -> ColumnElement[bool]:
    return col.in_(ids) if ids is not None else true()


@dataclass(frozen=True, slots=True)
class Scope:
    """A batch of patients and, per resource type, the pks of their resources."""

    ids: list[str]
    pks: dict[str, list[int]]
    dialect: str = "sqlite"


SCOPED_TYPES = (
    "Condition",
    "Observation",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationDispense",
    "Encounter",
)


async def patient_scope(conn: AsyncConnection, ids: list[str]) -> Scope:
    """The resources of the patients' compartments, listed first: with the pks spelled out,
    every fact query starts from them (index on res_pk), whatever the code, on both databases.
    (A sub-select is planned from the codes instead: SQLite walks all resources of the type,
    PostgreSQL under-estimates `status = active` by 30x.)"""
    r = resource
    q = select(r.c.res_type, r.c.pk).where(
        r.c.patient_id.in_(ids), r.c.res_type.in_(SCOPED_TYPES), ~r.c.deleted
    )
    pks: dict[str, list[int]] = {t: [] for t in SCOPED_TYPES}
    for res_type, pk in await conn.execute(q):
        pks[res_type].append(pk)
    return Scope(ids, pks, conn.dialect.name)


def owned(table: Any, res_type: str, scope: Scope | None) -> ColumnElement[bool]:
    """Rows of the scope's resources of `res_type` (every row when no scope)."""
    if scope is None:
        return true()
    return pk_in(table.c.res_pk, scope.pks[res_type], scope.dialect)


def coded(col: Any, values: Iterable[str], scope: Scope | None) -> ColumnElement[bool]:
    """`col IN values`; for a scope, written so that SQLite does not start from the code index
    (every row with the code, all patients) instead of the scope's pks."""
    listed = sorted(set(values))
    out: ColumnElement[bool] = (col if scope is None else col.concat("")).in_(listed)
    return out


def follow(table: Any, res_type: str, param: str) -> ColumnElement[bool]:
    """Join conditions for an index row reached from another one by `res_pk`: the `|| ''`
    keeps SQLite from starting the join at this table's (res_type, param) index, which would
    read every row of the parameter (all Observation dates) instead of following the codes."""
    return and_(table.c.res_type.concat("") == res_type, table.c.param.concat("") == param)


def reached(conn: AsyncConnection, table: Any, res_type: str, param: str) -> ColumnElement[bool]:
    """`follow` on SQLite, plain conditions on PostgreSQL, for an index row that should be
    reached from another one (a status) rather than drive the plan: PostgreSQL already
    starts from the other row, and keeps (res_pk, res_type, param) as the index condition."""
    if conn.dialect.name == "sqlite":
        return follow(table, res_type, param)
    return and_(table.c.res_type == res_type, table.c.param == param)


def between(col: Any, low: int, high: int) -> ColumnElement[bool]:
    """A date range that must not drive the plan: `col + 0` keeps SQLite (which has no
    statistics here) from scanning every dated row of the window instead of starting from the
    codes or the patients."""
    return and_(col + 0 >= low, col + 0 <= high)


def status_not(table: Any, res_type: str, codes: Iterable[str]) -> ColumnElement[bool]:
    """Not a resource with one of these statuses. An uncorrelated `NOT IN`: the few resources
    entered in error or cancelled are listed once (a hashed subplan on PostgreSQL, an
    ephemeral index on SQLite), instead of one index probe per row."""
    s = idx_token.alias("st_x")
    bad = select(s.c.res_pk).where(
        s.c.res_type == res_type, s.c.param == "status", s.c.code.in_(list(codes))
    )
    out: ColumnElement[bool] = table.c.res_pk.not_in(bad)
    return out


def age_on(birth_us: int, day: date) -> int:
    b = datetime.fromtimestamp(birth_us / 1_000_000, UTC).date()
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


# -- demographics and teams ------------------------------------------------------------------


async def demographics(
    conn: AsyncConnection, ids: list[str] | None, team_system: str | None
) -> dict[str, Demographics]:
    r = resource
    bd = idx_date.alias("bd")
    g = idx_token.alias("g")
    dec = idx_token.alias("dec")
    q = (
        select(r.c.id, bd.c.low, g.c.code, dec.c.code)
        .select_from(
            r.outerjoin(
                bd,
                and_(bd.c.res_pk == r.c.pk, bd.c.res_type == "Patient", bd.c.param == "birthdate"),
            )
            .outerjoin(
                g, and_(g.c.res_pk == r.c.pk, g.c.res_type == "Patient", g.c.param == "gender")
            )
            .outerjoin(
                dec,
                and_(
                    dec.c.res_pk == r.c.pk, dec.c.res_type == "Patient", dec.c.param == "deceased"
                ),
            )
        )
        .where(r.c.res_type == "Patient", ~r.c.deleted, scope(r.c.id, ids))
    )
    out: dict[str, Demographics] = {}
    for pid, birth, gender, deceased in await conn.execute(q):
        d = out.setdefault(pid, Demographics())
        d.birth = birth if birth is not None else d.birth
        d.gender = gender or d.gender
        d.deceased = d.deceased or deceased == "true"
    if team_system:
        for pid, team in await team_members(conn, team_system, ids):
            if pid in out:
                out[pid].teams.append(team)
    return out


async def assessed_patients(conn: AsyncConnection) -> set[str]:
    """Patients with a current engine RiskAssessment (`stratum-*`), from its `subject` rows."""
    ref, r = idx_reference, resource
    q = (
        select(ref.c.target_id)
        .select_from(ref.join(r, r.c.pk == ref.c.res_pk))
        .where(
            ref.c.res_type == "RiskAssessment",
            ref.c.param == "subject",
            ref.c.target_type == "Patient",
            r.c.id.startswith("stratum-"),
            ~r.c.deleted,
        )
    )
    return {row[0] for row in await conn.execute(q)}


async def team_groups(conn: AsyncConnection, team_system: str) -> list[str]:
    """Ids of the live neighbourhood-team Groups."""
    t, g = idx_token, resource
    q = (
        select(g.c.id)
        .select_from(t.join(g, g.c.pk == t.c.res_pk))
        .where(
            t.c.res_type == "Group",
            t.c.param == "identifier",
            t.c.system == team_system,
            ~g.c.deleted,
        )
    )
    return sorted({row[0] for row in await conn.execute(q)})


async def team_members(
    conn: AsyncConnection, team_system: str, ids: list[str] | None
) -> list[tuple[str, str]]:
    """(patient id, team Group id) for the neighbourhood-team Groups."""
    m, grp, ident = idx_reference, resource, idx_token
    teams = select(ident.c.res_pk).where(
        ident.c.res_type == "Group", ident.c.param == "identifier", ident.c.system == team_system
    )
    q = (
        select(m.c.target_id, grp.c.id)
        .select_from(m.join(grp, grp.c.pk == m.c.res_pk))
        .where(
            m.c.res_type == "Group",
            m.c.param == "member",
            m.c.target_type == "Patient",
            m.c.res_pk.in_(teams),
            ~grp.c.deleted,
            scope(m.c.target_id, ids),
        )
    )
    return sorted({(row[0], row[1]) for row in await conn.execute(q)})


# -- conditions -------------------------------------------------------------------------------


async def active_conditions(
    conn: AsyncConnection, codes: frozenset[tuple[str, str]], ids: Scope | None, w: Window
) -> list[tuple[str, int, str, str]]:
    """(patient, Condition pk, system, code) of active, not refuted Conditions with a code."""
    if not codes:
        return []
    t, cs, ab, vs = (
        idx_token.alias("t"),
        idx_token.alias("cs"),
        idx_date.alias("ab"),
        idx_token.alias("vs"),
    )
    q = (
        select(t.c.patient_id, t.c.res_pk, t.c.system, t.c.code, cs.c.code, ab.c.low)
        .select_from(
            t.outerjoin(
                cs,
                and_(
                    cs.c.res_pk == t.c.res_pk,
                    cs.c.res_type == "Condition",
                    cs.c.param == "clinical-status",
                ),
            ).outerjoin(
                ab,
                and_(
                    ab.c.res_pk == t.c.res_pk,
                    ab.c.res_type == "Condition",
                    ab.c.param == "abatement-date",
                ),
            )
        )
        .where(
            t.c.res_type == "Condition",
            t.c.param == "code",
            coded(t.c.code, {c for _, c in codes}, ids),
            t.c.patient_id.is_not(None),
            owned(t, "Condition", ids),
            ~exists().where(
                vs.c.res_pk == t.c.res_pk,
                vs.c.res_type == "Condition",
                vs.c.param == "verification-status",
                vs.c.code.in_(NOT_CONDITIONS),
            ),
        )
    )
    active: dict[tuple[str, int, str, str], bool] = {}
    for pid, pk, system, code, clinical, abated in await conn.execute(q):
        if (system, code) not in codes:
            continue
        key = (pid, pk, system, code)
        if clinical is not None:
            ok = clinical in ACTIVE_CLINICAL
        else:  # no clinical status: active unless it abated before the reference date
            ok = abated is None or abated > w.end
        active[key] = active.get(key, False) or ok
    return [k for k, ok in active.items() if ok]


# -- encounters -------------------------------------------------------------------------------


async def encounters(
    conn: AsyncConnection, classes: list[str], since: int, ids: Scope | None, w: Window
) -> list[tuple[str, int, str, int]]:
    """(patient, Encounter pk, class code, start) of encounters of `classes` since `since`."""
    if not classes:
        return []
    t, d = idx_token.alias("t"), idx_date.alias("d")
    q = (
        select(t.c.patient_id, t.c.res_pk, t.c.code, d.c.low)
        .select_from(t.join(d, and_(d.c.res_pk == t.c.res_pk, follow(d, "Encounter", "date"))))
        .where(
            t.c.res_type == "Encounter",
            t.c.param == "class",
            coded(t.c.code, classes, ids),
            t.c.patient_id.is_not(None),
            between(d.c.low, since, w.end),
            owned(t, "Encounter", ids),
            status_not(t, "Encounter", BAD_ENCOUNTER),
        )
    )
    return [(r[0], r[1], r[2], r[3]) for r in await conn.execute(q)]


async def resource_refs(conn: AsyncConnection, pks: Iterable[int]) -> dict[int, str]:
    """res_pk -> 'Type/id' for the resources named in a basis."""
    out: dict[int, str] = {}
    todo = sorted(set(pks))
    for i in range(0, len(todo), 5000):
        chunk = todo[i : i + 5000]
        q = select(resource.c.pk, resource.c.res_type, resource.c.id).where(
            resource.c.pk.in_(chunk)
        )
        out.update({pk: f"{t}/{rid}" for pk, t, rid in await conn.execute(q)})
    return out
