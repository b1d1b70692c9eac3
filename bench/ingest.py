"""Ingest benchmark: the Synthea bundles through POST / on a 2-worker server.

    python bench/ingest.py [--bundles 617] [--backend sqlite,postgresql] [--concurrency 4]

Prints resources/s per backend. Target (issue 3): >= 3,000 resources/s into PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import SHARED, fresh_database, running_server  # noqa: E402


async def post_all(url: str, bodies: list[bytes], concurrency: int) -> list[str]:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for b in bodies:
        queue.put_nowait(b)
    errors: list[str] = []
    headers = {"content-type": "application/fhir+json", "prefer": "return=minimal"}

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=600) as client:
            while not queue.empty():
                body = queue.get_nowait()
                r = await client.post("/", content=body, headers=headers)
                if r.status_code >= 400:
                    errors.append(r.text[:300])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bundles", type=int, default=617)
    ap.add_argument("--backend", default="sqlite,postgresql")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--validation", default="full", help="full | structural")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(SHARED / "synthea-r4" / "synthea-r4-617.tgz") as tar:
            tar.extractall(tmp, filter="data")
        files = sorted(Path(tmp, "R4").glob("*.json"))[: args.bundles]
        bodies = [f.read_bytes() for f in files]
    n_resources = sum(len(orjson.loads(b)["entry"]) for b in bodies)
    print(f"{len(bodies)} bundles, {n_resources} resources, {args.workers} server workers, "
          f"{args.concurrency} concurrent clients, validation {args.validation}")
    for backend in args.backend.split(","):
        os.environ["PHM_VALIDATION"] = args.validation
        with fresh_database(backend) as db_url, running_server(db_url, args.workers) as url:
            t0 = time.perf_counter()
            errors = asyncio.run(post_all(url, bodies, args.concurrency))
            dt = time.perf_counter() - t0
            print(f"{backend:11s} {n_resources / dt:8.0f} resources/s  "
                  f"{len(bodies) / dt:6.1f} bundles/s  {dt:7.1f} s  errors: {len(errors)}")
            for e in errors[:3]:
                print("   ", e)


if __name__ == "__main__":
    main()
