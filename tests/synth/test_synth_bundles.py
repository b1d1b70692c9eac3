"""Transaction Bundles: structure, urn:uuid resolution, conditional references and creates."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import orjson

from app.synth.bundles import (
    conditional_reference,
    patient_transaction_bundle,
    shared_transaction_bundle,
    team_groups_bundle,
)
from app.synth.params import region_data

Resource = dict[str, Any]
SYSTEMS = region_data()["systems"]


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "reference" and isinstance(v, str)] + [
            r for v in node.values() if isinstance(v, dict | list) for r in _references(v)
        ]
    if isinstance(node, list):
        return [r for item in node for r in _references(item)]
    return []


def _check_transaction(bundle: Resource) -> list[str]:
    """Structural rules of a transaction Bundle; returns every reference found in it."""
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls))
    refs = []
    for e in bundle["entry"]:
        assert e["request"]["method"] in ("POST", "PUT")
        assert e["request"]["url"].split("/")[0] == e["resource"]["resourceType"]
        refs.extend(_references(e["resource"]))
    urns = [r for r in refs if r.startswith("urn:uuid:")]
    assert set(urns) <= set(full_urls), "dangling urn:uuid"
    return refs


def _bundle_schema_errors(
    bundle: Resource, schema_errors: Callable[[Resource], list[str]]
) -> list[str]:
    """Schema errors of a Bundle, checking each entry's resource against its own type.

    (Validating the whole Bundle at once makes the schema's oneOf try all 145 resource types.)
    """
    skeleton = {
        **bundle,
        "entry": [{k: v for k, v in e.items() if k != "resource"} for e in bundle["entry"]],
    }
    return schema_errors(skeleton) + [
        err for e in bundle["entry"] for err in schema_errors(e["resource"])
    ]


def test_patient_bundles(
    small: Any,
    schema_errors: Callable[[Resource], list[str]],
    model_errors: Callable[[Resource], list[str]],
) -> None:
    for resources in small.patients[:60]:
        before = orjson.dumps(resources)
        bundle = patient_transaction_bundle(resources)
        assert orjson.dumps(resources) == before, "input must not be modified"
        refs = _check_transaction(bundle)
        assert len(bundle["entry"]) == len(resources)
        assert all(
            e["fullUrl"].startswith("urn:uuid:") and e["request"]["method"] == "POST"
            for e in bundle["entry"]
        )
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
        for ref in refs:
            assert ref.startswith("urn:uuid:") or "?identifier=" in ref, ref
            if "?identifier=" in ref:
                assert ref.split("?")[0] in ("Practitioner", "PractitionerRole", "Organization")
        assert _bundle_schema_errors(bundle, schema_errors) == [] and model_errors(bundle) == []


def test_conditional_references_name_a_real_identifier(small: Any) -> None:
    identifiers = {
        f"{r['resourceType']}?identifier={i['system']}|{i['value']}"
        for r in small.shared
        for i in r.get("identifier", [])
    }
    for resources in small.patients[:60]:
        for ref in _check_transaction(patient_transaction_bundle(resources)):
            if "?identifier=" in ref:
                assert ref in identifiers, ref
    gp = next(r for r in small.shared if r["resourceType"] == "PractitionerRole")
    assert conditional_reference(f"PractitionerRole/{gp['id']}") == (
        f"PractitionerRole?identifier={SYSTEMS['nihdi']}|{gp['identifier'][0]['value']}"
    )
    assert conditional_reference("Patient/p000001") is None


def test_shared_bundle_uses_conditional_creates(
    small: Any, schema_errors: Callable[[Resource], list[str]]
) -> None:
    bundle = shared_transaction_bundle(small.shared)
    refs = _check_transaction(bundle)
    assert all(r.startswith("urn:uuid:") for r in refs)
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Group" not in types
    assert len(types) == sum(1 for r in small.shared if r["resourceType"] != "Group")
    for e in bundle["entry"]:
        ident = e["resource"]["identifier"][0]
        assert e["request"] == {
            "method": "POST",
            "url": e["resource"]["resourceType"],
            "ifNoneExist": f"identifier={ident['system']}|{ident['value']}",
        }
    assert _bundle_schema_errors(bundle, schema_errors) == []
    # idempotent by construction: the same bundle twice has the same conditions
    assert orjson.dumps(bundle) == orjson.dumps(
        shared_transaction_bundle(copy.deepcopy(small.shared))
    )


def test_team_groups_bundle_puts_groups_with_ssin_members(
    small: Any, schema_errors: Callable[[Resource], list[str]]
) -> None:
    ssins = small.region.patient_ssins()
    bundle = team_groups_bundle(small.shared, ssins)
    _check_transaction(bundle)
    assert len(bundle["entry"]) == 8
    members = 0
    for e in bundle["entry"]:
        group = e["resource"]
        assert e["request"] == {"method": "PUT", "url": f"Group/{group['id']}"}
        assert group["managingEntity"]["reference"].startswith(
            f"Organization?identifier={SYSTEMS['team']}|"
        )
        for m in group["member"]:
            assert m["entity"]["reference"].startswith(f"Patient?identifier={SYSTEMS['ssin']}|")
            members += 1
    assert members == len(small.patients)
    assert _bundle_schema_errors(bundle, schema_errors) == []
