"""Builders for the hand-made patients of the measure tests, and the transaction Bundle that
posts them. Real code systems throughout (SNOMED CT, ICPC-2, ICD-10, LOINC, ATC, CNK, RxNorm),
as GP software, pharmacies, labs and Synthea send them."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

Resource = dict[str, Any]

SNOMED = "http://snomed.info/sct"
ICPC2 = "http://hl7.org/fhir/sid/icpc-2"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CNK = "https://www.ehealth.fgov.be/standards/fhir/medication/NamingSystem/cnk-codes"
UCUM = "http://unitsofmeasure.org"
TEAM_SYSTEM = "https://phm-fhir.example.org/fhir/NamingSystem/neighbourhood-team-group"
STRATUM_SYSTEM = "https://phm-fhir.be/fhir/CodeSystem/stratum"

T2D_SNOMED = (SNOMED, "44054006")
T2D_ICPC = (ICPC2, "T90")
T2D_ICD10 = (ICD10, "E11")
HYPERTENSION = (SNOMED, "38341003")
MYOCARDIAL_INFARCTION = (ICPC2, "K75")
STROKE = (SNOMED, "230690007")

_serial = itertools.count(1)


def _id(patient: str, kind: str) -> str:
    return f"{patient}-{kind}{next(_serial)}"


def _ref(patient: str) -> dict[str, str]:
    return {"reference": f"Patient/{patient}"}


def _concept(*codings: tuple[str, str]) -> dict[str, Any]:
    return {"coding": [{"system": s, "code": c} for s, c in codings]}


def patient(pid: str, birth: str, gender: str = "female", **extra: Any) -> Resource:
    return {"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": gender, **extra}


def condition(
    pid: str,
    *codings: tuple[str, str],
    clinical: str = "active",
    verification: str = "confirmed",
    onset: str = "2015-03-01",
) -> Resource:
    return {
        "resourceType": "Condition",
        "id": _id(pid, "c"),
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": clinical,
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                    "code": verification,
                }
            ]
        },
        "code": _concept(*codings),
        "subject": _ref(pid),
        "onsetDateTime": onset,
    }


def observation(
    pid: str, loinc: str, value: float, unit: str, when: str, status: str = "final"
) -> Resource:
    return {
        "resourceType": "Observation",
        "id": _id(pid, "o"),
        "status": status,
        "code": _concept((LOINC, loinc)),
        "subject": _ref(pid),
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def hba1c(pid: str, percent: float, when: str, **kw: Any) -> Resource:
    return observation(pid, "4548-4", percent, "%", when, **kw)


def hba1c_ifcc(pid: str, mmol_mol: float, when: str) -> Resource:
    return observation(pid, "59261-8", mmol_mol, "mmol/mol", when)


def ldl(
    pid: str, value: float, when: str, unit: str = "mg/dL", loinc: str | None = None
) -> Resource:
    code = loinc or ("18262-6" if unit == "mg/dL" else "22748-8")
    return observation(pid, code, value, unit, when)


def blood_pressure(
    pid: str, systolic: float, diastolic: float, when: str, panel: str = "85354-9"
) -> Resource:
    def component(code: str, value: float) -> dict[str, Any]:
        return {
            "code": _concept((LOINC, code)),
            "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
        }

    return {
        "resourceType": "Observation",
        "id": _id(pid, "bp"),
        "status": "final",
        "code": _concept((LOINC, panel)),
        "subject": _ref(pid),
        "effectiveDateTime": when,
        "component": [component("8480-6", systolic), component("8462-4", diastolic)],
    }


def medication_statement(
    pid: str, *codings: tuple[str, str], start: str, end: str | None = None, status: str = "active"
) -> Resource:
    period = {"start": start, **({"end": end} if end else {})}
    return {
        "resourceType": "MedicationStatement",
        "id": _id(pid, "ms"),
        "status": status,
        "medicationCodeableConcept": _concept(*codings),
        "subject": _ref(pid),
        "effectivePeriod": period,
    }


def medication_dispense(
    pid: str, *codings: tuple[str, str], handed_over: str, status: str = "completed"
) -> Resource:
    return {
        "resourceType": "MedicationDispense",
        "id": _id(pid, "md"),
        "status": status,
        "medicationCodeableConcept": _concept(*codings),
        "subject": _ref(pid),
        "whenHandedOver": handed_over,
    }


def medication_request(
    pid: str,
    *codings: tuple[str, str],
    authored: str,
    status: str = "active",
    intent: str = "order",
) -> Resource:
    return {
        "resourceType": "MedicationRequest",
        "id": _id(pid, "mr"),
        "status": status,
        "intent": intent,
        "medicationCodeableConcept": _concept(*codings),
        "subject": _ref(pid),
        "authoredOn": authored,
    }


def procedure(
    pid: str, code: tuple[str, str], performed: str, status: str = "completed"
) -> Resource:
    return {
        "resourceType": "Procedure",
        "id": _id(pid, "pr"),
        "status": status,
        "code": _concept(code),
        "subject": _ref(pid),
        "performedDateTime": performed,
    }


def group(
    gid: str, members: list[str], *, team: str | None = None, stratum: str | None = None
) -> Resource:
    out: Resource = {"resourceType": "Group", "id": gid, "type": "person", "actual": True}
    if team:
        out["identifier"] = [{"system": TEAM_SYSTEM, "value": team}]
    if stratum:
        out["code"] = _concept((STRATUM_SYSTEM, stratum))
    if members:
        out["member"] = [{"entity": {"reference": f"Patient/{m}"}} for m in members]
    return out


def transaction(resources: list[Resource]) -> Resource:
    """A transaction Bundle that PUTs every resource at its id."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"http://testserver/{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


async def post_transaction(client: httpx.AsyncClient, resources: list[Resource]) -> None:
    r = await client.post("/", json=transaction(resources))
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "transaction-response"
