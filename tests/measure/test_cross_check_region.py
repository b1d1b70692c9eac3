"""Cross-check on a seeded synthetic region (400 inhabitants, the `phm seed` bulk path): every
Measure of the library, its populations patient by patient and its team, age-band and sex
strata, against the plain-Python reading of the generated resources in `oracle.py`."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import httpx
import pytest

from app.store.bulk import load
from app.synth import RegionConfig, generate_region
from tests.measure.oracle import DEN, IP, NUM, Patient, Period, age_band, populations
from tests.measure.reports import assert_strata_add_up, evaluate, memberships, strata

PERIOD = Period(date(2025, 7, 1), date(2026, 6, 30))  # the region's last year (README)
QUERY = {"periodStart": "2025-07-01", "periodEnd": "2026-06-30"}
TEAM_SYSTEM = "https://phm-fhir.example.org/fhir/NamingSystem/neighbourhood-team-group"
MEASURES = [
    "t2d-hba1c-tested",
    "t2d-hba1c-poor-control",
    "t2d-ldl-tested",
    "t2d-kidney-monitoring",
    "t2d-statin",
    "ascvd-statin",
    "ascvd-antithrombotic",
    "ascvd-ldl-target",
    "hypertension-bp-controlled",
    "polypharmacy-medication-review",
    "population-per-stratum",
]


class Region:
    """The generated resources, and what the oracle makes of them."""

    def __init__(self) -> None:
        region = generate_region(RegionConfig(patients=400, seed=42))
        self.shared = region.shared_resources()
        self.per_patient = list(region.patient_resources())
        self.patients = [Patient(rs, PERIOD) for rs in self.per_patient]
        self.team = {
            m["entity"]["reference"].removeprefix("Patient/"): g["identifier"][0]["value"]
            for g in self.shared
            if g["resourceType"] == "Group" and g["identifier"][0]["system"] == TEAM_SYSTEM
            for m in g.get("member", [])
        }
        self.expected: dict[str, dict[str, set[str]]] = {m: {} for m in MEASURES}
        for p in self.patients:
            for measure, pops in populations(p).items():
                self.expected[measure][p.id] = pops

    def strata(self, measure: str, value_of: Any) -> dict[str, dict[str, int]]:
        out: dict[str, Counter[str]] = {}
        for p in self.patients:
            for pop in self.expected[measure].get(p.id, ()):
                out.setdefault(value_of(p), Counter())[pop] += 1
        return {k: dict(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def region() -> Region:
    return Region()


async def test_every_measure_matches_the_region(
    app: Any, measure_client: httpx.AsyncClient, region: Region
) -> None:
    batches = [region.shared] + [
        sum(region.per_patient[i : i + 100], []) for i in range(0, len(region.per_patient), 100)
    ]
    await load(app.state.db, batches)  # ends with ANALYZE, as `phm seed` does
    value_of = {
        "neighbourhood-team": lambda p: region.team.get(p.id, "unknown"),
        "age-band": age_band,
        "sex": lambda p: p.patient.get("gender", "unknown"),
    }
    for measure in MEASURES:
        report = await evaluate(measure_client, measure, reportType="subject-list", **QUERY)
        want = region.expected[measure]
        got = memberships(report)
        wrong = {
            pid: (sorted(got.get(pid, ())), sorted(want.get(pid, ())))
            for pid in set(got) | set(want)
            if got.get(pid, set()) != want.get(pid, set())
        }
        assert not wrong, f"{measure}: patient: (got, expected) {wrong}"
        assert_strata_add_up(report)
        for stratifier, of in value_of.items():
            got_strata = {
                k: {pop: n for pop, n in v.items() if n}
                for k, v in strata(report, stratifier).items()
            }
            assert got_strata == region.strata(measure, of), (measure, stratifier)
        team_x_stratum = strata(report, "team-x-stratum")
        assert {k[0] for k in team_x_stratum} == set(strata(report, "neighbourhood-team"))


def test_the_region_is_not_trivial(region: Region) -> None:
    """Each proportion measure has patients in and out of its numerator, so the comparison
    above means something (ascvd-ldl-target excepted: see the realism test below)."""
    for measure in MEASURES[:-1]:
        pops = Counter(pop for p in region.expected[measure].values() for pop in p)
        assert pops[DEN] >= 3, measure
        if measure != "ascvd-ldl-target":
            assert 0 < pops[NUM] < pops[DEN] or measure == "polypharmacy-medication-review", (
                measure,
                pops,
            )
    assert len(region.expected["population-per-stratum"]) == 400
    assert all(p == {IP} for p in region.expected["population-per-stratum"].values())

