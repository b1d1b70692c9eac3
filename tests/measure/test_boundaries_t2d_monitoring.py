"""Every population boundary of the type 2 diabetes monitoring measures (HbA1c, LDL, kidney),
with hand-built patients (measurement period 2025-01-01 .. 2025-12-31)."""

from __future__ import annotations

import httpx

from tests.measure.cases import ADULT_BIRTH, IN_DEN, IN_NUM, OUT, Case, check_cases, diabetic
from tests.measure.resources import (
    ICD10,
    T2D_ICD10,
    T2D_ICPC,
    T2D_SNOMED,
    Resource,
    condition,
    hba1c,
    hba1c_ifcc,
    ldl,
    observation,
    patient,
)

# -- t2d-hba1c-tested -------------------------------------------------------------------------


def hba1c_tested_cases() -> list[Case]:
    return [
        Case("on-start", diabetic("on-start", hba1c("on-start", 7.0, "2025-01-01")), IN_NUM),
        Case(
            "day-before-start",
            diabetic("day-before-start", hba1c("day-before-start", 7.0, "2024-12-31")),
            IN_DEN,
        ),
        Case(
            "late-day-before",
            diabetic("late-day-before", hba1c("late-day-before", 7.0, "2024-12-31T23:59:59Z")),
            IN_DEN,
        ),
        Case("on-end", diabetic("on-end", hba1c("on-end", 7.0, "2025-12-31")), IN_NUM),
        Case(
            "late-on-end",
            diabetic("late-on-end", hba1c("late-on-end", 7.0, "2025-12-31T23:59:59Z")),
            IN_NUM,
        ),
        Case(
            "local-time-on-start",
            diabetic(
                "local-time-on-start",
                hba1c("local-time-on-start", 7.0, "2025-01-01T09:30:00+01:00"),
            ),
            IN_NUM,
            "Belgian lab times carry their offset",
        ),
        Case(
            "day-after-end",
            diabetic("day-after-end", hba1c("day-after-end", 7.0, "2026-01-01")),
            IN_DEN,
        ),
        Case("no-hba1c", diabetic("no-hba1c"), IN_DEN),
        Case(
            "icpc-t90",
            diabetic("icpc-t90", hba1c("icpc-t90", 6.5, "2025-06-01"), code=T2D_ICPC),
            IN_NUM,
            "ICPC-2 T90 is T2D",
        ),
        Case(
            "icd10-e11",
            diabetic("icd10-e11", hba1c("icd10-e11", 6.5, "2025-06-01"), code=T2D_ICD10),
            IN_NUM,
            "ICD-10 E11 is T2D",
        ),
        Case("icd10-e11-9", diabetic("icd10-e11-9", code=(ICD10, "E11.9")), IN_DEN),
        Case("ifcc", diabetic("ifcc", hba1c_ifcc("ifcc", 53, "2025-06-01")), IN_NUM),
        Case(
            "hplc", diabetic("hplc", observation("hplc", "17856-6", 6.8, "%", "2025-06-01")), IN_NUM
        ),
        Case(
            "preliminary",
            diabetic("preliminary", hba1c("preliminary", 7.0, "2025-06-01", status="preliminary")),
            IN_DEN,
            "a preliminary result does not count",
        ),
        Case(
            "resolved",
            [
                patient("resolved", ADULT_BIRTH),
                condition("resolved", T2D_SNOMED, clinical="resolved"),
                hba1c("resolved", 7.0, "2025-06-01"),
            ],
            OUT,
        ),
        Case(
            "remission",
            [
                patient("remission", ADULT_BIRTH),
                condition("remission", T2D_SNOMED, clinical="remission"),
            ],
            OUT,
        ),
        Case(
            "refuted",
            [
                patient("refuted", ADULT_BIRTH),
                condition("refuted", T2D_SNOMED, verification="refuted"),
            ],
            OUT,
        ),
        Case(
            "recurrence",
            [
                patient("recurrence", ADULT_BIRTH),
                condition("recurrence", T2D_SNOMED, clinical="recurrence"),
            ],
            IN_DEN,
        ),
        Case(
            "type-1",
            [
                patient("type-1", ADULT_BIRTH),
                condition("type-1", (ICD10, "E10")),
                hba1c("type-1", 7.0, "2025-06-01"),
            ],
            OUT,
        ),
        Case(
            "no-diabetes",
            [patient("no-diabetes", ADULT_BIRTH), hba1c("no-diabetes", 6.0, "2025-06-01")],
            OUT,
        ),
        Case(
            "turns-18-on-end",
            diabetic("turns-18-on-end", birth="2007-12-31"),
            IN_DEN,
            "18th birthday on periodEnd",
        ),
        Case(
            "turns-18-day-after",
            diabetic("turns-18-day-after", birth="2008-01-01"),
            OUT,
            "18th birthday the day after periodEnd",
        ),
        Case(
            "died-on-end",
            [
                patient("died-on-end", ADULT_BIRTH, deceasedDateTime="2025-12-31T08:00:00Z"),
                condition("died-on-end", T2D_SNOMED),
            ],
            OUT,
            "dead by the end of the period",
        ),
        Case(
            "died-day-after",
            [
                patient("died-day-after", ADULT_BIRTH, deceasedDateTime="2026-01-01"),
                condition("died-day-after", T2D_SNOMED),
                hba1c("died-day-after", 7.0, "2025-06-01"),
            ],
            IN_NUM,
        ),
        Case(
            "deceased-undated",
            [
                patient("deceased-undated", ADULT_BIRTH, deceasedBoolean=True),
                condition("deceased-undated", T2D_SNOMED),
            ],
            OUT,
        ),
        Case(
            "not-deceased",
            [
                patient("not-deceased", ADULT_BIRTH, deceasedBoolean=False),
                condition("not-deceased", T2D_SNOMED),
            ],
            IN_DEN,
        ),
    ]


async def test_hba1c_tested(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "t2d-hba1c-tested", hba1c_tested_cases())


# -- t2d-hba1c-poor-control (lower is better) ---------------------------------------------------


def poor_control_cases() -> list[Case]:
    def one(pid: str, *values: tuple[float, str, str], why: str = "") -> list[Resource]:
        obs = [hba1c(pid, v, d) if unit == "%" else hba1c_ifcc(pid, v, d) for v, unit, d in values]
        return diabetic(pid, *obs)

    return [
        Case("exactly-8", one("exactly-8", (8.0, "%", "2025-05-01")), IN_DEN, "not > 8"),
        Case("8-point-1", one("8-point-1", (8.1, "%", "2025-05-01")), IN_NUM),
        Case("ifcc-64", one("ifcc-64", (64, "mmol/mol", "2025-05-01")), IN_DEN),
        Case("ifcc-65", one("ifcc-65", (65, "mmol/mol", "2025-05-01")), IN_NUM),
        Case(
            "high-then-normal",
            one("high-then-normal", (9.5, "%", "2025-02-01"), (6.9, "%", "2025-10-01")),
            IN_DEN,
            "the last counts",
        ),
        Case(
            "normal-then-high",
            one("normal-then-high", (6.9, "%", "2025-02-01"), (9.5, "%", "2025-10-01")),
            IN_NUM,
        ),
        Case(
            "high-ifcc-then-normal-percent",
            one(
                "high-ifcc-then-normal-percent",
                (80, "mmol/mol", "2025-02-01"),
                (7.0, "%", "2025-10-01"),
            ),
            IN_DEN,
            "the last across both units",
        ),
        Case(
            "normal-percent-then-high-ifcc",
            one(
                "normal-percent-then-high-ifcc",
                (7.0, "%", "2025-02-01"),
                (80, "mmol/mol", "2025-10-01"),
            ),
            IN_NUM,
        ),
        Case(
            "high-after-period",
            one("high-after-period", (7.0, "%", "2025-12-31"), (10.0, "%", "2026-01-01")),
            IN_DEN,
        ),
        Case(
            "high-before-period",
            one("high-before-period", (10.0, "%", "2024-12-31"), (7.0, "%", "2025-01-01")),
            IN_DEN,
        ),
        Case(
            "only-high-before",
            one("only-high-before", (10.0, "%", "2024-12-31")),
            OUT,
            "no HbA1c in the period: not in the initial population",
        ),
        Case(
            "high-on-end",
            one("high-on-end", (6.0, "%", "2025-06-01"), (8.5, "%", "2025-12-31")),
            IN_NUM,
        ),
        Case(
            "not-diabetic",
            [patient("not-diabetic", ADULT_BIRTH), hba1c("not-diabetic", 9.0, "2025-06-01")],
            OUT,
        ),
    ]


async def test_hba1c_poor_control(measure_client: httpx.AsyncClient) -> None:
    await check_cases(
        measure_client, "t2d-hba1c-poor-control", poor_control_cases(), notation="decrease"
    )


# -- t2d-ldl-tested ---------------------------------------------------------------------------


def ldl_tested_cases() -> list[Case]:
    return [
        Case("on-start", diabetic("on-start", ldl("on-start", 90, "2025-01-01")), IN_NUM),
        Case("day-before", diabetic("day-before", ldl("day-before", 90, "2024-12-31")), IN_DEN),
        Case("on-end", diabetic("on-end", ldl("on-end", 90, "2025-12-31")), IN_NUM),
        Case("day-after", diabetic("day-after", ldl("day-after", 90, "2026-01-01")), IN_DEN),
        Case(
            "calculated",
            diabetic("calculated", ldl("calculated", 90, "2025-06-01", loinc="13457-7")),
            IN_NUM,
        ),
        Case(
            "ldl-2089-1",
            diabetic("ldl-2089-1", ldl("ldl-2089-1", 90, "2025-06-01", loinc="2089-1")),
            IN_NUM,
        ),
        Case("molar", diabetic("molar", ldl("molar", 2.3, "2025-06-01", unit="mmol/L")), IN_NUM),
        Case(
            "total-cholesterol",
            diabetic(
                "total-cholesterol",
                observation("total-cholesterol", "2093-3", 190, "mg/dL", "2025-06-01"),
            ),
            IN_DEN,
        ),
        Case("icpc", diabetic("icpc", code=T2D_ICPC), IN_DEN),
        Case(
            "not-diabetic",
            [patient("not-diabetic", ADULT_BIRTH), ldl("not-diabetic", 90, "2025-06-01")],
            OUT,
        ),
        Case("minor", diabetic("minor", ldl("minor", 90, "2025-06-01"), birth="2008-01-01"), OUT),
    ]


async def test_ldl_tested(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "t2d-ldl-tested", ldl_tested_cases())


# -- t2d-kidney-monitoring --------------------------------------------------------------------


def kidney_cases() -> list[Case]:
    def egfr(pid: str, when: str, loinc: str = "62238-1") -> Resource:
        return observation(pid, loinc, 75, "mL/min/{1.73_m2}", when)

    def uacr(pid: str, when: str, loinc: str = "9318-7") -> Resource:
        return observation(pid, loinc, 20, "mg/g", when)

    return [
        Case(
            "both", diabetic("both", egfr("both", "2025-03-01"), uacr("both", "2025-03-01")), IN_NUM
        ),
        Case(
            "both-on-edges",
            diabetic(
                "both-on-edges",
                egfr("both-on-edges", "2025-01-01"),
                uacr("both-on-edges", "2025-12-31"),
            ),
            IN_NUM,
        ),
        Case("egfr-only", diabetic("egfr-only", egfr("egfr-only", "2025-03-01")), IN_DEN),
        Case("uacr-only", diabetic("uacr-only", uacr("uacr-only", "2025-03-01")), IN_DEN),
        Case(
            "uacr-day-before",
            diabetic(
                "uacr-day-before",
                egfr("uacr-day-before", "2025-03-01"),
                uacr("uacr-day-before", "2024-12-31"),
            ),
            IN_DEN,
        ),
        Case(
            "egfr-day-after",
            diabetic(
                "egfr-day-after",
                egfr("egfr-day-after", "2026-01-01"),
                uacr("egfr-day-after", "2025-03-01"),
            ),
            IN_DEN,
        ),
        Case(
            "ckd-epi-2021-mg-mmol",
            diabetic(
                "ckd-epi-2021-mg-mmol",
                egfr("ckd-epi-2021-mg-mmol", "2025-03-01", "98979-8"),
                observation("ckd-epi-2021-mg-mmol", "14959-1", 3.0, "mg/mmol", "2025-04-01"),
            ),
            IN_NUM,
        ),
        Case(
            "mdrd",
            diabetic(
                "mdrd", egfr("mdrd", "2025-03-01", "33914-3"), uacr("mdrd", "2025-03-01", "32294-1")
            ),
            IN_NUM,
        ),
        Case(
            "not-diabetic",
            [
                patient("not-diabetic", ADULT_BIRTH),
                egfr("not-diabetic", "2025-03-01"),
                uacr("not-diabetic", "2025-03-01"),
            ],
            OUT,
        ),
    ]


async def test_kidney_monitoring(measure_client: httpx.AsyncClient) -> None:
    await check_cases(measure_client, "t2d-kidney-monitoring", kidney_cases())
