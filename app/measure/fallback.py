"""The FHIRPath fallback: predicates no search parameter covers, run per candidate resource.

`%HbA1c.where(interpretation.coding.code = 'H')` has no SQL form (Observation has no
interpretation search parameter). Such a conjunct of a `where()` is kept as FHIRPath text,
checked strictly when the Measure is stored (the full FHIRPath grammar, known functions and
variables), compiled once per evaluation period by fhirpathpy, and run on the resources that
the retrieve's other clauses leave, of the patients whose populations need it (the initial
population's, or the preceding conjuncts' within `A and B`), never the whole region's.

The evaluation context of each run: the resource as `%resource`/`%context`, `%periodStart` and
`%periodEnd` as date literals, and `memberOf('<ValueSet url>')` over the server's expansions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from typing import Any

from antlr4 import CommonTokenStream, InputStream  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from fhirpathpy import compile as fp_compile
from fhirpathpy.engine.invocations import invocation_registry
from fhirpathpy.models import models
from fhirpathpy.parser.ASTPathListener import ASTPathListener
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from app.measure.fhirpath import ParseError

VARIABLES = frozenset({"periodStart", "periodEnd", "resource", "context", "rootResource",
                       "ucum", "sct", "loinc"})
FUNCTIONS = frozenset(invocation_registry) | {"memberOf"}
_STRINGS_OR_PERIOD = re.compile(r"'(?:[^'\\]|\\.)*'|`[^`]*`|%(periodStart|periodEnd)\b")
_MEMBER_OF = re.compile(r"memberOf\(\s*'([^']*)'\s*\)")


class _Raise(ErrorListener):  # type: ignore[misc]
    def syntaxError(self, recognizer: Any, offending: Any, line: int, column: int, msg: str,
                    e: Any) -> None:
        raise ParseError(f"FHIRPath syntax error at position {column}: {msg}")


@functools.lru_cache(maxsize=512)
def _tree(text: str) -> dict[str, Any]:
    """The fhirpathpy syntax tree of `text`, or ParseError (fhirpathpy's own parser recovers
    from errors silently: `status = ` would compile)."""
    lexer = FHIRPathLexer(InputStream(text))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Raise())
    parser = FHIRPathParser(CommonTokenStream(lexer))
    parser.removeErrorListeners()
    parser.addErrorListener(_Raise())
    from antlr4.tree.Tree import ParseTreeWalker  # type: ignore[import-untyped]

    listener = ASTPathListener()  # type: ignore[no-untyped-call]
    ParseTreeWalker().walk(listener, parser.entireExpression())  # type: ignore[no-untyped-call]
    tree: dict[str, Any] = listener.parentStack[0]
    return tree


def _walk(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    yield node
    for child in node.get("children") or ():
        yield from _walk(child)


def _identifier(node: dict[str, Any]) -> str:
    ident: dict[str, Any] = next(
        (c for c in node.get("children") or () if c.get("type") == "Identifier"), {})
    return str(ident.get("text", "")).strip("`")


def check(text: str) -> None:
    """Raise ParseError unless `text` is FHIRPath the fallback can run."""
    for node in _walk(_tree(text)):
        if node.get("type") == "Functn":
            name = _identifier(node)
            if name not in FUNCTIONS:
                raise ParseError(f"unknown FHIRPath function {name}()")
        elif node.get("type") == "ExternalConstant":
            name = _identifier(node) or str(node.get("text", "")).lstrip("%").strip("'`")
            if name not in VARIABLES:
                raise ParseError(f"%{name} is not available inside where() (use "
                                 "%periodStart, %periodEnd or %resource)")


def valuesets(texts: Iterable[str]) -> set[str]:
    """The ValueSet urls the texts test with memberOf()."""
    return {url for text in texts for url in _MEMBER_OF.findall(text)}


def with_period(text: str, period: tuple[str, str]) -> str:
    """`%periodStart`/`%periodEnd` as date literals (FHIRPath dates, so that `- 12 months`
    is date arithmetic); string literals left as they are."""
    dates = {"periodStart": period[0], "periodEnd": period[1]}

    def sub(m: re.Match[str]) -> str:
        return f"@{dates[m.group(1)]}" if m.group(1) else m.group(0)

    return _STRINGS_OR_PERIOD.sub(sub, text)


def _member_of(codes: dict[str, frozenset[tuple[str | None, str | None]]]
               ) -> Callable[..., list[bool]]:
    def member_of(inputs: list[Any], url: Any) -> list[bool]:
        if isinstance(url, list):
            url = url[0] if url else None
        expansion = codes.get(str(url), frozenset())
        found: list[bool] = []
        for item in inputs:
            if isinstance(item, dict) and "coding" in item:
                codings = item.get("coding") or []
            elif isinstance(item, dict):
                codings = [item]
            else:  # a bare code
                codings = [{"code": item}]
            hit = any((c.get("system"), c.get("code")) in expansion
                      or (None, c.get("code")) in expansion
                      or (c.get("system") is None and any(code == c.get("code")
                                                          for _, code in expansion))
                      for c in codings if isinstance(c, dict))
            found.append(hit)
        return [any(found)] if found else []

    return member_of


class Predicates:
    """The fallback conjuncts of one retrieve, compiled for one period."""

    def __init__(self, texts: tuple[str, ...], period: tuple[str, str],
                 expansions: dict[str, list[tuple[str | None, str | None]]]) -> None:
        self.texts = texts
        codes = {url: frozenset(rows) for url, rows in expansions.items()}
        options = {"userInvocationTable": {
            "memberOf": {"fn": _member_of(codes), "arity": {1: ["String"]}}}}
        self.compiled = [fp_compile(with_period(t, period), models["r4"], options)
                         for t in texts]

    def holds(self, resource: dict[str, Any]) -> bool:
        """True when every conjunct is `true` for the resource (FHIRPath: a single true)."""
        for text, fn in zip(self.texts, self.compiled, strict=True):
            try:
                result = fn(resource, {"resource": resource})
            except Exception as exc:  # fhirpathpy raises bare Exceptions on type errors
                raise ValueError(f"'{text}': {exc}") from None
            if result != [True]:
                return False
        return True
