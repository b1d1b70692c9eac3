"""One patient's record: the Patient and everything in their compartment.

Each patient has a random stream of their own, seeded from the region seed and their roster
index, so records are identical whether generated alone, in a slice or in a full run.

The neighbourhood team of a patient shows three ways: membership of the team's ``Group``, the
extension ``neighbourhood-team`` (a reference to the team Organization) on the Patient, and the
address (sector street and postal code) from which the team was derived.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from app.synth.conditions import condition_resources
from app.synth.context import BCP47, PatientContext, Resource
from app.synth.demography import Person, draw_name
from app.synth.encounters import encounter_resources, plan_visits
from app.synth.medications import medication_resources
from app.synth.morbidity import draw_conditions
from app.synth.observations import ObservationWriter, observation_resources
from app.synth.params import region_data
from app.synth.pathways import enrolled_pathways, medication_review, pathway_resources
from app.synth.physiology import draw_physiology
from app.synth.treatment import plan_treatment

if TYPE_CHECKING:
    from app.synth.region import Region


def patient_resource(
    ctx: PatientContext, rng: random.Random, person: Person, team_name: str, has_gp: bool
) -> Resource:
    data = region_data()
    systems = data["systems"]
    family, given = draw_name(rng, person.origin, person.sex, person.birth.year)
    sector = person.sector
    general: list[dict[str, str]] = []
    if has_gp:
        general.append(ctx.gp())
    if person.pharmacy is not None:
        general.append(
            {"reference": f"Organization/{person.pharmacy.id}", "display": person.pharmacy.name}
        )
    r: Resource = {
        "resourceType": "Patient",
        "id": person.id,
        "meta": {"profile": [systems["be_patient"]]},
        "extension": [
            {
                "url": systems["team_extension"],
                "valueReference": {"reference": ctx.team_ref, "display": f"Buurtteam {team_name}"},
            }
        ],
        "identifier": [{"use": "official", "system": systems["ssin"], "value": person.ssin}],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": person.sex,
        "birthDate": person.birth.isoformat(),
        "address": [
            {
                "use": "home",
                "type": "physical",
                "line": [f"{person.street} {person.house}"],
                "city": sector.city,
                "postalCode": sector.postal_code,
                "country": "BE",
            }
        ],
        "communication": [
            {
                "language": {
                    "coding": [
                        {
                            "system": BCP47,
                            "code": person.language,
                            "display": data["language_displays"][person.language],
                        }
                    ]
                },
                "preferred": True,
            }
        ],
    }
    if general:
        r["generalPractitioner"] = general
    return r


def generate_patient(region: Region, person: Person) -> list[Resource]:
    """Every resource of one patient, the Patient first, with literal references."""
    cal = region.calendar
    rng = random.Random(f"{region.config.seed}:patient:{person.index}")
    staff = region.directory.staff[person.team]
    gp = person.gp
    pharmacy = person.pharmacy
    assert gp is not None and pharmacy is not None
    ctx = PatientContext(
        cal, person.id, f"PractitionerRole/{gp.id}", gp.display, f"Organization/{staff.team.org_id}"
    )
    birth = person.birth.toordinal()
    latent = (rng.gauss(0.0, 1.0), rng.gauss(0.0, 1.0))
    conditions = draw_conditions(rng, latent, person.sex, birth, person.age, cal.today, cal.start)
    chronic = any(c.active and c.recorded for c in conditions.values())
    registered = region_data()["general_practitioner"]["chronic_registered"]["value"]
    has_gp = person.has_gp or (chronic and rng.random() < registered)
    plan = plan_treatment(
        rng, conditions, person.age, person.sex, birth, cal.today, cal.start, latent[1]
    )
    hba1c_gap = "t2d" in conditions and rng.random() < region.hba1c_gap_share
    visits = plan_visits(rng, conditions, person.age, cal.today, cal.start, hba1c_gap)

    ctx.add(patient_resource(ctx, rng, person, staff.team.name, has_gp))
    encounter_resources(ctx, visits, region.hospital_refs)
    condition_ids = condition_resources(ctx, rng, conditions, visits, has_gp)
    phys = draw_physiology(rng, conditions, plan, person.age, person.sex)
    last = observation_resources(
        ObservationWriter(ctx, rng, phys, region.lab_refs), visits, conditions, person.age
    )
    pharmacist = pharmacy.pharmacists[int(rng.random() * len(pharmacy.pharmacists))]
    medication_resources(ctx, rng, plan, condition_ids, f"Organization/{pharmacy.id}", has_gp)
    n_active = sum(1 for m in plan.medicines if m.active)
    if n_active >= 5:
        medication_review(ctx, rng, n_active, person.age, gp, pharmacist)
    pathways = enrolled_pathways(rng, conditions, plan, has_gp)
    pathway_resources(
        ctx, rng, pathways, staff, gp, pharmacist, conditions, condition_ids, last, person.age
    )
    return ctx.resources
