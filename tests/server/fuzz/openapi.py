"""The app's OpenAPI document filled in for schemathesis: FastAPI cannot see what the FHIR
endpoints read from the raw request (query parameters, headers, bodies)."""

from __future__ import annotations

import copy
from typing import Any

from tests.server.fuzz.resources import SEED_IDS, TYPES


def _either(values: list[str]) -> dict[str, Any]:
    return {"anyOf": [{"enum": values}, {"type": "string", "minLength": 1}]}


_STRING = {"type": "string"}
_RESOURCE = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": _either(TYPES),
        "id": _STRING,
        "status": _STRING,
        "gender": _STRING,
        "birthDate": _STRING,
        "effectiveDateTime": _STRING,
        "intent": _STRING,
        "meta": {"type": "object"},
        "extension": {"type": "array"},
        "name": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"family": _STRING, "given": {"type": "array", "items": _STRING}},
            },
        },
        "identifier": {
            "type": "array",
            "items": {"type": "object", "properties": {"system": _STRING, "value": _STRING}},
        },
        "subject": {"type": "object", "properties": {"reference": _STRING}},
        "code": {
            "type": "object",
            "properties": {
                "coding": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"system": _STRING, "code": _STRING}},
                }
            },
        },
        "valueQuantity": {
            "type": "object",
            "properties": {"value": {"type": "number"}, "unit": _STRING},
        },
    },
}
_BUNDLE = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": _either(["Bundle"]),
        "type": _either(["transaction", "batch"]),
        "entry": {
            "type": "array",
            "maxItems": 4,
            "items": {
                "type": "object",
                "properties": {
                    "fullUrl": _either(["urn:uuid:00000000-0000-4000-8000-000000000001"]),
                    "resource": _RESOURCE,
                    "request": {
                        "type": "object",
                        "required": ["method", "url"],
                        "properties": {
                            "method": _either(["GET", "POST", "PUT", "DELETE", "PATCH"]),
                            "url": _either(
                                [
                                    "Patient",
                                    "Observation",
                                    "Patient/fuzz-p1",
                                    "Patient?identifier=urn:fuzz|1",
                                ]
                            ),
                            "ifNoneExist": _STRING,
                            "ifMatch": _STRING,
                        },
                    },
                },
            },
        },
    },
}
_PATCH = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["op", "path"],
        "properties": {
            "op": _either(["add", "remove", "replace", "test"]),
            "path": _either(["/gender", "/name/0/family", "/id"]),
            "value": {},
        },
    },
}
_SEARCH = [
    "_id",
    "_count",
    "_sort",
    "_cursor",
    "_dir",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_lastUpdated",
    "_format",
    "identifier",
    "date",
    "code",
    "subject",
    "patient",
    "name",
    "birthdate",
    "gender",
    "value-quantity",
    "status",
    "code:in",
    "name:exact",
    "birthdate:missing",
    "subject:Patient.name",
    "_has:Observation:subject:code",
]
_HISTORY = ["_since", "_at", "_count", "_cursor"]
_HEADERS = ["If-Match", "If-None-Exist", "Prefer", "If-None-Match"]


def _query_names(path: str) -> list[str]:
    if "$" in path:
        return ["periodStart", "periodEnd", "subject", "reportType", "measure", "status"]
    if "_history" in path:
        return _HISTORY
    if "{operation}" in path:
        return [*_HISTORY, "_type"]
    if path in ("/{res_type}", "/{res_type}/_search"):
        return _SEARCH
    return ["_summary", "_elements", "_format"]


def fhir_openapi(document: dict[str, Any]) -> dict[str, Any]:
    """The app's OpenAPI document with what FastAPI cannot see (the endpoints read the raw
    request): real resource types and ids, the FHIR query parameters, headers and bodies."""
    doc = copy.deepcopy(document)
    path_values = {
        "res_type": {"enum": TYPES},
        "res_id": _either(list(SEED_IDS.values())),
        "vid": _either(["1", "2"]),
        "operation": _either(["$everything"]),
        "measure_id": _either(["t2d-hba1c-tested"]),
    }
    for path, item in doc["paths"].items():
        for method, op in item.items():
            params = op.setdefault("parameters", [])
            for p in params:
                if p["in"] == "path" and p["name"] in path_values:
                    p["schema"] = path_values[p["name"]]
            names = _query_names(path)
            params += [
                {"in": "query", "name": n, "required": False, "schema": _STRING}
                for n in names
                if not any(p["name"] == n for p in params)
            ]
            if method in ("post", "put", "patch", "delete"):
                params += [
                    {"in": "header", "name": h, "required": False, "schema": _STRING}
                    for h in _HEADERS
                ]
            body = None
            if path == "/" and method == "post":
                body = {"application/fhir+json": {"schema": _BUNDLE}}
            elif method == "patch":
                body = {"application/json-patch+json": {"schema": _PATCH}}
            elif path.endswith("/_search"):
                body = {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {n: _STRING for n in _SEARCH[:12]},
                        }
                    }
                }
            elif method in ("post", "put") and "{res_type}" in path:
                body = {"application/fhir+json": {"schema": _RESOURCE}}
            if body is not None:
                op["requestBody"] = {"required": True, "content": body}
    return doc
