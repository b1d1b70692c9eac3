"""Condition resources coded the way Belgian sources send them.

A GP record is a ``problem-list-item`` coded with ICPC-2 and ICD-10 (the GP software's thesaurus
gives both; frailty and prediabetes have no ICPC-2 code); a hospital record is an
``encounter-diagnosis`` coded in SNOMED CT (Belgian edition as ``Coding.version``), linked to the
admission when the diagnosis was made during one. Resolved past episodes carry an abatement date.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from typing import Any

from app.synth.context import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    ICD10,
    ICPC2,
    SNOMED,
    SNOMED_BE_EDITION,
    PatientContext,
    Resource,
)
from app.synth.encounters import Visit
from app.synth.morbidity import ConditionFact
from app.synth.params import cumulative

_PROBLEM = [
    {
        "coding": [
            {
                "system": CONDITION_CATEGORY,
                "code": "problem-list-item",
                "display": "Problem List Item",
            }
        ]
    }
]
_DIAGNOSIS = [
    {
        "coding": [
            {
                "system": CONDITION_CATEGORY,
                "code": "encounter-diagnosis",
                "display": "Encounter Diagnosis",
            }
        ]
    }
]
_ACTIVE = {"coding": [{"system": CONDITION_CLINICAL, "code": "active", "display": "Active"}]}
_RESOLVED = {"coding": [{"system": CONDITION_CLINICAL, "code": "resolved", "display": "Resolved"}]}
_CONFIRMED = {
    "coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed", "display": "Confirmed"}]
}


def _pick(rng: random.Random, options: list[list[Any]]) -> list[Any]:
    if len(options) == 1:
        return options[0]
    return options[bisect_left(cumulative([o[2] for o in options]), rng.random())]


def _gp_code(rng: random.Random, variant: dict[str, Any]) -> Resource:
    coding = []
    if variant["icpc2"]:
        code, display, _ = _pick(rng, variant["icpc2"])
        coding.append({"system": ICPC2, "code": code, "display": display})
    code, display, _ = _pick(rng, variant["icd10"])
    coding.append({"system": ICD10, "code": code, "display": display})
    return {"coding": coding, "text": variant["text_nl"]}


def _hospital_code(rng: random.Random, variant: dict[str, Any]) -> Resource:
    code, display, _ = _pick(rng, variant["snomed"])
    c = {"system": SNOMED, "version": SNOMED_BE_EDITION, "code": code, "display": display}
    return {"coding": [c], "text": display}


def condition_resources(
    ctx: PatientContext,
    rng: random.Random,
    conditions: dict[str, ConditionFact],
    visits: list[Visit],
    has_gp: bool,
) -> dict[str, str]:
    """Add the Condition resources; return condition key -> id of its main record."""
    cal = ctx.cal
    admissions = [v for v in visits if v.kind == "admission"]
    ids: dict[str, str] = {}
    for fact in conditions.values():
        if not fact.recorded:
            continue
        status = _ACTIVE if fact.active else _RESOLVED
        if fact.gp_record:
            rid = ctx.new_id("c")
            r: Resource = {
                "resourceType": "Condition",
                "id": rid,
                "clinicalStatus": status,
                "verificationStatus": _CONFIRMED,
                "category": _PROBLEM,
                "code": _gp_code(rng, fact.variant),
                "subject": ctx.subject(),
                "onsetDateTime": cal.day(fact.onset),
                "recordedDate": cal.day(min(fact.onset + int(rng.random() * 30), cal.today)),
            }
            if fact.abatement is not None:
                r["abatementDateTime"] = cal.day(fact.abatement)
            if has_gp:
                r["recorder"] = ctx.gp()
            ctx.add(r)
            ids[fact.key] = rid
        if fact.hospital:
            rid = ctx.new_id("c")
            r = {
                "resourceType": "Condition",
                "id": rid,
                "clinicalStatus": status,
                "verificationStatus": _CONFIRMED,
                "category": _DIAGNOSIS,
                "code": _hospital_code(rng, fact.variant),
                "subject": ctx.subject(),
                "onsetDateTime": cal.day(fact.onset),
            }
            stay = next((v for v in admissions if v.reason is fact), None)
            if stay is None and admissions and fact.onset < cal.start:
                stay = admissions[int(rng.random() * len(admissions))]
            if stay is not None:
                r["encounter"] = {"reference": f"Encounter/{stay.id}"}
                r["recordedDate"] = cal.day(stay.end_day)
            if fact.abatement is not None:
                r["abatementDateTime"] = cal.day(fact.abatement)
            ctx.add(r)
            ids.setdefault(fact.key, rid)
    return ids
