"""Care pathways and medication reviews.

People in a pathway (zorgtraject or opstarttraject diabetes type 2, ASCVD secondary prevention;
``clinical.json`` ``pathways``) get one CareTeam of their own (GP, pharmacist, and by pathway a
home nurse, diabetes educator, dietitian or physiotherapist of their neighbourhood team) and one
CarePlan per pathway (active, intent plan) with Goal resources (HbA1c, LDL, blood pressure
targets from the cited guidelines, their achievement set from the latest value) and activities.
People aged 75+ on >= 10 active medicines often, and others on >= 5 sometimes, have a
"Review of medication" Procedure (SNOMED CT 182836005) in the last 12 months; the others are the
care gap.
"""

from __future__ import annotations

import random
from datetime import date
from functools import cache

from app.synth.context import LOINC, SNOMED, UCUM, PatientContext, Resource
from app.synth.morbidity import ConditionFact
from app.synth.observations import LastValues
from app.synth.params import Json, clinical_data, region_data
from app.synth.providers import Professional, TeamStaff
from app.synth.treatment import TreatmentPlan

GOAL_ACHIEVEMENT = "http://terminology.hl7.org/CodeSystem/goal-achievement"


@cache
def _spec() -> tuple[Json, Json, Json]:
    data = clinical_data()
    return data["pathways"], data["medication_review"], data["observations"]


def enrolled_pathways(
    rng: random.Random, conditions: dict[str, ConditionFact], plan: TreatmentPlan, has_gp: bool
) -> list[Json]:
    """The pathways this person is enrolled in (needs a GP holding the medical record)."""
    if not has_gp:
        return []
    active = {k for k, c in conditions.items() if c.active and c.recorded}
    tag = plan.tags.get("t2d_step")
    out = []
    for p in _spec()[0]["items"]:
        eligible = (tag in p.get("when_tag", ()) and "t2d" in active) or bool(
            active & set(p.get("when_condition", ()))
        )
        if eligible and rng.random() < p["probability"]:
            out.append(p)
    return out


def _role_ref(p: Professional) -> dict[str, str]:
    return {"reference": f"PractitionerRole/{p.id}", "display": p.display}


def _member(
    rng: random.Random, staff: TeamStaff, role: str, gp: Professional, pharmacist: Professional
) -> Professional | None:
    if role == "gp":
        return gp
    if role == "pharmacist":
        return pharmacist
    people = staff.roles.get(role)
    return people[int(rng.random() * len(people))] if people else None


def _goal_target(
    kind: str, frail_or_old: bool, age: int, very_high: bool
) -> list[tuple[str, str, float, str, str]]:
    goals = _spec()[0]["goals"]
    obs = _spec()[2]
    if kind == "hba1c":
        v = goals["hba1c"]["frail_or_old" if frail_or_old else "default"]
        return [
            (
                obs["hba1c"]["ngsp"]["code"],
                obs["hba1c"]["ngsp"]["display"],
                v,
                "%",
                f"HbA1c <= {v:g}%",
            )
        ]
    if kind == "ldl":
        v = goals["ldl"]["very_high_risk" if very_high else "high_risk"]
        c = obs["ldl"]["calculated"]
        return [(c["code"], c["display"], v, "mg/dL", f"LDL-cholesterol < {v} mg/dL")]
    sys_v, dia_v = goals["bp"]["under_65" if age < 65 else "default"]
    b = obs["blood_pressure"]
    text = f"Bloeddruk < {sys_v}/{dia_v} mmHg"
    return [
        (b["systolic"]["code"], b["systolic"]["display"], sys_v, "mm[Hg]", text),
        (b["diastolic"]["code"], b["diastolic"]["display"], dia_v, "mm[Hg]", text),
    ]


def _achieved(
    kind: str, last: LastValues, targets: list[tuple[str, str, float, str, str]]
) -> str | None:
    if kind == "hba1c" and last.hba1c is not None:
        return "achieved" if last.hba1c <= targets[0][2] else "not-achieved"
    if kind == "ldl" and last.ldl is not None:
        return "achieved" if last.ldl < targets[0][2] else "not-achieved"
    if kind == "bp" and last.bp is not None:
        return (
            "achieved"
            if last.bp[0] < targets[0][2] and last.bp[1] < targets[1][2]
            else "not-achieved"
        )
    return None


def pathway_resources(
    ctx: PatientContext,
    rng: random.Random,
    pathways: list[Json],
    staff: TeamStaff,
    gp: Professional,
    pharmacist: Professional,
    conditions: dict[str, ConditionFact],
    condition_ids: dict[str, str],
    last: LastValues,
    age: int,
) -> None:
    """Add the patient's CareTeam, Goals and CarePlans for their pathways."""
    if not pathways:
        return
    spec = _spec()[0]
    systems = region_data()["systems"]
    cal = ctx.cal
    starts = []
    for p in pathways:
        earliest = date.fromisoformat(p["earliest_start"]).toordinal()
        onset = min(
            c.onset
            for k, c in conditions.items()
            if k in ("t2d", "ihd", "stroke", "pad") and c.active
        )
        lo = max(earliest, onset + 30)
        starts.append(lo + int(rng.random() * max(1, cal.today - 30 - lo)))
    roles: dict[str, Professional] = {}
    for p in pathways:
        for role, prob in p["roles"].items():
            if role not in roles and rng.random() < prob:
                member = _member(rng, staff, role, gp, pharmacist)
                if member is not None:
                    roles[role] = member
    team_id = ctx.new_id("ct")
    code, display = spec["careteam_category"]
    ctx.add(
        {
            "resourceType": "CareTeam",
            "id": team_id,
            "status": "active",
            "category": [{"coding": [{"system": LOINC, "code": code, "display": display}]}],
            "name": "Zorgteam",
            "subject": ctx.subject(),
            "period": {"start": cal.day(min(starts))},
            "participant": [
                {
                    "role": [
                        {"coding": [{"system": systems["cd_hcparty"], "code": _hcparty(role)}]}
                    ],
                    "member": _role_ref(m),
                }
                for role, m in roles.items()
            ],
            "managingOrganization": [{"reference": ctx.team_ref}],
        }
    )
    frail_or_old = age >= spec["goals"]["hba1c"]["old_age"] or any(
        k in conditions and conditions[k].active for k in ("frailty", "dementia")
    )
    very_high = any(
        k in conditions and conditions[k].active for k in ("ihd", "stroke", "pad", "ckd")
    )
    goal_ids: dict[str, str] = {}
    addresses = [
        {"reference": f"Condition/{cid}"}
        for k, cid in condition_ids.items()
        if k in ("t2d", "ihd", "stroke", "pad", "hypertension", "dyslipidaemia")
    ]
    for p, start in zip(pathways, starts, strict=True):
        for kind in p["goals"]:
            if kind in goal_ids:
                continue
            targets = _goal_target(kind, frail_or_old, age, very_high)
            gid = goal_ids[kind] = ctx.new_id("g")
            goal: Resource = {
                "resourceType": "Goal",
                "id": gid,
                "lifecycleStatus": "active",
                "description": {"text": targets[0][4]},
                "subject": ctx.subject(),
                "startDate": cal.day(start),
                "target": [
                    {
                        "measure": {"coding": [{"system": LOINC, "code": c, "display": d}]},
                        "detailQuantity": {
                            "value": v,
                            "comparator": "<=" if kind == "hba1c" else "<",
                            "unit": u,
                            "system": UCUM,
                            "code": u,
                        },
                    }
                    for c, d, v, u, _ in targets
                ],
                "expressedBy": ctx.gp(),
            }
            status = _achieved(kind, last, targets)
            if status:
                goal["achievementStatus"] = {
                    "coding": [{"system": GOAL_ACHIEVEMENT, "code": status}]
                }
            if addresses:
                goal["addresses"] = addresses
            ctx.add(goal)
        category = [
            {
                "coding": [
                    {"system": systems["care_pathway"], "code": p["key"], "display": p["display"]}
                ]
            }
        ]
        if "snomed_category" in p:
            category.append(
                {
                    "coding": [
                        {
                            "system": SNOMED,
                            "code": p["snomed_category"][0],
                            "display": p["snomed_category"][1],
                        }
                    ]
                }
            )
        plan: Resource = {
            "resourceType": "CarePlan",
            "id": ctx.new_id("cp"),
            "status": "active",
            "intent": "plan",
            "category": category,
            "title": p["title"],
            "subject": ctx.subject(),
            "period": {"start": cal.day(start)},
            "created": cal.day(start),
            "author": ctx.gp(),
            "careTeam": [{"reference": f"CareTeam/{team_id}"}],
            "goal": [{"reference": f"Goal/{goal_ids[k]}"} for k in p["goals"]],
            "activity": [
                {
                    "detail": {
                        "code": {"coding": [{"system": SNOMED, "code": c, "display": d}]},
                        "status": "in-progress",
                        "scheduledTiming": {
                            "repeat": {"frequency": 1, "period": n, "periodUnit": u}
                        },
                    }
                }
                for c, d, n, u in p["activities"]
            ],
        }
        if addresses:
            plan["addresses"] = addresses
        ctx.add(plan)


def _hcparty(role: str) -> str:
    return str(next(r["hcparty"] for r in region_data()["providers"]["roles"] if r["key"] == role))


def medication_review(
    ctx: PatientContext,
    rng: random.Random,
    n_active: int,
    age: int,
    gp: Professional,
    pharmacist: Professional,
) -> None:
    """Maybe add a "Review of medication" Procedure (recent, older, or none)."""
    _, spec, _ = _spec()
    cal = ctx.cal
    since = max(cal.today - 365, date.fromisoformat(spec["reimbursed_since"]).toordinal())
    day = None
    for rule in spec["rules"]:
        if age >= rule["min_age"] and n_active >= rule["min_medicines"]:
            if rng.random() < rule["probability_last_12_months"]:
                day = since + int(rng.random() * (cal.today - 7 - since))
            break
    if (
        day is None
        and n_active >= 5
        and age >= 65
        and rng.random() < spec["older_review_probability"]
    ):
        day = cal.today - 395 - int(rng.random() * 500)
    if day is None:
        return
    by = pharmacist if rng.random() < spec["pharmacist_share"] else gp
    code, display = spec["code"]
    ctx.add(
        {
            "resourceType": "Procedure",
            "id": ctx.new_id("pr"),
            "status": "completed",
            "code": {
                "coding": [{"system": SNOMED, "code": code, "display": display}],
                "text": "Medicatienazicht",
            },
            "subject": ctx.subject(),
            "performedDateTime": cal.instant(day, 540 + 5 * int(rng.random() * 96)),
            "performer": [{"actor": _role_ref(by)}],
        }
    )
