"""The stratification engine: facts -> strata -> RiskAssessments and stratum Groups, for the
patients whose compartment changed (`patient_dirty`) or for everyone.

Writes go through the store's `stage` + `flush` (versions, history, index rows) with marking
off, so the engine's own RiskAssessments do not queue their patients again. A RiskAssessment
is rewritten only when its strata, rationale or basis changed; a Group only when its members
changed. A run is idempotent: if it stops half-way, the marks it has not cleared make the next
run redo the work, and Group membership is always compared with what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import and_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.dates import now_us
from app.store.db import Database
from app.store.schema import patient_dirty, resource, resource_version
from app.store.writer import StagedWrite, flush, stage
from app.stratify import facts as F
from app.stratify.assign import Assignment, assign, basis
from app.stratify.codes import CodeCache
from app.stratify.groups import GroupPlan, sync_groups
from app.stratify.map import StratificationMap, load_map
from app.stratify.output import assessment_id, risk_assessment, same_assessment
from app.stratify.rules import PatientFacts

CHUNK = 250  # patients per fact query when recomputing marked patients
WRITE_CHUNK = 2000  # RiskAssessments per write transaction

Progress = Callable[[int], None]


@dataclass(slots=True)
class RunSummary:
    mode: str  # all | marked | patients
    patients: int = 0  # stratified
    written: int = 0  # RiskAssessments created or updated
    removed: int = 0  # RiskAssessments deleted (patient deleted or deceased)
    groups_written: int = 0
    seconds: float = 0.0
    counts: Counter[str] = field(default_factory=Counter)

    def merge(self, other: RunSummary) -> None:
        self.patients += other.patients
        self.written += other.written
        self.removed += other.removed
        self.counts.update(other.counts)


class Stratifier:
    """One map, one reference date (today when None), one ValueSet cache."""

    def __init__(
        self, db: Database, smap: StratificationMap | None = None, day: date | None = None
    ) -> None:
        self.db = db
        self.map = smap or load_map()
        self.day = day
        self.codes = CodeCache()

    def window(self) -> F.Window:
        return F.Window(self.day or datetime.now(UTC).date())

    # -- entry points ------------------------------------------------------------------------

    async def stratify_all(self, progress: Progress | None = None) -> RunSummary:
        """Every patient; Groups rebuilt from scratch; marks made before the start cleared."""
        t0, started = time.perf_counter(), now_us()
        summary = await self._run(None, progress, full_groups=True)
        async with self.db.write() as conn:
            await conn.execute(patient_dirty.delete().where(patient_dirty.c.marked_at < started))
        summary.seconds = time.perf_counter() - t0
        return summary

    async def stratify_marked(
        self, progress: Progress | None = None, full_above: int = 10000
    ) -> RunSummary:
        """The patients in `patient_dirty`; their marks are cleared unless re-marked since."""
        t0 = time.perf_counter()
        async with self.db.read() as conn:
            marks = [
                (r[0], r[1])
                for r in await conn.execute(
                    select(patient_dirty.c.patient_id, patient_dirty.c.marked_at)
                )
            ]
        if not marks:
            return RunSummary("marked")
        ids = sorted({p for p, _ in marks})
        if len(ids) > full_above:  # a bulk load: one pass over everyone is cheaper
            summary = await self._run(None, progress, full_groups=True, clear=marks)
        else:
            summary = await self._run(ids, progress, full_groups=False, clear=marks)
        summary.mode = "marked"
        summary.seconds = time.perf_counter() - t0
        return summary

    async def stratify_patients(self, ids: list[str]) -> RunSummary:
        t0 = time.perf_counter()
        summary = await self._run(sorted(set(ids)), None, full_groups=False)
        summary.mode, summary.seconds = "patients", time.perf_counter() - t0
        return summary

    async def facts_of(self, patient_id: str) -> PatientFacts | None:
        async with self.db.read() as conn:
            codes = await self.codes.get(conn, self.map)
            batch = await F.compute(conn, self.map, codes, [patient_id], self.window())
        return batch.facts.get(patient_id)

    # -- the run -----------------------------------------------------------------------------

    async def _run(
        self,
        ids: list[str] | None,
        progress: Progress | None,
        full_groups: bool,
        clear: list[tuple[str, int]] | None = None,
    ) -> RunSummary:
        w = self.window()
        summary = RunSummary("all" if ids is None else "patients")
        plan = GroupPlan(self.map)
        chunks: list[list[str] | None] = (
            [None] if ids is None else [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]
        )
        flushing: asyncio.Task[None] | None = None
        with _young_collections_only():
            try:
                for chunk in chunks:
                    async with self.db.read() as conn:
                        codes = await self.codes.get(conn, self.map)
                        batch = await F.compute(conn, self.map, codes, chunk, w)
                        if self.map.team_system:
                            plan.teams = await F.team_groups(conn, self.map.team_system)
                    assigned = await asyncio.to_thread(_assign_all, self.map, batch)
                    plan.add(assigned, batch.teams, batch.gone)
                    order = sorted(assigned) + sorted(batch.gone)
                    for i in range(0, len(order), WRITE_CHUNK):
                        part = order[i : i + WRITE_CHUNK]
                        # Build the next chunk (Python) while the previous one is written (SQL).
                        staged, out = await self._prepare(part, assigned, batch, w)
                        if flushing is not None:
                            await flushing
                        flushing = asyncio.create_task(self._flush(staged))
                        summary.merge(out)
                        if progress is not None:
                            progress(len(part))
                if flushing is not None:
                    await flushing
                    flushing = None
            finally:
                if flushing is not None:
                    flushing.cancel()
                    with contextlib.suppress(BaseException):
                        await flushing
            async with self.db.write() as conn:
                summary.groups_written = await sync_groups(conn, plan, full_groups, now_us())
                if clear:
                    await _clear_marks(conn, clear)
            return summary

    async def _prepare(
        self, part: list[str], assigned: dict[str, Assignment], batch: F.Batch, w: F.Window
    ) -> tuple[list[StagedWrite], RunSummary]:
        """The RiskAssessment writes of `part`: only those whose content changed.

        Current versions are read outside the write transaction: engine runs are serialised
        by `EngineLock`, and a client's concurrent PUT of a `stratum-*` RiskAssessment makes
        the flush fail on the version key, so the marks stay and the next round redoes it."""
        pks: set[int] = set()
        for p in part:
            a = assigned.get(p)
            if a is not None:
                for s in a.strata:
                    pks |= basis(s, batch.facts[p])
        async with self.db.read() as conn:
            refs = await F.resource_refs(conn, pks)
            stored = await _stored_assessments(conn, [assessment_id(p) for p in part])
        return await asyncio.to_thread(self._stage, part, assigned, batch, w, refs, stored)

    def _stage(
        self,
        part: list[str],
        assigned: dict[str, Assignment],
        batch: F.Batch,
        w: F.Window,
        refs: dict[int, str],
        stored: dict[str, tuple[int, int, dict[str, Any] | None]],
    ) -> tuple[list[StagedWrite], RunSummary]:
        out = RunSummary("")
        day, now = w.day.isoformat(), now_us()
        staged: list[StagedWrite] = []
        for p in part:
            rid = assessment_id(p)
            cur = stored.get(rid)
            a = assigned.get(p)
            if a is None:  # deleted or deceased: no current stratum
                if cur is not None and cur[2] is not None:
                    staged.append(
                        stage("RiskAssessment", rid, None, "DELETE", cur[1] + 1, now, cur[0])
                    )
                    out.removed += 1
                continue
            out.patients += 1
            out.counts[a.stratum.code] += 1
            body = risk_assessment(self.map, a, batch.facts[p], refs, day)
            if cur is not None and cur[2] is not None and same_assessment(cur[2], body):
                continue
            version = 1 if cur is None else cur[1] + 1
            staged.append(
                stage(
                    "RiskAssessment",
                    rid,
                    body,
                    "PUT",
                    version,
                    now,
                    None if cur is None else cur[0],
                )
            )
            out.written += 1
        return staged, out

    async def _flush(self, staged: list[StagedWrite]) -> None:
        if staged:
            async with self.db.write() as conn:
                await flush(conn, staged, mark=False)


async def _stored_assessments(
    conn: AsyncConnection, ids: list[str]
) -> dict[str, tuple[int, int, dict[str, Any] | None]]:
    """id -> (pk, version, current body or None when deleted)."""
    r, v = resource, resource_version
    q = (
        select(r.c.pk, r.c.id, r.c.version, v.c.content)
        .select_from(r.join(v, and_(v.c.res_pk == r.c.pk, v.c.version == r.c.version)))
        .where(r.c.res_type == "RiskAssessment", r.c.id.in_(ids))
    )
    return {
        rid: (pk, version, orjson.loads(content) if content is not None else None)
        for pk, rid, version, content in await conn.execute(q)
    }


async def _clear_marks(conn: AsyncConnection, marks: list[tuple[str, int]]) -> None:
    """Forget the marks processed, but not a patient marked again while we worked."""
    await conn.execute(
        text("DELETE FROM patient_dirty WHERE patient_id = :p AND marked_at = :t"),
        [{"p": p, "t": t} for p, t in marks],
    )


@contextlib.contextmanager
def _young_collections_only() -> Iterator[None]:
    """A run holds the facts, strata and Group plan of every patient it processes (for a
    region, millions of small objects, none in a reference cycle) until it ends, and Python's
    full collections walk every one of them each time: 12 s of a 68 s re-stratification of
    the PostgreSQL region. During a run only the young generations are collected (cyclic
    garbage that grows old waits for the end of the run); then the thresholds come back."""
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], 1_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _assign_all(smap: StratificationMap, batch: F.Batch) -> dict[str, Assignment]:
    return {p: assign(smap, pf) for p, pf in batch.facts.items()}
