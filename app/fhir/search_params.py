"""The search-parameter registry, built from the official R4 SearchParameter definitions.

One registry serves indexing (which values to extract at write time), search (how to compile a
query parameter) and the CapabilityStatement (what is supported), so the three cannot drift.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.fhir.definitions import PROFILES, resource_types, search_parameter_resources
from app.fhir.paths import CompiledPath, Unsupported, compile_path, compile_relative

log = logging.getLogger(__name__)

# Parameters whose values live in the resource table itself, not in an index table.
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})
# Defined for every resource but not supported here (reported as unknown when used).
UNSUPPORTED = frozenset({"_text", "_content", "_query", "_list", "_has_placeholder"})

MODIFIERS: dict[str, tuple[str, ...]] = {
    "token": ("missing", "not", "text", "in", "not-in", "of-type", "above", "below"),
    "string": ("missing", "exact", "contains"),
    "date": ("missing",),
    "reference": ("missing", "identifier"),  # and ":Type"
    "quantity": ("missing",),
    "number": ("missing",),
    "uri": ("missing", "below", "above"),
    "composite": ("missing",),
}


@dataclass(frozen=True, slots=True)
class Component:
    type: str
    path: CompiledPath


@dataclass(slots=True)
class SearchParam:
    code: str
    type: str  # token | string | date | reference | quantity | number | uri | composite | special
    base: str
    url: str
    expression: str
    path: CompiledPath | None
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    description: str = ""
    comparators: tuple[str, ...] = field(default_factory=tuple)
    # Not indexed itself: the union of these parameters of the same base (Observation
    # `combo-code` = `code` | `component-code`), or one parameter restricted to a target type
    # (Observation `patient` = `subject` pointing to a Patient). Saves a third of the rows.
    union_of: tuple[str, ...] = ()
    target_filter: str | None = None

    @property
    def indexed(self) -> bool:
        return self.path is not None and not self.union_of

    def index_params(self) -> tuple[str, ...]:
        """The parameter names under which this parameter's values are indexed."""
        return self.union_of or (self.code,)


@dataclass
class Registry:
    by_type: dict[str, dict[str, SearchParam]]
    skipped: list[tuple[str, str, str]]

    def params(self, res_type: str) -> dict[str, SearchParam]:
        return self.by_type.get(res_type, {})

    def get(self, res_type: str, code: str) -> SearchParam | None:
        return self.by_type.get(res_type, {}).get(code)


def _component_base(sp: dict[str, Any], base: str) -> tuple[str, str]:
    """(type name, backbone prefix) at which a composite's components are evaluated."""
    branches = [b.strip() for b in sp["expression"].split("|")]
    mine = [b for b in branches if b == base or b.startswith(base + ".")]
    root = mine[0] if mine else branches[0]
    if root == base:
        return base, ""
    cp = compile_path(root, base)
    plan = cp.plans[0]
    if plan.type == "BackboneElement":
        return base, ".".join(s[1] for s in plan.steps if s[0] == "get")
    return plan.type, ""


@functools.cache
def registry() -> Registry:
    raw = search_parameter_resources()
    by_url = {sp["url"]: sp for sp in raw}
    types = resource_types()
    by_type: dict[str, dict[str, SearchParam]] = {t: {} for t in types}
    skipped: list[tuple[str, str, str]] = []
    for sp in raw:
        code = sp["code"]
        if code in UNSUPPORTED or sp["type"] == "special":
            continue
        bases = sp["base"]
        if "Resource" in bases or "DomainResource" in bases:
            bases = sorted(types)
        for base in bases:
            if base not in types:
                continue
            try:
                path = None if code in COLUMN_PARAMS else compile_path(sp["expression"], base)
                components: tuple[Component, ...] = ()
                if sp["type"] == "composite":
                    tname, prefix = _component_base(sp, base)
                    components = tuple(
                        Component(
                            by_url[c["definition"]]["type"],
                            compile_relative(c["expression"], tname, prefix),
                        )
                        for c in sp["component"]
                    )
            except (Unsupported, KeyError) as exc:
                skipped.append((base, code, str(exc)))
                continue
            by_type[base][code] = SearchParam(
                code=code,
                type=sp["type"],
                base=base,
                url=sp["url"],
                expression=sp.get("expression", ""),
                path=path,
                targets=tuple(sp.get("target", ())),
                components=components,
                description=sp.get("description", ""),
                comparators=tuple(sp.get("comparator", ())),
            )
    for params in by_type.values():
        _find_aliases(params)
    for base, code, why in skipped:
        log.info("search parameter %s:%s not indexed: %s", base, code, why)
    return Registry(by_type, skipped)


def _signature(sp: SearchParam) -> frozenset[tuple[Any, ...]]:
    assert sp.path is not None
    comps = tuple(c.path.expression for c in sp.components)
    return frozenset((plan.steps, plan.type, comps) for plan in sp.path.plans)


def _find_aliases(params: dict[str, SearchParam]) -> None:
    sigs = {c: _signature(p) for c, p in params.items()
            if p.path is not None and p.path.special is None}
    for code, sig in sigs.items():
        sp = params[code]
        same_type = [c for c in sigs if c != code and params[c].type == sp.type]
        # an identical parameter: keep the alphabetically first as the indexed one
        twins = [c for c in same_type if sigs[c] == sig]
        if twins and min(twins) < code:
            sp.union_of = (min(twins),)
            continue
        parts = [c for c in same_type if sigs[c] < sig]
        if len(parts) >= 2 and frozenset().union(*(sigs[c] for c in parts)) == sig:
            sp.union_of = tuple(sorted(parts))
            continue
        if sp.type == "reference" and all(p[0] and p[0][-1][0] == "reftype" for p in sig):
            targets = {p[0][-1][1] for p in sig}
            base = frozenset((p[0][:-1], p[1], p[2]) for p in sig)
            plain = [c for c in same_type if sigs[c] == base]
            if len(targets) == 1 and plain:
                sp.union_of = (min(plain),)
                sp.target_filter = targets.pop()
    # a union must not lean on another alias
    for sp in params.values():
        if sp.union_of and any(params[c].union_of for c in sp.union_of):
            sp.union_of, sp.target_filter = (), None


@functools.cache
def carried_statuses() -> dict[str, list[str]]:
    """Resource type -> the token parameters (at most two) whose code its token index rows
    carry (fhir_profiles/search/carried-status.json); checked against the registry."""
    path = PROFILES / "search" / "carried-status.json"
    params: dict[str, list[str]] = orjson.loads(path.read_bytes())["parameters"]
    reg = registry()
    for res_type, codes in params.items():
        if not 1 <= len(codes) <= 2:
            raise ValueError(f"{path}: {res_type} carries one or two parameters")
        for code in codes:
            sp = reg.get(res_type, code)
            if sp is None or sp.type != "token" or sp.index_params() != (code,):
                raise ValueError(f"{path}: {res_type}.{code} is not a stored token parameter")
    return params


@functools.cache
def clinical_dates() -> dict[str, str]:
    """Resource type -> the date parameter whose range its token index rows carry
    (fhir_profiles/search/clinical-date.json); checked against the registry."""
    path = PROFILES / "search" / "clinical-date.json"
    params: dict[str, str] = orjson.loads(path.read_bytes())["parameters"]
    reg = registry()
    for res_type, code in params.items():
        sp = reg.get(res_type, code)
        if sp is None or sp.type != "date" or sp.index_params() != (code,):
            raise ValueError(f"{path}: {res_type}.{code} is not a stored date parameter")
    return params
