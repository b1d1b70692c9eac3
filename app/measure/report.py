"""MeasureReports (R4): individual, subject-list and summary, with stratifiers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.measure.criteria import CompiledGroup, CompiledMeasure
from app.measure.evaluator import Evaluator

POP_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
REPORT_TYPES = {"subject": "individual", "individual": "individual",
                "subject-list": "subject-list", "population": "summary", "summary": "summary"}


@dataclass
class GroupResult:
    populations: dict[str, set[str]]
    observations: dict[str, int] | None  # measure-observation per patient (continuous)


async def group_populations(ev: Evaluator, group: CompiledGroup, scoring: str) -> GroupResult:
    """Each population as a set of patients, with the containment rules of R4 (3.9.3)."""
    raw = {code: await ev.patients(p.plan) for code, p in group.populations.items()
           if p.plan is not None}
    ip = raw.get("initial-population", set())
    out = {"initial-population": ip}
    observations = None
    if scoring in ("proportion", "ratio"):
        den = raw.get("denominator", set()) & ip
        out["denominator"] = den
        if scoring == "proportion":
            dex = raw.get("denominator-exclusion", set()) & den
            num = raw.get("numerator", set()) & (den - dex)
            nex = raw.get("numerator-exclusion", set()) & num
            dexc = raw.get("denominator-exception", set()) & (den - dex - num)
            out.update({"denominator-exclusion": dex, "numerator": num,
                        "numerator-exclusion": nex, "denominator-exception": dexc})
        else:
            out["numerator"] = raw.get("numerator", set()) & ip
            for code in ("denominator-exclusion", "numerator-exclusion"):
                if code in raw:
                    out[code] = raw[code] & (den if code.startswith("den") else out["numerator"])
    elif scoring == "continuous-variable":
        mp = raw.get("measure-population", set()) & ip
        mpx = raw.get("measure-population-exclusion", set()) & mp
        out.update({"measure-population": mp, "measure-population-exclusion": mpx})
        obs = group.populations.get("measure-observation")
        if obs is not None and obs.observation is not None:
            counts = await ev.counts_of(obs.observation)
            observations = {p: counts.get(p, 0) for p in mp - mpx}
    present = set(group.populations) | {"initial-population"}
    return GroupResult({k: v for k, v in out.items() if k in present}, observations)


def score(scoring: str, pops: dict[str, set[str]], members: set[str] | None,
          observations: dict[str, int] | None) -> float | None:
    def n(code: str) -> int:
        s = pops.get(code, set())
        return len(s if members is None else s & members)

    if scoring == "proportion":
        den = n("denominator") - n("denominator-exclusion") - n("denominator-exception")
        return (n("numerator") - n("numerator-exclusion")) / den if den > 0 else None
    if scoring == "ratio":
        den = n("denominator") - n("denominator-exclusion")
        return (n("numerator") - n("numerator-exclusion")) / den if den > 0 else None
    if scoring == "continuous-variable" and observations is not None:
        vals = [v for p, v in observations.items() if members is None or p in members]
        return sum(vals) / len(vals) if vals else None
    return None


def _population_json(pops: dict[str, set[str]], members: set[str] | None,
                     lists: dict[str, str] | None) -> list[dict[str, Any]]:
    out = []
    for code, ids in pops.items():
        if code == "measure-observation":
            continue
        count = len(ids if members is None else ids & members)
        entry: dict[str, Any] = {"code": {"coding": [{"system": POP_SYSTEM, "code": code}]},
                                 "count": count}
        if lists is not None and code in lists:
            entry["subjectResults"] = {"reference": f"#{lists[code]}"}
        out.append(entry)
    return out


def _score_json(value: float | None) -> dict[str, Any] | None:
    return {"value": round(value, 6)} if value is not None else None


async def build_report(ev: Evaluator, measure: CompiledMeasure, report_type: str,
                       canonical: str, subject_ref: str | None,
                       evaluated: list[str] | None = None) -> dict[str, Any]:
    kind = REPORT_TYPES[report_type]
    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": kind,
        "measure": canonical,
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "period": {"start": ev.period[0], "end": ev.period[1]},
        "group": [],
    }
    if measure.scoring != "cohort":  # a cohort has no score to improve
        report["improvementNotation"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/measure-improvement-notation",
            "code": measure.improvement}]}
    if subject_ref:
        report["subject"] = {"reference": subject_ref}
    contained: list[dict[str, Any]] = []
    for gi, group in enumerate(measure.groups):
        result = await group_populations(ev, group, measure.scoring)
        lists = None
        if kind == "subject-list":
            lists = {}
            for code, ids in result.populations.items():
                list_id = f"g{gi}-{code}"
                lists[code] = list_id
                contained.append(_subject_list(list_id, code, sorted(ids)))
        gj: dict[str, Any] = {}
        if group.code:
            gj["code"] = {"text": group.code}
        gj["population"] = _population_json(result.populations, None, lists)
        sc = score(measure.scoring, result.populations, None, result.observations)
        if sc is not None:
            gj["measureScore"] = _score_json(sc)
        if group.stratifiers:
            gj["stratifier"] = [await _stratifier_json(ev, s, result, measure.scoring)
                                for s in group.stratifiers]
        report["group"].append(gj)
    if measure.supplemental and kind != "individual":
        sde = await _supplemental(ev, measure, report)
        contained += sde
        if sde:  # FHIR JSON has no empty arrays (no patient, no supplemental value)
            report.setdefault("evaluatedResource", [])
            report["evaluatedResource"] += [{"reference": f"#{o['id']}"} for o in sde]
    if contained:
        report["contained"] = contained
    if evaluated:
        report["evaluatedResource"] = [{"reference": ref} for ref in evaluated]
    return report


async def _stratifier_json(ev: Evaluator, stratifier: Any, result: GroupResult,
                           scoring: str) -> dict[str, Any]:
    value_maps = [(code, await ev.values(var)) for code, var in stratifier.components]
    everyone = set().union(*result.populations.values())
    keyed: dict[tuple[str, ...], set[str]] = {}
    for pid in everyone:
        key = tuple(vm.get(pid, "unknown") for _, vm in value_maps)
        keyed.setdefault(key, set()).add(pid)
    strata = []
    for key in sorted(keyed):
        members = keyed[key]
        stratum: dict[str, Any] = {}
        if len(value_maps) == 1:
            stratum["value"] = {"text": key[0]}
        else:
            stratum["component"] = [{"code": {"text": code}, "value": {"text": v}}
                                    for (code, _), v in zip(value_maps, key, strict=True)]
        stratum["population"] = _population_json(result.populations, members, None)
        sc = score(scoring, result.populations, members, result.observations)
        if sc is not None:
            stratum["measureScore"] = _score_json(sc)
        strata.append(stratum)
    out: dict[str, Any] = {"code": [{"text": stratifier.code}]}
    if strata:  # no patient in any population: no stratum (and no empty array)
        out["stratum"] = strata
    return out


async def _supplemental(ev: Evaluator, measure: CompiledMeasure,
                       report: dict[str, Any]) -> list[dict[str, Any]]:
    """Supplemental data as contained Observations (the DEQM way): one per value, counting
    the patients of the initial population of the first group with that value."""
    result = await group_populations(ev, measure.groups[0], measure.scoring)
    ip = result.populations.get("initial-population", set())
    out = []
    for code, variable in measure.supplemental:
        values = await ev.values(variable)
        tally = Counter(values.get(p, "unknown") for p in ip)
        for i, (value, n) in enumerate(sorted(tally.items())):
            out.append({"resourceType": "Observation", "id": f"sde-{code}-{i}",
                        "status": "final", "code": {"text": code},
                        "valueCodeableConcept": {"text": value},
                        "component": [{"code": {"text": "count"}, "valueInteger": n}]})
    return out


def _subject_list(list_id: str, code: str, patients: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "List", "id": list_id, "status": "current",
                           "mode": "snapshot", "title": code}
    entries = [{"item": {"reference": f"Patient/{p}"}} for p in patients]
    if entries:
        out["entry"] = entries
    else:
        out["emptyReason"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason",
            "code": "nilknown"}]}
    return out


def counts(pops: dict[str, set[str]]) -> Counter[str]:
    return Counter({k: len(v) for k, v in pops.items()})
