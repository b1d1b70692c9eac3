"""Search, history and paging queries with wrong names, modifiers, prefixes, dates, numbers,
tokens, references and cursors."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

from tests.server.fuzz.bodies import dumps, json_values
from tests.server.fuzz.resources import TYPES, words

MODIFIERS = words(
    ":exact :contains :missing :not :text :in :not-in :below :above :of-type :identifier "
    ":Patient :Group :iterate : :: :x :code-text :recurse"
)
PREFIXES = words("'' eq ne gt lt ge le sa eb ap xx g eqeq")


dates = st.one_of(
    st.dates().map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.sampled_from(
        words(
            "2024 2024-02 2024-02-30 2024-13-01 0000 9999-12-31T23:59:60Z 2024-01-01T25:00 "
            "2024-01-01T10:00:00+25:00 20240101 yesterday -2024 2024-01-01T10:00:00.1234567890123Z "
            "1e10 ''"
        )
    ),
    st.text(max_size=12),
)
numbers = st.one_of(
    st.integers().map(str),
    st.floats().map(str),
    st.sampled_from(
        [
            *words(
                "1e999 -1e-999 NaN Infinity 0x10 1,2 5.4|http://unitsofmeasure.org|mg 5|| ||| ."
            ),
            "1" * 400,
        ]
    ),
    st.text(max_size=8),
)
tokens = st.one_of(
    st.sampled_from(
        words(
            "http://loinc.org|4548-4 | || a|b|c \\| \\ urn:fuzz|1 |4548-4 http://loinc.org| , ,, "
            "a\\,b $ a$b$c"
        )
    ),
    st.text(max_size=20),
)
references = st.one_of(
    st.sampled_from(
        words(
            "Patient/fuzz-p1 fuzz-p1 Patient/ / Nope/1 http://x/Patient/1 "
            "Patient/fuzz-p1/_history/1 urn:uuid:1 Patient?x=1"
        )
    ),
    st.text(max_size=20),
)


def _cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(dumps(values)).decode().rstrip("=")


cursors = st.one_of(
    st.text(max_size=30),
    st.lists(
        st.one_of(st.integers(), st.floats(), st.text(max_size=5), st.none(), st.booleans()),
        max_size=5,
    ).map(_cursor),
    json_values.map(_cursor),
    st.sampled_from(["", "=", "WzFd", "W10", "bnVsbA", "WzEsMiwzLDRd", "%%%%"]),
)

RESULT_PARAMS = words(
    "_count _sort _include _revinclude _summary _elements _total _cursor _dir _format "
    "_include:iterate _revinclude:x _has:Observation:subject:code _has:Nope _contained _since "
    "_at _type _id _lastUpdated"
)
RESULT_VALUES = words(
    "-1 0 1 99999999999999999999 date -date _lastUpdated,-_id true count data text accurate "
    "prev json xml * Observation:subject Observation:subject:Patient Nope:x id,name,nope "
    "Patient Observation,Nope"
)


def _value_for(kind: str) -> st.SearchStrategy[str]:
    by_kind = {
        "date": dates,
        "number": numbers,
        "quantity": numbers,
        "token": tokens,
        "reference": references,
        "string": st.text(max_size=20),
        "uri": tokens,
        "composite": st.text(max_size=20).map(lambda t: t + "$" + t),
    }
    return by_kind.get(kind, st.text(max_size=20))


# search parameters per type, from the CapabilityStatement (filled in by the test)
SEARCH_PARAMS: dict[str, list[tuple[str, str]]] = {}


@st.composite
def query_pairs(draw: st.DrawFn, rt: str) -> str:
    """1-4 parameters: known ones (bad values, modifiers, prefixes), result parameters, chains
    and garbage."""
    pairs: list[tuple[str, str]] = []
    params = SEARCH_PARAMS.get(rt) or [("_id", "token")]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["param", "param", "result", "chain", "garbage"]))
        if kind == "param":
            name, ptype = draw(st.sampled_from(params))
            prefixed = ptype in ("date", "number", "quantity")
            prefix = draw(st.sampled_from(PREFIXES)) if prefixed else ""
            values = draw(st.lists(_value_for(ptype), min_size=1, max_size=3))
            modifier = draw(st.sampled_from(MODIFIERS)) if draw(st.integers(0, 3)) == 0 else ""
            pairs.append((name + modifier, ",".join(prefix + v for v in values)))
        elif kind == "result":
            name = draw(st.sampled_from(RESULT_PARAMS))
            values = st.sampled_from(RESULT_VALUES) | dates | st.text(max_size=10)
            pairs.append((name, draw(cursors | values if name == "_cursor" else values)))
        elif kind == "chain":
            name, _ = draw(st.sampled_from(params))
            patient = SEARCH_PARAMS.get("Patient") or [("name", "string")]
            target, ttype = draw(st.sampled_from(patient))
            chained = f"{name}:{draw(st.sampled_from(TYPES))}.{target}"
            pairs.append((chained, draw(_value_for(ttype))))
        else:
            pairs.append((draw(st.text(max_size=12)), draw(st.text(max_size=12))))
    return urlencode(pairs)
