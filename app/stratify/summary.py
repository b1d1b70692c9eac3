"""The population view: patients per stratum and per stratum x team (from the stratum Groups'
`member` index rows), and the movement between pyramid strata since a date (from the
RiskAssessments' version history: the version current at `since` against the current one)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

import orjson
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.schema import idx_reference, resource, resource_version
from app.stratify import facts as F
from app.stratify.map import StratificationMap
from app.stratify.output import group_id, stratum_of


@dataclass(slots=True)
class Movement:
    since: int
    up: int = 0
    down: int = 0
    same: int = 0  # changed RiskAssessment, same pyramid stratum
    entered: int = 0  # no stratum at `since`
    left: int = 0  # no stratum now (deleted or deceased)
    transitions: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)


@dataclass(slots=True)
class Summary:
    counts: dict[str, int]  # stratum code -> patients
    team_counts: dict[str, dict[str, int]]  # stratum code -> team Group id -> patients
    teams: list[str]
    movement: Movement | None = None


async def group_counts(conn: AsyncConnection, ids: list[str]) -> dict[str, int]:
    m, g = idx_reference, resource
    q = (
        select(g.c.id, func.count(m.c.res_pk))
        .select_from(
            g.join(m, and_(m.c.res_pk == g.c.pk, m.c.res_type == "Group", m.c.param == "member"))
        )
        .where(g.c.res_type == "Group", g.c.id.in_(ids), ~g.c.deleted)
        .group_by(g.c.id)
    )
    return {gid: int(n) for gid, n in await conn.execute(q)}


async def movement(conn: AsyncConnection, smap: StratificationMap, since: int) -> Movement:
    v = resource_version
    q = select(v.c.res_pk, v.c.version, v.c.last_updated).where(
        v.c.res_type == "RiskAssessment",
        v.c.res_pk.in_(
            select(v.c.res_pk).where(v.c.res_type == "RiskAssessment", v.c.last_updated > since)
        ),
    )
    versions: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for pk, version, lu in await conn.execute(q):
        versions[pk].append((version, lu))
    wanted: dict[int, tuple[int | None, int]] = {}  # pk -> (version at since, current version)
    for pk, vs in versions.items():
        vs.sort()
        older = [ver for ver, lu in vs if lu <= since]
        wanted[pk] = (older[-1] if older else None, vs[-1][0])
    pairs = sorted(
        {(pk, ver) for pk, (a, b) in wanted.items() for ver in (a, b) if ver is not None}
    )
    codes: dict[tuple[int, int], str | None] = {}
    for i in range(0, len(pairs), 500):
        chunk = pairs[i : i + 500]
        cond = [and_(v.c.res_pk == pk, v.c.version == ver) for pk, ver in chunk]

        for pk, ver, content in await conn.execute(
            select(v.c.res_pk, v.c.version, v.c.content).where(or_(*cond))
        ):
            codes[(pk, ver)] = stratum_of(orjson.loads(content)) if content else None
    level = {s.code: s.level or 0 for s in smap.strata}
    out = Movement(since)
    for pk, (a, b) in wanted.items():
        before = codes.get((pk, a)) if a is not None else None
        after = codes.get((pk, b))
        if before == after:
            out.same += 1
            continue
        out.transitions[(before, after)] += 1
        if before is None:
            out.entered += 1
        elif after is None:
            out.left += 1
        elif level.get(after, 0) > level.get(before, 0):
            out.up += 1
        else:
            out.down += 1
    return out


async def summarise(
    conn: AsyncConnection, smap: StratificationMap, since: int | None = None
) -> Summary:
    teams = await F.team_groups(conn, smap.team_system) if smap.team_system else []
    ids = [group_id(s.code, t) for s in smap.all_strata() for t in (None, *teams)]
    counts = await group_counts(conn, ids)
    per = {s.code: counts.get(group_id(s.code), 0) for s in smap.all_strata()}
    per_team = {
        s.code: {t: counts.get(group_id(s.code, t), 0) for t in teams} for s in smap.all_strata()
    }
    out = Summary(per, per_team, teams)
    if since is not None:
        out.movement = await movement(conn, smap, since)
    return out
