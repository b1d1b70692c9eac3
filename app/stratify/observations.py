"""Observation facts in SQL: the latest lab result per patient (a window function over
`idx_composite` code-value-quantity rows joined to their `date`), and the latest coded answer
(smoking status) per patient."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.schema import idx_composite, idx_date, idx_token
from app.stratify.map import FactDef
from app.stratify.queries import (
    BAD_OBSERVATION,
    Scope,
    Window,
    between,
    coded,
    follow,
    owned,
    status_not,
)

# -- observations -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabValue:
    value: float
    at: int
    pk: int
    unit: str


async def latest_labs(
    conn: AsyncConnection,
    fact: FactDef,
    codes: frozenset[tuple[str, str]],
    ids: Scope | None,
    w: Window,
) -> dict[str, LabValue]:
    """The latest convertible result per patient in the look-back period."""
    spec = fact.spec
    target = spec["unit"]
    convert: dict[str, tuple[float, float]] = {target: (1.0, 0.0)}
    for unit, c in spec.get("convert", {}).items():
        convert[unit] = (float(c["factor"]), float(c.get("offset", 0.0)))
    defaults: dict[str, str] = spec.get("defaultUnits", {})
    if not codes:
        return {}
    c, d = idx_composite.alias("c"), idx_date.alias("d")
    rank = func.row_number().over(
        partition_by=c.c.patient_id, order_by=(d.c.low.desc(), c.c.res_pk.desc())
    )
    inner = (
        select(
            c.c.patient_id, c.c.res_pk, c.c.code1, c.c.num2, c.c.code2, d.c.low, rank.label("rn")
        )
        .select_from(c.join(d, and_(d.c.res_pk == c.c.res_pk, follow(d, "Observation", "date"))))
        .where(
            coded(c.c.res_type, ["Observation"], ids),
            coded(c.c.param, ["code-value-quantity", "component-code-value-quantity"], ids),
            coded(c.c.code1, {code for _, code in codes}, ids),
            c.c.system1.in_(sorted({s for s, _ in codes})),
            or_(c.c.code2.in_(sorted(convert)), c.c.code2.is_(None)),
            c.c.num2.is_not(None),
            c.c.patient_id.is_not(None),
            between(d.c.low, w.since(spec["lookbackDays"]), w.end),
            owned(c, "Observation", ids),
            status_not(c, "Observation", BAD_OBSERVATION),
        )
        .subquery()
    )
    q = select(
        inner.c.patient_id, inner.c.res_pk, inner.c.code1, inner.c.num2, inner.c.code2, inner.c.low
    ).where(inner.c.rn == 1)
    out = {}
    for pid, pk, code, value, unit, at in await conn.execute(q):
        unit = unit or defaults.get(code, target)
        if unit not in convert:
            continue
        factor, offset = convert[unit]
        out[pid] = LabValue(round(value * factor + offset, 4), at, pk, unit)
    return out


async def latest_coded(
    conn: AsyncConnection,
    fact: FactDef,
    codes: frozenset[tuple[str, str]],
    ids: Scope | None,
    w: Window,
) -> dict[str, tuple[int, int, bool]]:
    """Per patient: (pk, date, whether the latest observation's answer is one of `answers`)."""
    if not codes:
        return {}
    answers = {(a["system"], a["code"]) for a in fact.spec["answers"]}
    t, d, v = idx_token.alias("t"), idx_date.alias("d"), idx_token.alias("v")
    rank = func.row_number().over(
        partition_by=t.c.patient_id, order_by=(d.c.low.desc(), t.c.res_pk.desc())
    )
    inner = (
        select(t.c.patient_id, t.c.res_pk, d.c.low, rank.label("rn"))
        .select_from(t.join(d, and_(d.c.res_pk == t.c.res_pk, follow(d, "Observation", "date"))))
        .where(
            t.c.res_type == "Observation",
            t.c.param == "code",
            coded(t.c.code, {code for _, code in codes}, ids),
            t.c.system.in_(sorted({s for s, _ in codes})),
            t.c.patient_id.is_not(None),
            between(d.c.low, w.since(fact.spec["lookbackDays"]), w.end),
            owned(t, "Observation", ids),
            status_not(t, "Observation", BAD_OBSERVATION),
        )
        .subquery()
    )
    q = (
        select(inner.c.patient_id, inner.c.res_pk, inner.c.low, v.c.system, v.c.code)
        .select_from(
            inner.outerjoin(
                v,
                and_(
                    v.c.res_pk == inner.c.res_pk,
                    v.c.res_type == "Observation",
                    v.c.param == "value-concept",
                ),
            )
        )
        .where(inner.c.rn == 1)
    )
    out: dict[str, tuple[int, int, bool]] = {}
    for pid, pk, at, system, code in await conn.execute(q):
        hit = (system, code) in answers
        prev = out.get(pid)
        out[pid] = (pk, at, hit or (prev is not None and prev[2]))
    return out
