"""Compile Measure criteria into plans the evaluator runs as SQL over the index tables.

Two languages, chosen by `Expression.language` (CQL/ELM can be added beside them):

- `application/x-fhir-query`: a retrieve, `Observation?code:in=<ValueSet>&date=ge{{%periodStart}}`,
  compiled by the search compiler. `_sort=-date&_count=1` keeps each patient's latest match.
- `text/fhirpath`: logic over named definitions (`%Name`): `and`, `or`, `.not()`, `.exists()`,
  `.count() >= n`, and `.where(<predicate>)` whose predicates (`value.ofType(Quantity).value >
  8 '%'`, `code.memberOf('<ValueSet>')`, `status = 'active'`, `effective.ofType(dateTime) >=
  %periodEnd - 12 months`) are mapped onto the resource type's search parameters, so they too
  run in SQL.

A conjunct of a `.where()` that no search parameter covers (or that is FHIRPath outside the
subset) is kept as text and run by the FHIRPath fallback (`fallback.py`) on the resources the
other clauses leave, of the candidate patients only.

Everything is checked when the Measure is compiled, so a criterion that cannot run is rejected
when the Measure is stored, not when it is evaluated.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from app.fhir.errors import FhirError, Issue
from app.fhir.paths import Unsupported, compile_path
from app.fhir.query import Clause, SortKey, parse_query
from app.fhir.search_params import registry
from app.measure import fallback
from app.measure.fhirpath import BinOp, Call, Literal, ParseError, Path, Var, Where, parse
from app.store.search import CompileContext, Compiler

DEFINITION_URL = "https://phm-fhir.be/fhir/StructureDefinition/measure-definition"
FHIR_QUERY = "application/x-fhir-query"
FHIRPATH = "text/fhirpath"
CONTEXT_VARIABLES = frozenset({"ageBand", "sex", "neighbourhoodTeam", "stratum",
                               "diabetesSubstratum", "cardiovascularSubstratum"})
POPULATIONS = ("initial-population", "denominator", "denominator-exclusion",
               "denominator-exception", "numerator", "numerator-exclusion",
               "measure-population", "measure-population-exclusion", "measure-observation")

_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")


# -- plans ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retrieve:
    """Resources of one type matching search clauses; `latest` keeps one per patient;
    `then` filters the kept ones further (a `.where` after a latest-per-patient retrieve);
    `fhirpath` last, per resource (the fallback)."""

    res_type: str
    clauses: tuple[tuple[str, str], ...]  # raw (key, value) pairs, templates unresolved
    latest: SortKey | None = None
    then: tuple[tuple[str, str], ...] = ()
    fhirpath: tuple[str, ...] = ()  # FHIRPath conjuncts, each `true` for a kept resource


@dataclass(frozen=True)
class Has:  # patients with at least one resource of the retrieve
    source: Retrieve


@dataclass(frozen=True)
class Count:  # patients whose number of resources compares to n
    source: Retrieve
    op: str
    n: int


@dataclass(frozen=True)
class And:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    part: Any


@dataclass
class Population:
    code: str
    plan: Any  # patient plan (Has, Count, And, Or, Not)
    description: str = ""
    observation: Retrieve | None = None  # measure-observation: resources counted per patient


@dataclass
class Stratifier:
    code: str
    components: list[tuple[str, str]]  # (component code, context variable or Patient path)


@dataclass
class CompiledGroup:
    code: str | None
    populations: dict[str, Population] = field(default_factory=dict)
    stratifiers: list[Stratifier] = field(default_factory=list)


@dataclass
class CompiledMeasure:
    url: str
    id: str | None
    scoring: str
    improvement: str  # increase | decrease
    groups: list[CompiledGroup]
    supplemental: list[tuple[str, str]]
    retrieves: list[Retrieve]


# -- compiling --------------------------------------------------------------------------------


class _Compiler:
    def __init__(self, measure: dict[str, Any]) -> None:
        self.measure = measure
        self.raw: dict[str, tuple[str, str, str]] = {}  # name -> (language, text, where)
        self.done: dict[str, Any] = {}
        self.active: list[str] = []
        self.retrieves: list[Retrieve] = []

    def definitions(self) -> None:
        for i, ext in enumerate(self.measure.get("extension", [])):
            if ext.get("url") != DEFINITION_URL:
                continue
            where = f"Measure.extension[{i}].valueExpression"
            expr = ext.get("valueExpression") or {}
            name = expr.get("name")
            if not name or not expr.get("expression"):
                raise _error(where, "a named definition needs `name` and `expression`")
            self.raw[name] = (expr.get("language", ""), expr["expression"], where)

    def named(self, name: str, where: str) -> Any:
        if name in self.done:
            return self.done[name]
        if name in CONTEXT_VARIABLES or name in ("periodStart", "periodEnd"):
            raise _error(where, f"%{name} is a value, not a set of resources or patients")
        if name not in self.raw:
            raise _error(where, f"%{name} is not defined (add a measure-definition extension)")
        if name in self.active:
            raise _error(where, f"%{name} refers to itself")
        self.active.append(name)
        language, text, at = self.raw[name]
        node = self.expression(language, text, at)
        self.active.pop()
        self.done[name] = node
        return node

    def expression(self, language: str, text: str, where: str) -> Any:
        if language == FHIR_QUERY:
            return self.retrieve(text, where)
        if language == FHIRPATH:
            try:
                tree = parse(text)
            except ParseError as exc:
                raise _error(where, f"{exc} in '{text}'") from None
            return self.node(tree, where)
        raise _error(where, f"unsupported criteria language '{language}' (use {FHIR_QUERY} or "
                     f"{FHIRPATH})")

    def retrieve(self, text: str, where: str) -> Retrieve:
        res_type, _, query = text.partition("?")
        if res_type not in registry().by_type:
            raise _error(where, f"'{res_type}' is not a resource type")
        pairs = parse_qsl(query, keep_blank_values=True)
        sort = [v for k, v in pairs if k == "_sort"]
        count = [v for k, v in pairs if k == "_count"]
        clauses = tuple((k, v) for k, v in pairs if k not in ("_sort", "_count"))
        latest = None
        if sort or count:
            if count != ["1"] or len(sort) != 1 or "," in sort[0]:
                raise _error(where, "a retrieve may only use '_sort=<key>&_count=1' (the "
                             "latest match per patient)")
            latest = SortKey(sort[0].lstrip("-"), sort[0].startswith("-"))
        r = Retrieve(res_type, clauses, latest)
        check_retrieve(r, where)
        self.retrieves.append(r)
        return r

    def node(self, n: Any, where: str) -> Any:
        if isinstance(n, Var):
            return self.named(n.name, where)
        if isinstance(n, BinOp) and n.op in ("and", "or"):
            left, right = self.patients(n.left, where), self.patients(n.right, where)
            return And((left, right)) if n.op == "and" else Or((left, right))
        if isinstance(n, BinOp) and isinstance(n.left, Call) and n.left.name == "count":
            source = self.resources(n.left.target, where)
            if n.right.kind != "number" or not isinstance(n.right.value, int):
                raise _error(where, "count() compares with a whole number")
            return Count(source, n.op, n.right.value)
        if isinstance(n, Call):
            if n.name == "exists":
                return Has(self.resources(n.target, where)) if not n.args else \
                    Has(self.where(self.resources(n.target, where), n.args[0], where))
            if n.name == "not":
                return Not(self.patients(n.target, where))
            if n.name == "where":
                return self.where(self.resources(n.target, where), n.args[0], where)
            raise _error(where, f"function {n.name}() is not supported here")
        raise _error(where, "expected %Definition, and/or, .exists(), .not(), .where(), "
                     ".count()")

    def resources(self, n: Any, where: str) -> Retrieve:
        node = self.node(n, where)
        if not isinstance(node, Retrieve):
            raise _error(where, "this needs a set of resources (a retrieve), not of patients")
        return node

    def patients(self, n: Any, where: str) -> Any:
        node = self.node(n, where)
        return Has(node) if isinstance(node, Retrieve) else node

    def where(self, source: Retrieve, pred: Any, where: str) -> Retrieve:
        """Each conjunct onto search parameters where one covers it, else into the fallback
        (`pred` is a `Where`; a bare tree when built by other code)."""
        conjuncts = pred.conjuncts if isinstance(pred, Where) else ((None, pred),)
        extra: list[tuple[str, str]] = []
        texts: list[str] = []
        for text, tree in conjuncts:
            try:
                if tree is None:
                    raise _error(where, "outside the SQL subset")
                extra += predicate_clauses(source.res_type, tree, where)
            except FhirError as exc:
                if text is None:
                    raise
                try:
                    fallback.check(text)
                except ParseError as bad:
                    detail = "; ".join(i.diagnostics for i in exc.issues)
                    raise _error(where, f"'{text}': {bad} (and no search parameter covers it: "
                                 f"{detail})") from None
                texts.append(text)
        ex, fp = tuple(extra), source.fhirpath + tuple(texts)
        if source.latest is not None:  # filter what the latest per patient kept
            r = Retrieve(source.res_type, source.clauses, source.latest, source.then + ex, fp)
        else:
            r = Retrieve(source.res_type, source.clauses + ex, None, (), fp)  # FHIRPath last
        check_retrieve(r, where)
        self.retrieves.append(r)
        return r


def _error(where: str, msg: str) -> FhirError:
    return FhirError(422, [Issue("invalid", f"{where}: {msg}", expression=[where])])


# -- predicates onto search parameters ---------------------------------------------------------


@functools.cache
def _param_index(res_type: str) -> dict[frozenset[Any], str]:
    out: dict[frozenset[Any], str] = {}
    for code, sp in sorted(registry().params(res_type).items()):
        if sp.path is None or sp.type == "composite" or sp.path.special is not None:
            continue
        sig = frozenset((p.steps, p.type) for p in sp.path.plans)
        out.setdefault(sig, code)
    return out


def _composite_for(res_type: str, path: Path, where: str) -> tuple[str, str]:
    """`component.where(code.coding.code = '8480-6').value.ofType(Quantity).value` -> the
    composite parameter over (component code, component value) and its first value."""
    i = next(i for i, s in enumerate(path.steps) if isinstance(s, tuple))
    head, pred, tail = path.steps[:i], path.steps[i][1], path.steps[i + 1:]
    if not (isinstance(pred, BinOp) and pred.op == "=" and isinstance(pred.left, Path)
            and isinstance(pred.right, Literal) and pred.left.steps[0] == "code"):
        raise _error(where, "a filtered element must be `X.where(code.coding.code = 'c')`")
    head_text = ".".join(str(s) for s in head if s != res_type)
    tail_text = ".".join(str(s).replace("ofType(", "as(") for s in tail)
    tail_text = tail_text[:-len(".value")] if tail_text.endswith(").value") else tail_text
    try:
        base = compile_path(f"{res_type}.{head_text}", res_type)
    except Unsupported as exc:
        raise _error(where, str(exc)) from None
    for code, sp in sorted(registry().params(res_type).items()):
        if sp.type != "composite" or sp.union_of or sp.path is None:
            continue
        if sp.path.plans != base.plans or len(sp.components) != 2:
            continue
        first, second = sp.components
        if first.path.expression == "code" and second.path.expression == tail_text:
            return code, str(pred.right.value)
    raise _error(where, f"no composite search parameter of {res_type} covers "
                 f"'{head_text}.where(...).{tail_text}'")


def _param_for(res_type: str, path: Path, where: str) -> tuple[str, str]:
    steps = list(path.steps)
    if steps and steps[0] == res_type:
        steps = steps[1:]
    trailing = ""
    if len(steps) > 1 and steps[-1] in ("value", "code") and "ofType" not in steps[-1]:
        trailing = steps.pop()  # Quantity.value, Coding.code: the parameter sits one up
    if steps and steps[-1] == "coding":
        steps.pop()
    text = ".".join(s.replace("ofType(", "as(") for s in steps)
    try:
        cp = compile_path(f"{res_type}.{text}", res_type)
    except Unsupported as exc:
        raise _error(where, f"'{'.'.join(path.steps)}': {exc}") from None
    sig = frozenset((p.steps, p.type) for p in cp.plans)
    code = _param_index(res_type).get(sig)
    if code is None:  # the tightest parameter covering the path (value-quantity also covers
        # SampledData; combo-value-quantity would add the components)
        covering = sorted((len(other), c) for other, c in _param_index(res_type).items()
                          if sig <= other)
        code = covering[0][1] if covering else None
    if code is None:
        raise _error(where, f"'{'.'.join(path.steps)}' of {res_type} has no search parameter "
                     "to compile it to")
    return code, trailing


_PREFIX = {"=": "eq", "!=": "ne", ">": "gt", ">=": "ge", "<": "lt", "<=": "le"}


def _literal(lit: Literal) -> str:
    if lit.kind == "period-var":
        if lit.offset:
            amount, unit = lit.offset
            sign = "+" if amount >= 0 else "-"
            return f"{{{{%{lit.value} {sign} {abs(amount)} {unit}}}}}"
        return f"{{{{%{lit.value}}}}}"
    return str(lit.value)


def predicate_clauses(res_type: str, pred: Any, where: str) -> list[tuple[str, str]]:
    if isinstance(pred, BinOp) and pred.op == "and":
        return (predicate_clauses(res_type, pred.left, where)
                + predicate_clauses(res_type, pred.right, where))
    if isinstance(pred, Call) and pred.name == "memberOf" and isinstance(pred.target, Path):
        code, _ = _param_for(res_type, pred.target, where)
        return [(f"{code}:in", str(pred.args[0].value))]
    if isinstance(pred, BinOp) and isinstance(pred.left, Path) and any(
            isinstance(s, tuple) for s in pred.left.steps) and isinstance(pred.right, Literal):
        code, first = _composite_for(res_type, pred.left, where)
        lit = pred.right
        if pred.op not in _PREFIX or lit.kind not in ("number", "quantity"):
            raise _error(where, "a filtered element compares with a number or quantity")
        value = f"{first}${_PREFIX[pred.op]}{_literal(lit)}"
        return [(code, value + (f"||{lit.unit}" if lit.unit else ""))]
    if isinstance(pred, BinOp) and isinstance(pred.left, Path) and isinstance(pred.right,
                                                                            Literal):
        code, _ = _param_for(res_type, pred.left, where)
        sp = registry().get(res_type, code)
        assert sp is not None
        lit = pred.right
        if sp.type in ("quantity", "number", "date"):
            value = _PREFIX[pred.op] + _literal(lit)
            if sp.type == "quantity" and lit.unit:
                value += f"||{lit.unit}"
            return [(code, value)]
        if sp.type in ("token", "string", "uri", "reference") and pred.op in ("=", "!="):
            if pred.op == "!=":
                return [(f"{code}:not" if sp.type == "token" else code, _literal(lit))]
            return [(f"{code}:exact" if sp.type == "string" else code, _literal(lit))]
        raise _error(where, f"'{pred.op}' is not supported on {sp.type} '{code}'")
    raise _error(where, "a where() predicate must be `path OP literal`, `path.memberOf('url')`"
                 " or their `and`")


# -- templates and checks ----------------------------------------------------------------------


def resolve_templates(value: str, period: tuple[str, str]) -> str:
    """Replace `{{%periodStart}}`, `{{%periodEnd - 12 months}}` with dates."""
    from app.measure.period import shift

    def sub(m: re.Match[str]) -> str:
        expr = m.group(1).lstrip("%").split()
        base = {"periodStart": period[0], "periodEnd": period[1]}.get(expr[0])
        if base is None:
            raise FhirError.of(400, "invalid", f"unknown variable in '{m.group(0)}'")
        if len(expr) == 1:
            return base
        if len(expr) != 4 or expr[1] not in "+-":
            raise FhirError.of(400, "invalid", f"cannot read '{m.group(0)}'")
        amount = int(expr[2]) * (1 if expr[1] == "+" else -1)
        return shift(base, amount, expr[3])

    return _TEMPLATE.sub(sub, value)


def clauses_for(pairs: tuple[tuple[str, str], ...], period: tuple[str, str]) -> list[Clause]:
    resolved = [(k, resolve_templates(v, period)) for k, v in pairs]
    return parse_query(resolved).clauses


def check_retrieve(r: Retrieve, where: str) -> None:
    """Compile the retrieve once with a sample period, so errors surface at creation."""
    period = ("2024-01-01", "2024-12-31")
    ctx = CompileContext(strict=True)
    try:
        clauses = clauses_for(r.clauses + r.then, period)
        for c in clauses:
            if c.modifier in ("in", "not-in"):
                for url in c.values:
                    ctx.valuesets[url] = []
        Compiler(ctx).clauses(r.res_type, clauses)
        if r.latest is not None:
            from app.store.search import sort_expression

            sort_expression(r.res_type, r.latest.name, r.latest.descending)
    except FhirError as exc:
        raise _error(where, "; ".join(i.diagnostics for i in exc.issues)) from None


# -- the Measure --------------------------------------------------------------------------------


def compile_measure(measure: dict[str, Any]) -> CompiledMeasure:
    c = _Compiler(measure)
    c.definitions()
    scoring = _coding_code(measure.get("scoring")) or "proportion"
    improvement = _coding_code(measure.get("improvementNotation")) or "increase"
    groups = []
    for gi, g in enumerate(measure.get("group", [])):
        group = CompiledGroup(g.get("id") or _text_code(g.get("code")))
        for pi, p in enumerate(g.get("population", [])):
            where = f"Measure.group[{gi}].population[{pi}].criteria"
            code = _coding_code(p.get("code"))
            if code not in POPULATIONS:
                raise _error(f"Measure.group[{gi}].population[{pi}].code",
                             f"unknown population code '{code}'")
            crit = p.get("criteria") or {}
            if code == "measure-observation":
                node = c.node(Var(crit.get("expression", "").lstrip("%")), where) \
                    if crit.get("language") == FHIRPATH and crit.get("expression", "").startswith(
                        "%") else c.expression(crit.get("language", ""),
                                               crit.get("expression", ""), where)
                if not isinstance(node, Retrieve):
                    raise _error(where, "measure-observation counts the resources of a retrieve")
                group.populations[code] = Population(code, None, p.get("description", ""),
                                                     node)
                continue
            node = c.expression(crit.get("language", ""), crit.get("expression", ""), where)
            plan = Has(node) if isinstance(node, Retrieve) else node
            group.populations[code] = Population(code, plan, p.get("description", ""))
        required = {"proportion": ("initial-population", "denominator", "numerator"),
                    "ratio": ("initial-population", "denominator", "numerator"),
                    "cohort": ("initial-population",),
                    "continuous-variable": ("initial-population", "measure-population")}.get(
            scoring, ("initial-population",))
        missing = [x for x in required if x not in group.populations]
        if missing:
            raise _error(f"Measure.group[{gi}]", f"a {scoring} measure needs the populations "
                         f"{', '.join(missing)}")
        for si, s in enumerate(g.get("stratifier", [])):
            code = _text_code(s.get("code")) or f"stratifier-{si}"
            comps = []
            if s.get("criteria"):
                comps.append((code, _context_expr(s["criteria"],
                                                  f"Measure.group[{gi}].stratifier[{si}]")))
            for ci, comp in enumerate(s.get("component", [])):
                comps.append((_text_code(comp.get("code")) or f"component-{ci}", _context_expr(
                    comp.get("criteria", {}),
                    f"Measure.group[{gi}].stratifier[{si}].component[{ci}]")))
            if not comps:
                raise _error(f"Measure.group[{gi}].stratifier[{si}]", "a stratifier needs "
                             "criteria or components")
            group.stratifiers.append(Stratifier(code, comps))
        groups.append(group)
    if not groups:
        raise _error("Measure.group", "a Measure needs at least one group")
    supplemental = [(_text_code(sd.get("code")) or f"sde-{i}",
                     _context_expr(sd.get("criteria", {}), f"Measure.supplementalData[{i}]"))
                    for i, sd in enumerate(measure.get("supplementalData", []))]
    used = list(c.retrieves)  # evaluatedResource lists the resources of these only
    for name, (_, _, where) in c.raw.items():
        c.named(name, where)  # a definition no population uses yet must still run
    return CompiledMeasure(measure.get("url", ""), measure.get("id"), scoring, improvement,
                           groups, supplemental, used)


def _context_expr(crit: dict[str, Any], where: str) -> str:
    """Stratifier and supplemental-data criteria: a context variable or a Patient path."""
    text = (crit.get("expression") or "").strip()
    if crit.get("language") != FHIRPATH:
        raise _error(where, f"stratifier criteria use {FHIRPATH}")
    if text == "%sex":  # the same values as Patient.gender: one column when both are used
        return "Patient.gender"
    if text.startswith("%") and text[1:] in CONTEXT_VARIABLES:
        return text[1:]
    if text.startswith("Patient."):
        try:
            code, _ = _param_for("Patient", Path(tuple(text.split("."))), where)
        except FhirError:
            raise _error(where, f"'{text}' maps to no Patient search parameter") from None
        return f"Patient.{code}"
    raise _error(where, f"'{text}': use %ageBand, %sex, %neighbourhoodTeam, %stratum or a "
                 "Patient element such as Patient.gender")


def _coding_code(cc: Any) -> str | None:
    if isinstance(cc, dict):
        for coding in cc.get("coding", []):
            if coding.get("code"):
                return str(coding["code"])
    return None


def _text_code(cc: Any) -> str | None:
    if isinstance(cc, dict):
        return _coding_code(cc) or cc.get("text")
    return None


def measure_issues(measure: dict[str, Any]) -> list[Issue]:
    """Validation hook for stored Measures: the criteria must compile."""
    try:
        compile_measure(measure)
    except FhirError as exc:
        return exc.issues
    return []
