"""A parser for the FHIRPath subset that Measure criteria use (documented in the README).

Grammar (whitespace-insensitive):

    expr      := and_expr ('or' and_expr)*
    and_expr  := cmp ('and' cmp)*
    cmp       := postfix (OP literal)?                    OP: = != > >= < <=
    postfix   := primary ('.' call)*
    primary   := '%' NAME | '(' expr ')' | path
    call      := exists() | not() | count() | where(expr) | memberOf('url')
               | ofType(Type) | as(Type) | NAME
    literal   := number | number 'unit' | 'string' | @date | %periodStart | %periodEnd
               | (%periodStart | %periodEnd) (+|-) number (years|months|weeks|days)

The parser builds a small tree; `criteria.py` gives it meaning and compiles it to SQL.

The argument of a resource-level `where(...)` or `exists(...)` (after a `%Definition`) may be
any FHIRPath: it is split at its top-level `and`s into conjuncts, each kept with its text
(`Where`), so that a conjunct outside the subset, or one no search parameter covers, can be
run by the FHIRPath fallback (`app/measure/fallback.py`) on the candidates the others leave.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class ParseError(ValueError):
    """A criterion outside the supported subset; the message says where."""


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Path:
    steps: tuple[Any, ...]  # e.g. ("value", "ofType(Quantity)", "value"); ("where", pred)


@dataclass(frozen=True)
class Call:
    target: Any
    name: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class BinOp:
    op: str  # and | or | = | != | > | >= | < | <=
    left: Any
    right: Any


@dataclass(frozen=True)
class Where:
    """A resource-level predicate: its top-level conjuncts, as (text, tree or None when the
    text is FHIRPath outside the subset)."""

    conjuncts: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Literal:
    value: Any
    kind: str  # number | quantity | string | date | period-var
    unit: str | None = None
    offset: tuple[int, str] | None = None  # for period-var: (amount, unit)


_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^'\\]|\\.)*')|(?P<date>@[0-9T:\-\.+Z]+)"
    r"|(?P<op>>=|<=|!=|=|>|<|\(|\)|\.|,|\+|-)|(?P<var>%[A-Za-z][A-Za-z0-9_\-]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<quoted>`[^`]*`)|(?P<other>\S))"
)
_UNITS = {"year": "years", "years": "years", "month": "months", "months": "months",
          "week": "weeks", "weeks": "weeks", "day": "days", "days": "days"}


@dataclass
class _Parser:
    text: str
    tokens: list[tuple[str, str, int]] = field(default_factory=list)
    i: int = 0

    def __post_init__(self) -> None:
        pos = 0
        self.text = text = self.text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ParseError(f"unexpected text at position {pos}: {text[pos:pos + 20]!r}")
            kind = m.lastgroup
            assert kind is not None
            self.tokens.append((kind, m.group(kind), pos))
            pos = m.end()

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        return value is None or self.tokens[self.i][1] == value

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        if self.i >= len(self.tokens):
            raise ParseError(f"unexpected end of expression (expected {value or 'more'})")
        tok = self.tokens[self.i]
        if value is not None and tok[1] != value:
            raise ParseError(f"expected '{value}' at position {tok[2]}, found '{tok[1]}'")
        self.i += 1
        return tok

    def parse(self) -> Any:
        node = self.expr()
        if self.i != len(self.tokens):
            tok = self.tokens[self.i]
            raise ParseError(f"unexpected '{tok[1]}' at position {tok[2]}")
        return node

    def expr(self) -> Any:
        node = self.and_expr()
        while self.peek("or"):
            self.take()
            node = BinOp("or", node, self.and_expr())
        return node

    def and_expr(self) -> Any:
        node = self.cmp()
        while self.peek("and"):
            self.take()
            node = BinOp("and", node, self.cmp())
        return node

    def cmp(self) -> Any:
        node = self.postfix()
        if self.peek() and self.tokens[self.i][1] in ("=", "!=", ">", ">=", "<", "<="):
            op = self.take()[1]
            node = BinOp(op, node, self.literal())
        return node

    def postfix(self) -> Any:
        node = self.primary()
        while self.peek("."):
            self.take(".")
            kind, name, pos = self.take()
            if kind != "name":
                raise ParseError(f"expected a function or element name at position {pos}")
            if self.peek("("):
                self.take("(")
                args: list[Any] = []
                if name in ("ofType", "as"):
                    args.append(self.take()[1])
                elif name in ("where", "exists") and not isinstance(node, Path) \
                        and not self.peek(")"):
                    args.append(self.where_arg())
                elif not self.peek(")"):
                    args.append(self.literal() if name == "memberOf" else self.expr())
                self.take(")")
                if isinstance(node, Path) and name in ("ofType", "as"):
                    node = Path((*node.steps, f"ofType({args[0]})"))
                elif isinstance(node, Path) and name == "where":
                    node = Path((*node.steps, ("where", args[0])))  # a filtered element
                else:
                    node = Call(node, name, tuple(args))
            elif isinstance(node, Path):
                node = Path((*node.steps, name))
            else:
                raise ParseError(f"element '{name}' can only follow a path (position {pos})")
        return node

    def where_arg(self) -> Where:
        """The tokens up to the matching ')', split at top-level `and`s (unless an `or`,
        `xor` or `implies` there binds looser); each conjunct parsed in the subset when it
        can be, else kept as text alone."""
        depth, start, parts, looser = 0, self.i, [], False
        while True:
            if self.i >= len(self.tokens):
                raise ParseError("unexpected end of expression (expected ')')")
            kind, value, _ = self.tokens[self.i]
            if kind == "op" and value == "(":
                depth += 1
            elif kind == "op" and value == ")":
                if depth == 0:
                    break
                depth -= 1
            elif kind == "name" and value == "and" and depth == 0:
                parts.append((start, self.i))
                start = self.i + 1
            elif kind == "name" and value in ("or", "xor", "implies") and depth == 0:
                looser = True
            self.i += 1
        parts.append((start, self.i))
        if looser:
            parts = [(parts[0][0], self.i)]
        conjuncts = []
        for a, b in parts:
            if a == b:
                raise ParseError(f"an empty operand of 'and' at position {self.tokens[b][2]}")
            text = self.text[self.tokens[a][2]:self.tokens[b][2]].strip()
            try:
                tree = _Parser(text).parse()
            except ParseError:
                tree = None
            conjuncts.append((text, tree))
        return Where(tuple(conjuncts))

    def primary(self) -> Any:
        kind, value, pos = self.take()
        if kind == "var":
            return Var(value[1:])
        if value == "(":
            node = self.expr()
            self.take(")")
            return node
        if kind == "name":
            return Path((value,))
        raise ParseError(f"unexpected '{value}' at position {pos}")

    def literal(self) -> Literal:
        kind, value, pos = self.take()
        if kind == "num":
            number = float(value) if "." in value else int(value)
            if self.peek() and self.tokens[self.i][0] == "str":
                unit = self.take()[1][1:-1]
                return Literal(number, "quantity", unit)
            return Literal(number, "number")
        if kind == "str":
            return Literal(value[1:-1].replace("\\'", "'"), "string")
        if kind == "date":
            return Literal(value[1:], "date")
        if kind == "var" and value in ("%periodStart", "%periodEnd"):
            if self.peek("+") or self.peek("-"):
                sign = 1 if self.take()[1] == "+" else -1
                amount = self.take()
                unit = self.take()
                if amount[0] != "num" or unit[1] not in _UNITS:
                    raise ParseError(f"expected 'N years|months|weeks|days' at {amount[2]}")
                return Literal(value[1:], "period-var",
                               offset=(sign * int(amount[1]), _UNITS[unit[1]]))
            return Literal(value[1:], "period-var")
        raise ParseError(f"expected a literal at position {pos}, found '{value}'")


def parse(text: str) -> Any:
    return _Parser(text).parse()
