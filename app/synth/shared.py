"""FHIR resources shared by all patients: Organizations, Practitioners, PractitionerRoles, the
team CareTeams and the team Groups (whose members are the team's Patients).

The zone itself is an Organization (``team-zone``) of which every team Organization is ``partOf``.
"""

from __future__ import annotations

from typing import Any

from app.synth.demography import Person
from app.synth.geography import Team
from app.synth.params import Json, clinical_data, region_data
from app.synth.providers import ZONE_KEY, Directory, Facility, Pharmacy, Professional, TeamStaff

Resource = dict[str, Any]

ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"


def _ref(resource_type: str, rid: str, display: str | None = None) -> dict[str, str]:
    ref = {"reference": f"{resource_type}/{rid}"}
    if display:
        ref["display"] = display
    return ref


def _hcparty(systems: Json, code: str, display: str) -> dict[str, str]:
    return {"system": systems["cd_hcparty"], "code": code, "display": display}


def zone_organization(systems: Json) -> Resource:
    return {
        "resourceType": "Organization",
        "id": f"team-{ZONE_KEY}",
        "identifier": [{"system": systems["team"], "value": ZONE_KEY}],
        "active": True,
        "type": [
            {"coding": [{"system": ORG_TYPE, "code": "prov", "display": "Healthcare Provider"}]}
        ],
        "name": "Zorgzaam Leuven (synthetisch)",
        "address": [{"city": "Leuven", "postalCode": "3000", "country": "BE"}],
    }


def team_organization(team: Team, systems: Json) -> Resource:
    main = team.sectors[0]
    return {
        "resourceType": "Organization",
        "id": team.org_id,
        "identifier": [{"system": systems["team"], "value": team.key}],
        "active": True,
        "type": [
            {
                "coding": [{"system": ORG_TYPE, "code": "team", "display": "Organizational team"}],
                "text": "buurtteam (zorgzame buurt)",
            }
        ],
        "name": f"Buurtteam {team.name}",
        "address": [{"city": main.city, "postalCode": main.postal_code, "country": "BE"}],
        "partOf": _ref("Organization", f"team-{ZONE_KEY}", "Zorgzaam Leuven (synthetisch)"),
    }


def pharmacy_organization(ph: Pharmacy, systems: Json) -> Resource:
    return {
        "resourceType": "Organization",
        "id": ph.id,
        "identifier": [
            {"system": systems["nihdi"], "value": ph.nihdi},
            {"system": systems["cbe"], "value": ph.cbe},
        ],
        "active": True,
        "type": [{"coding": [_hcparty(systems, "orgpharmacy", "independent pharmacy")]}],
        "name": ph.name,
        "address": [
            {
                "line": [f"{ph.street} {ph.house}"],
                "city": ph.sector.city,
                "postalCode": ph.sector.postal_code,
                "country": "BE",
            }
        ],
    }


def facility_organization(f: Facility, systems: Json) -> Resource:
    code, display = (
        ("orghospital", "hospital")
        if f.kind == "hospital"
        else ("orglaboratory", "independent laboratory")
    )
    return {
        "resourceType": "Organization",
        "id": f.id,
        "identifier": [
            {"system": systems["nihdi"], "value": f.nihdi},
            {"system": systems["cbe"], "value": f.cbe},
        ],
        "active": True,
        "type": [{"coding": [_hcparty(systems, code, display)]}],
        "name": f.name,
        "address": [{"city": "Leuven", "postalCode": "3000", "country": "BE"}],
    }


def practitioner(p: Professional, systems: Json) -> Resource:
    name: dict[str, Any] = {"use": "official", "family": p.family, "given": [p.given]}
    if p.role == "gp":
        name["prefix"] = ["Dr."]
    return {
        "resourceType": "Practitioner",
        "id": p.id,
        "identifier": [{"system": systems["nihdi"], "value": p.nihdi}],
        "active": True,
        "name": [name],
        "gender": p.gender,
    }


def practitioner_role(p: Professional, spec: Json, systems: Json, org_display: str) -> Resource:
    coding = [_hcparty(systems, spec["hcparty"], spec["hcparty_display"])]
    if "hl7_role" in spec:
        coding.append(
            {
                "system": PRACTITIONER_ROLE,
                "code": spec["hl7_role"],
                "display": spec["hl7_role_display"],
            }
        )
    role: Resource = {
        "resourceType": "PractitionerRole",
        "id": p.id,
        "identifier": [{"system": systems["nihdi"], "value": p.nihdi}],
        "active": True,
        "practitioner": _ref("Practitioner", p.id, p.display),
        "organization": _ref("Organization", p.organization_id, org_display),
        "code": [{"coding": coding, "text": spec["title_nl"]}],
    }
    if "specialty" in spec:
        code, display = spec["specialty"]
        role["specialty"] = [{"coding": [{"system": SNOMED, "code": code, "display": display}]}]
    return role


def team_care_team(staff: TeamStaff, specs: dict[str, Json], systems: Json) -> Resource:
    team = staff.team
    code, display = clinical_data()["pathways"]["team_careteam_category"]
    return {
        "resourceType": "CareTeam",
        "id": team.org_id,
        "identifier": [{"system": systems["team_careteam"], "value": team.key}],
        "status": "active",
        "category": [{"coding": [{"system": LOINC, "code": code, "display": display}]}],
        "name": f"Buurtteam {team.name}",
        "participant": [
            {
                "role": [
                    {
                        "coding": [
                            _hcparty(
                                systems, specs[p.role]["hcparty"], specs[p.role]["hcparty_display"]
                            )
                        ]
                    }
                ],
                "member": _ref("PractitionerRole", p.id, p.display),
            }
            for p in staff.members()
        ],
        "managingOrganization": [_ref("Organization", team.org_id, f"Buurtteam {team.name}")],
    }


def team_group(team: Team, members: list[Person], systems: Json) -> Resource:
    group: Resource = {
        "resourceType": "Group",
        "id": team.org_id,
        "identifier": [{"system": systems["team_group"], "value": team.key}],
        "active": True,
        "type": "person",
        "actual": True,
        "name": f"Inwoners buurtteam {team.name}",
        "managingEntity": _ref("Organization", team.org_id, f"Buurtteam {team.name}"),
        "quantity": len(members),
    }
    if members:  # FHIR JSON has no empty arrays
        group["member"] = [{"entity": {"reference": f"Patient/{p.id}"}} for p in members]
    return group


def shared_resources(directory: Directory, people: list[Person]) -> list[Resource]:
    """Every shared resource, in posting order: Organizations, Practitioners,
    PractitionerRoles, team CareTeams, then team Groups (fresh dicts on every call)."""
    data = region_data()
    systems = data["systems"]
    specs = {r["key"]: r for r in data["providers"]["roles"]}
    orgs = [zone_organization(systems)]
    practitioners: list[Resource] = []
    roles: list[Resource] = []
    care_teams: list[Resource] = []
    for staff in directory.staff:
        orgs.append(team_organization(staff.team, systems))
        orgs.extend(pharmacy_organization(ph, systems) for ph in staff.pharmacies)
        pharmacy_names = {ph.id: ph.name for ph in staff.pharmacies}
        for p in staff.members():
            practitioners.append(practitioner(p, systems))
            org_display = pharmacy_names.get(p.organization_id, f"Buurtteam {staff.team.name}")
            roles.append(practitioner_role(p, specs[p.role], systems, org_display))
        care_teams.append(team_care_team(staff, specs, systems))
    orgs.extend(
        facility_organization(f, systems) for f in directory.hospitals + directory.laboratories
    )
    by_team: list[list[Person]] = [[] for _ in directory.staff]
    for person in people:
        by_team[person.team].append(person)
    groups = [team_group(s.team, by_team[s.team.index], systems) for s in directory.staff]
    return orgs + practitioners + roles + care_teams + groups
