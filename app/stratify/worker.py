"""Keeping strata current: the background task started with the server, and the lock that makes
one process at a time run the engine.

Every `interval` seconds (or at once when woken), the task re-stratifies the patients marked in
`patient_dirty`. With several workers on PostgreSQL, the one that gets the session advisory lock
runs; the others skip the round; on SQLite an OS lock on a file beside the database does the
same. Within one process an asyncio lock keeps the task, `POST /$stratify` and the CLI from
overlapping.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import AsyncIterator
from datetime import date

from sqlalchemy import select, text

from app.config import Settings
from app.store.db import Database
from app.store.schema import patient_dirty
from app.stratify.engine import RunSummary, Stratifier
from app.stratify.map import load_map

log = logging.getLogger("app.stratify")

LOCK_KEY = 7146212  # pg advisory lock id (profiles.py uses 7146211)


class EngineLock:
    """One engine run at a time: per process (asyncio) and per database (a PostgreSQL advisory
    lock, an OS file lock beside a SQLite file)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._local = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def hold(self, wait: bool = True) -> AsyncIterator[bool]:
        """Yield True when held; with `wait=False`, yield False at once if someone has it."""
        if not wait and self._local.locked():
            yield False
            return
        async with self._local:
            if self.db.is_sqlite:
                async with self._sqlite_file_lock(wait) as got:
                    yield got
                return
            async with self.db.engine.connect() as conn:
                if wait:
                    await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
                    got = True
                else:
                    got = bool(
                        (
                            await conn.execute(
                                text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}
                            )
                        ).scalar()
                    )
                await conn.commit()
                try:
                    yield got
                finally:
                    if got:
                        await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                        await conn.commit()


    @contextlib.asynccontextmanager
    async def _sqlite_file_lock(self, wait: bool) -> AsyncIterator[bool]:
        """Across the server's worker processes on one SQLite file: an OS lock on a file beside
        it (released by the OS if a process dies). Without it two workers could run a round on
        the same marks, and the second would insert the RiskAssessments the first just did."""
        path = self.db.engine.url.database
        if not path or path == ":memory:":
            yield True
            return
        with open(f"{path}.stratify.lock", "a+b") as fh:
            try:
                if wait:
                    await asyncio.to_thread(fcntl.flock, fh.fileno(), fcntl.LOCK_EX)
                else:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


async def has_marks(db: Database) -> bool:
    async with db.read() as conn:
        return (await conn.execute(select(patient_dirty.c.patient_id).limit(1))).first() is not None


class StratifyTask:
    """The background loop; `wake()` runs a round now (tests, and after `$stratify`)."""

    def __init__(self, stratifier: Stratifier, lock: EngineLock, interval: float) -> None:
        self.stratifier = stratifier
        self.lock = lock
        self.interval = interval
        self.rounds = 0
        self.last: RunSummary | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.create_task(self._loop(), name="phm-stratify")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> RunSummary | None:
        """One round: None when there was nothing to do or another worker is at it."""
        if not await has_marks(self.stratifier.db):
            return None
        async with self.lock.hold(wait=False) as got:
            if not got:
                return None
            summary = await self.stratifier.stratify_marked()
        self.rounds += 1
        self.last = summary
        if summary.patients or summary.removed:
            log.info(
                "stratified %d marked patients (%d RiskAssessments, %d Groups written) in %.2f s",
                summary.patients,
                summary.written,
                summary.groups_written,
                summary.seconds,
            )
        return summary

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the server up; the marks stay for the next round
                log.error("stratification round failed: %s", type(exc).__name__, exc_info=exc)


def stratification(db: Database, settings: Settings) -> StratifyTask:
    """The engine of a server: its map (a malformed map stops the start-up with the place of
    the fault), reference date, lock and background task (not started)."""
    smap = load_map(settings.stratification_map or None)
    day = date.fromisoformat(settings.stratify_date) if settings.stratify_date else None
    return StratifyTask(Stratifier(db, smap, day), EngineLock(db), settings.stratify_interval)
