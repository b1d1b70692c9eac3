"""`column IN (many pks)` as one statement parameter.

A statement takes at most 32,767 parameters (asyncpg; SQLite's limit is similar), and a list
spelled out is parsed and planned value by value. Past a few thousand pks the list goes as one
array (PostgreSQL, `= ANY`) or one JSON text that SQLite reads with `json_each`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import ARRAY, BigInteger, ColumnElement, any_, bindparam, column, func, select

LISTED = 5000  # up to this many, spelled out (each an index look-up, planned as such)


def pk_in(col: Any, pks: Sequence[int], dialect: str) -> ColumnElement[bool]:
    """`col IN pks`; an empty list matches nothing."""
    values = list(pks) or [-1]
    if len(values) <= LISTED:
        return col.in_(values)  # type: ignore[no-any-return]
    if dialect == "postgresql":
        return col == any_(bindparam(None, values, type_=ARRAY(BigInteger)))  # type: ignore[no-any-return]
    return col.in_(select(column("value")).select_from(  # type: ignore[no-any-return]
        func.json_each(bindparam(None, orjson.dumps(values).decode()))))
