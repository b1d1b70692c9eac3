"""Every population boundary of the ASCVD secondary-prevention measures, with hand-built
patients (measurement period 2025-01-01 .. 2025-12-31)."""

from __future__ import annotations

import httpx

from tests.measure.cases import ADULT_BIRTH, IN_DEN, IN_NUM, OUT, Case, check_cases
from tests.measure.resources import (
    ATC,
    CNK,
    ICD10,
    ICPC2,
    MYOCARDIAL_INFARCTION,
    RXNORM,
    SNOMED,
    STROKE,
    T2D_SNOMED,
    Resource,
    condition,
    ldl,
    medication_dispense,
    medication_request,
    medication_statement,
    patient,
)


def ascvd(
    pid: str,
    *more: Resource,
    code: tuple[str, str] = MYOCARDIAL_INFARCTION,
    birth: str = ADULT_BIRTH,
) -> list[Resource]:
    return [patient(pid, birth, "male"), condition(pid, code), *more]


def denominator_cases() -> list[Case]:
    """Who has established ASCVD, in each code system (no numerator data)."""
    return [
        Case("snomed-coronary", ascvd("snomed-coronary", code=(SNOMED, "53741008")), IN_DEN),
        Case("snomed-stroke", ascvd("snomed-stroke", code=STROKE), IN_DEN),
        Case("snomed-pad", ascvd("snomed-pad", code=(SNOMED, "399957001")), IN_DEN),
        Case("icpc-k90", ascvd("icpc-k90", code=(ICPC2, "K90")), IN_DEN),
        Case("icd10-i21-4", ascvd("icd10-i21-4", code=(ICD10, "I21.4")), IN_DEN),
        Case("icd10-i63", ascvd("icd10-i63", code=(ICD10, "I63")), IN_DEN),
        Case(
            "resolved-mi",
            [
                patient("resolved-mi", ADULT_BIRTH),
                condition("resolved-mi", MYOCARDIAL_INFARCTION, clinical="resolved"),
            ],
            OUT,
        ),
        Case(
            "hypertension-only",
            [
                patient("hypertension-only", ADULT_BIRTH),
                condition("hypertension-only", (ICPC2, "K86")),
            ],
            OUT,
        ),
        Case(
            "t2d-only", [patient("t2d-only", ADULT_BIRTH), condition("t2d-only", T2D_SNOMED)], OUT
        ),
        Case("minor", ascvd("minor", birth="2008-01-01"), OUT),
        Case("adult-on-end", ascvd("adult-on-end", birth="2007-12-31"), IN_DEN),
        Case(
            "died",
            [
                patient("died", ADULT_BIRTH, deceasedDateTime="2025-03-01"),
                condition("died", STROKE),
            ],
            OUT,
        ),
    ]


# -- ascvd-statin -----------------------------------------------------------------------------

ROSUVASTATIN = (ATC, "C10AA07")
SIMVASTATIN_20_RXNORM = (RXNORM, "312961")


def statin_cases() -> list[Case]:
    return denominator_cases() + [
        Case(
            "statement",
            ascvd("statement", medication_statement("statement", ROSUVASTATIN, start="2024-11-01")),
            IN_NUM,
        ),
        Case(
            "statement-ended-before",
            ascvd(
                "statement-ended-before",
                medication_statement(
                    "statement-ended-before",
                    ROSUVASTATIN,
                    start="2023-01-01",
                    end="2024-12-31",
                    status="completed",
                ),
            ),
            IN_DEN,
        ),
        Case(
            "dispense-cnk-atc",
            ascvd(
                "dispense-cnk-atc",
                medication_dispense(
                    "dispense-cnk-atc", (CNK, "3040379"), ROSUVASTATIN, handed_over="2025-01-01"
                ),
            ),
            IN_NUM,
        ),
        Case(
            "dispense-after",
            ascvd(
                "dispense-after",
                medication_dispense("dispense-after", ROSUVASTATIN, handed_over="2026-01-01"),
            ),
            IN_DEN,
        ),
        Case(
            "dispense-cancelled",
            ascvd(
                "dispense-cancelled",
                medication_dispense(
                    "dispense-cancelled", ROSUVASTATIN, handed_over="2025-05-01", status="cancelled"
                ),
            ),
            IN_DEN,
        ),
        Case(
            "request-rxnorm",
            ascvd(
                "request-rxnorm",
                medication_request(
                    "request-rxnorm", SIMVASTATIN_20_RXNORM, authored="2025-12-31", status="stopped"
                ),
            ),
            IN_NUM,
        ),
        Case(
            "request-completed-before",
            ascvd(
                "request-completed-before",
                medication_request(
                    "request-completed-before",
                    SIMVASTATIN_20_RXNORM,
                    authored="2018-01-01",
                    status="completed",
                ),
            ),
            IN_DEN,
        ),
        Case(
            "request-active-older",
            ascvd(
                "request-active-older",
                medication_request(
                    "request-active-older", SIMVASTATIN_20_RXNORM, authored="2018-01-01"
                ),
            ),
            IN_NUM,
        ),
    ]


async def test_ascvd_statin(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "ascvd-statin", statin_cases())


# -- ascvd-antithrombotic ---------------------------------------------------------------------

ASPIRIN = (ATC, "B01AC06")
CLOPIDOGREL_RXNORM = (RXNORM, "309362")
APIXABAN = (ATC, "B01AF02")
ENOXAPARIN = (ATC, "B01AB05")


def antithrombotic_cases() -> list[Case]:
    return denominator_cases() + [
        Case(
            "aspirin-statement",
            ascvd(
                "aspirin-statement",
                medication_statement("aspirin-statement", ASPIRIN, start="2016-01-01"),
            ),
            IN_NUM,
        ),
        Case(
            "aspirin-stopped",
            ascvd(
                "aspirin-stopped",
                medication_statement(
                    "aspirin-stopped", ASPIRIN, start="2016-01-01", status="stopped"
                ),
            ),
            IN_DEN,
        ),
        Case(
            "apixaban-dispense",
            ascvd(
                "apixaban-dispense",
                medication_dispense(
                    "apixaban-dispense", (CNK, "3141797"), APIXABAN, handed_over="2025-12-31"
                ),
            ),
            IN_NUM,
        ),
        Case(
            "heparin-dispense",
            ascvd(
                "heparin-dispense",
                medication_dispense("heparin-dispense", ENOXAPARIN, handed_over="2025-06-01"),
            ),
            IN_DEN,
            "heparins are not long-term antithrombotics",
        ),
        Case(
            "clopidogrel-request",
            ascvd(
                "clopidogrel-request",
                medication_request(
                    "clopidogrel-request", CLOPIDOGREL_RXNORM, authored="2025-06-01"
                ),
            ),
            IN_NUM,
        ),
        Case(
            "clopidogrel-before",
            ascvd(
                "clopidogrel-before",
                medication_request(
                    "clopidogrel-before",
                    CLOPIDOGREL_RXNORM,
                    authored="2024-06-01",
                    status="completed",
                ),
            ),
            IN_DEN,
        ),
    ]


async def test_ascvd_antithrombotic(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "ascvd-antithrombotic", antithrombotic_cases())


# -- ascvd-ldl-target -------------------------------------------------------------------------


def ldl_target_cases() -> list[Case]:
    def one(pid: str, *values: tuple[float, str, str]) -> list[Resource]:
        return ascvd(pid, *(ldl(pid, v, d, unit=u) for v, u, d in values))

    return denominator_cases() + [
        Case("mg-55", one("mg-55", (55, "mg/dL", "2025-06-01")), IN_DEN, "55 is not < 55"),
        Case("mg-54-9", one("mg-54-9", (54.9, "mg/dL", "2025-06-01")), IN_NUM),
        Case("mmol-1-4", one("mmol-1-4", (1.4, "mmol/L", "2025-06-01")), IN_DEN),
        Case("mmol-1-39", one("mmol-1-39", (1.39, "mmol/L", "2025-06-01")), IN_NUM),
        Case(
            "high-then-low",
            one("high-then-low", (120, "mg/dL", "2025-02-01"), (50, "mg/dL", "2025-11-01")),
            IN_NUM,
        ),
        Case(
            "low-then-high",
            one("low-then-high", (50, "mg/dL", "2025-02-01"), (120, "mg/dL", "2025-11-01")),
            IN_DEN,
            "the last counts",
        ),
        Case(
            "low-mmol-then-high-mg",
            one(
                "low-mmol-then-high-mg", (1.2, "mmol/L", "2025-02-01"), (80, "mg/dL", "2025-11-01")
            ),
            IN_DEN,
        ),
        Case("low-before-period", one("low-before-period", (40, "mg/dL", "2024-12-31")), IN_DEN),
        Case(
            "low-after-period",
            one("low-after-period", (90, "mg/dL", "2025-12-31"), (40, "mg/dL", "2026-01-01")),
            IN_DEN,
        ),
        Case("low-on-start", one("low-on-start", (40, "mg/dL", "2025-01-01")), IN_NUM),
    ]


async def test_ascvd_ldl_target(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "ascvd-ldl-target", ldl_target_cases())
