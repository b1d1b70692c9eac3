"""The FHIR the fuzzers start from: the resources that exist while they run, valid resources
and a transaction Bundle to break, and the request they send."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def words(text: str) -> list[str]:
    """The space-separated values of `text` (the empty value written as `''`)."""
    return ["" if w == "''" else w for w in text.split()]


TYPES = words(
    "Patient Observation Condition CarePlan Encounter MedicationRequest Practitioner "
    "Organization Group Measure CareTeam RiskAssessment"
)
# resources that exist while the fuzzers run (`seed_resources`)
SEED_IDS = {"Patient": "fuzz-p1", "Observation": "fuzz-o1", "CarePlan": "fuzz-c1"}


@dataclass
class Request:
    method: str
    url: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def seed_resources() -> list[dict[str, Any]]:
    patient = {
        "resourceType": "Patient",
        "id": SEED_IDS["Patient"],
        "gender": "female",
        "birthDate": "1950-01-01",
        "name": [{"family": "Fuzz", "given": ["Hypo"]}],
        "identifier": [{"system": "urn:fuzz", "value": "1"}],
    }
    obs = {
        "resourceType": "Observation",
        "id": SEED_IDS["Observation"],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
        "subject": {"reference": "Patient/fuzz-p1"},
        "effectiveDateTime": "2025-01-02",
        "valueQuantity": {
            "value": 7.1,
            "unit": "%",
            "system": "http://unitsofmeasure.org",
            "code": "%",
        },
    }
    plan = {
        "resourceType": "CarePlan",
        "id": SEED_IDS["CarePlan"],
        "status": "active",
        "intent": "plan",
        "subject": {"reference": "Patient/fuzz-p1"},
    }
    return [patient, obs, plan]


def templates() -> list[dict[str, Any]]:
    """Valid resources to break."""
    patient, obs, plan = seed_resources()
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/fuzz-p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "onsetDateTime": "2019-05",
    }
    med = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/fuzz-p1"},
        "authoredOn": "2024-02-03T10:00:00Z",
        "medicationCodeableConcept": {
            "coding": [{"system": "http://www.whocc.no/atc", "code": "A10BA02"}]
        },
        "dosageInstruction": [
            {"timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}}
        ],
    }
    for r in (patient, obs, plan):
        del r["id"]
    return [patient, obs, plan, condition, med]


def bundle_template() -> dict[str, Any]:
    patient, obs, *_ = templates()
    obs = {**obs, "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"}}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                "resource": patient,
                "request": {
                    "method": "POST",
                    "url": "Patient",
                    "ifNoneExist": "identifier=urn:fuzz|2",
                },
            },
            {
                "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "resource": {**seed_resources()[2], "status": "completed"},
                "request": {"method": "PUT", "url": "CarePlan/fuzz-c1", "ifMatch": 'W/"1"'},
            },
            {"request": {"method": "GET", "url": "Patient?identifier=urn:fuzz|1"}},
            {"request": {"method": "DELETE", "url": "Observation?code=nothing|none"}},
        ],
    }
