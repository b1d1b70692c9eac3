"""Seed benchmark: the synthetic region through the bulk path on SQLite and PostgreSQL.

    python bench/seed.py [--patients 20000] [--backend sqlite,postgresql] [--keep]

Prints patients/s, resources/s and the database size per 1,000 patients. Targets (issue 4):
20,000 patients in under 2 minutes (`make run`), 102,000 in under 10 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import PG_ADMIN, fresh_database  # noqa: E402


def db_size(url: str) -> int:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN) as conn:
        row = conn.execute("SELECT pg_database_size(%s)", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=20000)
    ap.add_argument("--backend", default="sqlite,postgresql")
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    from app.config import Settings
    from app.seed import seed_database
    from app.synth import RegionConfig

    for backend in args.backend.split(","):
        with fresh_database(backend) as url:
            t0 = time.perf_counter()
            asyncio.run(seed_database(Settings(database_url=url),
                                      RegionConfig(patients=args.patients, seed=args.seed),
                                      False, 25, 250))
            dt = time.perf_counter() - t0
            size = db_size(url)
            print(f"RESULT {backend:11s} {args.patients} patients in {dt:6.1f} s: "
                  f"{args.patients / dt:6.0f} patients/s; database "
                  f"{size / args.patients * 1000 / 2**20:5.1f} MiB per 1,000 patients")


if __name__ == "__main__":
    main()
