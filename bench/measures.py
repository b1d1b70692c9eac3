"""Measure benchmark: each Measure of the library, with all its stratifiers, over a region.

    python bench/measures.py [--patients 102000] [--backend sqlite,postgresql]
    python bench/measures.py --database-url URL     # an already seeded database

Prints, per Measure, the time of a population report (every stratifier) and patients/s, the
whole library, and $care-gaps for one neighbourhood team. Targets (issue 6): one Measure with
all its stratifiers under 0.5 s, the library under 5 s, $care-gaps for a team under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import fresh_database  # noqa: E402

PERIOD = ("2025-07-01", "2026-06-30")


async def run(url: str) -> None:
    from sqlalchemy import text

    from app.config import Settings
    from app.measure.evaluator import Evaluator
    from app.measure.service import care_gaps, evaluate, load_measure, resolve_subject
    from app.store.db import create_database
    from app.store.profiles import load_profiles

    db = create_database(Settings(database_url=url))
    await load_profiles(db)
    async with db.read() as conn:
        n = (await conn.execute(text(
            "SELECT count(*) FROM resource WHERE res_type='Patient' AND NOT deleted"))).scalar()
        ids = [row[0] for row in await conn.execute(text(
            "SELECT id FROM resource WHERE res_type='Measure' AND NOT deleted ORDER BY id"))]
        measures = [await load_measure(conn, i, None) for i in ids]
        subject = await resolve_subject(conn, None, None)
        total = 0.0
        for m in measures:
            t = time.perf_counter()
            report = await evaluate(conn, m, PERIOD, "population", subject)
            dt = time.perf_counter() - t
            total += dt
            g = report["group"][0]
            score = g.get("measureScore", {}).get("value")
            print(f"  {m.resource['id']:32s} {dt * 1000:7.0f} ms  {n / dt:9.0f} patients/s  "
                  f"IP {g['population'][0]['count']:6d}"
                  + (f"  score {score:.3f}" if score is not None else ""))
        print(f"  each measure alone, summed:        {total:6.2f} s")
        t = time.perf_counter()
        ev = Evaluator(conn, PERIOD, subject)
        for m in measures:
            await evaluate(conn, m, PERIOD, "population", subject, evaluator=ev)
        dt = time.perf_counter() - t
        print(f"RESULT library of {len(measures)} ({n} patients, one evaluator): "
              f"{dt:6.2f} s, {n * len(measures) / dt:9.0f} patient-measures/s")
        team = await resolve_subject(conn, "Group/team-zl1", None)
        t = time.perf_counter()
        gaps = await care_gaps(conn, measures, PERIOD, team)
        print(f"RESULT $care-gaps for Group/team-zl1: {time.perf_counter() - t:6.2f} s, "
              f"{len(gaps)} patients with an open gap")
    await db.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=102000)
    ap.add_argument("--backend", default="sqlite,postgresql")
    ap.add_argument("--database-url")
    args = ap.parse_args()
    if args.database_url:
        asyncio.run(run(args.database_url))
        return
    from app.config import Settings
    from app.seed import seed_database
    from app.synth import RegionConfig

    for backend in args.backend.split(","):
        with fresh_database(backend) as url:
            asyncio.run(seed_database(Settings(database_url=url),
                                      RegionConfig(patients=args.patients), False, 0, 500))
            print(f"{backend}:")
            asyncio.run(run(url))


if __name__ == "__main__":
    main()
