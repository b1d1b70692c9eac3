"""A group's populations and stratifier values as one SQL statement, tallied in the database.

The statement takes the subject's patients (the universe), computes every distinct criterion
once (a materialised CTE of a retrieve's patients or per-patient counts, tested with IN),
keeps the patients of the initial population, gives each its stratifier values, and groups
them by those values and their raw population flags. So the database answers with one row per
combination (a few hundred for a region stratified by team, stratum, age band and sex), never
a row per patient, unless the report needs the patients themselves (subject-list, care gaps).
The containment rules of R4 (3.9.3) are applied to each combination in Python: every patient
of a row shares its flags.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    case,
    exists,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
)

from app.fhir.errors import FhirError
from app.fhir.search_params import registry
from app.measure.criteria import And, CompiledGroup, Count, Has, Not, Or, Retrieve
from app.measure.evaluator import OPS, Evaluator, patient_rows
from app.store.schema import resource
from app.store.search import opaque

IP = "initial-population"
MAX_CASES = 64
# the populations of a report, in the order the report lists them, per scoring
ORDER = {
    "proportion": (IP, "denominator", "denominator-exclusion", "numerator",
                   "numerator-exclusion", "denominator-exception"),
    "ratio": (IP, "denominator", "numerator", "denominator-exclusion", "numerator-exclusion"),
    "continuous-variable": (IP, "measure-population", "measure-population-exclusion"),
    "cohort": (IP,),
}


@dataclass(frozen=True)
class Tally:
    """Patients sharing stratifier values and populations."""

    key: tuple[str, ...]  # one value per variable of the result
    populations: frozenset[str]  # after containment
    count: int
    observations: int  # sum of their measure-observation values (continuous-variable)
    patients: tuple[str, ...] | None = None  # when the report needs them


@dataclass
class GroupResult:
    codes: list[str]  # the populations the report lists
    variables: list[str]  # what Tally.key holds
    tallies: list[Tally]
    scoring: str

    def where(self, variable: str, value: str) -> list[Tally]:
        i = self.variables.index(variable)
        return [t for t in self.tallies if t.key[i] == value]

    def counts(self, tallies: Iterable[Tally] | None = None) -> dict[str, int]:
        out = dict.fromkeys(self.codes, 0)
        for t in self.tallies if tallies is None else tallies:
            for code in t.populations:
                out[code] += t.count
        return out

    def patients(self, code: str) -> set[str]:
        return {p for t in self.tallies if code in t.populations for p in t.patients or ()}

    def score(self, tallies: Iterable[Tally] | None = None) -> float | None:
        chosen = list(self.tallies if tallies is None else tallies)
        n = self.counts(chosen)
        if self.scoring == "proportion":
            den = n["denominator"] - n.get("denominator-exclusion", 0) - n.get(
                "denominator-exception", 0)
            return (n["numerator"] - n.get("numerator-exclusion", 0)) / den if den > 0 else None
        if self.scoring == "ratio":
            den = n["denominator"] - n.get("denominator-exclusion", 0)
            return (n["numerator"] - n.get("numerator-exclusion", 0)) / den if den > 0 else None
        if self.scoring == "continuous-variable":
            observed = [t for t in chosen if "measure-population" in t.populations
                        and "measure-population-exclusion" not in t.populations]
            patients = sum(t.count for t in observed)
            return sum(t.observations for t in observed) / patients if patients else None
        return None


def _conjuncts(plan: Any) -> list[Any]:
    if isinstance(plan, And):
        return [q for p in plan.parts for q in _conjuncts(p)]
    return [plan]


def _retrieves(plan: Any) -> Iterator[Retrieve]:
    if isinstance(plan, Retrieve):
        yield plan
    elif isinstance(plan, Has | Count):
        yield plan.source
    elif isinstance(plan, And | Or):
        for p in plan.parts:
            yield from _retrieves(p)
    elif isinstance(plan, Not):
        yield from _retrieves(plan.part)


def _demographic(plans: list[Any]) -> bool:
    """Whether the plans read Patient resources only."""
    return all(rv.res_type == "Patient" for p in plans for rv in _retrieves(p))


def _worth_a_scope(plan: Any, demographic_prefix: bool) -> bool:
    """Whether reading `plan` only for the patients of the parts before it pays for making
    that set. Patients cost an index range each: never. After parts that are all about
    Patients (adults, alive: most of the region), only a retrieve led by a date or a status
    range, which reads every resource of its type in the range; one led by a code reads that
    code's rows alone. A FHIRPath fallback reads each candidate's JSON: always."""
    return any(rv.fhirpath or (rv.res_type != "Patient"
                               and not (demographic_prefix and _code_led(rv)))
               for rv in _retrieves(plan))


def _negated_patient(rv: Retrieve) -> bool:
    """`Patient?x:not=v` alone: the patients without that value, which for live Patients is
    `not Patient?x=v`."""
    return rv.res_type == "Patient" and len(rv.clauses) == 1 and rv.latest is None \
        and not rv.fhirpath and rv.clauses[0][0].endswith(":not")


def _code_led(rv: Retrieve) -> bool:
    """Whether the retrieve's first clause is a plain or `:in` token clause (its lead)."""
    if not rv.clauses:
        return False
    name, _, modifier = rv.clauses[0][0].partition(":")
    sp = registry().get(rv.res_type, name)
    return sp is not None and sp.type == "token" and modifier in ("", "in")


def contained(scoring: str, raw: dict[str, bool], present: set[str]) -> frozenset[str]:
    """The populations a patient is in, from the criteria it meets (R4 3.9.3)."""
    ip = raw.get(IP, False)
    out = {IP: ip}
    if scoring in ("proportion", "ratio"):
        den = ip and raw.get("denominator", False)
        out["denominator"] = den
        dex = den and raw.get("denominator-exclusion", False)
        if scoring == "proportion":
            num = den and not dex and raw.get("numerator", False)
            out["denominator-exception"] = (den and not dex and not num
                                            and raw.get("denominator-exception", False))
        else:
            num = ip and raw.get("numerator", False)
        out.update({"denominator-exclusion": dex, "numerator": num,
                    "numerator-exclusion": num and raw.get("numerator-exclusion", False)})
    elif scoring == "continuous-variable":
        mp = ip and raw.get("measure-population", False)
        out.update({"measure-population": mp,
                    "measure-population-exclusion": mp and raw.get(
                        "measure-population-exclusion", False)})
    return frozenset(code for code, yes in out.items() if yes and code in present)


class _Statement:
    """Builds the statement: each atom a materialised CTE tested with IN, each stratifier
    value a CASE over IN tests (or a join)."""

    def __init__(self, ev: Evaluator, pid: Any) -> None:
        self.ev = ev
        self.pid = pid
        self.joins: list[Any] = []
        self.atoms: dict[tuple[str, str | None], Any] = {}  # (plan, within) -> CTE
        self.within: Any = None  # the CTE of the patients that matter, once known
        self.scopes: dict[tuple[str, str | None], Any] = {}  # conjunction prefix -> CTE
        self.probing = False  # Patient atoms as look-ups of the patient at hand (`driven`)

    def _join(self, sub: Any) -> Any:
        aliased = sub.subquery(f"j{len(self.joins)}")
        self.joins.append(aliased)
        return aliased

    def cte(self, q: Any, prefix: str = "a") -> Any:
        """Each atom once, however many populations test it."""
        return q.cte(self.ev.cte_name(prefix)).prefix_with("MATERIALIZED")

    async def atom(self, plan: Any) -> ColumnElement[bool]:
        """`pid IN (...)`: each retrieve runs once and is hashed (PostgreSQL's hashed
        SubPlan, SQLite's ephemeral index), whatever the planner estimates its size to be;
        a join would be planned from estimates the index tables cannot give. An atom
        computed for every patient serves everywhere; one computed `within` the initial
        population only in the populations inside it."""
        if isinstance(plan, Has | Retrieve):
            rv = plan.source if isinstance(plan, Has) else plan
            if _negated_patient(rv):
                # `Patient?active:not=false`: the few Patients with the value, negated, not
                # the set of nearly everyone (a patient here is a live Patient already, or
                # `driven` looks it up)
                name, value = rv.clauses[0]
                return not_(await self.atom(Has(Retrieve("Patient", (
                    (name.removesuffix(":not"), value),)))))
        if self.probing and isinstance(plan, Has | Retrieve):
            rv = plan.source if isinstance(plan, Has) else plan
            if rv.res_type == "Patient" and rv.latest is None and not rv.fhirpath:
                # the patient's own index rows, one index look-up (patient_id leads; the
                # type as a literal, so that SQLite may use a partial index of Patient rows)
                base = await self.ev._base(rv)
                owner = base.selected_columns[1]
                own = [patient_rows(owner.table)] if owner.table is not resource else []
                return opaque(exists(base.where(owner == self.pid, *own)))
        key = repr(plan)  # plans hold unhashable SortKeys; their repr is their value
        within = None if self.within is None else self.within.name
        cte = self.atoms.get((key, None))
        if cte is None:
            cte = self.atoms.get((key, within))
        if cte is None:
            if isinstance(plan, Has | Retrieve):
                # the retrieve's rows as they are: the hash of the IN test removes the
                # duplicates (a DISTINCT first would hash every row twice)
                rv = plan.source if isinstance(plan, Has) else plan
                rows = (await self.ev.matching(rv, self.within)).subquery()
                cte = select(rows.c.patient_id.label("pid")).subquery()
            else:
                cte = self.cte(await self.ev.counts_select(plan.source, self.within))
            self.atoms[(key, within)] = cte
        flag: ColumnElement[bool]
        if not isinstance(plan, Count):
            flag = self.pid.in_(select(cte.c.pid))
        elif OPS[plan.op](0, plan.n):  # "count() < 3" holds for patients with none
            flag = self.pid.not_in(select(cte.c.pid).where(~OPS[plan.op](cte.c.n, plan.n)))
        else:
            flag = self.pid.in_(select(cte.c.pid).where(OPS[plan.op](cte.c.n, plan.n)))
        return flag

    async def plan(self, plan: Any) -> ColumnElement[bool]:
        if isinstance(plan, Has | Retrieve | Count):
            return await self.atom(plan)
        if isinstance(plan, And):
            return await self.conjunction(_conjuncts(plan))
        if isinstance(plan, Or):
            return or_(*[await self.plan(p) for p in plan.parts])
        if isinstance(plan, Not):
            return not_(await self.plan(plan.part))
        raise FhirError.of(500, "exception", f"unknown plan {type(plan).__name__}")

    async def driven(self, plan: Any) -> Any:
        """The initial population `A and B and C` as the patients of its first conjunct that
        retrieves more than Patients (a diagnosis: a few thousand), each tested against the
        others there; its Patient criteria (age, alive) become look-ups of that patient's own
        rows instead of sets of most of the region. None when no conjunct can drive."""
        parts = _conjuncts(plan)
        driver = next((p for p in parts if isinstance(p, Has) and p.source.res_type
                       != "Patient"), None)
        if driver is None:
            return None
        rows = (await self.ev.matching(driver.source)).subquery()
        found = select(rows.c.patient_id.label("pid")).distinct().subquery()
        outer = self.pid, self.probing
        self.pid, self.probing = found.c.pid, True
        try:
            flags = [await self.plan(p) for p in parts if p is not driver]
        finally:
            self.pid, self.probing = outer
        # a Patient criterion met (adult) means a live Patient: only live resources have
        # index rows; else each patient found is looked up
        own = any(isinstance(p, Has) and p.source.res_type == "Patient"
                  and not _negated_patient(p.source) for p in parts)
        live = self.ev.live_patient(found.c.pid, exists_known=own)
        return self.cte(select(found.c.pid).where(*live, *[opaque(f) for f in flags]), "ip")

    async def conjunction(self, parts: list[Any]) -> ColumnElement[bool]:
        """`A and B and C`, left to right: B's retrieves are read only for the patients of A,
        C's for those of A and B (the medicines of the over-75s, not of everyone), when that
        pays (`_worth_a_scope`)."""
        flags: list[ColumnElement[bool]] = []
        outer, scoped = self.within, 0
        try:
            for part in parts:
                before = parts[:len(flags)]
                if len(flags) > scoped and _worth_a_scope(part, _demographic(before)):
                    key = (repr(before), None if outer is None else outer.name)
                    if key not in self.scopes:
                        self.scopes[key] = self.cte(select(self.pid).where(
                            opaque(and_(*flags))), "s")
                    self.within = self.scopes[key]
                    scoped = len(flags)
                flags.append(await self.plan(part))
        finally:
            self.within = outer
        return and_(*flags)

    async def value(self, variable: str) -> ColumnElement[Any]:
        """The patient's value: `CASE WHEN pid IN (patients with value 1) THEN 1 ...`, in
        the values' order (a patient in two teams counts in the first: the smallest code, or
        the first listed in the evaluation context, where the commonest value comes first);
        past a few dozen values, a join on the patients' smallest value."""
        src = self.ev.value_source(variable)
        if src.scalar is not None and self.ev.conn.dialect.name == "sqlite":
            # one look-up per patient of a small index: cheaper for SQLite than filling an
            # ephemeral index per value; PostgreSQL hashes sets faster than it runs a
            # correlated sub-query per patient (the cohort: 0.43 s against 0.51)
            return src.scalar(self.pid)
        values = src.values if isinstance(src.values, list) else [
            row[0] for row in await self.ev.conn.execute(src.values)]
        if src.order is not None:
            rank = {v: i for i, v in enumerate(src.order)}
            values = sorted(values, key=lambda v: rank.get(v, len(rank)))
        if len(values) <= MAX_CASES or src.rows is None:
            whens = [(self.pid.in_(src.members(v)), literal(v)) for v in values]
            return case(*whens, else_=literal(src.default)) if whens else literal(src.default)
        rows = src.rows.subquery()
        j = self._join(select(rows.c.pid, func.min(rows.c.v).label("v")).group_by(rows.c.pid))
        return func.coalesce(j.c.v, src.default) if src.default else j.c.v


async def evaluate_group(ev: Evaluator, group: CompiledGroup, scoring: str,
                         variables: list[str], with_patients: bool) -> GroupResult:
    """The group's tallies by `variables` (stratifier and supplemental-data variables)."""
    return (await evaluate_groups(ev, [(group, scoring)], variables, with_patients))[0]


@dataclass
class _Spec:
    group: CompiledGroup
    scoring: str
    in_ip: ColumnElement[bool]  # whether the statement's patient is in this group's IP
    flags: list[tuple[str, ColumnElement[bool]]]  # the other populations' raw criteria
    obs: ColumnElement[Any]  # measure-observation (continuous-variable), else 0

    @property
    def present(self) -> set[str]:
        return set(self.group.populations) | {IP}


async def evaluate_groups(ev: Evaluator, groups: list[tuple[CompiledGroup, str]],
                          variables: list[str], with_patients: bool) -> list[GroupResult]:
    """Several groups (of several Measures: care gaps) in one statement, so that the criteria
    they share (adults, alive, type 2 diabetes) are read once.

    Every other population lies within the initial population (R4 3.9.3), so each group's
    initial population is computed first, over the subject's patients, and the criteria of
    the others only for its patients: the latest blood pressure of the hypertensive, not of
    everyone who had one measured."""
    ev.new_statement()
    # the subject's patients once (a team's members are looked up, not every scope's)
    u = (await ev.universe_select()).cte(ev.cte_name("u"))
    if ev.subject.select is not None or ev.conn.dialect.name != "sqlite":
        # (every live Patient is one index range: SQLite reads it where it is used rather
        # than copying 100,000 ids into a table first)
        u = u.prefix_with("MATERIALIZED")
    ev.universe = u
    st = _Statement(ev, u.c.pid)
    ips = []
    by_plan: dict[str, Any] = {}
    for group, _ in groups:
        ip_pop = group.populations.get(IP)
        plan_key = repr(ip_pop.plan if ip_pop is not None else None)
        if plan_key not in by_plan:
            driven = await st.driven(ip_pop.plan) if ip_pop is not None and ip_pop.plan \
                else None
            if driven is None:
                ip_flag = await st.plan(ip_pop.plan) if ip_pop is not None and ip_pop.plan \
                    else false()
                driven = st.cte(select(u.c.pid).where(opaque(ip_flag)), "ip")
            by_plan[plan_key] = driven
        ips.append(by_plan[plan_key])
    distinct_ips = list(by_plan.values())
    base = ips[0] if len(distinct_ips) == 1 else st.cte(select(u.c.pid).where(opaque(or_(
        *[u.c.pid.in_(select(ip.c.pid)) for ip in distinct_ips]))), "ips")
    st.pid = base.c.pid
    specs = []
    for (group, scoring), ip in zip(groups, ips, strict=True):
        st.within = ip
        ip_pop = group.populations.get(IP)
        flags: list[tuple[str, ColumnElement[bool]]] = []
        for code, population in group.populations.items():
            if population.plan is not None and code != IP:
                same = ip_pop is not None and repr(population.plan) == repr(ip_pop.plan)
                flags.append((code, true() if same else await st.plan(population.plan)))
        observation = group.populations.get("measure-observation")
        obs: ColumnElement[Any] = literal(0)
        if scoring == "continuous-variable" and observation and observation.observation:
            j = st._join(await ev.counts_select(observation.observation, ip))
            obs = func.coalesce(j.c.n, 0)
        in_ip = true() if ip is base else base.c.pid.in_(select(ip.c.pid))
        specs.append(_Spec(group, scoring, in_ip, flags, obs))
    keys = [(await st.value(v)).label(f"k{i}") for i, v in enumerate(variables)]
    flag_cols = [case((f, 1), else_=0).label(f"f{i}_{j}")
                 for i, spec in enumerate(specs)
                 for j, f in enumerate([spec.in_ip, *(f for _, f in spec.flags)])]
    obs_cols = [spec.obs.label(f"o{i}") for i, spec in enumerate(specs)]
    joined: Any = base
    for j in st.joins:
        joined = joined.outerjoin(j, j.c.pid == base.c.pid)
    row: list[Any] = [*keys, *flag_cols, *obs_cols, base.c.pid.label("pid")]
    grouping: list[Any] = [*[k.element for k in keys], *[f.element for f in flag_cols]]
    if ev.conn.dialect.name == "sqlite":
        # each patient's values and flags computed once, then grouped: grouping on the
        # expressions themselves makes SQLite evaluate them again (a third of its time);
        # PostgreSQL computes them once either way, and materialising costs it
        per_patient = st.cte(select(*row).select_from(joined), "v")
        row = [per_patient.c[c.name] for c in row]
        grouping = row[:len(keys) + len(flag_cols)]
        joined = per_patient
    keyed, observed = row[:len(keys) + len(flag_cols)], row[len(keys) + len(flag_cols):-1]
    if with_patients:
        q = select(*keyed, literal(1).label("n"), *observed, row[-1]).select_from(joined)
    else:
        q = (select(*keyed, func.count().label("n"), *[func.sum(o) for o in observed])
             .select_from(joined).group_by(*grouping))
    if ev.conn.dialect.name == "postgresql":
        # parallel workers would each build every hashed SubPlan again; and a SubPlan whose
        # estimate outgrows hash memory is run once per patient instead of hashed (a region
        # of a million patients): let hash tables grow to 64 MB, sorts keep work_mem
        await ev.conn.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
        await ev.conn.execute(text("SET LOCAL hash_mem_multiplier = 16"))
        # the materialised sets (100,000 patient ids) stay in memory, not in temporary files
        await ev.conn.execute(text("SET LOCAL work_mem = '64MB'"))
        # planned for this execution's values, also when the driver's prepared statement is
        # reused: a generic plan, from default estimates, ran hypertension in 0.53 s against
        # 0.44 s
        await ev.conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return _tally(await ev.conn.execute(q), specs, variables, with_patients)


def _tally(rows: Any, specs: list[_Spec], variables: list[str],
           with_patients: bool) -> list[GroupResult]:
    """Per group, the rows (keys, then each group's IP flag and raw flags, count, each
    group's observations, [patient]) merged by stratifier values and populations."""
    merged: list[dict[tuple[tuple[str, ...], frozenset[str]], list[Any]]] = [{} for _ in specs]
    present = [spec.present for spec in specs]
    nkeys = len(variables)
    nflags = sum(1 + len(spec.flags) for spec in specs)
    seen: dict[tuple[int, tuple[Any, ...]], frozenset[str]] = {}
    for row in rows:
        key = tuple("unknown" if v is None else str(v) for v in row[:nkeys])
        n = int(row[nkeys + nflags])
        at = nkeys
        for i, spec in enumerate(specs):
            in_ip, raw_flags = row[at], row[at + 1:at + 1 + len(spec.flags)]
            at += 1 + len(spec.flags)
            if not in_ip:
                continue
            pops = seen.get((i, raw_flags))
            if pops is None:  # a few distinct flag combinations, many patients
                raw = {IP: True, **{code: bool(v) for (code, _), v in zip(
                    spec.flags, raw_flags, strict=True)}}
                pops = seen[(i, raw_flags)] = contained(spec.scoring, raw, present[i])
            slot = merged[i].setdefault((key, pops), [0, 0, []])
            slot[0] += n
            slot[1] += int(row[nkeys + nflags + 1 + i] or 0)
            if with_patients:
                slot[2].append(row[-1])
    out = []
    for spec, tallied, where in zip(specs, merged, present, strict=True):
        codes = [c for c in ORDER.get(spec.scoring, (IP,)) if c in where]
        tallies = [Tally(key, pops, n, obs, tuple(ps) if with_patients else None)
                   for (key, pops), (n, obs, ps) in tallied.items()]
        out.append(GroupResult(codes, list(variables), tallies, spec.scoring))
    return out
