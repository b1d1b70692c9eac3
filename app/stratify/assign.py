"""Assign a patient's strata from their facts, say why, and explain every rule tried.

Pure: a map and a patient's facts in, the strata out. The pyramid strata are tried from the
top; the first whose rule holds is the patient's stratum. Each sub-stratum axis contributes its
first matching stratum, if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.stratify.map import StratificationMap, Stratum
from app.stratify.rules import PatientFacts


@dataclass(frozen=True, slots=True)
class Assignment:
    patient_id: str
    stratum: Stratum
    substrata: tuple[Stratum, ...]

    @property
    def strata(self) -> tuple[Stratum, ...]:
        return (self.stratum, *self.substrata)


def assign(smap: StratificationMap, facts: PatientFacts) -> Assignment:
    values = facts.values
    main = smap.strata[-1]
    for s in smap.strata:
        if s.test(values):
            main = s
            break
    subs = []
    for axis in smap.axes.values():
        for s in axis:
            if s.test(values):
                subs.append(s)
                break
    return Assignment(facts.patient_id, main, tuple(subs))


def rationale(stratum: Stratum, facts: PatientFacts) -> str:
    """'Complex / high need: hospital admissions in the last 12 months 2 >= 2'."""
    reasons = list(dict.fromkeys(leaf.describe(facts) for leaf in stratum.rule.true_leaves(facts)))
    if not reasons:
        return f"{stratum.display}: no rule of a higher stratum holds"
    return f"{stratum.display}: " + "; ".join(reasons)


def basis(stratum: Stratum, facts: PatientFacts) -> set[int]:
    """Resource pks behind the facts that placed the patient in `stratum`."""
    out: set[int] = set()
    for leaf in stratum.rule.true_leaves(facts):
        out.update(facts.basis.get(leaf.fact, ()))
    return out


def explain(smap: StratificationMap, facts: PatientFacts) -> dict[str, Any]:
    """Every pyramid stratum tried (top first, up to the one that matched) and every axis,
    with the value of each fact and the outcome of each test."""
    tried = []
    for s in smap.strata:
        ok = s.rule.holds(facts)
        tried.append(
            {
                "code": s.code,
                "display": s.display,
                "level": s.level,
                "matched": ok,
                "rule": s.rule.explain(facts),
            }
        )
        if ok:
            break
    axes = {}
    for name, axis in smap.axes.items():
        entries = []
        for s in axis:
            ok = s.rule.holds(facts)
            entries.append(
                {"code": s.code, "display": s.display, "matched": ok, "rule": s.rule.explain(facts)}
            )
            if ok:
                break
        axes[name] = entries
    return {
        "patient": facts.patient_id,
        "pyramid": tried,
        "axes": axes,
        "facts": {name: facts.get(name, f.default) for name, f in smap.facts.items()},
    }
