"""The stratification map: loaded from `fhir_profiles/stratification/` (or a region's own file),
validated against its JSON Schema and for meaning, and compiled into rules once.

A malformed map is rejected with a `MapError` naming the file and the JSON path of the fault
(`default.json: $.strata[2].when.any[0].value: 'high' is not of type 'number'`), so a region
editing its own map finds the mistake without reading Python.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from app.fhir.definitions import PROFILES
from app.stratify.rules import All, Always, Any_, Leaf, Not, Rule, Test

FOLDER = PROFILES / "stratification"
DEFAULT_MAP = FOLDER / "default.json"
SCHEMA = FOLDER / "stratification-map.schema.json"

# The value of a fact nobody has recorded: no condition, no medicine, zero visits, no result.
DEFAULTS: dict[str, Any] = {
    "age": None,
    "sex": None,
    "condition": False,
    "condition-count": 0,
    "lab": None,
    "observation-code": False,
    "medication": False,
    "medicine-count": 0,
    "encounter-count": 0,
}
NUMERIC = {"age", "condition-count", "lab", "medicine-count", "encounter-count"}
BOOLEAN = {"condition", "observation-code", "medication"}
PYRAMID = "pyramid"


class MapError(ValueError):
    """A stratification map that cannot be used; `where` is the file and JSON path."""

    def __init__(self, file: str, path: str, message: str) -> None:
        self.file, self.path, self.message = file, path, message
        super().__init__(f"{file}: {path}: {message}")


@dataclass(frozen=True, slots=True)
class FactDef:
    name: str
    kind: str
    label: str
    spec: dict[str, Any]

    @property
    def default(self) -> Any:
        return DEFAULTS[self.kind]

    def value_sets(self) -> list[str]:
        if "valueSet" in self.spec:
            return [self.spec["valueSet"]]
        return list(self.spec.get("valueSets", ()))


@dataclass(frozen=True, slots=True)
class Stratum:
    code: str
    display: str
    axis: str
    rule: Rule
    source: str = ""
    level: int | None = None  # pyramid level, 1 = bottom (the last stratum of the list)
    test: Test = field(default=lambda values: False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "test", self.rule.compile())


@dataclass(slots=True)
class MedicinePolicy:
    statement_statuses: tuple[str, ...] = ("active",)
    request_statuses: tuple[str, ...] = ("active",)
    dispense_lookback_days: int = 365
    min_dispenses: int = 2
    count_systems: tuple[str, ...] = (
        "http://www.whocc.no/atc",
        "http://www.nlm.nih.gov/research/umls/rxnorm",
    )


@dataclass(slots=True)
class StratificationMap:
    id: str
    version: str
    title: str
    code_system: str
    facts: dict[str, FactDef]
    strata: list[Stratum]  # the pyramid, top first; the last one always holds
    axes: dict[str, list[Stratum]]  # sub-stratum axes, each in order of precedence
    medicines: MedicinePolicy = field(default_factory=MedicinePolicy)
    team_system: str | None = None
    source_file: str = ""
    raw: dict[str, Any] = field(default_factory=dict)

    def all_strata(self) -> list[Stratum]:
        return self.strata + [s for axis in self.axes.values() for s in axis]

    def stratum(self, code: str) -> Stratum | None:
        return next((s for s in self.all_strata() if s.code == code), None)

    def value_sets(self) -> set[str]:
        return {url for f in self.facts.values() for url in f.value_sets()}


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(orjson.loads(SCHEMA.read_bytes()))


def _json_path(parts: Any) -> str:
    out = "$"
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else f".{p}"
    return out


def load_map(path: Path | str | None = None) -> StratificationMap:
    """Read, validate and compile a map file (the shipped default when `path` is None)."""
    file = Path(path) if path else DEFAULT_MAP
    name = file.name
    try:
        raw = orjson.loads(file.read_bytes())
    except FileNotFoundError:
        raise MapError(str(file), "$", "no such file") from None
    except orjson.JSONDecodeError as exc:
        raise MapError(name, "$", f"not valid JSON: {exc}") from None
    return parse_map(raw, name)


def parse_map(raw: Any, name: str = "<map>") -> StratificationMap:
    error = best_match(_validator().iter_errors(raw))
    if error is not None:
        raise MapError(name, _json_path(error.absolute_path), error.message)
    facts = {k: FactDef(k, v["kind"], v.get("label", k), v) for k, v in raw["facts"].items()}
    seen: dict[str, str] = {}

    def strata(items: list[dict[str, Any]], axis: str, where: str) -> list[Stratum]:
        out = []
        for i, item in enumerate(items):
            at = f"{where}[{i}]"
            if item["code"] in seen:
                raise MapError(
                    name,
                    f"{at}.code",
                    f"stratum code '{item['code']}' is already used at {seen[item['code']]}",
                )
            seen[item["code"]] = f"{at}.code"
            rule = compile_rule(item["when"], facts, name, f"{at}.when")
            level = len(items) - i if axis == PYRAMID else None
            out.append(
                Stratum(item["code"], item["display"], axis, rule, item.get("source", ""), level)
            )
        return out

    pyramid = strata(raw["strata"], PYRAMID, "$.strata")
    if raw["strata"][-1]["when"] is not True:
        raise MapError(
            name,
            f"$.strata[{len(pyramid) - 1}].when",
            "the last stratum must "
            'hold for everyone ("when": true), so that every patient gets one',
        )
    axes: dict[str, list[Stratum]] = {}
    for i, axis in enumerate(raw.get("substrata", ())):
        if axis["axis"] in axes or axis["axis"] == PYRAMID:
            raise MapError(name, f"$.substrata[{i}].axis", f"axis '{axis['axis']}' is used twice")
        axes[axis["axis"]] = strata(axis["strata"], axis["axis"], f"$.substrata[{i}].strata")
    med = raw.get("medicines", {})
    policy = MedicinePolicy()
    policy = MedicinePolicy(
        tuple(med.get("statementStatuses", policy.statement_statuses)),
        tuple(med.get("requestStatuses", policy.request_statuses)),
        med.get("dispenseLookbackDays", policy.dispense_lookback_days),
        med.get("minDispenses", policy.min_dispenses),
        tuple(med.get("countSystems", policy.count_systems)),
    )
    return StratificationMap(
        raw["id"],
        raw["version"],
        raw["title"],
        raw["codeSystem"],
        facts,
        pyramid,
        axes,
        policy,
        raw.get("teams", {}).get("groupIdentifierSystem"),
        name,
        raw,
    )


def compile_rule(node: Any, facts: dict[str, FactDef], file: str, where: str) -> Rule:
    if node is True:
        return Always()
    note = node.get("note")
    if "all" in node:
        return All(
            [compile_rule(n, facts, file, f"{where}.all[{i}]") for i, n in enumerate(node["all"])],
            note,
        )
    if "any" in node:
        return Any_(
            [compile_rule(n, facts, file, f"{where}.any[{i}]") for i, n in enumerate(node["any"])],
            note,
        )
    if "not" in node:
        return Not(compile_rule(node["not"], facts, file, f"{where}.not"), note)
    name = node["fact"]
    fact = facts.get(name)
    if fact is None:
        known = ", ".join(sorted(facts))
        raise MapError(file, f"{where}.fact", f"unknown fact '{name}' (the map defines: {known})")
    op, value = node.get("op"), node.get("value")
    if op is None and fact.kind in ("age", "lab", "sex"):
        raise MapError(file, where, f"fact '{name}' ({fact.kind}) needs an 'op' and a 'value'")
    if op is not None and fact.kind in BOOLEAN:
        raise MapError(
            file,
            f"{where}.op",
            f"fact '{name}' ({fact.kind}) is yes/no: test it "
            "without 'op' (or negate it with 'not')",
        )
    if (
        op is not None
        and fact.kind in NUMERIC
        and (op == "in" or isinstance(value, bool) or not isinstance(value, int | float))
    ):
        raise MapError(
            file,
            f"{where}.value",
            f"fact '{name}' is a number: compare it with <, <=, >, >=, = or != and a numeric value",
        )
    if fact.kind == "sex" and not (
        op in ("=", "!=") and isinstance(value, str) or op == "in" and isinstance(value, list)
    ):
        raise MapError(
            file,
            f"{where}.value",
            f"fact '{name}' is a code: use = or != with a string, or 'in' with a list of strings",
        )
    if isinstance(value, list):
        value = tuple(value)
    return Leaf(name, fact.label, fact.default, op, value, note)
