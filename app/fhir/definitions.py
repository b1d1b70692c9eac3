"""The official R4 definitions the server runs on, loaded once from `fhir_profiles/r4/`.

`tools/build_r4_profiles.py` derives these files from the HL7 R4 package: element types and
cardinalities with required code bindings (`elements.json`), the SearchParameters and the
Patient CompartmentDefinition.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

PROFILES = Path(__file__).resolve().parents[2] / "fhir_profiles"
R4 = PROFILES / "r4"

PRIMITIVES = frozenset(
    {
        "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id",
        "instant", "integer", "markdown", "oid", "positiveInt", "string", "time", "unsignedInt",
        "uri", "url", "uuid", "xhtml",
    }
)


@dataclass(frozen=True, slots=True)
class Element:
    """One element of a type, as the JSON property `name` sees it (choice types expanded)."""

    path: str  # e.g. "value[x]" or "contact.name"
    type: str  # the FHIR type code of this property ("Quantity", "string", "BackboneElement")
    many: bool
    min: int
    required_codes: frozenset[str] | None = None


@dataclass(slots=True)
class TypeDef:
    name: str
    kind: str
    abstract: bool
    # path of a backbone ("" for the type itself) -> JSON property -> Element
    properties: dict[str, dict[str, Element]] = field(default_factory=dict)
    # path of a backbone -> [(element path, JSON property names that satisfy it)] with min >= 1
    mandatory: dict[str, list[tuple[str, tuple[str, ...]]]] = field(default_factory=dict)
    # top-level JSON properties flagged isSummary (for _summary=true)
    summary: set[str] = field(default_factory=set)


def _load(name: str) -> Any:
    return orjson.loads((R4 / name).read_bytes())


def _build_type(name: str, raw: dict[str, Any]) -> TypeDef:
    td = TypeDef(name=name, kind=raw["kind"], abstract=raw["abstract"])
    elements: dict[str, dict[str, Any]] = raw["elements"]
    for path, info in elements.items():
        if "ref" in info:  # contentReference: same structure as another backbone
            info = {**elements[info["ref"]], "min": info["min"], "max": info["max"],
                    "backbone_ref": info["ref"]}
        parent, _, leaf = path.rpartition(".")
        types = info.get("types", ["BackboneElement"])
        many = info["max"] != "1" and info["max"] != "0"
        codes = frozenset(info["required"]) if "required" in info else None
        props = td.properties.setdefault(parent, {})
        names: list[str] = []
        target = info.get("backbone_ref", path)
        if leaf.endswith("[x]"):
            stem = leaf[:-3]
            for t in types:
                prop = stem + t[0].upper() + t[1:]
                props[prop] = Element(target, t, many, info["min"], codes)
                names.append(prop)
        else:
            props[leaf] = Element(target, types[0], many, info["min"], codes)
            names.append(leaf)
        if info.get("summary") and not parent:
            td.summary.update(names)
        if info["min"] >= 1:
            td.mandatory.setdefault(parent, []).append((path, tuple(names)))
    return td


@functools.cache
def type_definitions() -> dict[str, TypeDef]:
    raw: dict[str, Any] = _load("elements.json")
    return {name: _build_type(name, r) for name, r in raw.items()}


@functools.cache
def resource_types() -> frozenset[str]:
    """Every concrete R4 resource type."""
    return frozenset(
        n for n, t in type_definitions().items() if t.kind == "resource" and not t.abstract
    )


@functools.cache
def search_parameter_resources() -> list[dict[str, Any]]:
    bundle = _load("search-parameters.json")
    return [e["resource"] for e in bundle["entry"]]


@functools.cache
def patient_compartment() -> dict[str, tuple[str, ...]]:
    """Resource type -> the search parameters that put a resource in a Patient's compartment."""
    cd = _load("compartmentdefinition-patient.json")
    return {r["code"]: tuple(r["param"]) for r in cd["resource"] if r.get("param")}
