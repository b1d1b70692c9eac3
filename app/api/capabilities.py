"""The CapabilityStatement, built from the same registry the indexer and search compiler use."""

from __future__ import annotations

import functools
from typing import Any

import orjson

from app import __version__
from app.fhir.definitions import resource_types
from app.fhir.search_params import registry

OPERATIONS: dict[str, list[dict[str, str]]] = {
    "Patient": [{"name": "everything",
                 "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}],
}
_MODIFIERS_NOTE = ("Search supports token (system|code, |code, system|, :not, :text, :in, "
                   ":not-in), string (:exact, :contains), date prefixes, reference (:Type, "
                   "chains, :identifier), quantity, number, uri (:below, :above), composite, "
                   ":missing, _has, _include/_revinclude (:iterate), _sort, _count with keyset "
                   "paging, _total, _summary, _elements.")


@functools.cache
def capability_statement(base: str) -> bytes:
    reg = registry()
    resources: list[dict[str, Any]] = []
    for rt in sorted(resource_types()):
        params = reg.params(rt)
        ref_params = sorted(p.code for p in params.values() if p.type == "reference")
        entry: dict[str, Any] = {
            "type": rt,
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalRead": "full-support",
            "conditionalUpdate": True,
            "conditionalDelete": "single",
            "referencePolicy": ["literal", "logical", "enforced", "local"],
            "interaction": [{"code": c} for c in (
                "read", "vread", "update", "patch", "delete", "history-instance",
                "history-type", "create", "search-type")],
            "searchInclude": ["*", *(f"{rt}:{p}" for p in ref_params)],
            "searchRevInclude": sorted(
                f"{other}:{p.code}" for other in resource_types()
                for p in reg.params(other).values()
                if p.type == "reference" and (rt in p.targets or not p.targets)
            )[:400],
            "searchParam": [
                {"name": p.code, "definition": p.url, "type": p.type,
                 **({"documentation": p.description[:200]} if p.description else {})}
                for p in sorted(params.values(), key=lambda p: p.code)
            ],
        }
        if rt in OPERATIONS:
            entry["operation"] = OPERATIONS[rt]
        resources.append(entry)
    cs = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-23",
        "publisher": "phm-fhir",
        "kind": "instance",
        "software": {"name": "phm-fhir", "version": __version__},
        "implementation": {"description": "phm-fhir: FHIR R4 server for population health "
                           "management", "url": base},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [{
            "mode": "server",
            "documentation": _MODIFIERS_NOTE,
            "resource": resources,
            "interaction": [{"code": "transaction"}, {"code": "batch"},
                            {"code": "history-system"}],
            "searchParam": [
                {"name": "_id", "type": "token",
                 "definition": "http://hl7.org/fhir/SearchParameter/Resource-id"},
                {"name": "_lastUpdated", "type": "date",
                 "definition": "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"},
            ],
        }],
    }
    return orjson.dumps(cs)
