"""`phm seed`: the synthetic region written through the bulk path of the store.

Generating, validating (a sample) and indexing run in worker processes, slice by slice of the
roster (a slice gives the same records as a full run), while this process writes the previous
slice to the database, so the two cores both work.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import typer
from tqdm import tqdm

from app.config import Settings
from app.store.bulk import finish, is_empty, stage_batch, write_staged
from app.store.db import create_database
from app.store.migrate import upgrade
from app.store.profiles import load_profiles
from app.store.writer import StagedWrite
from app.synth import Region, RegionConfig, generate_region


@functools.cache
def _region(patients: int, teams: int, seed: int, today: Any) -> Region:
    return generate_region(RegionConfig(patients=patients, teams=teams, seed=seed, today=today))


def _stage_slice(config: RegionConfig, start: int, stop: int,
                 validate_every: int) -> tuple[int, list[StagedWrite]]:
    """Runs in a worker process: one slice of the roster, generated and staged."""
    region = _region(config.patients, config.teams, config.seed, config.today)
    resources = [r for rs in region.patient_resources(start, stop) for r in rs]
    if start == 0:
        resources = region.shared_resources() + resources
    return stop - start, stage_batch(resources, validate_every)


async def seed_database(settings: Settings, config: RegionConfig, if_empty: bool,
                        validate_every: int, batch: int) -> None:
    await upgrade(settings.database_url)
    db = create_database(settings)
    try:
        if not await is_empty(db) and if_empty:
            typer.echo("the database already holds data: not seeding")
            return
        t0 = time.perf_counter()
        written = await _load(db, config, validate_every, batch)
        await finish(db)
        await load_profiles(db)
        dt = time.perf_counter() - t0
    finally:
        await db.dispose()
    n = config.patients
    typer.echo(
        f"seeded {n} patients, {written} resources in {dt:.0f} s "
        f"({n / dt:.0f} patients/s, {written / dt:.0f} resources/s)\n"
        "try: http://127.0.0.1:8000/docs  |  http://127.0.0.1:8000/metadata\n"
        "     curl 'http://127.0.0.1:8000/Patient?address-postalcode=3010&_count=5'\n"
        "     curl 'http://127.0.0.1:8000/Condition?code=http://hl7.org/fhir/sid/icpc-2|T90"
        "&_include=Condition:subject&_count=5'\n"
        "     curl 'http://127.0.0.1:8000/Measure/t2d-hba1c-tested/$evaluate-measure"
        "?periodStart=2025-07-01&periodEnd=2026-06-30'\n"
        "     phm evaluate t2d-hba1c-poor-control --period 2025"
    )


async def _load(db: Any, config: RegionConfig, validate_every: int, batch: int) -> int:
    workers = max(1, (os.cpu_count() or 2) - 1)
    slices = [(s, min(s + batch, config.patients)) for s in range(0, config.patients, batch)]
    slices = slices or [(0, 0)]
    ctx = multiprocessing.get_context("spawn")
    written = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool, \
            tqdm(total=config.patients, unit="patient", desc="seeding") as bar:
        pending: deque[Future[tuple[int, list[StagedWrite]]]] = deque()
        todo = iter(slices)
        for start, stop in todo:
            pending.append(pool.submit(_stage_slice, config, start, stop, validate_every))
            if len(pending) > workers + 1:
                break
        while pending:
            n, staged = await asyncio.wrap_future(pending.popleft())
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(_stage_slice, config, nxt[0], nxt[1],
                                           validate_every))
            written += await write_staged(db, staged)
            bar.update(n)
    return written
