"""Malformed FHIR JSON: valid resources with elements replaced, removed or added, random
JSON, huge numbers, odd unicode, nesting beyond every parser's limit, and byte-level damage."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(
        [
            10**40,
            -(10**400),
            1e308,
            2**63,
            -(2**63) - 1,
            "",
            "\x00",
            "\ud800",
            "😀" * 20,
            "2024-02-30",
            "1e999",
        ]
    )
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=10)
            | st.sampled_from(
                ["resourceType", "id", "meta", "extension", "reference", "value", "coding"]
            ),
            inner,
            max_size=4,
        )
    ),
    max_leaves=15,
)


def dumps(value: Any) -> bytes:
    """JSON as Python writes it: big integers as they are, NaN/Infinity (not JSON), lone
    surrogates escaped."""
    return json.dumps(value).encode()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    if not path:
        return root
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return root


@st.composite
def broken(draw: st.DrawFn, template: Any) -> Any:
    """`template` with one to three elements replaced, removed or added."""
    doc = copy.deepcopy(template)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap"]))
        if action == "replace":
            doc = _set(doc, path, draw(json_values))
        elif action == "delete":
            doc = _delete(doc, path)
        elif action == "add":
            node = doc
            for key in path:
                node = node[key]
            if isinstance(node, dict):
                node[draw(st.text(max_size=12))] = draw(json_values)
            elif isinstance(node, list):
                node.append(draw(json_values))
        else:
            node = doc
            for key in path:
                node = node[key]
            doc = _set(doc, path, [node])
    return doc


@st.composite
def deep_resource(draw: st.DrawFn) -> bytes:
    """Nesting around the limits of the JSON parser, the serialiser and the validators (built
    as text: Python's own encoder would overflow first)."""
    depth = draw(st.sampled_from([40, 49, 50, 51, 120, 200, 500, 1020, 1100, 5000]))
    if draw(st.booleans()):
        return b"[" * depth + b"]" * depth
    head = b'{"url": "http://x", "extension": ['
    leaf = b'{"url": "http://y", "valueString": "x"}'
    return (
        b'{"resourceType": "Patient", "extension": [' + head * depth + leaf + b"]}" * depth + b"]}"
    )


@st.composite
def mangled_text(draw: st.DrawFn, template: Any) -> bytes:
    """Valid JSON made invalid at the byte level."""
    raw = dumps(template)
    kind = draw(st.sampled_from(["truncate", "bom", "bytes", "dup", "nan", "comma"]))
    if kind == "truncate":
        return raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    if kind == "bom":
        return b"\xef\xbb\xbf" + raw
    if kind == "bytes":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if kind == "dup":
        return raw[:-1] + b', "resourceType": "Observation"}'
    if kind == "nan":
        return raw[:-1] + b', "valueDecimal": NaN, "x": 1e99999}'
    return raw[:-1] + b",}"


def bodies(template_list: list[Any]) -> st.SearchStrategy[bytes]:
    one = st.sampled_from(template_list)
    return st.one_of(
        one.flatmap(broken).map(dumps),
        one.flatmap(broken).map(dumps),
        json_values.map(dumps),
        one.flatmap(mangled_text),
        deep_resource(),
        st.binary(max_size=64),
        st.sampled_from(
            [
                b"",
                b"null",
                b"[]",
                b"{}",
                b'"Patient"',
                b"12",
                b'{"resourceType": 1}',
                b'{"resourceType": "Nope"}',
                b'{"resourceType": "Bundle"}',
            ]
        ),
    )
