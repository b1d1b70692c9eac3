"""Stratum Groups: one per stratum and one per stratum x neighbourhood team, whose members are
the patients currently in the stratum, so Measures and dashboards can use strata as subjects.

A run collects the Groups each processed patient should be in (`GroupPlan`), then compares that
with what is stored: the whole membership after a full run, only the processed patients'
`member` index rows after an incremental one. A Group is written only when its members change.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.store.schema import idx_reference, idx_token, resource, resource_version
from app.store.writer import StagedWrite, flush, stage
from app.stratify.assign import Assignment
from app.stratify.map import StratificationMap, Stratum
from app.stratify.output import group_id, group_members, stratum_group


class GroupPlan:
    """Which stratum Groups each processed patient belongs in."""

    def __init__(self, smap: StratificationMap) -> None:
        self.map = smap
        self.teams: list[str] = []
        self.desired: dict[str, set[str]] = {}

    def add(
        self, assigned: dict[str, Assignment], teams_of: dict[str, list[str]], gone: set[str]
    ) -> None:
        for p, a in assigned.items():
            gids = set()
            for s in a.strata:
                gids.add(group_id(s.code))
                gids.update(group_id(s.code, t) for t in teams_of.get(p, ()))
            self.desired[p] = gids
        for p in gone:
            self.desired[p] = set()

    def groups(self) -> dict[str, tuple[Stratum, str | None]]:
        out: dict[str, tuple[Stratum, str | None]] = {}
        for s in self.map.all_strata():
            out[group_id(s.code)] = (s, None)
            for t in self.teams:
                out[group_id(s.code, t)] = (s, t)
        return out


async def _stored(
    conn: AsyncConnection, ids: list[str]
) -> dict[str, tuple[int, int, dict[str, Any] | None]]:
    r, v = resource, resource_version
    out = {}
    for i in range(0, len(ids), 500):
        q = (
            select(r.c.pk, r.c.id, r.c.version, v.c.content)
            .select_from(r.join(v, and_(v.c.res_pk == r.c.pk, v.c.version == r.c.version)))
            .where(r.c.res_type == "Group", r.c.id.in_(ids[i : i + 500]))
        )
        if conn.dialect.name == "postgresql":
            q = q.with_for_update(of=r)
        for pk, rid, version, content in await conn.execute(q):
            out[rid] = (pk, version, orjson.loads(content) if content is not None else None)
    return out


async def _ours(conn: AsyncConnection, code_system: str) -> list[str]:
    """Ids of the live Groups coded with the map's stratum CodeSystem (current or stale)."""
    t, r = idx_token, resource
    q = (
        select(r.c.id)
        .select_from(t.join(r, r.c.pk == t.c.res_pk))
        .where(
            t.c.res_type == "Group", t.c.param == "code", t.c.system == code_system, ~r.c.deleted
        )
    )
    return sorted({row[0] for row in await conn.execute(q)})


async def _actual(
    conn: AsyncConnection, patients: list[str], gids: list[str]
) -> dict[str, set[str]]:
    """patient -> the stratum Groups whose stored members include them."""
    m, g = idx_reference, resource
    out: dict[str, set[str]] = defaultdict(set)
    for i in range(0, len(patients), 1000):
        q = (
            select(m.c.target_id, g.c.id)
            .select_from(m.join(g, g.c.pk == m.c.res_pk))
            .where(
                m.c.target_type == "Patient",
                m.c.target_id.in_(patients[i : i + 1000]),
                m.c.res_type == "Group",
                m.c.param == "member",
                g.c.id.in_(gids),
            )
        )
        for pid, gid in await conn.execute(q):
            out[pid].add(gid)
    return out


async def sync_groups(conn: AsyncConnection, plan: GroupPlan, full: bool, now: int) -> int:
    """Write the Groups whose membership differs from the plan; return how many."""
    specs = plan.groups()
    wanted: dict[str, set[str]] = {}
    if full:
        wanted = {gid: set() for gid in specs}
        for p, gids in plan.desired.items():
            for gid in gids:
                wanted.setdefault(gid, set()).add(p)
        ids = sorted(set(specs) | set(await _ours(conn, plan.map.code_system)))
        stored = await _stored(conn, ids)
        current = {gid: group_members(b[2]) if b[2] else set() for gid, b in stored.items()}
    else:
        patients = sorted(plan.desired)
        actual = await _actual(conn, patients, sorted(specs))
        changed: set[str] = set()
        for p in patients:
            changed |= plan.desired[p] ^ actual.get(p, set())
        if not changed:
            return 0
        stored = await _stored(conn, sorted(changed))
        current = {gid: group_members(b[2]) if b[2] else set() for gid, b in stored.items()}
        for gid in changed:
            members = set(current.get(gid, set()))
            for p in patients:
                if gid in plan.desired[p]:
                    members.add(p)
                else:
                    members.discard(p)
            wanted[gid] = members
    # Building and indexing Groups of tens of thousands of members is CPU work: off the
    # event loop, so the server keeps answering while a round runs.
    staged = await asyncio.to_thread(_stage_groups, plan, specs, wanted, stored, current, full, now)
    await flush(conn, staged, mark=False)
    return len(staged)


def _stage_groups(
    plan: GroupPlan,
    specs: dict[str, tuple[Stratum, str | None]],
    wanted: dict[str, set[str]],
    stored: dict[str, tuple[int, int, dict[str, Any] | None]],
    current: dict[str, set[str]],
    full: bool,
    now: int,
) -> list[StagedWrite]:
    staged: list[StagedWrite] = []
    for gid in sorted(set(wanted) | set(stored)):
        members = wanted.get(gid, set())
        cur = stored.get(gid)
        spec = specs.get(gid)
        if spec is None:  # a stratum no longer in the map: keep the Group, empty and inactive
            if not full or cur is None or cur[2] is None or not cur[2].get("active", True):
                continue
            body = dict(cur[2], active=False, quantity=0, member=[])
        else:
            if (
                cur is not None
                and cur[2] is not None
                and current.get(gid) == members
                and cur[2].get("quantity") == len(members)
            ):
                continue
            body = stratum_group(plan.map, spec[0], spec[1], sorted(members))
        version = 1 if cur is None else cur[1] + 1
        staged.append(
            stage("Group", gid, body, "PUT", version, now, None if cur is None else cur[0])
        )
    return staged
