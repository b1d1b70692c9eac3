"""FHIR `Parameters` for the stratification operations: the explanation of one patient's strata
(`$stratify?_explain=true`), a run's summary (`$stratify`) and the population view
(`$stratification-summary`)."""

from __future__ import annotations

from typing import Any

from app.fhir.dates import to_instant
from app.stratify.engine import RunSummary
from app.stratify.map import StratificationMap, Stratum
from app.stratify.output import coding, group_id
from app.stratify.rules import PatientFacts
from app.stratify.summary import Summary

Json = dict[str, Any]


def _value(name: str, v: Any) -> Json:
    if isinstance(v, bool):
        return {"name": name, "valueBoolean": v}
    if isinstance(v, int):
        return {"name": name, "valueInteger": v}
    if isinstance(v, float):
        return {"name": name, "valueDecimal": v}
    return {"name": name, "valueString": str(v)}


def _rule(node: Json) -> Json:
    parts: list[Json] = []
    if "fact" in node:
        test = node["label"] + (f" {node['op']} {node['threshold']}" if "op" in node else "")
        parts.append({"name": "test", "valueString": test})
        parts.append({"name": "fact", "valueString": node["fact"]})
        if node.get("value") is not None:
            parts.append(_value("value", node["value"]))
        if node.get("detail"):
            parts.append({"name": "detail", "valueString": node["detail"]})
    else:
        parts.append({"name": "test", "valueString": node["rule"]})
    parts.append({"name": "result", "valueBoolean": bool(node["result"])})
    if node.get("note"):
        parts.append({"name": "note", "valueString": node["note"]})
    parts += [_rule(p) for p in node.get("parts", ())]
    return {"name": "rule", "part": parts}


def _tried(smap: StratificationMap, entry: Json) -> Json:
    s = smap.stratum(entry["code"])
    assert s is not None
    return {
        "name": "tried",
        "part": [
            {"name": "stratum", "valueCoding": coding(smap, s)},
            {"name": "matched", "valueBoolean": entry["matched"]},
            _rule(entry["rule"]),
        ],
    }


def explanation(
    smap: StratificationMap,
    explained: Json,
    facts: PatientFacts,
    refs: dict[int, str],
    assessment: Json | None,
) -> Json:
    params: list[Json] = [{"name": "map", "valueString": f"{smap.id} {smap.version}"}]
    if assessment is not None:
        params.append({"name": "riskAssessment", "resource": assessment})
        for p in assessment.get("prediction", ()):
            params.append({"name": "explanation", "valueString": p.get("rationale", "")})
    params += [_tried(smap, e) for e in explained["pyramid"]]
    for axis, entries in explained["axes"].items():
        params.append(
            {
                "name": "axis",
                "part": [
                    {"name": "name", "valueString": axis},
                    *(_tried(smap, e) for e in entries),
                ],
            }
        )
    for name, fact in smap.facts.items():
        part: list[Json] = [
            {"name": "name", "valueString": name},
            {"name": "label", "valueString": fact.label},
        ]
        v = facts.get(name, fact.default)
        if v is not None:
            part.append(_value("value", v))
        if name in facts.detail:
            part.append({"name": "detail", "valueString": facts.detail[name]})
        part += [
            {"name": "basis", "valueReference": {"reference": refs[pk]}}
            for pk in facts.basis.get(name, ())
            if pk in refs
        ]
        params.append({"name": "fact", "part": part})
    return {"resourceType": "Parameters", "parameter": params}


def run_summary(smap: StratificationMap, s: RunSummary) -> Json:
    params: list[Json] = [
        {"name": "mode", "valueString": s.mode},
        {"name": "patients", "valueInteger": s.patients},
        {"name": "written", "valueInteger": s.written},
        {"name": "removed", "valueInteger": s.removed},
        {"name": "groupsWritten", "valueInteger": s.groups_written},
        {"name": "seconds", "valueDecimal": round(s.seconds, 3)},
    ]
    for st in smap.strata:
        params.append(
            {
                "name": "stratum",
                "part": [
                    {"name": "code", "valueCoding": coding(smap, st)},
                    {"name": "count", "valueInteger": s.counts.get(st.code, 0)},
                ],
            }
        )
    return {"resourceType": "Parameters", "parameter": params}


def _stratum_part(smap: StratificationMap, s: Stratum, summary: Summary) -> Json:
    part: list[Json] = [
        {"name": "code", "valueCoding": coding(smap, s)},
        {"name": "axis", "valueString": s.axis},
    ]
    if s.level is not None:
        part.append({"name": "level", "valueInteger": s.level})
    part += [
        {"name": "count", "valueInteger": summary.counts.get(s.code, 0)},
        {"name": "group", "valueReference": {"reference": f"Group/{group_id(s.code)}"}},
    ]
    for team in summary.teams:
        part.append(
            {
                "name": "team",
                "part": [
                    {"name": "team", "valueReference": {"reference": f"Group/{team}"}},
                    {"name": "count", "valueInteger": summary.team_counts[s.code].get(team, 0)},
                    {
                        "name": "group",
                        "valueReference": {"reference": f"Group/{group_id(s.code, team)}"},
                    },
                ],
            }
        )
    return {"name": "stratum", "part": part}


def population(smap: StratificationMap, summary: Summary) -> Json:
    total = sum(summary.counts.get(s.code, 0) for s in smap.strata)
    params: list[Json] = [
        {"name": "map", "valueString": f"{smap.id} {smap.version}"},
        {"name": "total", "valueInteger": total},
    ]
    params += [_stratum_part(smap, s, summary) for s in smap.all_strata()]
    m = summary.movement
    if m is not None:
        part: list[Json] = [{"name": "since", "valueInstant": to_instant(m.since)}]
        part += [
            {"name": k, "valueInteger": getattr(m, k)}
            for k in ("up", "down", "same", "entered", "left")
        ]
        for (a, b), n in sorted(m.transitions.items(), key=lambda kv: (-kv[1], str(kv[0]))):
            t: list[Json] = []
            for name, code in (("from", a), ("to", b)):
                s = smap.stratum(code) if code else None
                if s is not None:
                    t.append({"name": name, "valueCoding": coding(smap, s)})
                elif code is not None:
                    t.append(
                        {"name": name, "valueCoding": {"system": smap.code_system, "code": code}}
                    )
            t.append({"name": "count", "valueInteger": n})
            part.append({"name": "transition", "part": t})
        params.append({"name": "movement", "part": part})
    return {"resourceType": "Parameters", "parameter": params}
