"""Per-patient facts for a batch of patients (or everyone): the rows of `queries` turned into
each patient's fact values, with the resources behind them (the RiskAssessment's basis)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.stratify.codes import MapCodes
from app.stratify.map import FactDef, StratificationMap
from app.stratify.medicines import active_medicines
from app.stratify.observations import latest_coded, latest_labs
from app.stratify.queries import (
    Window,
    active_conditions,
    age_on,
    assessed_patients,
    demographics,
    encounters,
    patient_scope,
    resource_refs,
    team_groups,
)
from app.stratify.rules import PatientFacts

__all__ = ["Batch", "Window", "compute", "resource_refs", "team_groups"]


@dataclass(slots=True)
class Batch:
    """The facts of a batch of patients, with what they need besides the rules."""

    facts: dict[str, PatientFacts]  # live (not deleted, not deceased) patients only
    gone: set[str]  # asked for, but deleted, deceased or unknown
    teams: dict[str, list[str]]  # patient -> team Group ids
    refs: dict[int, str] = field(default_factory=dict)  # res_pk -> "Type/id" (filled later)


# -- assembling -------------------------------------------------------------------------------


def _fmt_day(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).date().isoformat()


async def compute(
    conn: AsyncConnection,
    smap: StratificationMap,
    codes: MapCodes,
    ids: list[str] | None,
    w: Window,
) -> Batch:
    """The facts of `ids` (every patient when None) on the reference date."""
    people = await demographics(conn, ids, smap.team_system)
    scope = await patient_scope(conn, ids) if ids is not None else None
    wanted = set(ids) if ids is not None else set(people)
    gone = {p for p in wanted if p not in people or people[p].deceased}
    if ids is None:  # everyone: also those deleted since their last stratification
        gone |= {p for p in await assessed_patients(conn) if p not in people}
    facts = {p: PatientFacts(p) for p, d in people.items() if not d.deceased}
    by_kind: dict[str, list[FactDef]] = defaultdict(list)
    for f in smap.facts.values():
        by_kind[f.kind].append(f)

    for f in by_kind["age"]:
        for pid, pf in facts.items():
            birth = people[pid].birth
            if birth is not None:
                pf.values[f.name] = age_on(birth, w.day)
    for f in by_kind["sex"]:
        for pid, pf in facts.items():
            if people[pid].gender is not None:
                pf.values[f.name] = people[pid].gender

    cond_facts = by_kind["condition"] + by_kind["condition-count"]
    if cond_facts:
        found = await active_conditions(conn, codes.codes([f.name for f in cond_facts]), scope, w)
        await asyncio.to_thread(  # CPU work off the event loop (the server keeps answering)
            _conditions, facts, found, by_kind["condition"], by_kind["condition-count"], codes
        )
    for f in by_kind["lab"]:
        for pid, lab in (await latest_labs(conn, f, codes.by_fact[f.name], scope, w)).items():
            lf = facts.get(pid)
            if lf is not None:
                lf.values[f.name] = lab.value
                lf.basis[f.name] = [lab.pk]
                lf.detail[f.name] = f"{_fmt_day(lab.at)}" + (
                    f", {lab.unit} converted" if lab.unit != f.spec["unit"] else ""
                )
    for f in by_kind["observation-code"]:
        for pid, (pk, at, hit) in (
            await latest_coded(conn, f, codes.by_fact[f.name], scope, w)
        ).items():
            cf = facts.get(pid)
            if cf is not None and hit:
                cf.values[f.name] = True
                cf.basis[f.name] = [pk]
                cf.detail[f.name] = _fmt_day(at)
    if by_kind["medication"] or by_kind["medicine-count"]:
        taken = await active_medicines(conn, smap, scope, w)
        await asyncio.to_thread(
            _medicines, facts, taken, by_kind["medication"], by_kind["medicine-count"], codes
        )
    enc = by_kind["encounter-count"]
    if enc:
        classes = sorted({c for f in enc for c in f.spec["classes"]})
        since = min(w.since(f.spec["lookbackDays"]) for f in enc)
        visits = await encounters(conn, classes, since, scope, w)
        for f in enc:
            cls, start = set(f.spec["classes"]), w.since(f.spec["lookbackDays"])
            per: dict[str, list[int]] = defaultdict(list)
            for pid, pk, code, low in visits:
                if code in cls and low >= start:
                    per[pid].append(pk)
            for pid, pks in per.items():
                ef = facts.get(pid)
                if ef is not None:
                    ef.values[f.name] = len(set(pks))
                    ef.basis[f.name] = sorted(set(pks))
    teams = {p: people[p].teams for p in facts}
    return Batch(facts, gone, teams)


def _per_patient(
    facts: dict[str, PatientFacts], rows: list[tuple[str, int, str, str]]
) -> list[tuple[PatientFacts, list[tuple[int, tuple[str, str]]]]]:
    """Rows (patient, pk, system, code) grouped per patient that has facts."""
    per: dict[str, list[tuple[int, tuple[str, str]]]] = defaultdict(list)
    for pid, pk, system, code in rows:
        per[pid].append((pk, (system, code)))
    return [(facts[pid], found) for pid, found in per.items() if pid in facts]


def _present(
    pf: PatientFacts, found: list[tuple[int, tuple[str, str]]], single: list[FactDef],
    codes: MapCodes,
) -> None:
    """Yes/no facts: true when a coded resource of the fact's ValueSet is there."""
    for f in single:
        pks = sorted({pk for pk, c in found if c in codes.by_fact[f.name]})
        if pks:
            pf.values[f.name] = True
            pf.basis[f.name] = pks


def _conditions(
    facts: dict[str, PatientFacts],
    rows: list[tuple[str, int, str, str]],
    single: list[FactDef],
    counts: list[FactDef],
    codes: MapCodes,
) -> None:
    for pf, found in _per_patient(facts, rows):
        _present(pf, found, single, codes)
        for f in counts:
            hit_sets, pks_all = 0, set[int]()
            for url in f.spec["valueSets"]:
                in_set = {pk for pk, c in found if c in codes.by_value_set[url]}
                if in_set:
                    hit_sets += 1
                    pks_all |= in_set
            if hit_sets:
                pf.values[f.name] = hit_sets
                pf.basis[f.name] = sorted(pks_all)


def _medicines(
    facts: dict[str, PatientFacts],
    rows: list[tuple[str, int, str, str]],
    single: list[FactDef],
    counts: list[FactDef],
    codes: MapCodes,
) -> None:
    for pf, found in _per_patient(facts, rows):
        _present(pf, found, single, codes)
        for f in counts:
            first: dict[tuple[str, str], int] = {}
            for pk, c in sorted(found):
                first.setdefault(c, pk)
            pf.values[f.name] = len(first)
            pf.basis[f.name] = sorted(first.values())
