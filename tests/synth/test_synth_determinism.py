"""Same configuration, same bytes; any change of seed or reference date, different output."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import orjson

from app.synth import RegionConfig, generate_region
from app.synth.bundles import patient_transaction_bundle, shared_transaction_bundle

REPO = Path(__file__).resolve().parents[2]


def _dump(config: RegionConfig) -> bytes:
    region = generate_region(config)
    parts = [orjson.dumps(region.shared_resources(), option=orjson.OPT_SORT_KEYS)]
    parts.extend(orjson.dumps(p, option=orjson.OPT_SORT_KEYS) for p in region.patient_resources())
    return b"\n".join(parts)


def test_same_seed_gives_identical_bytes() -> None:
    config = RegionConfig(patients=150, seed=11)
    assert _dump(config) == _dump(RegionConfig(patients=150, seed=11))


def test_different_seed_or_today_gives_different_output() -> None:
    base = _dump(RegionConfig(patients=150, seed=11))
    assert _dump(RegionConfig(patients=150, seed=12)) != base
    assert _dump(RegionConfig(patients=150, seed=11, today=date(2025, 12, 31))) != base


def test_today_bounds_every_date() -> None:
    today = date(2025, 3, 15)
    region = generate_region(RegionConfig(patients=100, seed=3, today=today))
    text = orjson.dumps(list(region.patient_resources())).decode()
    # no date string after the reference date appears anywhere
    import re

    later = [d for d in re.findall(r"\d{4}-\d{2}-\d{2}", text) if d > today.isoformat()]
    assert later == []


def test_slices_equal_the_full_run() -> None:
    region = generate_region(RegionConfig(patients=120, seed=5))
    full = list(region.patient_resources())
    assert list(region.patient_resources(40, 70)) == full[40:70]
    assert [p[0]["id"] for p in full] == [f"p{i:06d}" for i in range(120)]


def test_bundles_are_deterministic() -> None:
    a = generate_region(RegionConfig(patients=30, seed=9))
    b = generate_region(RegionConfig(patients=30, seed=9))
    assert orjson.dumps(shared_transaction_bundle(a.shared_resources())) == orjson.dumps(
        shared_transaction_bundle(b.shared_resources())
    )
    for pa, pb in zip(a.patient_resources(), b.patient_resources(), strict=True):
        assert orjson.dumps(patient_transaction_bundle(pa)) == orjson.dumps(
            patient_transaction_bundle(pb)
        )


def test_output_does_not_depend_on_hash_seed() -> None:
    code = (
        "import hashlib, orjson\n"
        "from app.synth import RegionConfig, generate_region\n"
        "r = generate_region(RegionConfig(patients=80, seed=21))\n"
        "h = hashlib.sha256(orjson.dumps(r.shared_resources()))\n"
        "for p in r.patient_resources(): h.update(orjson.dumps(p))\n"
        "print(h.hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(out.stdout.strip())
    region = generate_region(RegionConfig(patients=80, seed=21))
    h = hashlib.sha256(orjson.dumps(region.shared_resources()))
    for p in region.patient_resources():
        h.update(orjson.dumps(p))
    digests.add(h.hexdigest())
    assert len(digests) == 1
