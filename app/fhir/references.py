"""References: parsing, and rewriting every reference inside a resource."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.fhir.definitions import resource_types

_RELATIVE = re.compile(
    r"^(?:(?P<base>https?://.+?)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-\.]{1,64})"
    r"(?:/_history/(?P<version>[A-Za-z0-9\-\.]{1,64}))?$"
)
ID = re.compile(r"^[A-Za-z0-9\-\.]{1,64}$")
# A tuple, not `dict | list`: these walks visit every node, and isinstance with a union
# (built anew on each evaluation) costs four times as much.
_CONTAINERS = (dict, list)


@dataclass(frozen=True, slots=True)
class ParsedReference:
    type: str
    id: str
    version: str | None
    base: str | None  # None for a relative reference

    @property
    def local(self) -> bool:
        return self.base is None


def parse_reference(ref: str) -> ParsedReference | None:
    """`Type/id`, `Type/id/_history/v` or an absolute URL ending so; None otherwise."""
    m = _RELATIVE.match(ref)
    if not m or m["type"] not in resource_types():
        return None
    return ParsedReference(m["type"], m["id"], m["version"], m["base"])


def is_conditional(ref: str) -> bool:
    """`Patient?identifier=system|value`: a search that must match exactly one resource."""
    head, sep, _ = ref.partition("?")
    return bool(sep) and head in resource_types()


def rewrite_references(node: Any, fn: Callable[[str], str | None]) -> None:
    """Replace, in place, every `reference` string (and matching narrative links) for which
    `fn` returns a new value. Walks the whole resource, contained resources included."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                new = fn(value)
                if new is not None:
                    node[key] = new
            elif isinstance(value, _CONTAINERS):
                rewrite_references(value, fn)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, _CONTAINERS):
                rewrite_references(item, fn)


def collect_references(node: Any, out: list[str]) -> list[str]:
    """Every `reference` string in a resource (contained resources included)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                out.append(value)
            elif isinstance(value, _CONTAINERS):
                collect_references(value, out)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, _CONTAINERS):
                collect_references(item, out)
    return out
