"""FHIR transaction Bundles for a synthetic region.

Post them in this order:

1. ``shared_transaction_bundle(region.shared_resources())``: Organizations, Practitioners,
   PractitionerRoles and team CareTeams, each ``POST`` with ``ifNoneExist:
   identifier=<system>|<value>`` so that posting twice creates no duplicates; references between
   them point to the entries' ``urn:uuid:`` fullUrls (a conditional create that finds an existing
   resource resolves its urn to that resource).
2. ``patient_transaction_bundle(resources)`` for each patient: every entry ``POST`` with a
   deterministic ``urn:uuid:`` fullUrl; references between the patient's own resources use those
   urns, references to shared resources become conditional references such as
   ``PractitionerRole?identifier=https://www.ehealth.fgov.be/standards/fhir/core/NamingSystem/nihdi|19012394004``.
3. ``team_groups_bundle(region.shared_resources(), region.patient_ssins())``: the team Groups as
   ``PUT Group/<id>``, members as conditional references on the SSIN, since patients posted in
   step 2 received server-assigned ids.

Only the shared bundle is idempotent: posting the patient bundles twice creates every patient
twice, after which the Group bundle fails (its SSIN conditional references match two
Patients). Post a region once, into a server that does not hold it yet.

The functions never modify the resources given to them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from app.synth.params import region_data

Resource = dict[str, Any]

_NAMESPACE = uuid.UUID("6f1c3e0a-5b7d-4c1e-9a39-7d0a6b1f2e55")  # fixed: deterministic urns
SHARED_TYPES = ("Organization", "Practitioner", "PractitionerRole")


def entry_uuid(resource_type: str, rid: str) -> str:
    """The deterministic ``urn:uuid:`` of a resource in a Bundle."""
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{resource_type}/{rid}')}"


def _systems() -> dict[str, str]:
    s = region_data()["systems"]
    return {"nihdi": s["nihdi"], "team": s["team"]}


def conditional_reference(reference: str) -> str | None:
    """``Type?identifier=system|value`` for a literal reference to a shared resource.

    Shared ids encode their identifier: ``nihdi-<number>`` (NIHDI) and ``team-<key>`` (team
    Organizations). Returns None for any other reference.
    """
    resource_type, _, rid = reference.partition("/")
    if resource_type not in SHARED_TYPES:
        return None
    prefix, _, value = rid.partition("-")
    system = _systems().get(prefix)
    if system is None or not value:
        return None
    return f"{resource_type}?identifier={system}|{value}"


def _copy(resource: Resource) -> Resource:
    copied: Resource = orjson.loads(orjson.dumps(resource))
    return copied


def _rewrite(node: Any, fn: Callable[[str], str]) -> None:
    """Apply ``fn`` to every ``reference`` string inside ``node`` (in place)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                node[key] = fn(value)
            elif isinstance(value, dict | list):
                _rewrite(value, fn)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _rewrite(item, fn)


def _identifier_query(resource: Resource) -> str:
    ident = resource["identifier"][0]
    return f"identifier={ident['system']}|{ident['value']}"


def _bundle(entries: list[Resource]) -> Resource:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _posts(resources: Iterable[Resource], if_none_exist: bool) -> Resource:
    resources = list(resources)
    urns = {
        f"{r['resourceType']}/{r['id']}": entry_uuid(r["resourceType"], r["id"]) for r in resources
    }

    def fn(ref: str) -> str:
        return urns.get(ref) or conditional_reference(ref) or ref

    entries = []
    for r in resources:
        body = _copy(r)
        body.pop("id", None)  # a create ignores the id; the server assigns its own
        _rewrite(body, fn)
        request = {"method": "POST", "url": r["resourceType"]}
        if if_none_exist:
            request["ifNoneExist"] = _identifier_query(r)
        entries.append(
            {
                "fullUrl": urns[f"{r['resourceType']}/{r['id']}"],
                "resource": body,
                "request": request,
            }
        )
    return _bundle(entries)


def patient_transaction_bundle(resources: list[Resource]) -> Resource:
    """One patient's resources as a transaction Bundle of POSTs (see the module docstring)."""
    return _posts(resources, if_none_exist=False)


def shared_transaction_bundle(resources: list[Resource]) -> Resource:
    """Shared resources (Groups left out) as conditional creates (``ifNoneExist``)."""
    return _posts((r for r in resources if r["resourceType"] != "Group"), if_none_exist=True)


def team_groups_bundle(resources: list[Resource], ssins: Mapping[str, str]) -> Resource:
    """The team Groups found in ``resources`` as ``PUT Group/<id>`` entries.

    ``ssins`` maps Patient id to SSIN (``Region.patient_ssins()``): members become
    ``Patient?identifier=<ssin system>|<ssin>``; the managing Organization a conditional
    reference on its team identifier.
    """
    ssin_system = region_data()["systems"]["ssin"]

    def fn(ref: str) -> str:
        if ref.startswith("Patient/"):
            return f"Patient?identifier={ssin_system}|{ssins[ref[8:]]}"
        return conditional_reference(ref) or ref

    entries = []
    for r in resources:
        if r["resourceType"] != "Group":
            continue
        body = _copy(r)
        _rewrite(body, fn)
        entries.append(
            {
                "fullUrl": entry_uuid("Group", r["id"]),
                "resource": body,
                "request": {"method": "PUT", "url": f"Group/{r['id']}"},
            }
        )
    return _bundle(entries)
