"""MedicationStatements (the GP record's medication lines) and MedicationDispenses (pharmacy
dispensations over the last 12 months).

Both carry ATC; dispensations always carry the (synthetic) CNK of the package, medication lines
for about half of them (prescription by active substance is common). Active chronic lines have
no end; stopped, replaced and short-course lines are ``completed`` with an end date. Refills
follow the pack size, stretched for people with poor adherence.
"""

from __future__ import annotations

import random
from functools import cache

from app.synth.context import ATC, UCUM, PatientContext, Resource
from app.synth.params import Json, medicine_data, region_data
from app.synth.treatment import MedFact, TreatmentPlan


@cache
def _concepts() -> dict[str, tuple[Resource, Resource]]:
    """Per catalogue key: (ATC-only concept, CNK + ATC concept)."""
    cnk_system = region_data()["systems"]["cnk"]
    out = {}
    for key, item in medicine_data()["catalogue"].items():
        atc = {"system": ATC, "code": item["atc"], "display": item["atc_display"]}
        cnk = {"system": cnk_system, "code": item["cnk"], "display": item["name"]}
        out[key] = (
            {"coding": [atc], "text": item["name"]},
            {"coding": [cnk, atc], "text": item["name"]},
        )
    return out


@cache
def _dosages() -> dict[str, list[Resource]]:
    out = {}
    for key, item in medicine_data()["catalogue"].items():
        frequency, period, unit = item["timing"]
        dosage: Resource = {
            "text": item["dose_text"],
            "timing": {"repeat": {"frequency": frequency, "period": period, "periodUnit": unit}},
        }
        if item.get("as_needed"):
            dosage["asNeededBoolean"] = True
        out[key] = [dosage]
    return out


def injections_per_day(plan: TreatmentPlan) -> float:
    """Injections a day among the active lines (weekly pens count 1/7)."""
    total = 0.0
    for m in plan.medicines:
        if m.active and m.item.get("injection"):
            frequency, period, unit = m.item["timing"]
            total += frequency / period / (7 if unit == "wk" else 1)
    return total


def medication_resources(
    ctx: PatientContext,
    rng: random.Random,
    plan: TreatmentPlan,
    condition_ids: dict[str, str],
    pharmacy_ref: str,
    has_gp: bool,
) -> None:
    """Add MedicationStatements and MedicationDispenses for the plan."""
    spec: Json = medicine_data()["dispensing"]
    concepts, dosages = _concepts(), _dosages()
    cal = ctx.cal
    cnk_share = spec["statement_cnk_share"]
    window = cal.today - spec["window_days"]
    for m in plan.medicines:
        atc_only, with_cnk = concepts[m.key]
        r: Resource = {
            "resourceType": "MedicationStatement",
            "id": ctx.new_id("ms"),
            "status": "active" if m.active else "completed",
            "medicationCodeableConcept": with_cnk if rng.random() < cnk_share else atc_only,
            "subject": ctx.subject(),
            "effectivePeriod": {"start": cal.day(m.start)}
            if m.end is None
            else {"start": cal.day(m.start), "end": cal.day(m.end)},
            "dateAsserted": cal.day(max(m.start, min(cal.today, (m.end or cal.today) - 1))),
            "dosage": dosages[m.key],
        }
        if has_gp:
            r["informationSource"] = ctx.gp()
        if m.reason and m.reason in condition_ids:
            r["reasonReference"] = [{"reference": f"Condition/{condition_ids[m.reason]}"}]
        ctx.add(r)
        for day in _dispense_days(rng, m, window, cal.today):
            ctx.add(
                {
                    "resourceType": "MedicationDispense",
                    "id": ctx.new_id("md"),
                    "status": "completed",
                    "medicationCodeableConcept": with_cnk,
                    "subject": ctx.subject(),
                    "performer": [{"actor": {"reference": pharmacy_ref}}],
                    "quantity": {"value": 1, "unit": "verpakking"},
                    "daysSupply": {
                        "value": m.item["pack_days"],
                        "unit": "d",
                        "system": UCUM,
                        "code": "d",
                    },
                    "whenHandedOver": cal.instant(day, 510 + 5 * int(rng.random() * 120)),
                    "dosageInstruction": [{"text": m.item["dose_text"]}],
                }
            )


def _dispense_days(rng: random.Random, m: MedFact, window: int, today: int) -> list[int]:
    if m.acute:
        return [m.start] if m.start >= window else []
    end = today if m.end is None else m.end
    step = m.item["pack_days"] * m.gap_factor
    t = float(m.start)
    if t < window:  # enter the window at a random point of the refill cycle
        t = window - rng.random() * step
        while t < window:
            t += step
    days = []
    while t <= end:
        days.append(int(t))
        t += step * (0.9 + 0.2 * rng.random())
    return days
