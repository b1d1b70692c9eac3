"""Search benchmark at about a million resources: latency percentiles of typical care-app
searches against a running server.

    python bench/search.py [--copies 5] [--backend sqlite,postgresql] [--requests 200]

Loads `copies` x the 617 Synthea patients (191k resources each) through the bulk path (the same
indexing as the API), then times, over HTTP on one server worker:
  - Observation?patient=X&code=http://loinc.org|4548-4&_sort=-date   (target p50 < 15 ms, p99 < 60)
  - Patient/X/$everything?_count=1000 for patients with ~500 resources (target < 50 ms)
  - Condition?patient=X&clinical-status=active, Patient?family=prefix, Encounter?patient=X&date=ge
  - following `next` links down to page 1,000 of Observation?category=vital-signs&_count=20
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import SHARED, fresh_database, running_server  # noqa: E402

URN = re.compile(r'(urn:uuid:[0-9a-f-]{36})')


def literal_copies(files: list[Path], copies: int) -> Any:
    """Synthea transaction bundles as lists of resources with literal ids, `copies` times."""
    seen: set[str] = set()  # Synthea repeats shared Organizations/Practitioners across bundles
    for k in range(copies):
        for f in files:
            bundle = orjson.loads(f.read_bytes())
            ids = {}
            for e in bundle["entry"]:
                res = e["resource"]
                rid = e["fullUrl"].rsplit(":", 1)[-1] + f"-{k}"
                ids[e["fullUrl"]] = f"{res['resourceType']}/{rid}"
                res["id"] = rid
            raw = URN.sub(lambda m, ids=ids: ids.get(m.group(1), m.group(1)),
                          orjson.dumps([e["resource"] for e in bundle["entry"]]).decode())
            batch = [r for r in orjson.loads(raw)
                     if f"{r['resourceType']}/{r['id']}" not in seen]
            seen.update(f"{r['resourceType']}/{r['id']}" for r in batch)
            yield batch


async def bulk(db_url: str, batches: Any) -> int:
    from app.config import Settings
    from app.store.bulk import load
    from app.store.db import create_database

    db = create_database(Settings(database_url=db_url))
    try:
        return await load(db, batches)
    finally:
        await db.dispose()


def pct(samples: list[float]) -> str:
    s = sorted(samples)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))] * 1000  # noqa: E731
    return f"p50 {p(0.5):7.1f} ms  p95 {p(0.95):7.1f} ms  p99 {p(0.99):7.1f} ms  (n={len(s)})"


def time_requests(client: httpx.Client, urls: list[str]) -> list[float]:
    out = []
    for u in urls:
        t = time.perf_counter()
        r = client.get(u)
        out.append(time.perf_counter() - t)
        if r.status_code != 200:
            raise RuntimeError(f"{u}: {r.status_code} {r.text[:200]}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--backend", default="sqlite,postgresql")
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    from app.store.migrate import upgrade_sync

    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(SHARED / "synthea-r4" / "synthea-r4-617.tgz") as tar:
            tar.extractall(tmp, filter="data")
        files = sorted(Path(tmp, "R4").glob("*.json"))
        for backend in args.backend.split(","):
            with fresh_database(backend) as db_url:
                upgrade_sync(db_url)
                t0 = time.perf_counter()
                n = asyncio.run(bulk(db_url, literal_copies(files, args.copies)))
                dt = time.perf_counter() - t0
                print(f"{backend}: loaded {n} resources in {dt:.0f} s ({n / dt:.0f}/s)")
                with running_server(db_url, workers=1) as url:
                    run_queries(url, args.requests)


def run_queries(url: str, n: int) -> None:
    with httpx.Client(base_url=url, timeout=120) as c:
        hba1c = c.get("/Observation", params={"code": "http://loinc.org|4548-4",
                                              "_count": "1000", "_elements": "subject"}).json()
        patients = list(dict.fromkeys(e["resource"]["subject"]["reference"].split("/")[1]
                                      for e in hba1c.get("entry", [])))[:n]
        all_patients = [e["resource"]["id"] for e in c.get(
            "/Patient", params={"_count": str(n), "_elements": "id"}).json()["entry"]]
        urls = [f"/Observation?patient={p}&code=http://loinc.org|4548-4&_sort=-date"
                for p in patients]
        time_requests(c, urls[:10])
        print("  Observation?patient&code&_sort=-date      ", pct(time_requests(c, urls)))
        sizes = []
        for p in all_patients[:60]:
            b = c.get(f"/Patient/{p}/$everything", params={"_count": "1000"}).json()
            sizes.append((abs(len(b.get("entry", [])) - 500), p))
        near500 = [p for _, p in sorted(sizes)[:20]]
        ev = c.get(f"/Patient/{near500[0]}/$everything", params={"_count": "1000"}).json()
        print(f"  $everything (~{len(ev.get('entry', []))} resources)                ",
              pct(time_requests(c, [f"/Patient/{p}/$everything?_count=1000"
                                    for p in near500 * 5])))
        print("  Condition?patient&clinical-status          ", pct(time_requests(
            c, [f"/Condition?patient={p}&clinical-status=active" for p in all_patients])))
        print("  Encounter?patient&date=ge2015              ", pct(time_requests(
            c, [f"/Encounter?patient={p}&date=ge2015-01-01" for p in all_patients])))
        print("  Patient?family=<prefix>                    ", pct(time_requests(
            c, [f"/Patient?family={x}" for x in ("Sm", "Jo", "Wi", "Br", "Mi") * (n // 5)])))
        link = "/Observation?category=vital-signs&_count=20&_total=none"
        deep: list[float] = []
        for page in range(1, 1001):
            t = time.perf_counter()
            b = c.get(link).json()
            if page > 990:
                deep.append(time.perf_counter() - t)
            nxt = [lk["url"] for lk in b["link"] if lk["relation"] == "next"]
            if not nxt:
                break
            link = nxt[0].replace(url, "")
        print(f"  paging, pages 991-1000 (reached {page})      ", pct(deep))
        print(f"  mean per page {statistics.mean(deep) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
