"""Stratifiers: %ageBand boundaries, Patient.gender, %neighbourhoodTeam and %stratum Groups,
the team x stratum component stratifier, and strata that add up to every population."""

from __future__ import annotations

from typing import Any

import httpx

from app.measure.evaluator import evaluation_context
from tests.measure.cases import ADULT_BIRTH
from tests.measure.reports import assert_strata_add_up, counts, evaluate, strata
from tests.measure.resources import (
    T2D_SNOMED,
    Resource,
    condition,
    group,
    hba1c,
    patient,
    post_transaction,
)

# age on 2025-12-31 -> birth date: each band's edges, and the day that tips them over
AGES = {
    "age-0": ("2025-12-31", "0-17"),
    "age-17": ("2008-01-01", "0-17"),
    "age-18": ("2007-12-31", "18-44"),
    "age-44": ("1981-01-01", "18-44"),
    "age-45": ("1980-12-31", "45-64"),
    "age-64": ("1961-01-01", "45-64"),
    "age-65": ("1960-12-31", "65-74"),
    "age-74": ("1951-01-01", "65-74"),
    "age-75": ("1950-12-31", "75-84"),
    "age-84": ("1941-01-01", "75-84"),
    "age-85": ("1940-12-31", "85+"),
    "age-101": ("1924-02-29", "85+"),
}


async def test_age_bands_at_period_end(measure_client: httpx.AsyncClient) -> None:
    await post_transaction(
        measure_client, [patient(pid, birth) for pid, (birth, _) in AGES.items()]
    )
    for pid, (_, band) in AGES.items():
        report = await evaluate(measure_client, "population-per-stratum", subject=f"Patient/{pid}")
        assert strata(report, "age-band") == {band: {"initial-population": 1}}, pid
    region = await evaluate(measure_client, "population-per-stratum")
    expected: dict[str, int] = {}
    for _, band in AGES.values():
        expected[band] = expected.get(band, 0) + 1
    assert {k: v["initial-population"] for k, v in strata(region, "age-band").items()} == expected
    assert_strata_add_up(region)


def stratified_region() -> list[Resource]:
    """Eight diabetics over two teams and two strata (plus one in neither), some tested."""
    out: list[Resource] = []
    plan = [  # id, gender, team, stratum, tested
        ("d1", "female", "zl1", "chronic-stable", True),
        ("d2", "male", "zl1", "chronic-stable", False),
        ("d3", "female", "zl1", "chronic-uncontrolled", True),
        ("d4", "male", "zl2", "chronic-uncontrolled", True),
        ("d5", "other", "zl2", "chronic-uncontrolled", False),
        ("d6", "female", "zl2", None, True),
        ("d7", None, None, "chronic-stable", True),
        ("d8", "male", None, None, False),
    ]
    for pid, gender, _, _, tested in plan:
        p = patient(pid, ADULT_BIRTH, gender or "female")
        if gender is None:
            del p["gender"]
        out += [p, condition(pid, T2D_SNOMED)]
        if tested:
            out.append(hba1c(pid, 7.0, "2025-04-01"))
    out.append(patient("healthy", ADULT_BIRTH))  # in a team, in no population
    for team in ("zl1", "zl2"):
        members = [pid for pid, _, t, _, _ in plan if t == team]
        out.append(group(f"team-{team}", members + ["healthy"] * (team == "zl1"), team=team))
    for stratum in ("chronic-stable", "chronic-uncontrolled"):
        members = [pid for pid, _, _, s, _ in plan if s == stratum]
        out.append(group(f"stratum-{stratum}", members, stratum=stratum))
    return out


async def test_team_stratum_sex_strata(measure_client: httpx.AsyncClient) -> None:
    await post_transaction(measure_client, stratified_region())
    report = await evaluate(measure_client, "t2d-hba1c-tested")
    assert counts(report) == {"initial-population": 8, "denominator": 8, "numerator": 5}
    assert_strata_add_up(report)

    def num_den(stratifier: str) -> dict[Any, tuple[int, int]]:
        return {
            k: (v["numerator"], v["denominator"]) for k, v in strata(report, stratifier).items()
        }

    assert num_den("neighbourhood-team") == {"zl1": (2, 3), "zl2": (2, 3), "unknown": (1, 2)}
    assert num_den("stratum") == {
        "chronic-stable": (2, 3),
        "chronic-uncontrolled": (2, 3),
        "unknown": (1, 2),
    }
    assert num_den("sex") == {"female": (3, 3), "male": (1, 3), "other": (0, 1), "unknown": (1, 1)}
    assert num_den("team-x-stratum") == {
        ("zl1", "chronic-stable"): (1, 2),
        ("zl1", "chronic-uncontrolled"): (1, 1),
        ("zl2", "chronic-uncontrolled"): (1, 2),
        ("zl2", "unknown"): (1, 1),
        ("unknown", "chronic-stable"): (1, 1),
        ("unknown", "unknown"): (0, 1),
    }
    team = next(
        s for s in report["group"][0]["stratifier"] if s["code"][0]["text"] == "team-x-stratum"
    )
    for stratum in team["stratum"]:
        assert [c["code"]["text"] for c in stratum["component"]] == [
            "neighbourhood-team",
            "stratum",
        ]
        n, d = (
            next(
                p["count"] for p in stratum["population"] if p["code"]["coding"][0]["code"] == code
            )
            for code in ("numerator", "denominator")
        )
        assert stratum["measureScore"]["value"] == round(n / d, 6)
    # a Group subject stratifies its members only
    zl1 = await evaluate(measure_client, "t2d-hba1c-tested", subject="Group/team-zl1")
    assert counts(zl1) == {"initial-population": 3, "denominator": 3, "numerator": 2}
    assert set(strata(zl1, "neighbourhood-team")) == {"zl1"}
    assert_strata_add_up(zl1)
    everyone = await evaluate(measure_client, "population-per-stratum")
    assert strata(everyone, "neighbourhood-team")["zl1"] == {"initial-population": 4}
    assert_strata_add_up(everyone)


async def test_a_patient_in_two_values_of_an_axis_counts_once_in_the_first(
    measure_client: httpx.AsyncClient,
) -> None:
    """Groups written by hand may put a patient in two strata or two teams (the stratification
    engine never does): the patient counts once, in the first code the evaluation context
    lists for the axis (stratum), else the smallest code (team)."""
    listed = evaluation_context()["groups"]["stratum"]["codes"]
    first, later = listed[0], listed[-1]
    await post_transaction(
        measure_client,
        [
            patient("both", ADULT_BIRTH, "male"),
            patient("one", ADULT_BIRTH, "female"),
            # the later value's Group is written first: the order of writing does not matter
            group("stratum-later", ["both"], stratum=later),
            group("stratum-first", ["both", "one"], stratum=first),
            group("team-b", ["both"], team="zl2"),
            group("team-a", ["both", "one"], team="zl1"),
        ],
    )
    report = await evaluate(measure_client, "population-per-stratum")
    assert counts(report) == {"initial-population": 2}
    assert strata(report, "stratum") == {first: {"initial-population": 2}}
    assert strata(report, "neighbourhood-team") == {"zl1": {"initial-population": 2}}
    assert_strata_add_up(report)
    # `Patient.gender` (a stratifier) and `%sex` (supplemental data) read one column, each
    # reported in its own place
    assert strata(report, "sex") == {
        "female": {"initial-population": 1},
        "male": {"initial-population": 1},
    }
    sde = {
        o["valueCodeableConcept"]["text"]: o["component"][0]["valueInteger"]
        for o in report["contained"]
        if o["code"]["text"] == "sex"
    }
    assert sde == {"female": 1, "male": 1}
    ages = [
        (o["valueCodeableConcept"]["text"], o["component"][0]["valueInteger"])
        for o in report["contained"]
        if o["code"]["text"] == "age-band"
    ]
    (band,) = strata(report, "age-band")
    assert ages == [(band, 2)]


async def test_a_patient_without_a_birth_date_has_an_unknown_age_band(
    measure_client: httpx.AsyncClient,
) -> None:
    """The cohort holds every live patient: one without a birth date is in the 'unknown' age
    band (and its supplemental data), beside one with a birth date."""
    undated = patient("undated", ADULT_BIRTH)
    del undated["birthDate"]
    await post_transaction(measure_client, [undated, patient("dated", ADULT_BIRTH)])
    report = await evaluate(measure_client, "population-per-stratum")
    (band,) = (b for b in strata(report, "age-band") if b != "unknown")
    assert strata(report, "age-band") == {
        band: {"initial-population": 1},
        "unknown": {"initial-population": 1},
    }
    sde = {
        o["valueCodeableConcept"]["text"]: o["component"][0]["valueInteger"]
        for o in report["contained"]
        if o["code"]["text"] == "age-band"
    }
    assert sde == {band: 1, "unknown": 1}
    one = await evaluate(measure_client, "population-per-stratum", subject="Patient/undated")
    assert strata(one, "age-band") == {"unknown": {"initial-population": 1}}
