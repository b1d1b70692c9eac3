"""Stratum rules: the small boolean language of the stratification map, compiled once.

A rule is `true`, `{"all": [...]}`, `{"any": [...]}`, `{"not": rule}` or a test of one fact:
`{"fact": "t2d"}` (the fact holds: a condition is active, a medicine is taken, a count is > 0)
or `{"fact": "hba1c", "op": ">=", "value": 8.0}`. A fact without a value (no HbA1c in the
look-back period) fails every comparison, so "HbA1c >= 8" and "HbA1c < 8" are both false.

Pure functions over `PatientFacts`: no database, no FHIR. `explain` returns the whole tree with
each fact's value and outcome, for `$stratify?_explain=true`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
    "!=": operator.ne,
    "in": lambda v, values: v in values,
}


@dataclass(slots=True)
class PatientFacts:
    """One patient's facts. Only facts that differ from their kind's default are stored
    (most people have no condition of a given value set), so a region fits in memory."""

    patient_id: str
    values: dict[str, Any] = field(default_factory=dict)
    basis: dict[str, list[int]] = field(default_factory=dict)  # fact -> resource pks
    detail: dict[str, str] = field(default_factory=dict)  # fact -> e.g. date and unit

    def get(self, name: str, default: Any) -> Any:
        return self.values.get(name, default)


Test = Callable[[dict[str, Any]], bool]  # a compiled rule over PatientFacts.values


class Rule:
    def holds(self, facts: PatientFacts) -> bool:
        raise NotImplementedError

    def compile(self) -> Test:
        """A closure for the hot path: no generators, no method dispatch per node."""
        raise NotImplementedError

    def true_leaves(self, facts: PatientFacts) -> Iterator[Leaf]:
        """The fact tests that made this rule hold (every true test under an `any`)."""
        raise NotImplementedError

    def explain(self, facts: PatientFacts) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(slots=True)
class Always(Rule):
    def holds(self, facts: PatientFacts) -> bool:
        return True

    def compile(self) -> Test:
        return lambda values: True

    def true_leaves(self, facts: PatientFacts) -> Iterator[Leaf]:
        return iter(())

    def explain(self, facts: PatientFacts) -> dict[str, Any]:
        return {"rule": "always", "result": True}


@dataclass(slots=True)
class All(Rule):
    parts: list[Rule]
    note: str | None = None

    def holds(self, facts: PatientFacts) -> bool:
        return all(p.holds(facts) for p in self.parts)

    def compile(self) -> Test:
        tests = [p.compile() for p in self.parts]

        def run(values: dict[str, Any]) -> bool:
            for t in tests:  # noqa: SIM110 - a loop: no generator per call on the hot path
                if not t(values):
                    return False
            return True

        return run

    def true_leaves(self, facts: PatientFacts) -> Iterator[Leaf]:
        for p in self.parts:
            yield from p.true_leaves(facts)

    def explain(self, facts: PatientFacts) -> dict[str, Any]:
        parts = [p.explain(facts) for p in self.parts]
        return _with_note(
            {"rule": "all", "result": all(p["result"] for p in parts), "parts": parts}, self.note
        )


@dataclass(slots=True)
class Any_(Rule):
    parts: list[Rule]
    note: str | None = None

    def holds(self, facts: PatientFacts) -> bool:
        return any(p.holds(facts) for p in self.parts)

    def compile(self) -> Test:
        tests = [p.compile() for p in self.parts]

        def run(values: dict[str, Any]) -> bool:
            for t in tests:  # noqa: SIM110 - a loop: no generator per call on the hot path
                if t(values):
                    return True
            return False

        return run

    def true_leaves(self, facts: PatientFacts) -> Iterator[Leaf]:
        for p in self.parts:
            if p.holds(facts):
                yield from p.true_leaves(facts)

    def explain(self, facts: PatientFacts) -> dict[str, Any]:
        parts = [p.explain(facts) for p in self.parts]
        return _with_note(
            {"rule": "any", "result": any(p["result"] for p in parts), "parts": parts}, self.note
        )


@dataclass(slots=True)
class Not(Rule):
    part: Rule
    note: str | None = None

    def holds(self, facts: PatientFacts) -> bool:
        return not self.part.holds(facts)

    def compile(self) -> Test:
        inner = self.part.compile()
        return lambda values: not inner(values)

    def true_leaves(self, facts: PatientFacts) -> Iterator[Leaf]:
        return iter(())

    def explain(self, facts: PatientFacts) -> dict[str, Any]:
        inner = self.part.explain(facts)
        return _with_note(
            {"rule": "not", "result": not inner["result"], "parts": [inner]}, self.note
        )


@dataclass(slots=True)
class Leaf(Rule):
    fact: str
    label: str
    default: Any
    op: str | None = None
    value: Any = None
    note: str | None = None
    _test: Callable[[Any, Any], bool] | None = None

    def __post_init__(self) -> None:
        self._test = OPS[self.op] if self.op else None

    def holds(self, facts: PatientFacts) -> bool:
        v = facts.values.get(self.fact, self.default)
        if self._test is None:
            return bool(v)
        if v is None:
            return False
        return self._test(v, self.value)

    def compile(self) -> Test:
        fact, default, test, threshold = self.fact, self.default, self._test, self.value
        if test is None:
            return lambda values: bool(values.get(fact, default))

        def run(values: dict[str, Any]) -> bool:
            v = values.get(fact, default)
            return v is not None and test(v, threshold)

        return run

    def true_leaves(self, facts: PatientFacts) -> Iterator[Leaf]:
        if self.holds(facts):
            yield self

    def describe(self, facts: PatientFacts) -> str:
        """Human-readable: 'latest HbA1c (%) 8.2 (2026-03-02) >= 8.0'."""
        v = facts.values.get(self.fact, self.default)
        detail = facts.detail.get(self.fact)
        shown = _show(v) + (f" ({detail})" if detail else "")
        if self.op is None:
            return self.label if v is True else f"{self.label}: {shown}"
        return f"{self.label} {shown} {self.op} {_show(self.value)}"

    def explain(self, facts: PatientFacts) -> dict[str, Any]:
        v = facts.values.get(self.fact, self.default)
        out: dict[str, Any] = {"fact": self.fact, "label": self.label, "value": v}
        if self.fact in facts.detail:
            out["detail"] = facts.detail[self.fact]
        if self.op is not None:
            out["op"], out["threshold"] = self.op, self.value
        out["result"] = self.holds(facts)
        return _with_note(out, self.note)


def _with_note(d: dict[str, Any], note: str | None) -> dict[str, Any]:
    if note:
        d["note"] = note
    return d


def _show(v: Any) -> str:
    if v is None:
        return "none recorded"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)
