"""Compile the FHIRPath subset used by the R4 SearchParameter expressions into plain lookups.

fhirpathpy costs 90-400 µs per resource and expression, far too slow for indexing every write.
The official expressions use a small subset: paths, `as(T)`/`as T` on choice elements,
`where(resolve() is T)`, `where(field='value')`, `[n]`, `|` unions and one `exists() and`. Since the
element types are known from the R4 definitions, every path resolves at start-up to a list of
dictionary look-ups with a static result type; evaluation is then only dict access. An expression
outside the subset raises `Unsupported` and the caller decides (it is reported at start-up).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from app.fhir.definitions import PRIMITIVES, type_definitions

Step = tuple[str, ...]  # ("get", prop) | ("eq", field, value) | ("reftype", T) | ("index", n)


class Unsupported(ValueError):
    """The expression uses FHIRPath beyond the compiled subset."""


@dataclass(frozen=True, slots=True)
class Plan:
    """One branch of an expression: look-ups from the resource root to values of `type`."""

    steps: tuple[Step, ...]
    type: str


@dataclass(frozen=True, slots=True)
class CompiledPath:
    expression: str
    plans: tuple[Plan, ...]
    special: Callable[[dict[str, Any]], list[tuple[Any, str]]] | None = None

    @property
    def root_keys(self) -> frozenset[str] | None:
        """Top-level properties the expression reads (None: it may read anything)."""
        if self.special is not None:
            return None
        keys = set()
        for plan in self.plans:
            if not plan.steps:
                return None
            if plan.steps[0][0] != "get":
                return None
            keys.add(plan.steps[0][1])
        return frozenset(keys)

    def evaluate(self, resource: dict[str, Any]) -> list[tuple[Any, str]]:
        """The values the expression selects, each with its FHIR type code."""
        if self.special is not None:
            return self.special(resource)
        out: list[tuple[Any, str]] = []
        for plan in self.plans:
            out.extend((v, plan.type) for v in _run(plan.steps, resource))
        return out


def _run(steps: tuple[Step, ...], root: Any) -> Iterator[Any]:
    nodes: list[Any] = [root]
    for step in steps:
        kind = step[0]
        nxt: list[Any] = []
        if kind == "get":
            key = step[1]
            for n in nodes:
                v = n.get(key) if isinstance(n, dict) else None
                if v is None:
                    continue
                if isinstance(v, list):
                    nxt.extend(x for x in v if x is not None)
                else:
                    nxt.append(v)
        elif kind == "eq":
            nxt = [n for n in nodes if isinstance(n, dict) and n.get(step[1]) == step[2]]
        elif kind == "reftype":
            nxt = [n for n in nodes if reference_type(n) == step[1]]
        elif kind == "index":
            i = int(step[1])
            nxt = nodes[i : i + 1]
        nodes = nxt
        if not nodes:
            return iter(())
    return iter(nodes)


_ABS_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-\.]{1,64})(?:/_history/[^/]+)?$")


def reference_type(node: Any) -> str | None:
    """The resource type a Reference points to (from `type` or the reference string)."""
    if not isinstance(node, dict):
        return None
    ref = node.get("reference")
    if isinstance(ref, str):
        m = _ABS_REF.search(ref)
        if m:
            return m.group(1)
    t = node.get("type")
    return t if isinstance(t, str) else None


def _split_top(expr: str, sep: str) -> list[str]:
    parts, depth, start, i = [], 0, 0, 0
    quote = False
    while i < len(expr):
        c = expr[i]
        if c == "'":
            quote = not quote
        elif not quote and c == "(":
            depth += 1
        elif not quote and c == ")":
            depth -= 1
        elif not quote and depth == 0 and expr.startswith(sep, i):
            parts.append(expr[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts]


_AS_INFIX = re.compile(r"^\((.+) as ([A-Za-z]+)\)(.*)$")
_WHERE_RESOLVE = re.compile(r"^where\(resolve\(\) is ([A-Za-z]+)\)$")
_WHERE_EQ = re.compile(r"^where\(([A-Za-z]+)\s*=\s*'([^']*)'\)$")
_INDEX = re.compile(r"^([A-Za-z]+)\[(\d+)\]$")
_AS_CALL = re.compile(r"^as\(([A-Za-z]+)\)$")


def _tokens(expr: str) -> list[str]:
    m = _AS_INFIX.match(expr)
    if m:  # "(A.b as T).c" -> A.b.as(T).c
        inner, t, rest = m.groups()
        return [*_tokens(inner), f"as({t})", *[x for x in rest.split(".") if x]]
    return _split_top(expr, ".")


def compile_path(expression: str, base: str | None) -> CompiledPath:
    """Compile `expression` evaluated on a resource of type `base` (None: any resource)."""
    special = _SPECIALS.get(expression)
    if special is not None:
        return CompiledPath(expression, (), special)
    plans: list[Plan] = []
    for branch in _split_top(expression, "|"):
        tokens = _tokens(branch)
        root = tokens[0]
        if root[:1].islower() and base is not None:  # a relative path (InsurancePlan 'alias')
            plans.extend(_compile_branch(tokens, base))
            continue
        if base is not None and root not in (base, "Resource", "DomainResource"):
            continue  # a branch for another base type of a shared parameter
        plans.extend(_compile_branch(tokens[1:], base or root))
    if not plans:
        raise Unsupported(f"no branch of {expression!r} applies to {base}")
    return CompiledPath(expression, tuple(plans))


def compile_relative(expression: str, type_name: str, prefix: str) -> CompiledPath:
    """Compile an expression relative to an element (composite search parameter components)."""
    plans: list[Plan] = []
    for branch in _split_top(expression, "|"):
        plans.extend(_walk(_tokens(branch), type_name, prefix, ()))
    return CompiledPath(expression, tuple(plans))


def _compile_branch(tokens: list[str], root_type: str) -> list[Plan]:
    return _walk(tokens, root_type, "", ())


def _walk(tokens: list[str], tname: str, prefix: str, steps: tuple[Step, ...]) -> list[Plan]:
    defs = type_definitions()
    if not tokens:
        return [Plan(steps, tname if not prefix else "BackboneElement")]
    tok, rest = tokens[0], tokens[1:]
    m = _WHERE_RESOLVE.match(tok)
    if m:
        return _walk(rest, tname, prefix, (*steps, ("reftype", m.group(1))))
    m = _WHERE_EQ.match(tok)
    if m:
        return _walk(rest, tname, prefix, (*steps, ("eq", m.group(1), m.group(2))))
    index = None
    m = _INDEX.match(tok)
    if m:
        tok, index = m.group(1), m.group(2)
    if not re.fullmatch(r"[a-z][A-Za-z0-9]*", tok):
        raise Unsupported(f"FHIRPath '{tok}' is outside the compiled subset")
    if tname in PRIMITIVES or tname not in defs:
        raise Unsupported(f"no element '{tok}' in {tname}")
    props = defs[tname].properties.get(prefix, {})
    choices = [(p, el) for p, el in props.items() if el.path.rpartition(".")[2] == tok + "[x]"]
    if tok in props:
        choices = [(tok, props[tok])]
    elif not choices:
        raise Unsupported(f"no element '{tok}' in {tname}{'.' + prefix if prefix else ''}")
    want = None
    if rest and _AS_CALL.match(rest[0]):
        want = _AS_CALL.match(rest[0]).group(1)  # type: ignore[union-attr]
        rest = rest[1:]
    plans: list[Plan] = []
    for prop, el in choices:
        if want is not None and el.type.lower() != want.lower():
            continue
        new_steps: tuple[Step, ...] = (*steps, ("get", prop))
        if index is not None:
            new_steps = (*new_steps, ("index", index))
        if el.path in defs[tname].properties:
            plans += _walk(rest, tname, el.path, new_steps)
        else:
            plans += _walk(rest, el.type, "", new_steps)
    return plans


def _deceased(resource: dict[str, Any]) -> list[tuple[Any, str]]:
    dead = resource.get("deceasedBoolean") is True or "deceasedDateTime" in resource
    return [(dead, "boolean")]


_SPECIALS: dict[str, Callable[[dict[str, Any]], list[tuple[Any, str]]]] = {
    "Patient.deceased.exists() and Patient.deceased != false": _deceased,
}
