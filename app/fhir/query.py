"""Parsing FHIR search query strings into clauses (R4 3.1.1): pure, no database.

`name[:modifier]=v1,v2` is one clause whose values are ORed; repeating a name ANDs clauses.
Chains (`subject:Patient.name=x`) and reverse chains (`_has:Observation:patient:code=x`) keep
their structure here; the store compiles them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from app.fhir.errors import FhirError
from app.fhir.validation import CONTROL_CHARS

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
RESULT_PARAMS = frozenset({
    "_count", "_sort", "_include", "_revinclude", "_summary", "_elements", "_total",
    "_contained", "_containedType", "_format", "_pretty", "_cursor", "_dir",
})


@dataclass(slots=True)
class Clause:
    name: str  # the parameter code, e.g. "code" or "_id"
    modifier: str | None  # "exact", "not", "Patient" (reference type), ...
    values: list[str]
    chain: str | None = None  # the rest after the first '.', e.g. "name" or "organization.name"
    has: tuple[str, str, str] | None = None  # _has:Type:param:rest -> (Type, param, rest)
    raw: str = ""


@dataclass(slots=True)
class SortKey:
    name: str
    descending: bool


@dataclass(slots=True)
class Include:
    source_type: str
    param: str  # "*" for all reference parameters
    target_type: str | None
    iterate: bool
    reverse: bool


@dataclass
class ParsedQuery:
    clauses: list[Clause] = field(default_factory=list)
    count: int | None = None
    sort: list[SortKey] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    summary: str | None = None
    elements: list[str] | None = None
    total: str | None = None
    cursor: str | None = None
    direction: str = "next"


def split_values(raw: str) -> list[str]:
    """Split on unescaped commas; unescape `\\,`, `\\$`, `\\|` and `\\\\` (R4 3.1.1.4.1)."""
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\" and i + 1 < len(raw):
            cur.append("\\" + raw[i + 1])
            i += 2
            continue
        if c == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur))
    return parts


def split_escaped(value: str, sep: str) -> list[str]:
    """Split a single value on an unescaped separator (`|` or `$`), then unescape."""
    out, cur, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            cur.append(value[i + 1])
            i += 2
            continue
        if c == sep:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def split_prefix(value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2].isalpha():
        return value[:2], value[2:]
    return "eq", value


def _int(name: str, value: str, minimum: int = 0) -> int:
    try:
        n = int(value)
    except ValueError:
        raise FhirError.of(400, "invalid", f"{name} must be an integer, got '{value}'") from None
    if n < minimum:
        raise FhirError.of(400, "invalid", f"{name} must be at least {minimum}")
    return n


def parse_include(value: str, reverse: bool, iterate: bool) -> Include:
    parts = value.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0] or not parts[1]:
        name = "_revinclude" if reverse else "_include"
        raise FhirError.of(400, "invalid",
                           f"{name} must be 'SourceType:param[:TargetType]', got '{value}'")
    return Include(parts[0], parts[1], parts[2] if len(parts) == 3 else None, iterate, reverse)


def parse_query(pairs: list[tuple[str, str]]) -> ParsedQuery:
    q = ParsedQuery()
    for key, raw in pairs:
        if CONTROL_CHARS.search(key) or CONTROL_CHARS.search(raw):
            raise FhirError.of(400, "invalid", f"search parameter {key!r} contains control "
                               "characters, which no FHIR string holds")
        base, _, modifier = key.partition(":")
        if key == "_count":
            q.count = _int("_count", raw)
        elif key == "_sort":
            for item in raw.split(","):
                if item:
                    q.sort.append(SortKey(item.lstrip("-"), item.startswith("-")))
        elif base in ("_include", "_revinclude"):
            if modifier not in ("", "iterate", "recurse"):
                raise FhirError.of(400, "invalid", f"unknown modifier on {key}")
            for v in raw.split(","):
                q.includes.append(parse_include(v, base == "_revinclude", modifier != ""))
        elif key == "_summary":
            if raw not in ("true", "false", "text", "data", "count"):
                raise FhirError.of(400, "invalid",
                                   "_summary must be one of true, false, text, data, count")
            q.summary = raw
        elif key == "_elements":
            q.elements = [e.strip() for e in raw.split(",") if e.strip()]
        elif key == "_total":
            if raw not in ("none", "estimate", "accurate"):
                raise FhirError.of(400, "invalid", "_total must be none, estimate or accurate")
            q.total = raw
        elif key == "_cursor":
            q.cursor = raw
        elif key == "_dir":
            q.direction = "prev" if raw == "prev" else "next"
        elif key in RESULT_PARAMS:
            continue
        elif base == "_has":
            parts = key.split(":", 3)
            if len(parts) != 4 or not all(parts[1:]):
                raise FhirError.of(400, "invalid",
                                   f"_has must be '_has:Type:reference:param', got '{key}'")
            q.clauses.append(Clause("_has", None, split_values(raw),
                                    has=(parts[1], parts[2], parts[3]), raw=key))
        else:
            name, dot, chain = key.partition(".")
            pname, _, mod = name.partition(":")
            q.clauses.append(Clause(pname, mod or None, split_values(raw),
                                    chain=chain if dot else None, raw=key))
    return q
