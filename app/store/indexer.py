"""Search-index rows extracted from a resource at write time, driven by the registry.

`index_resource` returns, per index table, tuples of the value columns (the writer adds
`res_pk`, `res_type` and `patient_id`), and the resource's compartment owner.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from app.fhir.dates import MAX_US, MIN_US, DateError, date_range
from app.fhir.definitions import patient_compartment
from app.fhir.paths import reference_type
from app.fhir.references import parse_reference
from app.fhir.search_params import SearchParam, carried_statuses, clinical_dates, registry
from app.fhir.text import MAX_INDEXED, fold

Row = tuple[Any, ...]


@dataclass(slots=True)
class IndexRows:
    # (param, system, code, folded text, clinical date low, high, carried status 1, 2)
    token: list[Row] = field(default_factory=list)
    string: list[Row] = field(default_factory=list)  # (param, value, exact)
    date: list[Row] = field(default_factory=list)  # (param, low, high)
    reference: list[Row] = field(default_factory=list)  # (param, target_type, target_id, url)
    quantity: list[Row] = field(default_factory=list)  # (param, value, system, code, unit)
    number: list[Row] = field(default_factory=list)  # (param, value)
    uri: list[Row] = field(default_factory=list)  # (param, value)
    composite: list[Row] = field(default_factory=list)
    # (param, system1, code1, system2, code2, num2, low2, high2)

    def tables(self) -> Iterable[tuple[str, list[Row]]]:
        return (
            ("token", self.token), ("string", self.string), ("date", self.date),
            ("reference", self.reference), ("quantity", self.quantity),
            ("number", self.number), ("uri", self.uri), ("composite", self.composite),
        )


def _cut(v: Any) -> Any:
    return v[:MAX_INDEXED] if isinstance(v, str) else v


def tokens(value: Any, vtype: str) -> list[tuple[str | None, str | None, str | None]]:
    """(system, code, text) triples of a token-typed value."""
    if vtype == "CodeableConcept":
        out = [(c.get("system"), c.get("code"), c.get("display"))
               for c in value.get("coding", ()) if isinstance(c, dict)]
        if value.get("text"):
            out.append((None, None, value["text"]))
        return out
    if vtype == "Coding":
        return [(value.get("system"), value.get("code"), value.get("display"))]
    if vtype == "Identifier":
        text = value.get("type", {}).get("text") if isinstance(value.get("type"), dict) else None
        return [(value.get("system"), value.get("value"), text)]
    if vtype == "ContactPoint":
        return [(value.get("system"), value.get("value"), None)]
    if vtype == "boolean":
        return [(None, "true" if value else "false", None)]
    if isinstance(value, str):
        return [(None, value, None)]
    if vtype == "Reference" and isinstance(value, dict) and "identifier" in value:
        ident = value["identifier"]
        return [(ident.get("system"), ident.get("value"), None)]
    return []


def strings(value: Any, vtype: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, dict):
        return []
    if vtype == "HumanName":
        out = [value[k] for k in ("text", "family") if isinstance(value.get(k), str)]
        for k in ("given", "prefix", "suffix"):
            out += [x for x in value.get(k, ()) if isinstance(x, str)]
        return out
    if vtype == "Address":
        out = [value[k] for k in ("text", "city", "district", "state", "postalCode", "country")
               if isinstance(value.get(k), str)]
        return out + [x for x in value.get("line", ()) if isinstance(x, str)]
    return [v for v in value.values() if isinstance(v, str)]


def dates(value: Any, vtype: str) -> list[tuple[int, int]]:
    try:
        if isinstance(value, str):
            return [date_range(value)]
        if vtype == "Period":
            low = date_range(value["start"])[0] if "start" in value else MIN_US
            high = date_range(value["end"])[1] if "end" in value else MAX_US
            return [(low, high)]
        if vtype == "Timing":
            out = [date_range(e) for e in value.get("event", ())]
            bounds = value.get("repeat", {}).get("boundsPeriod")
            if bounds:
                out += dates(bounds, "Period")
            return out
    except DateError:
        return []
    return []


def quantity(value: Any) -> tuple[float, str | None, str | None, str | None] | None:
    if not isinstance(value, dict) or not isinstance(value.get("value"), (int, float)):
        return None
    return float(value["value"]), value.get("system"), value.get("code"), value.get("unit")


def _reference_row(param: str, value: Any, vtype: str) -> Row | None:
    if vtype in ("canonical", "uri", "url"):
        return (param, None, None, value) if isinstance(value, str) else None
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    if not isinstance(ref, str) or ref.startswith("#"):
        return None
    parsed = parse_reference(ref)
    if parsed is not None and parsed.local:
        return (param, parsed.type, parsed.id, None)
    return (param, reference_type(value), None, ref)


def _composite_rows(sp: SearchParam, resource: dict[str, Any], out: IndexRows) -> None:
    # Each component is evaluated on the same base element (Observation, or one component).
    assert sp.path is not None
    c1, c2 = sp.components[0], sp.components[1]
    for base, _ in sp.path.evaluate(resource):
        firsts = [t for v, vt in c1.path.evaluate(base) for t in tokens(v, vt) if t[1]]
        if not firsts:
            continue
        seconds: list[tuple[Any, ...]] = []
        for v, vt in c2.path.evaluate(base):
            if c2.type == "token":
                seconds += [(s, c, None, None, None) for s, c, _t in tokens(v, vt) if c]
            elif c2.type in ("quantity", "number"):
                q = quantity(v) if c2.type == "quantity" else (float(v), None, None, None)
                if q:
                    seconds.append((q[1], q[2], q[0], None, None))
            elif c2.type == "date":
                seconds += [(None, None, None, lo, hi) for lo, hi in dates(v, vt)]
            elif c2.type == "string":
                seconds += [(None, fold(s), None, None, None) for s in strings(v, vt)]
            elif c2.type == "reference":
                r = _reference_row(sp.code, v, vt)
                if r and r[2]:
                    seconds.append((None, f"{r[1]}/{r[2]}", None, None, None))
        for s1, code1, _ in firsts:
            for s2, code2, num2, low2, high2 in seconds:
                out.composite.append(
                    (sp.code, _cut(s1), _cut(code1), _cut(s2), _cut(code2), num2, low2, high2)
                )


@functools.cache
def _plan(res_type: str) -> tuple[list[tuple[frozenset[str] | None, SearchParam]], ...]:
    """The indexed parameters of a type with the top-level keys each one reads, so a resource
    skips every parameter whose data it does not have."""
    out = []
    for sp in registry().params(res_type).values():
        if sp.indexed:
            assert sp.path is not None
            out.append((sp.path.root_keys, sp))
    return (out,)


@functools.cache
def _compartment_params(res_type: str) -> frozenset[str]:
    """The indexed reference parameters behind the Patient compartment's parameters."""
    reg = registry()
    names: set[str] = set()
    for p in patient_compartment().get(res_type, ()):
        sp = reg.get(res_type, p)
        if sp is not None:
            names.update(sp.index_params())
    return frozenset(names)


def _identifier_types(param: str, ident: dict[str, Any]) -> list[Row]:
    """Rows for `:of-type`: system 'typeSystem|typeCode', code the identifier value."""
    itype, value = ident.get("type"), ident.get("value")
    if not isinstance(itype, dict) or not isinstance(value, str):
        return []
    return [(param + ":of-type", _cut(f"{c.get('system') or ''}|{c['code']}"), _cut(value),
             None)
            for c in itype.get("coding", ()) if isinstance(c, dict) and c.get("code")]


def index_resource(res_type: str, resource: dict[str, Any]) -> IndexRows:
    out = IndexRows()
    for keys, sp in _plan(res_type)[0]:
        if keys is not None and keys.isdisjoint(resource):
            continue
        if sp.type == "composite":
            _composite_rows(sp, resource, out)
            continue
        values = sp.path.evaluate(resource)
        if not values:
            continue
        code = sp.code
        t = sp.type
        for v, vt in values:
            if t == "token":
                for system, c, text in tokens(v, vt):
                    # the display or text rides on the token row, for :text searches
                    if c is not None or system is not None or text:
                        out.token.append((code, _cut(system), _cut(c),
                                          fold(text) if text else None))
                if vt == "Identifier" and isinstance(v, dict):
                    out.token += _identifier_types(code, v)
            elif t == "string":
                out.string += [(code, fold(s), s) for s in strings(v, vt)]
            elif t == "date":
                out.date += [(code, lo, hi) for lo, hi in dates(v, vt)]
            elif t == "reference":
                row = _reference_row(code, v, vt)
                if row is not None:
                    out.reference.append(row)
                if vt == "Reference" and isinstance(v, dict) and "identifier" in v:
                    ident = v["identifier"]
                    if isinstance(ident, dict) and ident.get("value"):
                        out.token.append((code + ":identifier", _cut(ident.get("system")),
                                          _cut(ident["value"]), None))
            elif t == "quantity":
                q = quantity(v)
                if q is not None:
                    out.quantity.append((code, q[0], _cut(q[1]), _cut(q[2]), _cut(q[3])))
            elif t == "number":
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    out.number.append((code, float(v)))
            elif t == "uri" and isinstance(v, str):
                out.uri.append((code, v))
    for name, rows in out.tables():
        if len(rows) > 1:
            setattr(out, name, list(dict.fromkeys(rows)))
    carried = clinical_dates().get(res_type)
    spans = [(lo, hi) for code, lo, hi in out.date if code == carried] if carried else []
    span = (min(s[0] for s in spans), max(s[1] for s in spans)) if spans else (None, None)
    statuses = [_carried_status(out.token, p) for p in carried_statuses().get(res_type, ())]
    statuses += [None] * (2 - len(statuses))
    out.token = [(*row, *span, *statuses) for row in out.token]
    return out


def _carried_status(rows: list[Row], param: str) -> str | None:
    """The code the token rows carry for `param`: its one code, '' for none, None (look it
    up) for several."""
    codes = {(row[1], row[2]) for row in rows if row[0] == param and row[2] is not None}
    if not codes:
        return ""
    if len(codes) > 1 or len(next(iter(codes))[1]) > 64:
        return None
    return str(next(iter(codes))[1])


def compartment_owner(res_type: str, res_id: str, rows: IndexRows) -> str | None:
    """The Patient whose compartment this resource belongs to (one owner; None if none)."""
    if res_type == "Patient":
        return res_id
    params = _compartment_params(res_type)
    if not params:
        return None
    owners = {r[2] for r in rows.reference if r[0] in params and r[1] == "Patient" and r[2]}
    # A resource about several patients (a Group, a shared Appointment) has no single owner.
    return owners.pop() if len(owners) == 1 else None
