"""Facts read back from generated resources (not from the generator's internals), so the tests
check what a FHIR consumer would see."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from app.synth.params import clinical_data

Resource = dict[str, Any]

EXPECTED_TYPES = {
    "Patient",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "CareTeam",
    "Group",
    "Encounter",
    "Condition",
    "Observation",
    "MedicationStatement",
    "MedicationDispense",
    "Procedure",
    "CarePlan",
    "Goal",
}

ICPC2 = "http://hl7.org/fhir/sid/icpc-2"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"


def code_map() -> dict[tuple[str, str], str]:
    """(system, code) -> condition key, built from the parameter file's variants."""
    systems = {"icpc2": ICPC2, "icd10": ICD10, "snomed": SNOMED}
    out: dict[tuple[str, str], str] = {}
    for key, c in clinical_data()["conditions"].items():
        for v in c["variants"]:
            for name, system in systems.items():
                for code, _, _ in v[name]:
                    out[(system, code)] = key
    return out


@dataclass
class PatientFacts:
    id: str
    age: int
    sex: str
    postal_code: str
    team_ref: str
    ssin: str
    active: set[str] = field(default_factory=set)
    resolved: set[str] = field(default_factory=set)
    active_atc: set[str] = field(default_factory=set)
    ever_atc: set[str] = field(default_factory=set)
    observations: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    encounter_classes: list[str] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)
    pathways: list[str] = field(default_factory=list)
    n_resources: int = 0

    def last(self, *codes: str) -> Any:
        values = sorted(v for c in codes for v in self.observations.get(c, []))
        return values[-1][1] if values else None


def read_facts(
    resources: list[Resource], today: date, codes: dict[tuple[str, str], str]
) -> PatientFacts:
    p = resources[0]
    birth = date.fromisoformat(p["birthDate"])
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    f = PatientFacts(
        id=p["id"],
        age=age,
        sex=p["gender"],
        postal_code=p["address"][0]["postalCode"],
        team_ref=p["extension"][0]["valueReference"]["reference"],
        ssin=p["identifier"][0]["value"],
        n_resources=len(resources),
    )
    for r in resources[1:]:
        rt = r["resourceType"]
        if rt == "Condition":
            status = r["clinicalStatus"]["coding"][0]["code"]
            for c in r["code"]["coding"]:
                key = codes.get((c["system"], c["code"]))
                if key:
                    (f.active if status == "active" else f.resolved).add(key)
        elif rt == "MedicationStatement":
            atc = next(
                c["code"] for c in r["medicationCodeableConcept"]["coding"] if c["system"] == ATC
            )
            f.ever_atc.add(atc)
            if r["status"] == "active":
                f.active_atc.add(atc)
        elif rt == "Observation":
            code = r["code"]["coding"][0]["code"]
            if "valueQuantity" in r:
                value: Any = r["valueQuantity"]["value"]
            elif "component" in r:
                value = tuple(c["valueQuantity"]["value"] for c in r["component"])
            else:
                value = r["valueCodeableConcept"]["coding"][0]["code"]
            f.observations.setdefault(code, []).append((r["effectiveDateTime"], value))
        elif rt == "Encounter":
            f.encounter_classes.append(r["class"]["code"])
        elif rt == "Procedure":
            f.reviews.append(r["performedDateTime"][:10])
        elif rt == "CarePlan":
            f.pathways.append(r["category"][0]["coding"][0]["code"])
    return f
