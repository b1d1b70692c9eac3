"""Every population boundary of the hypertension, polypharmacy and population measures, with
hand-built patients (measurement period 2025-01-01 .. 2025-12-31)."""

from __future__ import annotations

import httpx

from tests.measure.cases import ADULT_BIRTH, IN_DEN, IN_NUM, IP, OUT, Case, check_cases
from tests.measure.reports import counts, evaluate, memberships, score
from tests.measure.resources import (
    ATC,
    HYPERTENSION,
    ICD10,
    ICPC2,
    SNOMED,
    Resource,
    blood_pressure,
    condition,
    medication_statement,
    patient,
    post_transaction,
    procedure,
)

# -- hypertension-bp-controlled ---------------------------------------------------------------


def hypertensive(
    pid: str,
    *readings: tuple[int, int, str],
    panel: str = "85354-9",
    code: tuple[str, str] = HYPERTENSION,
) -> list[Resource]:
    return [
        patient(pid, ADULT_BIRTH),
        condition(pid, code),
        *(blood_pressure(pid, s, d, when, panel) for s, d, when in readings),
    ]


def bp_cases() -> list[Case]:
    return [
        Case("139-89", hypertensive("139-89", (139, 89, "2025-06-01")), IN_NUM),
        Case("140-89", hypertensive("140-89", (140, 89, "2025-06-01")), IN_DEN),
        Case("139-90", hypertensive("139-90", (139, 90, "2025-06-01")), IN_DEN),
        Case(
            "high-then-139-89",
            hypertensive("high-then-139-89", (165, 100, "2025-02-01"), (139, 89, "2025-09-01")),
            IN_NUM,
            "an earlier uncontrolled reading, the last one controlled",
        ),
        Case(
            "139-89-then-140-89",
            hypertensive("139-89-then-140-89", (139, 89, "2025-02-01"), (140, 89, "2025-09-01")),
            IN_DEN,
        ),
        Case(
            "139-89-then-139-90",
            hypertensive("139-89-then-139-90", (139, 89, "2025-02-01"), (139, 90, "2025-09-01")),
            IN_DEN,
        ),
        Case(
            "crossed",
            hypertensive("crossed", (120, 95, "2025-02-01"), (150, 80, "2025-09-01")),
            IN_DEN,
            "systolic and diastolic of the same (last) reading",
        ),
        Case(
            "synthea-panel",
            hypertensive("synthea-panel", (128, 78, "2025-06-01"), panel="55284-4"),
            IN_NUM,
        ),
        Case(
            "controlled-before",
            hypertensive("controlled-before", (130, 80, "2024-12-31")),
            IN_DEN,
            "no reading in the period",
        ),
        Case(
            "high-after",
            hypertensive("high-after", (130, 80, "2025-12-31"), (170, 100, "2026-01-01")),
            IN_NUM,
        ),
        Case(
            "icpc-k86",
            hypertensive("icpc-k86", (130, 80, "2025-06-01"), code=(ICPC2, "K86")),
            IN_NUM,
        ),
        Case(
            "icd10-i10",
            hypertensive("icd10-i10", (150, 80, "2025-06-01"), code=(ICD10, "I10")),
            IN_DEN,
        ),
        Case("essential", hypertensive("essential", code=(SNOMED, "59621000")), IN_DEN),
        Case(
            "no-hypertension",
            [
                patient("no-hypertension", ADULT_BIRTH),
                blood_pressure("no-hypertension", 130, 80, "2025-06-01"),
            ],
            OUT,
        ),
        Case(
            "resolved",
            [
                patient("resolved", ADULT_BIRTH),
                condition("resolved", HYPERTENSION, clinical="resolved"),
            ],
            OUT,
        ),
        Case(
            "died",
            [
                patient("died", ADULT_BIRTH, deceasedDateTime="2025-10-01"),
                condition("died", HYPERTENSION),
                blood_pressure("died", 120, 70, "2025-06-01"),
            ],
            OUT,
        ),
    ]


async def test_hypertension_bp_controlled(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "hypertension-bp-controlled", bp_cases())


# -- polypharmacy-medication-review -----------------------------------------------------------

MEDICINES = [
    (ATC, c)
    for c in (
        "C10AA05",
        "A10BA02",
        "C09AA05",
        "C07AB07",
        "B01AC06",
        "C03CA01",
        "A02BC01",
        "N06AB06",
        "C08CA01",
        "R03AK06",
        "M01AE01",
    )
]
REVIEW = (SNOMED, "182836005")
RECONCILIATION = (SNOMED, "430193006")
AGED_75 = "1950-12-31"  # 75th birthday on 2025-12-31


def polymedicated(
    pid: str, n: int, *more: Resource, birth: str = AGED_75, last_end: str | None = None
) -> list[Resource]:
    """A patient on `n` medicines since 2024; `last_end` ends the last of them."""
    meds = [
        medication_statement(
            pid, MEDICINES[i], start="2024-03-01", end=last_end if i == n - 1 else None
        )
        for i in range(n)
    ]
    return [patient(pid, birth), *meds, *more]


def polypharmacy_cases() -> list[Case]:
    return [
        Case(
            "ten-reviewed",
            polymedicated("ten-reviewed", 10, procedure("ten-reviewed", REVIEW, "2025-06-01")),
            IN_NUM,
        ),
        Case("ten-unreviewed", polymedicated("ten-unreviewed", 10), IN_DEN),
        Case("nine", polymedicated("nine", 9, procedure("nine", REVIEW, "2025-06-01")), OUT),
        Case("eleven", polymedicated("eleven", 11), IN_DEN),
        Case(
            "tenth-ends-day-before-end",
            polymedicated("tenth-ends-day-before-end", 10, last_end="2025-12-30"),
            OUT,
            "9 medicines in effect on periodEnd",
        ),
        Case(
            "tenth-ends-on-end",
            polymedicated("tenth-ends-on-end", 10, last_end="2025-12-31"),
            IN_DEN,
        ),
        Case(
            "turns-75-day-after", polymedicated("turns-75-day-after", 10, birth="1951-01-01"), OUT
        ),
        Case(
            "review-12-months-before",
            polymedicated(
                "review-12-months-before",
                10,
                procedure("review-12-months-before", REVIEW, "2024-12-31"),
            ),
            IN_NUM,
        ),
        Case(
            "review-12-months-1-day-before",
            polymedicated(
                "review-12-months-1-day-before",
                10,
                procedure("review-12-months-1-day-before", REVIEW, "2024-12-30"),
            ),
            IN_DEN,
        ),
        Case(
            "review-on-end",
            polymedicated(
                "review-on-end", 10, procedure("review-on-end", REVIEW, "2025-12-31T18:00:00Z")
            ),
            IN_NUM,
        ),
        Case(
            "review-after-end",
            polymedicated(
                "review-after-end", 10, procedure("review-after-end", REVIEW, "2026-01-01")
            ),
            IN_DEN,
        ),
        Case(
            "review-in-progress",
            polymedicated(
                "review-in-progress",
                10,
                procedure("review-in-progress", REVIEW, "2025-06-01", status="in-progress"),
            ),
            IN_DEN,
        ),
        Case(
            "reconciliation",
            polymedicated(
                "reconciliation", 10, procedure("reconciliation", RECONCILIATION, "2025-06-01")
            ),
            IN_DEN,
            "medication reconciliation is not a review",
        ),
        Case(
            "died",
            [
                {**polymedicated("died", 10)[0], "deceasedDateTime": "2025-11-02"},
                *polymedicated("died", 10)[1:],
            ],
            OUT,
        ),
    ]


async def test_polypharmacy_medication_review(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "polypharmacy-medication-review", polypharmacy_cases())


# -- population-per-stratum (cohort) -----------------------------------------------------------


async def test_population_per_stratum(measure_client: httpx.AsyncClient) -> None:
    await post_transaction(
        measure_client,
        [
            patient("active", ADULT_BIRTH, active=True),
            patient("unknown-activity", ADULT_BIRTH),
            patient("inactive", ADULT_BIRTH, active=False),
            patient("died", ADULT_BIRTH, deceasedDateTime="2025-04-04"),
            patient("died-later", ADULT_BIRTH, deceasedDateTime="2026-04-04"),
        ],
    )
    report = await evaluate(measure_client, "population-per-stratum", reportType="subject-list")
    assert "improvementNotation" not in report  # a cohort has no score
    assert counts(report) == {IP: 3}
    assert memberships(report) == {"active": {IP}, "unknown-activity": {IP}, "died-later": {IP}}
    assert score(report) is None  # a cohort has no score
    assert "denominator" not in counts(report)
