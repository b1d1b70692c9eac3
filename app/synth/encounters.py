"""Contacts with care: GP consultations (AMB), home visits (HH), emergency visits (EMER) and
hospital admissions (IMP) over the reference window.

GP contacts are monitoring visits (the lab panels of chronic care, see ``clinical.json``
``monitoring``) plus problem visits at an age-dependent rate that rises with every chronic
condition, frailty and dementia; the old, the frail and people with dementia are often seen at
home. Acute events diagnosed in the window (myocardial infarction, stroke, heart failure) come
with an admission on the day of onset.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from app.synth.context import ACT_CODE, SNOMED, PatientContext, Resource
from app.synth.morbidity import ConditionFact
from app.synth.params import Json, band_index, clinical_data
from app.synth.timeline import weekday
from app.synth.treatment import poisson


@dataclass(slots=True)
class Visit:
    """One contact; ``panel`` marks a monitoring visit with a lab panel."""

    day: int
    minute: int
    kind: str  # gp | home | emergency | admission
    end_day: int
    end_minute: int
    panel: bool = False
    reason: ConditionFact | None = None
    hospital: int = 0
    id: str = ""


@cache
def _spec() -> tuple[Json, Json, list[int]]:
    data = clinical_data()
    return data["encounters"], data["monitoring"], list(data["age_band_edges"]["value"])


def monitoring_steps(conditions: dict[str, ConditionFact], age: int) -> list[tuple[int, float]]:
    """(from day, lab panels per year): the rate rises to the highest rate of the recorded
    conditions diagnosed so far; the first item starts at day 0."""
    rates = _spec()[1]["panels_per_year"]
    default = rates["adult_45"] if age >= 45 else rates["adult"] if age >= 18 else rates["child"]
    onsets = []
    for key, c in conditions.items():
        if c.active and c.recorded:
            rate_key = "ascvd" if key in ("ihd", "stroke", "pad") else key
            if rate_key in rates:
                onsets.append((c.onset, float(rates[rate_key])))
    steps = [(0, float(default))]
    for onset, rate in sorted(onsets):
        if rate > steps[-1][1]:
            steps.append((onset, rate))
    return steps


def _panel_days(
    rng: random.Random, steps: list[tuple[int, float]], start: int, last: int
) -> list[int]:
    """Monitoring visit days: regular at the current rate, a first one soon after a diagnosis."""
    missed = _spec()[1]["missed_checkup_share"]["value"]
    rate = max(r for day, r in steps if day <= start)
    changes = [(day, r) for day, r in steps if day > start]
    t = start + rng.random() * 365.25 / rate
    days: list[int] = []
    while True:
        if changes and t >= changes[0][0]:
            day, rate = changes.pop(0)
            t = day + rng.random() * 30
            continue
        if t > last:
            return days
        if rng.random() >= missed:
            days.append(int(t))
        t += 365.25 / rate * (0.75 + 0.5 * rng.random())


def _weekday_time(rng: random.Random, day: int, today: int) -> tuple[int, int]:
    wd = weekday(day)
    if wd >= 5:
        day += 7 - wd
    if day > today:
        day -= 7
    return day, 480 + 5 * int(rng.random() * 132)


def plan_visits(
    rng: random.Random,
    conditions: dict[str, ConditionFact],
    age: int,
    today: int,
    start: int,
    hba1c_gap: bool,
) -> list[Visit]:
    """All contacts in the window ``[start, today]``, sorted by time."""
    enc, mon, edges = _spec()
    band = band_index(edges, age)
    years = (today - start) / 365.25
    active = {k for k, c in conditions.items() if c.active and c.recorded}
    visits: list[Visit] = []
    last_panel = today - mon["hba1c_gap_days"] if hba1c_gap else today
    for day in _panel_days(rng, monitoring_steps(conditions, age), start, last_panel):
        visits.append(Visit(day, 0, "gp", 0, 0, panel=True))
    problem = enc["gp_contacts_per_year_by_age_band"]["value"][band]
    problem += enc["extra_per_chronic_condition"]["value"] * len(active)
    if "frailty" in active:
        problem += enc["extra_frailty"]["value"]
    if "dementia" in active:
        problem += enc["extra_dementia"]["value"]
    for _ in range(poisson(rng, problem * years)):
        visits.append(Visit(start + int(rng.random() * (today - start)), 0, "gp", 0, 0))
    home = enc["home_visit_share"]
    share = (
        home["frail_or_dementia"]
        if {"frailty", "dementia"} & active
        else home["age_85"]
        if age >= 85
        else home["age_75"]
        if age >= 75
        else home["other"]
    )
    for v in visits:
        v.day, v.minute = _weekday_time(rng, v.day, today)
        if rng.random() < share:
            v.kind = "home"
            v.minute = 600 + 5 * int(rng.random() * 84)
        v.end_day, v.end_minute = v.day, v.minute + (30 if v.kind == "home" else 15)
    n_chronic = len(active)
    er = enc["emergency_per_year_by_age_band"]
    for _ in range(
        poisson(rng, (er["value"][band] + er["per_chronic_condition"] * n_chronic) * years)
    ):
        day = start + int(rng.random() * (today - start))
        minute = int(rng.random() * 1200)
        visits.append(
            Visit(
                day,
                minute,
                "emergency",
                day,
                minute + 90 + int(rng.random() * 240),
                hospital=int(rng.random() * 2),
            )
        )
    adm = enc["admission_per_year_by_age_band"]
    lam = adm["value"][band] + adm["per_chronic_condition"] * n_chronic
    lam += adm["heart_failure"] * ("heart_failure" in active) + adm["frailty"] * (
        "frailty" in active
    )
    stays: list[tuple[int, ConditionFact | None]] = [
        (start + int(rng.random() * (today - start)), None)
        for _ in range(poisson(rng, lam * years))
    ]
    stays += [(c.onset, c) for c in conditions.values() if c.admitted]
    mean_los = enc["length_of_stay_days"]["mean_by_age_band"][band]
    for day, reason in stays:
        los = 1 + int(rng.expovariate(1 / mean_los))
        if reason is None:
            day = min(day, today - los - 1)
        else:  # admitted on the day of onset; discharged before today
            los = max(1, min(los, today - day - 1))
        minute = int(rng.random() * 1380)
        visits.append(
            Visit(
                day,
                minute,
                "admission",
                day + los,
                600 + int(rng.random() * 300),
                reason=reason,
                hospital=int(rng.random() * 2),
            )
        )
    visits.sort(key=lambda v: (v.day, v.minute))
    return visits


_CLASS = {
    "gp": ("AMB", "ambulatory", "gp"),
    "home": ("HH", "home health", "home"),
    "emergency": ("EMER", "emergency", "emergency"),
    "admission": ("IMP", "inpatient encounter", "admission"),
}


@cache
def _types() -> dict[str, Resource]:
    codes = _spec()[0]["codes"]
    return {
        kind: {"coding": [{"system": SNOMED, "code": c, "display": d}]}
        for kind, (c, d) in codes.items()
    }


@cache
def _classes() -> dict[str, dict[str, str]]:
    return {k: {"system": ACT_CODE, "code": c, "display": d} for k, (c, d, _) in _CLASS.items()}


def encounter_resources(ctx: PatientContext, visits: list[Visit], hospitals: list[str]) -> None:
    """Add one Encounter per visit and set ``visit.id``."""
    types, classes = _types(), _classes()
    cal = ctx.cal
    for v in visits:
        v.id = ctx.new_id("e")
        kind = _CLASS[v.kind][2]
        end_minute = min(v.end_minute, 1439)
        r: Resource = {
            "resourceType": "Encounter",
            "id": v.id,
            "status": "finished",
            "class": classes[v.kind],
            "type": [types[kind]],
            "subject": ctx.subject(),
            "period": {
                "start": cal.instant(v.day, v.minute),
                "end": cal.instant(v.end_day, end_minute),
            },
        }
        if v.kind in ("gp", "home"):
            r["participant"] = [{"individual": ctx.gp()}]
            r["serviceProvider"] = {"reference": ctx.team_ref}
        else:
            r["serviceProvider"] = {"reference": hospitals[v.hospital]}
        ctx.add(r)
