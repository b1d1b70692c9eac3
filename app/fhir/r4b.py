"""fhir.resources' R4B models, validated element by element with a memo of the valid elements.

pydantic builds one model per complex element (a Synthea resource has about 19) and
fhir.resources runs Python validators on each (a null check over every field of the class,
required primitives, choice types): about 0.5 ms per resource, most of the ingest CPU. Yet
complex elements repeat: the same codes, categories, meta and references to the same patient
and encounter (83 % of the complex elements in the Synthea bundles are copies of one seen
before). Validating a model is a pure function of its class and its JSON, and fhir.resources
takes an instance of a field's own model class as that field's value once it has checked its
class, so each complex element is validated once by its model class and the instance is reused
when the same (class, JSON) comes again; the resource's model then validates its own fields
and receives the nested instances.

Only success is remembered and only success takes the short way: when any part fails, the
whole resource is validated again the ordinary way, so a rejected resource gets exactly the
library's errors with their locations.
"""

from __future__ import annotations

import functools
import typing
from typing import Any

import orjson
from fhir.resources import R4B
from fhir_core.types import FhirBase, FhirElementOrResourceBase

# Valid elements remembered per process; the memo is emptied when full. Entries hold nested
# instances and their JSON, so they are large: over 100 Synthea bundles, 5,000 of them and the
# walker's 20,000 keys validate as fast as 20,000 and 50,000, in 100 MB more than no memo
# instead of 270 MB.
MEMO_SIZE = 5_000
_memo: dict[tuple[type, bytes], Any] = {}

# (model class, repeats, holds a resource whose type its resourceType names)
Field = tuple[type, bool, bool]


@functools.cache
def model_class(res_type: str) -> Any:
    """The R4B model of a resource type, or None (the R4 types that R4B dropped)."""
    try:
        return R4B.get_fhir_model_class(res_type)
    except (KeyError, ValueError):  # fhir.resources 8 raises ValueError for an unknown name
        return None


def validate(model: Any, data: dict[str, Any]) -> None:
    """Validate a resource with its R4B model; raise the library's `ValidationError`."""
    try:
        model.model_validate(_with_instances(model, data))
    except Exception:  # noqa: BLE001 - whatever failed, the ordinary way gives the real errors
        model.model_validate(data)


@functools.cache
def _complex_fields(model: type) -> dict[str, Field]:
    """JSON name -> Field, for each field holding a complex element or a resource."""
    out = {}
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        found = _element_type(info.annotation)
        if found is not None:
            out[info.alias or name] = found
    return out


def _element_type(annotation: Any) -> Field | None:
    origin = typing.get_origin(annotation)
    if origin is None:
        if not isinstance(annotation, type) or not issubclass(annotation, FhirBase):
            return None
        cls = annotation.get_model_klass()
        if issubclass(annotation, FhirElementOrResourceBase):
            # contained, Bundle.entry.resource: any resource, the model named by resourceType
            # (an abstract Element is left to the library)
            return (cls, False, True) if cls.__name__ == "Resource" else None
        return cls, False, False
    for arg in typing.get_args(annotation):
        found = _element_type(arg)
        if found is not None:
            return found[0], found[1] or origin is list, found[2]
    return None


def _with_instances(model: type, data: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of `data` whose complex elements are validated model instances."""
    fields = _complex_fields(model)
    out: dict[str, Any] | None = None
    for key, value in data.items():
        field = fields.get(key)
        if field is None or value is None:
            continue
        cls, many, any_resource = field
        if many:
            if not isinstance(value, list):
                continue
            new: Any = [_element(cls, v, any_resource) for v in value]
        else:
            new = _element(cls, value, any_resource)
        if out is None:
            out = dict(data)
        out[key] = new
    return data if out is None else out


def _element(cls: Any, value: Any, any_resource: bool) -> Any:
    if not isinstance(value, dict):
        return value  # the library reports it
    if any_resource:
        rt = value.get("resourceType")
        cls = model_class(rt) if isinstance(rt, str) else None
        if cls is None:
            return value  # the library reports it
    key = (cls, orjson.dumps(value))
    found = _memo.get(key)
    if found is None:
        found = cls.model_validate(_with_instances(cls, value))
        if len(_memo) >= MEMO_SIZE:
            _memo.clear()
        _memo[key] = found
    return found
