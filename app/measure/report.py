"""MeasureReports (R4): individual, subject-list and summary, with stratifiers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app.measure.criteria import CompiledMeasure, Stratifier
from app.measure.evaluator import Evaluator
from app.measure.population import IP, GroupResult, Tally, evaluate_group

POP_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
REPORT_TYPES = {"subject": "individual", "individual": "individual",
                "subject-list": "subject-list", "population": "summary", "summary": "summary"}


def _population_json(result: GroupResult, tallies: list[Tally] | None,
                     lists: dict[str, str] | None) -> list[dict[str, Any]]:
    out = []
    for code, count in result.counts(tallies).items():
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
    supplemental = measure.supplemental if kind != "individual" else []
    sde: list[dict[str, Any]] = []
    for gi, group in enumerate(measure.groups):
        variables = [var for s in group.stratifiers for _, var in s.components]
        if gi == 0:
            variables += [var for _, var in supplemental]
        result = await evaluate_group(ev, group, measure.scoring, list(dict.fromkeys(variables)),
                                      with_patients=kind == "subject-list")
        lists = None
        if kind == "subject-list":
            lists = {}
            for code in result.codes:
                list_id = f"g{gi}-{code}"
                lists[code] = list_id
                contained.append(_subject_list(list_id, code, sorted(result.patients(code))))
        gj: dict[str, Any] = {}
        if group.code:
            gj["code"] = {"text": group.code}
        gj["population"] = _population_json(result, None, lists)
        sc = result.score()
        if sc is not None:
            gj["measureScore"] = _score_json(sc)
        if group.stratifiers:
            gj["stratifier"] = [_stratifier_json(s, result) for s in group.stratifiers]
        report["group"].append(gj)
        if gi == 0 and supplemental:
            sde = _supplemental(supplemental, result)
    if sde:  # FHIR JSON has no empty arrays (no patient, no supplemental value)
        contained += sde
        report["evaluatedResource"] = [{"reference": f"#{o['id']}"} for o in sde]
    if contained:
        report["contained"] = contained
    if evaluated:
        report["evaluatedResource"] = [{"reference": ref} for ref in evaluated]
    return report


def _stratifier_json(stratifier: Stratifier, result: GroupResult) -> dict[str, Any]:
    at = [result.variables.index(var) for _, var in stratifier.components]
    keyed: dict[tuple[str, ...], list[Tally]] = {}
    for t in result.tallies:
        keyed.setdefault(tuple(t.key[i] for i in at), []).append(t)
    strata = []
    for key in sorted(keyed):
        tallies = keyed[key]
        stratum: dict[str, Any] = {}
        if len(at) == 1:
            stratum["value"] = {"text": key[0]}
        else:
            stratum["component"] = [{"code": {"text": code}, "value": {"text": v}}
                                    for (code, _), v in zip(stratifier.components, key,
                                                            strict=True)]
        stratum["population"] = _population_json(result, tallies, None)
        sc = result.score(tallies)
        if sc is not None:
            stratum["measureScore"] = _score_json(sc)
        strata.append(stratum)
    out: dict[str, Any] = {"code": [{"text": stratifier.code}]}
    if strata:  # no patient in any population: no stratum (and no empty array)
        out["stratum"] = strata
    return out


def _supplemental(supplemental: list[tuple[str, str]],
                  result: GroupResult) -> list[dict[str, Any]]:
    """Supplemental data as contained Observations (the DEQM way): one per value, counting
    the patients of the initial population of the first group with that value."""
    out = []
    for code, variable in supplemental:
        i = result.variables.index(variable)
        tally: Counter[str] = Counter()
        for t in result.tallies:
            if IP in t.populations:
                tally[t.key[i]] += t.count
        for n_value, (value, n) in enumerate(sorted(tally.items())):
            out.append({"resourceType": "Observation", "id": f"sde-{code}-{n_value}",
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

