"""Stratification benchmark: the synthetic Leuven region on SQLite and PostgreSQL.

    python bench/stratify.py [--patients 102000] [--backend sqlite,postgresql]
                             [--sqlite-url URL] [--postgres-url URL] [--skip-server]

Per backend (a fresh database seeded through the bulk path, or the given database when it
already holds the region):
  - full stratification of every patient (`stratify_all`), first run (every RiskAssessment
    and Group written) and second run (nothing changed): patients/s. Target: < 60 s.
  - the latency a transaction gains from marking its patients in `patient_dirty`: one
    patient's resources flushed with and without marking, p50 of each.
  - on a running 2-worker server with the background task (PHM_STRATIFY_INTERVAL=2): the time
    from `POST /` of one patient's transaction Bundle to the patient's RiskAssessment.
    Target: < 5 s.
  - reading, paging and searching the largest stratum Group (tens of thousands of members).
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import fresh_database, running_server  # noqa: E402

TODAY = date(2026, 6, 30)  # the synthetic region's reference date


def line(backend: str, what: str, value: str) -> None:
    print(f"[{backend:<10}] {what:<58} {value}", flush=True)


@contextlib.contextmanager
def database(backend: str, url: str | None) -> Iterator[str]:
    if url:
        yield url
    else:
        with fresh_database(backend) as fresh:
            yield fresh


async def seed(url: str, patients: int, backend: str) -> None:
    from app.config import Settings
    from app.seed import seed_database
    from app.store.bulk import is_empty
    from app.store.db import create_database
    from app.store.migrate import upgrade
    from app.synth import RegionConfig

    await upgrade(url)
    db = create_database(Settings(database_url=url))
    try:
        empty = await is_empty(db)
    finally:
        await db.dispose()
    if not empty:
        line(backend, "seed", "database already holds data: reused")
        return
    t0 = time.perf_counter()
    await seed_database(
        Settings(database_url=url),
        RegionConfig(patients=patients, today=TODAY),
        if_empty=True,
        validate_every=0,
        batch=250,
    )
    line(backend, f"seed {patients} patients", f"{time.perf_counter() - t0:.0f} s")


async def full_runs(url: str, backend: str) -> None:
    from sqlalchemy import func, select

    from app.config import Settings
    from app.store.db import create_database
    from app.store.profiles import load_profiles
    from app.store.schema import resource
    from app.stratify.engine import Stratifier
    from app.stratify.map import load_map

    db = create_database(Settings(database_url=url))
    try:
        await load_profiles(db)
        async with db.read() as conn:
            q = select(func.count()).where(resource.c.res_type == "RiskAssessment")
            existing = int((await conn.execute(q)).scalar() or 0)
        smap = load_map()
        if existing:  # a reused database: a new map version makes every RiskAssessment change
            smap.version = f"{smap.version}+bench{int(time.time())}"
        engine = Stratifier(db, smap, day=TODAY)
        labels = (
            "first run, every RiskAssessment " + ("rewritten" if existing else "created"),
            "second run, nothing changed",
        )
        for label in labels:
            s = await engine.stratify_all()
            line(
                backend,
                f"stratify --all, {label}",
                f"{s.seconds:6.1f} s  {s.patients / s.seconds:8.0f} patients/s  "
                f"({s.patients} patients, {s.written} RiskAssessments, "
                f"{s.groups_written} Groups written)",
            )
        counts = ", ".join(f"{k} {v}" for k, v in s.counts.most_common())
        line(backend, "strata", counts)
        await marking_latency(db, backend)
    finally:
        await db.dispose()


async def marking_latency(db: Any, backend: str, rounds: int = 60) -> None:
    """What marking adds to a transaction: one patient's resources (as a transaction Bundle
    writes them) flushed with and without marking, interleaved; and the marking statement
    alone (one upsert into patient_dirty) timed inside an open transaction."""
    from app.fhir.dates import now_us
    from app.store.writer import flush, mark_patients, stage
    from app.synth import RegionConfig, generate_region

    region = generate_region(RegionConfig(patients=rounds * 2, seed=7, today=TODAY))
    people = list(region.patient_resources())

    run = f"{int(time.time()) % 100000}"

    def staged(k: int, tag: str) -> list[Any]:
        out = []
        pid = f"{tag}{run}-{k}"
        for r in people[k]:
            r = dict(r, id=pid if r["resourceType"] == "Patient" else f"{pid}-{r['id']}"[:64])
            if r["resourceType"] != "Patient":
                r["subject"] = {"reference": f"Patient/{pid}"}
            out.append(stage(r["resourceType"], r["id"], r, "POST", 1, now_us(), None))
        return out

    timings: dict[bool, list[float]] = {True: [], False: []}
    statement: list[float] = []
    for k in range(rounds * 2):
        mark = k % 2 == 0
        writes = staged(k, "bench-mark-" if mark else "bench-nomark-")
        t0 = time.perf_counter()
        async with db.write() as conn:
            await flush(conn, writes, mark=mark)
        timings[mark].append(time.perf_counter() - t0)
        async with db.write() as conn:
            t0 = time.perf_counter()
            await mark_patients(conn, [f"bench-upsert-{run}-{k}"], now_us())
            statement.append(time.perf_counter() - t0)
    n = len(people[0])
    with_mark, without = statistics.median(timings[True]), statistics.median(timings[False])
    line(
        backend,
        f"transaction of one patient (~{n} resources), p50",
        f"{with_mark * 1000:6.1f} ms marked, {without * 1000:6.1f} ms unmarked "
        f"(difference {(with_mark - without) * 1000:+.1f} ms: noise)",
    )
    line(
        backend,
        "marking: the patient_dirty upsert inside the transaction",
        f"{statistics.median(statement) * 1000:6.2f} ms p50, "
        f"{sorted(statement)[int(len(statement) * 0.95)] * 1000:.2f} ms p95",
    )


def server_checks(url: str, backend: str) -> None:
    """The background task and the big Groups, on a 2-worker server."""
    import os

    os.environ["PHM_STRATIFY_INTERVAL"] = "2"
    os.environ["PHM_STRATIFY_DATE"] = TODAY.isoformat()
    with running_server(url, workers=2) as base, httpx.Client(base_url=base, timeout=120) as c:
        delays = []
        for k in range(5):
            bundle = new_patient_bundle(f"bench-ingest-{k}-{int(time.time())}")
            t0 = time.perf_counter()
            r = c.post("/", json=bundle, headers={"content-type": "application/fhir+json"})
            assert r.status_code == 200, r.text
            pid = bundle["entry"][0]["resource"]["id"]
            while c.get(f"/RiskAssessment/stratum-{pid}").status_code != 200:
                if time.perf_counter() - t0 > 60:
                    break
                time.sleep(0.05)
            delays.append(time.perf_counter() - t0)
        line(
            backend,
            "POST / of one patient -> RiskAssessment (background task)",
            f"median {statistics.median(delays):.2f} s, max {max(delays):.2f} s (n=5)",
        )
        groups(c, backend)


def groups(c: httpx.Client, backend: str) -> None:
    r = c.get("/$stratification-summary")
    counts = {}
    for p in r.json()["parameter"]:
        if p["name"] == "stratum":
            parts = {q["name"]: q for q in p["part"]}
            counts[parts["group"]["valueReference"]["reference"]] = parts["count"]["valueInteger"]
    big = max(counts, key=lambda k: counts[k])
    mid = min((k for k in counts if counts[k] >= 20000), key=lambda k: counts[k], default=big)

    def timed(path: str, n: int = 5) -> tuple[float, httpx.Response]:
        samples, resp = [], None
        for _ in range(n):
            t0 = time.perf_counter()
            resp = c.get(path)
            samples.append(time.perf_counter() - t0)
        assert resp is not None and resp.status_code == 200, (path, resp and resp.text[:200])
        return statistics.median(samples), resp

    dt, resp = timed("/$stratification-summary")
    line(backend, "GET /$stratification-summary", f"{dt * 1000:7.1f} ms")
    for label, gid in (("largest", big), (">= 20,000", mid)):
        dt, resp = timed(f"/{gid}")
        line(
            backend,
            f"GET {gid} ({counts[gid]} members, {label})",
            f"{dt * 1000:7.1f} ms, {len(resp.content) / 1e6:.1f} MB",
        )
    dt, _ = timed(f"/{mid}?_elements=id,quantity,code")
    line(backend, f"GET {mid}?_elements=id,quantity,code", f"{dt * 1000:7.1f} ms")
    member = c.get(f"/{mid}").json()["member"][len(counts) % 7]["entity"]["reference"]
    dt, _ = timed(f"/Group?member={member}&_elements=id")
    line(backend, "GET /Group?member=Patient/x (the patient's Groups)", f"{dt * 1000:7.1f} ms")
    gid = mid.split("/")[1]
    path = f"/Patient?_has:Group:member:_id={gid}&_count=100&_elements=id"
    t0, pages, r = time.perf_counter(), 0, c.get(path)
    first = time.perf_counter() - t0
    while r.status_code == 200 and pages < 50:
        pages += 1
        nxt = [link["url"] for link in r.json().get("link", ()) if link["relation"] == "next"]
        if not nxt:
            break
        r = c.get(nxt[0])
    total = time.perf_counter() - t0
    if r.status_code != 200:
        line(backend, f"GET {path}", f"HTTP {r.status_code}")
    else:
        line(
            backend,
            "page the members: Patient?_has:Group:member:_id=...&_count=100",
            f"first page {first * 1000:.0f} ms, {pages} pages in {total * 1000:.0f} ms",
        )


def new_patient_bundle(pid: str) -> dict[str, Any]:
    """A newly diagnosed person with type 2 diabetes and a high HbA1c."""
    subject = {"reference": f"Patient/{pid}"}
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": pid,
                    "gender": "male",
                    "birthDate": "1961-03-02",
                },
                "request": {"method": "PUT", "url": f"Patient/{pid}"},
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "subject": subject,
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "code": {
                        "coding": [{"system": "http://hl7.org/fhir/sid/icpc-2", "code": "T90"}]
                    },
                },
                "request": {"method": "POST", "url": "Condition"},
            },
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "subject": subject,
                    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}]},
                    "effectiveDateTime": "2026-06-01",
                    "valueQuantity": {
                        "value": 8.6,
                        "unit": "%",
                        "system": "http://unitsofmeasure.org",
                        "code": "%",
                    },
                },
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--patients", type=int, default=102000)
    ap.add_argument("--backend", default="sqlite,postgresql")
    ap.add_argument(
        "--sqlite-url", help="use this database (seeded if empty) instead of a fresh one"
    )
    ap.add_argument("--postgres-url", help="likewise for PostgreSQL")
    ap.add_argument(
        "--skip-server",
        action="store_true",
        help="skip the server checks (background task, Group reads)",
    )
    args = ap.parse_args()
    for backend in args.backend.split(","):
        given = args.sqlite_url if backend == "sqlite" else args.postgres_url
        with database(backend, given) as url:
            asyncio.run(seed(url, args.patients, backend))
            asyncio.run(full_runs(url, backend))
            if not args.skip_server:
                server_checks(url, backend)


if __name__ == "__main__":
    main()
