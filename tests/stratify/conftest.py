"""Hand-built patients for the stratification tests, posted as transaction Bundles through
`POST /` on both databases, and an engine pinned to a fixed reference date."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from app.stratify.engine import Stratifier

REF = date(2026, 6, 30)  # the reference date of every stratification test
SCT = "http://snomed.info/sct"
ICPC = "http://hl7.org/fhir/sid/icpc-2"
ICD = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CS = "https://phm-fhir.be/fhir/CodeSystem/stratum"
TEAM_SYSTEM = "https://phm-fhir.example.org/fhir/NamingSystem/neighbourhood-team-group"

Json = dict[str, Any]
_ids = itertools.count(1)


def day(offset: int = 0) -> str:
    """REF plus `offset` days, as a FHIR date."""
    return (REF + timedelta(days=offset)).isoformat()


def born(years: int, days: int = 0) -> str:
    """A birth date `years` years (and `days` days) before REF."""
    return (REF.replace(year=REF.year - years) - timedelta(days=days)).isoformat()


class P:
    """One hand-built patient: a Patient and the resources of its compartment."""

    def __init__(
        self, pid: str, birth: str | None = None, gender: str = "female", **extra: Any
    ) -> None:
        self.id = pid
        self.patient: Json = {"resourceType": "Patient", "id": pid, "gender": gender, **extra}
        if birth is not None:
            self.patient["birthDate"] = birth
        self.resources: list[Json] = []

    def _add(self, r: Json) -> P:
        r.setdefault("id", f"{r['resourceType'][:3].lower()}{next(_ids)}")
        self.resources.append(r)
        return self

    @property
    def subject(self) -> Json:
        return {"reference": f"Patient/{self.id}"}

    def condition(
        self,
        system: str,
        code: str,
        status: str | None = "active",
        verification: str | None = None,
        abatement: str | None = None,
    ) -> P:
        r: Json = {
            "resourceType": "Condition",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": self.subject,
        }
        if status is not None:
            r["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": status}]}
        if verification is not None:
            r["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": verification}]}
        if abatement is not None:
            r["abatementDateTime"] = abatement
        return self._add(r)

    def t2d(self) -> P:
        return self.condition(ICPC, "T90")

    def lab(self, code: str, value: float, unit: str | None, when: str, status: str = "final") -> P:
        q: Json = {"value": value}
        if unit is not None:
            q.update({"unit": unit, "system": UCUM, "code": unit})
        return self._add(
            {
                "resourceType": "Observation",
                "status": status,
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "subject": self.subject,
                "effectiveDateTime": when,
                "valueQuantity": q,
            }
        )

    def bp(self, systolic: float, diastolic: float, when: str) -> P:
        def comp(code: str, v: float) -> Json:
            return {
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": v, "unit": "mm[Hg]", "system": UCUM, "code": "mm[Hg]"},
            }

        return self._add(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
                "subject": self.subject,
                "effectiveDateTime": when,
                "component": [comp("8480-6", systolic), comp("8462-4", diastolic)],
            }
        )

    def smoking(self, code: str, when: str) -> P:
        return self._add(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "72166-2"}]},
                "subject": self.subject,
                "effectiveDateTime": when,
                "valueCodeableConcept": {"coding": [{"system": SCT, "code": code}]},
            }
        )

    def statement(
        self,
        code: str,
        start: str | None = None,
        end: str | None = None,
        status: str = "active",
        system: str = ATC,
    ) -> P:
        r: Json = {
            "resourceType": "MedicationStatement",
            "status": status,
            "medicationCodeableConcept": {"coding": [{"system": system, "code": code}]},
            "subject": self.subject,
        }
        if start or end:
            r["effectivePeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
        return self._add(r)

    def request(self, code: str, status: str = "active", system: str = RXNORM) -> P:
        return self._add(
            {
                "resourceType": "MedicationRequest",
                "status": status,
                "intent": "order",
                "subject": self.subject,
                "medicationCodeableConcept": {"coding": [{"system": system, "code": code}]},
            }
        )

    def dispense(self, code: str, when: str, status: str = "completed") -> P:
        return self._add(
            {
                "resourceType": "MedicationDispense",
                "status": status,
                "medicationCodeableConcept": {"coding": [{"system": ATC, "code": code}]},
                "subject": self.subject,
                "whenHandedOver": when,
            }
        )

    def encounter(self, cls: str, start: str, status: str = "finished") -> P:
        return self._add(
            {
                "resourceType": "Encounter",
                "status": status,
                "class": {"system": ACT, "code": cls},
                "subject": self.subject,
                "period": {"start": start, "end": start},
            }
        )

    def medicines(self, n: int) -> P:
        """`n` distinct active chronic medicines (ATC level 5)."""
        atcs = [
            "C10AA05",
            "B01AC06",
            "C09AA05",
            "C07AB07",
            "C08CA01",
            "C03AA03",
            "A02BC02",
            "N06AB06",
            "H03AA01",
            "A11CC05",
            "M05BA04",
            "G04CA02",
            "M04AA01",
            "S01EE01",
        ]
        for code in atcs[:n]:
            self.statement(code, start=day(-400))
        return self

    def entries(self) -> list[Json]:
        out = [
            {"resource": self.patient, "request": {"method": "PUT", "url": f"Patient/{self.id}"}}
        ]
        out += [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in self.resources
        ]
        return out


def transaction(*patients: P, extra: list[Json] | None = None) -> Json:
    entries = [e for p in patients for e in p.entries()]
    entries += [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
        for r in extra or ()
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def team(gid: str, *members: str) -> Json:
    return {
        "resourceType": "Group",
        "id": gid,
        "type": "person",
        "actual": True,
        "identifier": [{"system": TEAM_SYSTEM, "value": gid}],
        "member": [{"entity": {"reference": f"Patient/{m}"}} for m in members],
    }


async def post(client: httpx.AsyncClient, *patients: P, extra: list[Json] | None = None) -> None:
    r = await client.post("/", json=transaction(*patients, extra=extra))
    assert r.status_code == 200, r.text


def stratum(ra: Json) -> str:
    return str(ra["prediction"][0]["outcome"]["coding"][0]["code"])


def substrata(ra: Json) -> list[str]:
    return [p["outcome"]["coding"][0]["code"] for p in ra["prediction"][1:]]


@pytest.fixture
async def engine(app: Any, client: httpx.AsyncClient) -> AsyncIterator[Stratifier]:
    """The app's engine on REF (the `client` fixture empties the database first)."""
    stratifier: Stratifier = app.state.stratify.stratifier
    previous = stratifier.day
    stratifier.day = REF
    try:
        yield stratifier
    finally:
        stratifier.day = previous


async def stratify(client: httpx.AsyncClient, pid: str) -> Json:
    r = await client.post(f"/Patient/{pid}/$stratify")
    assert r.status_code == 200, r.text
    body: Json = r.json()
    assert body["resourceType"] == "RiskAssessment", body
    return body


async def stratum_of(client: httpx.AsyncClient, p: P) -> str:
    """Post one patient and return the pyramid stratum it gets."""
    await post(client, p)
    return stratum(await stratify(client, p.id))
