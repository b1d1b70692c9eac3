"""``python -m app.synth``: generate a region, print its figures, optionally write it out.

A developer tool (the user-facing command is ``phm seed``): it reports generation speed
(patients/s, resources/s on one core, dicts only) and the resource count by type.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import date

from app.synth.output import write_bundles, write_ndjson
from app.synth.region import RegionConfig, generate_region


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.synth", description=__doc__)
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--teams", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--today", type=date.fromisoformat, default=date(2026, 6, 30))
    parser.add_argument("--ndjson", metavar="DIR", help="write <ResourceType>.ndjson files")
    parser.add_argument("--bundles", metavar="DIR", help="write transaction Bundle files")
    args = parser.parse_args(argv)
    config = RegionConfig(args.patients, args.teams, args.seed, args.today)

    t0 = time.perf_counter()
    region = generate_region(config)
    t1 = time.perf_counter()
    counts: Counter[str] = Counter(r["resourceType"] for r in region.shared_resources())
    shared = sum(counts.values())
    t2 = time.perf_counter()
    for resources in region.patient_resources():
        for r in resources:
            counts[r["resourceType"]] += 1
    t3 = time.perf_counter()
    n = len(region)
    patient_total = sum(counts.values()) - shared
    print(f"roster and providers: {t1 - t0:.2f} s; shared resources: {shared} in {t2 - t1:.2f} s")
    seconds = t3 - t2
    print(
        f"patients: {n} in {seconds:.2f} s = {n / seconds:,.0f} patients/s, "
        f"{patient_total / seconds:,.0f} resources/s, "
        f"{patient_total / max(n, 1):.1f} resources/patient"
    )
    for rtype, count in counts.most_common():
        print(f"  {rtype:20s} {count:>9,}")
    if args.ndjson:
        write_ndjson(region, args.ndjson, progress=True)
    if args.bundles:
        write_bundles(region, args.bundles, progress=True)


if __name__ == "__main__":
    main()
