"""Every population boundary of t2d-statin: a statin taken (MedicationStatement), dispensed
(MedicationDispense, CNK + ATC) or prescribed (MedicationRequest, RxNorm as Synthea sends it),
with hand-built patients (measurement period 2025-01-01 .. 2025-12-31)."""

from __future__ import annotations

import httpx

from tests.measure.cases import ADULT_BIRTH, IN_DEN, IN_NUM, OUT, Case, check_cases, diabetic
from tests.measure.resources import (
    ATC,
    CNK,
    RXNORM,
    medication_dispense,
    medication_request,
    medication_statement,
    patient,
)

# -- t2d-statin -------------------------------------------------------------------------------

ATORVASTATIN = (ATC, "C10AA05")
SIMVASTATIN_EZETIMIBE = (ATC, "C10BA02")
EZETIMIBE = (ATC, "C10AX09")
ATORVASTATIN_CNK = (CNK, "2956336")  # a CNK code next to the ATC class, as pharmacies send
SIMVASTATIN_10_RXNORM = (RXNORM, "316672")
ATORVASTATIN_80_RXNORM = (RXNORM, "259255")


def statin_cases() -> list[Case]:
    return [
        Case(
            "statement-ongoing",
            diabetic(
                "statement-ongoing",
                medication_statement("statement-ongoing", ATORVASTATIN, start="2020-03-01"),
            ),
            IN_NUM,
        ),
        Case(
            "statement-ended-before",
            diabetic(
                "statement-ended-before",
                medication_statement(
                    "statement-ended-before",
                    ATORVASTATIN,
                    start="2020-03-01",
                    end="2024-12-31",
                    status="completed",
                ),
            ),
            IN_DEN,
            "a statin that ended before the period",
        ),
        Case(
            "statement-ends-on-start",
            diabetic(
                "statement-ends-on-start",
                medication_statement(
                    "statement-ends-on-start",
                    ATORVASTATIN,
                    start="2020-03-01",
                    end="2025-01-01",
                    status="completed",
                ),
            ),
            IN_NUM,
        ),
        Case(
            "statement-starts-after",
            diabetic(
                "statement-starts-after",
                medication_statement("statement-starts-after", ATORVASTATIN, start="2026-01-01"),
            ),
            IN_DEN,
        ),
        Case(
            "statement-not-taken",
            diabetic(
                "statement-not-taken",
                medication_statement(
                    "statement-not-taken", ATORVASTATIN, start="2020-03-01", status="not-taken"
                ),
            ),
            IN_DEN,
        ),
        Case(
            "dispense-cnk-atc",
            diabetic(
                "dispense-cnk-atc",
                medication_dispense(
                    "dispense-cnk-atc",
                    ATORVASTATIN_CNK,
                    ATORVASTATIN,
                    handed_over="2025-09-08T11:00:00+02:00",
                ),
            ),
            IN_NUM,
        ),
        Case(
            "dispense-combination",
            diabetic(
                "dispense-combination",
                medication_dispense(
                    "dispense-combination", SIMVASTATIN_EZETIMIBE, handed_over="2025-12-31"
                ),
            ),
            IN_NUM,
        ),
        Case(
            "dispense-day-before",
            diabetic(
                "dispense-day-before",
                medication_dispense(
                    "dispense-day-before", ATORVASTATIN_CNK, ATORVASTATIN, handed_over="2024-12-31"
                ),
            ),
            IN_DEN,
        ),
        Case(
            "dispense-ezetimibe",
            diabetic(
                "dispense-ezetimibe",
                medication_dispense("dispense-ezetimibe", EZETIMIBE, handed_over="2025-06-01"),
            ),
            IN_DEN,
            "ezetimibe is not a statin",
        ),
        Case(
            "request-rxnorm-active",
            diabetic(
                "request-rxnorm-active",
                medication_request(
                    "request-rxnorm-active", SIMVASTATIN_10_RXNORM, authored="2023-01-02"
                ),
            ),
            IN_NUM,
            "an active prescription (Synthea's shape)",
        ),
        Case(
            "request-renewed-in-period",
            diabetic(
                "request-renewed-in-period",
                medication_request(
                    "request-renewed-in-period",
                    SIMVASTATIN_10_RXNORM,
                    authored="2025-01-02",
                    status="stopped",
                ),
            ),
            IN_NUM,
            "Synthea stops each yearly prescription when it renews it",
        ),
        Case(
            "request-completed-before",
            diabetic(
                "request-completed-before",
                medication_request(
                    "request-completed-before",
                    ATORVASTATIN_80_RXNORM,
                    authored="2019-05-01",
                    status="completed",
                ),
            ),
            IN_DEN,
            "a prescription that ended before the period",
        ),
        Case(
            "request-stopped-before",
            diabetic(
                "request-stopped-before",
                medication_request(
                    "request-stopped-before",
                    SIMVASTATIN_10_RXNORM,
                    authored="2024-12-31",
                    status="stopped",
                ),
            ),
            IN_DEN,
        ),
        Case(
            "request-after",
            diabetic(
                "request-after",
                medication_request("request-after", SIMVASTATIN_10_RXNORM, authored="2026-01-01"),
            ),
            IN_DEN,
        ),
        Case(
            "request-proposal",
            diabetic(
                "request-proposal",
                medication_request(
                    "request-proposal",
                    SIMVASTATIN_10_RXNORM,
                    authored="2025-03-01",
                    intent="proposal",
                ),
            ),
            IN_DEN,
        ),
        Case("turns-40-on-end", diabetic("turns-40-on-end", birth="1985-12-31"), IN_DEN),
        Case(
            "turns-40-day-after",
            diabetic(
                "turns-40-day-after",
                medication_statement("turns-40-day-after", ATORVASTATIN, start="2020-03-01"),
                birth="1986-01-01",
            ),
            OUT,
        ),
        Case(
            "statin-not-diabetic",
            [
                patient("statin-not-diabetic", ADULT_BIRTH),
                medication_statement("statin-not-diabetic", ATORVASTATIN, start="2020-03-01"),
            ],
            OUT,
        ),
    ]


async def test_statin(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "t2d-statin", statin_cases())
