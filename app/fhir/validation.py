"""Validate incoming R4 JSON.

fhir.resources' R4B models check structure, cardinality, choice types and primitive formats, but
they are lax about JSON types (`"active": "yes"` passes) and ignore required code bindings
(`"gender": "F"` passes), and they lack the 18 R4 types R4B removed (MedicinalProduct*, ...). A
walker over the official R4 element definitions adds those checks, and is the whole structural
validator for the types R4B lacks. Every problem becomes an `Issue` naming the element.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from app.fhir import r4b
from app.fhir.definitions import PRIMITIVES, Element, TypeDef, resource_types, type_definitions
from app.fhir.errors import FhirError, Issue

MAX_ISSUES = 25
# Deeper JSON is refused before anything recurses over it: orjson serialises at most 255
# levels, fhir.resources' models recurse about a dozen Python frames per level, and real
# resources (extensions in extensions included) stay far below this.
MAX_DEPTH = 100
# R4 2.24.0.1: strings SHALL NOT contain characters below U+0020 other than tab, CR and LF
# (and PostgreSQL cannot index a NUL)
_CONTAINERS = (dict, list)  # faster in isinstance than `dict | list`
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "positiveInt": (int,),
    "unsignedInt": (int,),
    "decimal": (int, float),
}
# Official R4 regexes for the primitives (http://hl7.org/fhir/R4/datatypes.html).
_PATTERNS: dict[str, re.Pattern[str]] = {
    k: re.compile(v)
    for k, v in {
        "id": r"[A-Za-z0-9\-\.]{1,64}",
        "code": r"[^\s]+(\s[^\s]+)*",
        "date": r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])"
        r"(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?",
        "dateTime": r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])"
        r"(-(0[1-9]|[1-2][0-9]|3[0-1])(T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
        r"(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)))?)?)?",
        "instant": r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-"
        r"(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)"
        r"(\.[0-9]+)?(Z|(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))",
        "time": r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?",
    }.items()
}


def _loc_to_expression(res_type: str, loc: tuple[Any, ...]) -> str:
    out = res_type
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("__root__", "resource_type"):
            continue
        else:
            out += f".{part}"
    return out


# Complex elements the walker found clean, by (type, backbone path, JSON). What the walker
# checks in an element depends on nothing else (the location only names it), and repeated
# elements are the rule (codes, categories, references to one patient). Keys are JSON text, so
# values are taken as the JSON they serialise to; callers pass parsed JSON, and orjson refuses
# the look-alikes it can (datetimes, dataclasses, subclasses of str and int) so those are walked.
CLEAN_MEMO_SIZE = 20_000
_walked_clean: set[tuple[str, str, bytes]] = set()
_STRICT = (
    orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)


class _Walker:
    """Checks JSON types, required bindings, unknown elements and minimum cardinality."""

    def __init__(self) -> None:
        self.defs = type_definitions()
        self.issues: list[Issue] = []

    def add(self, expr: str, msg: str, code: str = "structure") -> None:
        if len(self.issues) < MAX_ISSUES:
            self.issues.append(Issue(code, msg, expression=[expr]))

    def resource(self, obj: Any, loc: str) -> None:
        if not isinstance(obj, dict):
            self.add(loc, "a resource must be a JSON object")
            return
        rt = obj.get("resourceType")
        if not isinstance(rt, str) or rt not in resource_types():
            self.add(loc, f"unknown resourceType {rt!r}", "not-supported")
            return
        self.object(obj, self.defs[rt], "", loc if loc else rt, top=True)

    def object(self, obj: dict[str, Any], td: TypeDef, prefix: str, loc: str, top: bool) -> None:
        props = td.properties.get(prefix, {})
        for key, value in obj.items():
            if top and key == "resourceType":
                continue
            if key.startswith("_"):
                el = props.get(key[1:])
                if el is None or el.type not in PRIMITIVES:
                    self.add(f"{loc}.{key}", f"unknown element '{key}'")
                continue
            el = props.get(key)
            if el is None:
                self.add(f"{loc}.{key}", f"unknown element '{key}' in {td.name}")
                continue
            if el.many:
                if not isinstance(value, list) or not value:
                    self.add(f"{loc}.{key}", f"'{key}' must be a non-empty JSON array")
                    continue
                for i, item in enumerate(value):
                    if item is None and obj.get("_" + key):
                        continue
                    self.value(item, el, td, f"{loc}.{key}[{i}]")
            elif isinstance(value, list):
                self.add(f"{loc}.{key}", f"'{key}' takes a single value, not an array")
            else:
                self.value(value, el, td, f"{loc}.{key}")
        for path, names in td.mandatory.get(prefix, ()):
            if not any(n in obj or "_" + n in obj for n in names):
                leaf = path.rpartition(".")[2].replace("[x]", "")
                self.add(f"{loc}.{leaf}", f"missing required element '{leaf}'", "required")

    def value(self, value: Any, el: Element, td: TypeDef, loc: str) -> None:
        t = el.type
        if t in PRIMITIVES:
            want = _JSON_TYPES.get(t, (str,))
            if not isinstance(value, want) or (t != "boolean" and isinstance(value, bool)):
                self.add(loc, f"must be a JSON {_json_name(t)} ({t}), got {_show(value)}", "value")
                return
            if isinstance(value, str) and CONTROL_CHARS.search(value):
                self.add(loc, f"{_show(value)} contains control characters (FHIR strings allow "
                         "tab, CR and LF only)", "value")
                return
            pattern = _PATTERNS.get(t)
            if pattern is not None and not pattern.fullmatch(value):
                self.add(loc, f"{_show(value)} is not a valid {t}", "value")
            elif el.required_codes is not None and value not in el.required_codes:
                allowed = ", ".join(sorted(el.required_codes)[:12])
                self.add(loc, f"{_show(value)} is not in the required value set ({allowed})",
                         "code-invalid")
            elif t in ("positiveInt",) and value < 1 or t == "unsignedInt" and value < 0:
                self.add(loc, f"{value} is out of range for {t}", "value")
            return
        if not isinstance(value, dict):
            self.add(loc, f"must be a JSON object ({t}), got {_show(value)}")
            return
        if t == "Resource":
            self.resource(value, loc)
        elif el.path in td.properties:  # a backbone element, defined inside this type
            self.element(value, td, el.path, loc)
        elif t in self.defs:
            self.element(value, self.defs[t], "", loc)

    def element(self, obj: dict[str, Any], td: TypeDef, prefix: str, loc: str) -> None:
        """A complex element: skipped when the same JSON was walked clean as the same type."""
        try:
            key = (td.name, prefix, orjson.dumps(obj, option=_STRICT))
        except TypeError:  # not plain JSON (orjson.JSONEncodeError is a TypeError): walk it
            key = None
        if key is not None and key in _walked_clean:
            return
        before = len(self.issues)
        self.object(obj, td, prefix, loc, top=False)
        if key is not None and len(self.issues) == before < MAX_ISSUES:
            if len(_walked_clean) >= CLEAN_MEMO_SIZE:
                _walked_clean.clear()
            _walked_clean.add(key)


def _json_name(t: str) -> str:
    return {"boolean": "boolean", "decimal": "number"}.get(
        t, "integer" if t in _JSON_TYPES else "string"
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# Checks beyond structure that an engine registers for its own resource type (the measure
# engine compiles a Measure's criteria, so a Measure that cannot run is never stored).
RESOURCE_CHECKS: dict[str, Callable[[dict[str, Any]], list[Issue]]] = {}


def check_depth(value: Any, what: str = "the body") -> None:
    """Raise a 400 when JSON nests deeper than MAX_DEPTH arrays and objects (level by level,
    so the check itself cannot overflow the stack)."""
    level = [value] if isinstance(value, _CONTAINERS) else []
    depth = 1
    while level:
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, _CONTAINERS)
        ]
        if level and depth >= MAX_DEPTH:
            raise FhirError.of(
                400, "structure", f"{what} nests JSON deeper than {MAX_DEPTH} levels"
            )
        depth += 1


def validate_resource(obj: Any, expected_type: str | None = None, full: bool = True) -> str:
    """Validate one R4 resource (a parsed JSON object); return its type or raise a 4xx."""
    if not isinstance(obj, dict):
        raise FhirError.of(400, "structure", "the body must be a JSON object holding a resource")
    rt = obj.get("resourceType")
    if not isinstance(rt, str) or not rt:
        raise FhirError.of(400, "required", "the resource has no resourceType", ["resourceType"])
    if rt not in resource_types():
        raise FhirError.of(
            400, "not-supported", f"'{rt}' is not an R4 resource type", ["resourceType"]
        )
    if expected_type is not None and rt != expected_type:
        raise FhirError.of(
            400, "invalid",
            f"the body holds a {rt} but the URL names {expected_type}", ["resourceType"],
        )
    issues = collect_issues(obj, full)
    if not issues and rt in RESOURCE_CHECKS:
        issues = RESOURCE_CHECKS[rt](obj)
    if issues:
        raise FhirError(422, issues)
    return rt


def collect_issues(obj: dict[str, Any], full: bool = True) -> list[Issue]:
    """Problems found by the definition walker, then (when `full`) by fhir.resources."""
    rt: str = obj["resourceType"]
    walker = _Walker()
    walker.resource(obj, rt)
    if walker.issues or not full:
        return walker.issues
    model = r4b.model_class(rt)
    if model is None:
        return []
    try:
        r4b.validate(model, obj)
    except ValidationError as exc:
        return [
            Issue(
                "required" if "missing" in e["type"] else "structure" if "extra" in e["type"]
                else "value",
                _clean(e["msg"]),
                expression=[_loc_to_expression(rt, e["loc"])],
            )
            for e in exc.errors()[:MAX_ISSUES]
        ]
    except (KeyError, TypeError, ValueError) as exc:  # the library's own defects on odd input
        return [Issue("structure", f"the resource could not be read as R4: {exc}")]
    return []


def _clean(msg: str) -> str:
    return " ".join(msg.replace("Value error, ", "").split())
