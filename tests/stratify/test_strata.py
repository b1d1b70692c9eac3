"""Every stratum of the default map and every rule boundary, with hand-built patients posted
through `POST /` and stratified by `POST Patient/{id}/$stratify` on both databases."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from app.stratify.engine import Stratifier
from tests.stratify.conftest import (
    ICD,
    ICPC,
    RXNORM,
    SCT,
    P,
    born,
    day,
    post,
    stratify,
    stratum,
    stratum_of,
    substrata,
)

Case = Callable[[], P]


def adult() -> P:
    return P("p1", born(50))


CASES: list[tuple[str, Case, str]] = [
    # -- healthy / at risk
    ("nothing recorded", lambda: adult(), "healthy"),
    ("no birth date", lambda: P("p1"), "healthy"),
    ("prediabetes coded", lambda: adult().condition(SCT, "15777000"), "at-risk"),
    ("hba1c 5.7 exactly", lambda: adult().lab("4548-4", 5.7, "%", day(-10)), "at-risk"),
    ("hba1c 5.6", lambda: adult().lab("4548-4", 5.6, "%", day(-10)), "healthy"),
    ("bmi 30 exactly", lambda: adult().lab("39156-5", 30, "kg/m2", day(-10)), "at-risk"),
    ("bmi 29.9", lambda: adult().lab("39156-5", 29.9, "kg/m2", day(-10)), "healthy"),
    ("sbp 140 exactly", lambda: adult().bp(140, 80, day(-10)), "at-risk"),
    ("bp 139/89", lambda: adult().bp(139, 89, day(-10)), "healthy"),
    ("dbp 90 exactly", lambda: adult().bp(120, 90, day(-10)), "at-risk"),
    ("bp 160 older than 365 days", lambda: adult().bp(160, 100, day(-366)), "healthy"),
    ("bp 160 365 days ago", lambda: adult().bp(160, 100, day(-365)), "at-risk"),
    ("daily smoker", lambda: adult().smoking("449868002", day(-30)), "at-risk"),
    ("ex-smoker", lambda: adult().smoking("8517006", day(-30)), "healthy"),
    (
        "smoker, later ex-smoker",
        lambda: adult().smoking("449868002", day(-300)).smoking("8517006", day(-30)),
        "healthy",
    ),
    ("hypertension ICPC-2 K86", lambda: adult().condition(ICPC, "K86"), "at-risk"),
    ("hypertension resolved", lambda: adult().condition(ICPC, "K86", "resolved"), "healthy"),
    ("on a statin", lambda: adult().statement("C10AA05", day(-100)), "at-risk"),
    (
        "statin ended yesterday",
        lambda: adult().statement("C10AA05", day(-100), day(-1), "completed"),
        "healthy",
    ),
    (
        "statin, active line ended yesterday",
        lambda: adult().statement("C10AA05", day(-100), day(-1)),
        "healthy",
    ),
    (
        "statin, active line ends today",
        lambda: adult().statement("C10AA05", day(-100), day(0)),
        "at-risk",
    ),
    ("statin starting tomorrow", lambda: adult().statement("C10AA05", day(1)), "healthy"),
    (
        "statin dispensed twice",
        lambda: adult().dispense("C10AA05", day(-200)).dispense("C10AA05", day(-100)),
        "at-risk",
    ),
    ("statin dispensed once", lambda: adult().dispense("C10AA05", day(-100)), "healthy"),
    (
        "statin dispensed twice, one cancelled",
        lambda: adult().dispense("C10AA05", day(-200)).dispense("C10AA05", day(-100), "cancelled"),
        "healthy",
    ),
    ("RxNorm statin request (Synthea)", lambda: adult().request("316672"), "at-risk"),
    ("stopped RxNorm request", lambda: adult().request("316672", "stopped"), "healthy"),
    # -- one chronic condition / uncontrolled
    ("T2D ICPC-2 T90", lambda: adult().t2d(), "chronic-stable"),
    ("T2D ICD-10 E11.9", lambda: adult().condition(ICD, "E11.9"), "chronic-stable"),
    ("T2D SNOMED", lambda: adult().condition(SCT, "44054006"), "chronic-stable"),
    ("T2D refuted", lambda: adult().condition(SCT, "44054006", verification="refuted"), "healthy"),
    (
        "T2D entered in error",
        lambda: adult().condition(SCT, "44054006", verification="entered-in-error"),
        "healthy",
    ),
    ("T2D resolved", lambda: adult().condition(ICPC, "T90", "resolved"), "healthy"),
    (
        "T2D without status, abated yesterday",
        lambda: adult().condition(ICPC, "T90", None, abatement=day(-1)),
        "healthy",
    ),
    (
        "T2D without status, abates tomorrow",
        lambda: adult().condition(ICPC, "T90", None, abatement=day(1)),
        "chronic-stable",
    ),
    (
        "T2D hba1c 8.0 exactly",
        lambda: adult().t2d().lab("4548-4", 8.0, "%", day(-10)),
        "chronic-uncontrolled",
    ),
    ("T2D hba1c 7.9", lambda: adult().t2d().lab("4548-4", 7.9, "%", day(-10)), "chronic-stable"),
    (
        "T2D hba1c 64 mmol/mol (8.0%)",
        lambda: adult().t2d().lab("59261-8", 64, "mmol/mol", day(-10)),
        "chronic-uncontrolled",
    ),
    (
        "T2D hba1c 63 mmol/mol (7.9%)",
        lambda: adult().t2d().lab("59261-8", 63, "mmol/mol", day(-10)),
        "chronic-stable",
    ),
    (
        "T2D hba1c 64 without unit (IFCC code)",
        lambda: adult().t2d().lab("59261-8", 64, None, day(-10)),
        "chronic-uncontrolled",
    ),
    (
        "T2D hba1c in an unknown unit is ignored",
        lambda: adult().t2d().lab("4548-4", 9.0, "g/L", day(-10)),
        "chronic-stable",
    ),
    (
        "T2D latest hba1c wins",
        lambda: adult().t2d().lab("4548-4", 9.0, "%", day(-200)).lab("4548-4", 7.0, "%", day(-10)),
        "chronic-stable",
    ),
    (
        "T2D hba1c entered in error ignored",
        lambda: (
            adult()
            .t2d()
            .lab("4548-4", 7.0, "%", day(-200))
            .lab("4548-4", 9.0, "%", day(-10), "entered-in-error")
        ),
        "chronic-stable",
    ),
    (
        "T2D hba1c 9 on the last look-back day (548)",
        lambda: adult().t2d().lab("4548-4", 9.0, "%", day(-548)),
        "chronic-uncontrolled",
    ),
    (
        "T2D hba1c 9 a day too old (549)",
        lambda: adult().t2d().lab("4548-4", 9.0, "%", day(-549)),
        "chronic-stable",
    ),
    (
        "T2D hba1c 9 measured after the reference date",
        lambda: adult().t2d().lab("4548-4", 9.0, "%", day(1)),
        "chronic-stable",
    ),
    (
        "two chronic conditions",
        lambda: adult().t2d().condition(ICPC, "R95"),
        "chronic-uncontrolled",
    ),
    (
        "two codings of one disease count once",
        lambda: adult().t2d().condition(ICD, "E11.9").condition(SCT, "44054006"),
        "chronic-stable",
    ),
    (
        "IHD and MI are one ASCVD... but two value sets",
        lambda: adult().condition(ICPC, "K76").condition(ICPC, "K90"),
        "chronic-uncontrolled",
    ),
    (
        "ASCVD, LDL 100 exactly",
        lambda: adult().condition(ICPC, "K76").lab("13457-7", 100, "mg/dL", day(-10)),
        "chronic-uncontrolled",
    ),
    (
        "ASCVD, LDL 99",
        lambda: adult().condition(ICPC, "K76").lab("13457-7", 99, "mg/dL", day(-10)),
        "chronic-stable",
    ),
    (
        "ASCVD, LDL 2.59 mmol/L (100.2 mg/dL)",
        lambda: adult().condition(ICPC, "K76").lab("22748-8", 2.59, "mmol/L", day(-10)),
        "chronic-uncontrolled",
    ),
    (
        "COPD with bp 160/90",
        lambda: adult().condition(ICPC, "R95").bp(160, 90, day(-5)),
        "chronic-uncontrolled",
    ),
    (
        "COPD with bp 159/99",
        lambda: adult().condition(ICPC, "R95").bp(159, 99, day(-5)),
        "chronic-stable",
    ),
    (
        "eGFR 29",
        lambda: adult().lab("62238-1", 29, "mL/min/{1.73_m2}", day(-5)),
        "chronic-uncontrolled",
    ),
    ("eGFR 30", lambda: adult().lab("62238-1", 30, "mL/min/{1.73_m2}", day(-5)), "healthy"),
    # -- complex
    (
        "two admissions",
        lambda: adult().encounter("IMP", day(-300)).encounter("IMP", day(-20)),
        "complex",
    ),
    ("one admission", lambda: adult().encounter("IMP", day(-20)), "healthy"),
    (
        "second admission 366 days ago",
        lambda: adult().encounter("IMP", day(-366)).encounter("IMP", day(-20)),
        "healthy",
    ),
    (
        "cancelled admission ignored",
        lambda: adult().encounter("IMP", day(-30), "cancelled").encounter("IMP", day(-20)),
        "healthy",
    ),
    (
        "three emergency visits",
        lambda: (
            adult().encounter("EMER", day(-1)).encounter("EMER", day(-2)).encounter("EMER", day(-3))
        ),
        "complex",
    ),
    (
        "heart failure and one admission",
        lambda: adult().condition(ICPC, "K77").encounter("IMP", day(-20)),
        "complex",
    ),
    (
        "three chronic, ten medicines",
        lambda: adult().t2d().condition(ICPC, "R95").condition(ICPC, "P76").medicines(10),
        "complex",
    ),
    (
        "three chronic, nine medicines",
        lambda: adult().t2d().condition(ICPC, "R95").condition(ICPC, "P76").medicines(9),
        "chronic-uncontrolled",
    ),
    # -- frail or end of life
    ("frailty coded", lambda: adult().condition(SCT, "248279007"), "frail-end-of-life"),
    ("dementia (ICD-10 F03)", lambda: adult().condition(ICD, "F03"), "frail-end-of-life"),
    (
        "80th birthday on the reference date, 4 home visits",
        lambda: (
            P("p1", born(80))
            .encounter("HH", day(-10))
            .encounter("HH", day(-20))
            .encounter("HH", day(-30))
            .encounter("HH", day(-40))
        ),
        "frail-end-of-life",
    ),
    (
        "80th birthday tomorrow, 4 home visits",
        lambda: (
            P("p1", born(80, -1))
            .encounter("HH", day(-10))
            .encounter("HH", day(-20))
            .encounter("HH", day(-30))
            .encounter("HH", day(-40))
        ),
        "healthy",
    ),
    (
        "aged 85, 3 home visits",
        lambda: (
            P("p1", born(85))
            .encounter("HH", day(-10))
            .encounter("HH", day(-20))
            .encounter("HH", day(-30))
        ),
        "healthy",
    ),
]


@pytest.mark.parametrize(
    ("builder", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
async def test_stratum(
    client: httpx.AsyncClient, engine: Stratifier, builder: Case, expected: str
) -> None:
    assert await stratum_of(client, builder()) == expected


SUB_CASES: list[tuple[str, Case, list[str]]] = [
    (
        "T2D on metformin",
        lambda: adult().t2d().statement("A10BA02", day(-300)),
        ["t2d-lifestyle-oral"],
    ),
    ("T2D on lifestyle", lambda: adult().t2d(), ["t2d-lifestyle-oral"]),
    (
        "T2D on insulin",
        lambda: adult().t2d().statement("A10AE04", day(-300)),
        ["t2d-insulin-complications"],
    ),
    (
        "T2D, insulin stopped yesterday",
        lambda: adult().t2d().statement("A10AE04", day(-300), day(-1), "completed"),
        ["t2d-lifestyle-oral"],
    ),
    (
        "T2D with retinopathy",
        lambda: adult().t2d().condition(ICD, "E11.3"),
        ["t2d-insulin-complications"],
    ),
    (
        "T2D, eGFR 59",
        lambda: adult().t2d().lab("98979-8", 59, "mL/min/{1.73_m2}", day(-9)),
        ["t2d-insulin-complications"],
    ),
    (
        "T2D, eGFR 60",
        lambda: adult().t2d().lab("98979-8", 60, "mL/min/{1.73_m2}", day(-9)),
        ["t2d-lifestyle-oral"],
    ),
    (
        "T2D, UACR 30 mg/g",
        lambda: adult().t2d().lab("9318-7", 30, "mg/g", day(-9)),
        ["t2d-insulin-complications"],
    ),
    (
        "T2D, UACR 3.3 mg/mmol (29.2 mg/g)",
        lambda: adult().t2d().lab("9318-7", 3.3, "mg/mmol", day(-9)),
        ["t2d-lifestyle-oral"],
    ),
    (
        "T2D on RxNorm insulin (Synthea)",
        lambda: adult().condition(SCT, "44054006").request("106892"),
        ["t2d-insulin-complications"],
    ),
    ("ASCVD by stroke", lambda: adult().condition(ICD, "I63.9"), ["ascvd"]),
    (
        "T2D and PAD",
        lambda: adult().t2d().condition(SCT, "399957001"),
        ["t2d-lifestyle-oral", "ascvd"],
    ),
    ("no sub-stratum", lambda: adult().condition(ICPC, "R95"), []),
]


@pytest.mark.parametrize(
    ("builder", "expected"), [(c[1], c[2]) for c in SUB_CASES], ids=[c[0] for c in SUB_CASES]
)
async def test_substrata(
    client: httpx.AsyncClient, engine: Stratifier, builder: Case, expected: list[str]
) -> None:
    p = builder()
    await post(client, p)
    assert substrata(await stratify(client, p.id)) == expected


async def test_precedence_top_of_the_pyramid_wins(
    client: httpx.AsyncClient, engine: Stratifier
) -> None:
    p = (
        adult()
        .condition(SCT, "248279007")
        .t2d()
        .condition(ICPC, "R95")
        .encounter("IMP", day(-9))
        .encounter("IMP", day(-8))
        .lab("4548-4", 9, "%", day(-7))
    )
    assert await stratum_of(client, p) == "frail-end-of-life"


async def test_synthea_style_patient(client: httpx.AsyncClient, engine: Stratifier) -> None:
    """RxNorm-only medicines and SNOMED conditions, as Synthea sends them."""
    p = (
        adult()
        .condition(SCT, "44054006")
        .condition(SCT, "38341003")
        .request("860975")
        .request("316672")
        .bp(150, 95, day(-30))
    )
    await post(client, p)
    ra = await stratify(client, p.id)
    assert stratum(ra) == "chronic-stable"
    assert substrata(ra) == ["t2d-lifestyle-oral"]
    assert RXNORM  # the requests matched the RxNorm codes of the value sets
