"""Ids are unique and every reference resolves within the region; a patient's resources refer
only to that patient's compartment and to shared resources; team membership is consistent."""

from __future__ import annotations

from collections import Counter
from typing import Any

SHARED_TYPES = {"Organization", "Practitioner", "PractitionerRole"}


def _references(node: Any) -> list[str]:
    out: list[str] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "reference" and isinstance(v, str):
                out.append(v)
            else:
                out.extend(_references(v))
    elif isinstance(node, list):
        for item in node:
            out.extend(_references(item))
    return out


def test_ids_are_unique_per_type(small: Any) -> None:
    keys = Counter(f"{r['resourceType']}/{r['id']}" for r in small.all_resources())
    assert [k for k, n in keys.items() if n > 1] == []


def test_every_reference_resolves(small: Any) -> None:
    known = {f"{r['resourceType']}/{r['id']}" for r in small.all_resources()}
    dangling = [
        (r["id"], ref) for r in small.all_resources() for ref in _references(r) if ref not in known
    ]
    assert dangling == []


def test_patient_resources_stay_in_their_compartment(small: Any) -> None:
    for resources in small.patients:
        patient = resources[0]
        assert patient["resourceType"] == "Patient"
        own = {f"{r['resourceType']}/{r['id']}" for r in resources}
        for r in resources[1:]:
            assert r["subject"] == {"reference": f"Patient/{patient['id']}"}, r["id"]
            assert r["id"].startswith(f"{patient['id']}-")
        for ref in (ref for r in resources for ref in _references(r)):
            assert ref in own or ref.split("/")[0] in SHARED_TYPES, ref


def test_large_region_references_resolve(large: Any) -> None:
    shared = {f"{r['resourceType']}/{r['id']}" for r in large.shared}
    for resources in large.patients[::50]:
        own = {f"{r['resourceType']}/{r['id']}" for r in resources}
        assert all(ref in own or ref in shared for r in resources for ref in _references(r))


def test_team_groups_hold_each_patient_once_and_match_the_team_extension(large: Any) -> None:
    groups = [r for r in large.shared if r["resourceType"] == "Group"]
    assert len(groups) == 8
    member_team = {}
    for g in groups:
        assert g["managingEntity"]["reference"] == f"Organization/{g['id']}"
        assert g["quantity"] == len(g["member"])
        for m in g["member"]:
            patient = m["entity"]["reference"]
            assert patient not in member_team
            member_team[patient] = g["managingEntity"]["reference"]
    assert len(member_team) == len(large.patients)
    for resources in large.patients:
        p = resources[0]
        assert p["extension"][0]["valueReference"]["reference"] == member_team[f"Patient/{p['id']}"]


def test_team_sectors_are_consistent_with_addresses(large: Any) -> None:
    teams = {
        f"Organization/team-{t.key}": {s.postal_code for s in t.sectors} for t in large.region.teams
    }
    for resources in large.patients[::10]:
        p = resources[0]
        assert (
            p["address"][0]["postalCode"] in teams[p["extension"][0]["valueReference"]["reference"]]
        )


def test_general_practitioner_and_pharmacy_belong_to_the_patients_team(large: Any) -> None:
    role_org = {
        f"PractitionerRole/{r['id']}": r["organization"]["reference"]
        for r in large.shared
        if r["resourceType"] == "PractitionerRole"
    }
    team_pharmacies = {}
    for staff in large.region.directory.staff:
        team_pharmacies[f"Organization/{staff.team.org_id}"] = {
            f"Organization/{ph.id}" for ph in staff.pharmacies
        }
    with_gp = 0
    for resources in large.patients[::5]:
        p = resources[0]
        team = p["extension"][0]["valueReference"]["reference"]
        for ref in (g["reference"] for g in p.get("generalPractitioner", [])):
            if ref.startswith("PractitionerRole/"):
                with_gp += 1
                assert role_org[ref] == team
            else:
                assert ref in team_pharmacies[team]
    assert with_gp > 0.7 * len(large.patients[::5])
