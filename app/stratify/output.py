"""The engine's FHIR output: one RiskAssessment per patient and the stratum Groups.

Ids are deterministic (`stratum-<patient id>`, `stratum-<code>`, `stratum-<code>-<team Group
id>`), so every run updates the same resources and their history shows a patient's moves.
"""

from __future__ import annotations

import hashlib
from typing import Any

from app.stratify.assign import Assignment, basis, rationale
from app.stratify.map import StratificationMap, Stratum
from app.stratify.rules import PatientFacts

METHOD_SYSTEM = "https://phm-fhir.be/fhir/CodeSystem/stratification-map"
_MAX_ID = 64


def _fhir_id(prefix: str, tail: str) -> str:
    rid = f"{prefix}{tail}"
    if len(rid) <= _MAX_ID:
        return rid
    return prefix + hashlib.sha1(tail.encode()).hexdigest()


def assessment_id(patient_id: str) -> str:
    return _fhir_id("stratum-", patient_id)


def group_id(code: str, team: str | None = None) -> str:
    return _fhir_id("stratum-", code if team is None else f"{code}-{team}")


def coding(smap: StratificationMap, s: Stratum) -> dict[str, str]:
    return {"system": smap.code_system, "code": s.code, "display": s.display}


def risk_assessment(
    smap: StratificationMap, a: Assignment, facts: PatientFacts, refs: dict[int, str], day: str
) -> dict[str, Any]:
    pks: set[int] = set()
    predictions = []
    for s in a.strata:
        pks |= basis(s, facts)
        predictions.append(
            {
                "outcome": {"coding": [coding(smap, s)], "text": s.display},
                "rationale": rationale(s, facts),
            }
        )
    body: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "id": assessment_id(a.patient_id),
        "status": "final",
        "method": {
            "coding": [
                {
                    "system": METHOD_SYSTEM,
                    "code": smap.id,
                    "version": smap.version,
                    "display": smap.title,
                }
            ]
        },
        "code": {"text": "Population stratification"},
        "subject": {"reference": f"Patient/{a.patient_id}"},
        "occurrenceDateTime": day,
    }
    if pks:
        body["basis"] = [
            {"reference": ref} for ref in sorted({refs[pk] for pk in pks if pk in refs})
        ]
    body["prediction"] = predictions
    return body


def same_assessment(stored: dict[str, Any], new: dict[str, Any]) -> bool:
    """Equal but for the occurrence date (and meta): no new version needed."""
    skip = ("meta", "occurrenceDateTime", "id")
    return {k: v for k, v in stored.items() if k not in skip} == {
        k: v for k, v in new.items() if k not in skip
    }


def stratum_of(body: dict[str, Any]) -> str | None:
    """The pyramid stratum code of a stored RiskAssessment."""
    try:
        return str(body["prediction"][0]["outcome"]["coding"][0]["code"])
    except (KeyError, IndexError, TypeError):
        return None


def stratum_group(
    smap: StratificationMap, s: Stratum, team: str | None, members: list[str]
) -> dict[str, Any]:
    characteristic: list[dict[str, Any]] = [
        {
            "code": {"text": "stratum"},
            "valueCodeableConcept": {"coding": [coding(smap, s)], "text": s.display},
            "exclude": False,
        }
    ]
    name = f"Stratum: {s.display}"
    if team is not None:
        characteristic.append(
            {
                "code": {"text": "neighbourhood team"},
                "valueReference": {"reference": f"Group/{team}"},
                "exclude": False,
            }
        )
        name += f" (team {team})"
    return {
        "resourceType": "Group",
        "id": group_id(s.code, team),
        "active": True,
        "type": "person",
        "actual": True,
        "code": {"coding": [coding(smap, s)], "text": s.display},
        "name": name,
        "quantity": len(members),
        "characteristic": characteristic,
        "member": [{"entity": {"reference": f"Patient/{p}"}} for p in sorted(members)],
    }


def group_members(body: dict[str, Any]) -> set[str]:
    out = set()
    for m in body.get("member", ()):
        ref = m.get("entity", {}).get("reference", "")
        if ref.startswith("Patient/") and not m.get("inactive"):
            out.add(ref[8:])
    return out
