"""`_summary` and `_elements`: subsets of a resource (R4 3.1.1.5.8-9), marked SUBSETTED."""

from __future__ import annotations

from typing import Any

from app.fhir.definitions import type_definitions

SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
             "code": "SUBSETTED", "display": "subsetted"}


def _mark(out: dict[str, Any]) -> dict[str, Any]:
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    out["meta"] = meta
    return out


def _mandatory(res_type: str) -> set[str]:
    td = type_definitions()[res_type]
    return {n for _, names in td.mandatory.get("", []) for n in names}


def subset(resource: dict[str, Any], summary: str | None,
           elements: list[str] | None) -> dict[str, Any]:
    rt = resource["resourceType"]
    keep_always = {"resourceType", "id", "meta"}
    if elements is not None:
        wanted = {e.split(".")[0] for e in elements} | keep_always | _mandatory(rt)
        out = {k: v for k, v in resource.items() if k in wanted}
        return _mark(out)
    if summary == "true":
        td = type_definitions()[rt]
        out = {k: v for k, v in resource.items() if k in td.summary or k in keep_always}
        return _mark(out)
    if summary == "text":
        wanted = keep_always | {"text"} | _mandatory(rt)
        return _mark({k: v for k, v in resource.items() if k in wanted})
    if summary == "data":
        return _mark({k: v for k, v in resource.items() if k != "text"})
    return resource
