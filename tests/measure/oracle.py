"""The indicator library written again in plain Python over one patient's FHIR JSON: what each
Measure in `fhir_profiles/measures/` means, without the search compiler, the FHIRPath subset
or SQL. The code lists are the shipped ValueSets (data, not engine)."""

from __future__ import annotations

import calendar
import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from app.fhir.definitions import PROFILES

Resource = dict[str, Any]
ACTIVE = {"active", "recurrence", "relapse"}
RESULT = {"final", "amended", "corrected"}
NEVER = datetime.max.replace(tzinfo=UTC)
IP, DEN, NUM = "initial-population", "denominator", "numerator"


@functools.cache
def valueset(name: str) -> frozenset[tuple[str, str]]:
    vs = orjson.loads((PROFILES / "valuesets" / f"{name}.json").read_bytes())
    return frozenset(
        (inc["system"], c["code"])
        for inc in vs["compose"]["include"]
        for c in inc.get("concept", [])
    )


def coded(concept: dict[str, Any] | None, name: str) -> bool:
    return any(
        (c.get("system"), c.get("code")) in valueset(name)
        for c in (concept or {}).get("coding", [])
    )


def codes(concept: dict[str, Any] | None) -> set[str]:
    return {c.get("code", "") for c in (concept or {}).get("coding", [])}


def years_before(d: date, years: int) -> date:
    y = d.year - years
    return date(y, d.month, min(d.day, calendar.monthrange(y, d.month)[1]))


def span(value: Any) -> tuple[datetime, datetime]:
    """[low, high) of a date, dateTime or Period, in UTC."""
    if isinstance(value, dict):
        low = span(value["start"])[0] if "start" in value else datetime.min.replace(tzinfo=UTC)
        high = span(value["end"])[1] if "end" in value else NEVER
        return low, high
    if len(value) == 10:
        d = datetime.fromisoformat(value).replace(tzinfo=UTC)
        return d, d + timedelta(days=1)
    t = datetime.fromisoformat(value).astimezone(UTC)
    return t, t + timedelta(seconds=1)


@dataclass
class Period:
    start: date
    end: date

    @property
    def low(self) -> datetime:
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    @property
    def high(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=UTC) + timedelta(days=1)

    def overlaps(self, value: Any, low: datetime | None = None) -> bool:
        if value is None:
            return False
        lo, hi = span(value)
        return hi > (low or self.low) and lo < self.high


class Patient:
    """One patient's resources, and the facts the measures test."""

    def __init__(self, resources: list[Resource], period: Period) -> None:
        self.period = period
        self.patient = next(r for r in resources if r["resourceType"] == "Patient")
        self.by_type: dict[str, list[Resource]] = {}
        for r in resources:
            self.by_type.setdefault(r["resourceType"], []).append(r)

    @property
    def id(self) -> str:
        return str(self.patient["id"])

    def aged(self, years: int) -> bool:
        born = date.fromisoformat(self.patient["birthDate"])
        return born <= years_before(self.period.end, years)

    @property
    def alive(self) -> bool:
        if self.patient.get("deceasedBoolean") is True:
            return False
        died = self.patient.get("deceasedDateTime")
        return died is None or span(died)[0] >= self.period.high

    def has_condition(self, name: str) -> bool:
        return any(
            coded(c["code"], name)
            and codes(c.get("clinicalStatus")) & ACTIVE
            and not codes(c.get("verificationStatus")) & {"refuted", "entered-in-error"}
            for c in self.by_type.get("Condition", [])
        )

    def results(self, name: str) -> list[Resource]:
        """Observations of the value set in the period, in the order they were written."""
        return [
            o
            for o in self.by_type.get("Observation", [])
            if coded(o["code"], name)
            and o["status"] in RESULT
            and self.period.overlaps(o.get("effectiveDateTime"))
        ]

    def last(self, name: str) -> Resource | None:
        found = self.results(name)  # latest effective; a tie goes to the last written
        return max(reversed(found), key=lambda o: span(o["effectiveDateTime"])[1], default=None)

    def on(self, name: str) -> bool:
        """Taken, dispensed or prescribed in the period (statins, antithrombotics)."""
        p = self.period
        taken = any(
            coded(s.get("medicationCodeableConcept"), name)
            and s["status"] not in ("entered-in-error", "not-taken", "stopped")
            and p.overlaps(s.get("effectivePeriod") or s.get("effectiveDateTime"))
            for s in self.by_type.get("MedicationStatement", [])
        )
        dispensed = any(
            coded(d.get("medicationCodeableConcept"), name)
            and d["status"] == "completed"
            and p.overlaps(d.get("whenHandedOver"))
            for d in self.by_type.get("MedicationDispense", [])
        )
        prescribed = any(
            coded(m.get("medicationCodeableConcept"), name)
            and m["intent"] in ("order", "plan")
            and (
                (
                    m["status"] in ("active", "completed", "stopped")
                    and p.overlaps(m.get("authoredOn"))
                )
                or (m["status"] == "active" and span(m["authoredOn"])[0] < p.high)
            )
            for m in self.by_type.get("MedicationRequest", [])
        )
        return taken or dispensed or prescribed

    def medicines_at_end(self) -> int:
        end = Period(self.period.end, self.period.end)
        return sum(
            s["status"] == "active"
            and end.overlaps(s.get("effectivePeriod") or s.get("effectiveDateTime"))
            for s in self.by_type.get("MedicationStatement", [])
        )

    def reviewed(self) -> bool:
        window = Period(years_before(self.period.end, 1), self.period.end)
        return any(
            coded(p["code"], "medication-review")
            and p["status"] == "completed"
            and window.overlaps(p.get("performedDateTime") or p.get("performedPeriod"))
            for p in self.by_type.get("Procedure", [])
        )


def _value(o: Resource | None, unit: str) -> float | None:
    q = (o or {}).get("valueQuantity") or {}
    return q.get("value") if unit in (q.get("code"), q.get("unit")) else None


def _bp_controlled(o: Resource | None) -> bool:
    def below(loinc: str, limit: float) -> bool:
        return any(
            loinc in codes(c["code"])
            and c["valueQuantity"].get("code") == "mm[Hg]"
            and c["valueQuantity"]["value"] < limit
            for c in (o or {}).get("component", [])
        )

    return below("8480-6", 140) and below("8462-4", 90)


def _gt(value: float | None, limit: float) -> bool:
    return value is not None and value > limit


def _lt(value: float | None, limit: float) -> bool:
    return value is not None and value < limit


def populations(p: Patient) -> dict[str, set[str]]:
    """Measure id -> the populations of the patient."""
    if not p.alive:
        return {}
    adult = p.aged(18)
    t2d = adult and p.has_condition("type-2-diabetes")
    ascvd = adult and p.has_condition("ascvd")
    hba1c = p.last("hba1c")
    ldl = p.last("ldl-cholesterol")

    def proportion(den: bool, num: bool) -> set[str]:
        return ({IP, DEN} | ({NUM} if num else set())) if den else set()

    out = {
        "t2d-hba1c-tested": proportion(t2d, hba1c is not None),
        "t2d-hba1c-poor-control": proportion(
            t2d and hba1c is not None,
            _gt(_value(hba1c, "%"), 8) or _gt(_value(hba1c, "mmol/mol"), 64),
        ),
        "t2d-ldl-tested": proportion(t2d, ldl is not None),
        "t2d-kidney-monitoring": proportion(
            t2d, bool(p.results("egfr")) and bool(p.results("uacr"))
        ),
        "t2d-statin": proportion(t2d and p.aged(40), p.on("statins")),
        "ascvd-statin": proportion(ascvd, p.on("statins")),
        "ascvd-antithrombotic": proportion(ascvd, p.on("antithrombotics")),
        "ascvd-ldl-target": proportion(
            ascvd, _lt(_value(ldl, "mg/dL"), 55) or _lt(_value(ldl, "mmol/L"), 1.4)
        ),
        "hypertension-bp-controlled": proportion(
            adult and p.has_condition("hypertension"),
            _bp_controlled(p.last("blood-pressure-panel")),
        ),
        "polypharmacy-medication-review": proportion(
            p.aged(75) and p.medicines_at_end() >= 10, p.reviewed()
        ),
        "population-per-stratum": {IP} if p.patient.get("active") is not False else set(),
    }
    return {k: v for k, v in out.items() if v}


def age_band(p: Patient) -> str:
    born = date.fromisoformat(p.patient["birthDate"])
    end = p.period.end
    age = end.year - born.year - ((end.month, end.day) < (born.month, born.day))
    for low, high, label in (
        (0, 17, "0-17"),
        (18, 44, "18-44"),
        (45, 64, "45-64"),
        (65, 74, "65-74"),
        (75, 84, "75-84"),
    ):
        if low <= age <= high:
            return label
    return "85+"
