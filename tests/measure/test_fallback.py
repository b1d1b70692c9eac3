"""The FHIRPath fallback: a `where()` conjunct that no search parameter covers runs as FHIRPath
on the candidate resources (those the SQL part keeps, of the patients the population needs),
with `%periodStart`/`%periodEnd` and `memberOf()`; the rest of the criterion stays SQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.measure import fallback
from tests.api.fhir import assert_outcome
from tests.measure.cases import diabetic
from tests.measure.reports import counts, evaluate, memberships
from tests.measure.resources import hba1c, ldl, observation, patient, post_transaction
from tests.measure.test_measure_validation import QUERY, custom

IP, DEN, NUM = "initial-population", "denominator", "numerator"
HBA1C_VS = "https://phm-fhir.be/fhir/ValueSet/hba1c"
LDL_VS = "https://phm-fhir.be/fhir/ValueSet/ldl-cholesterol"


def flagged(resource: dict[str, Any], *codes: str) -> dict[str, Any]:
    """The Observation with lab interpretation flags (HL7 v3 ObservationInterpretation)."""
    system = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
    resource["interpretation"] = [{"coding": [{"system": system, "code": c}]} for c in codes]
    return resource


def issued(resource: dict[str, Any], instant: str) -> dict[str, Any]:
    resource["issued"] = instant
    return resource


async def store(client: httpx.AsyncClient, measure: dict[str, Any]) -> None:
    r = await client.put("/Measure/custom", json=measure)
    assert r.status_code in (200, 201), r.text


async def test_where_without_a_search_parameter_runs_as_fhirpath(
    measure_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Observation has no `interpretation` search parameter: the numerator's conjunct runs in
    FHIRPath, on the HbA1c results in the period of the initial population's patients only."""
    await store(
        measure_client,
        custom(numerator="%HbA1c.where(interpretation.coding.code = 'H').exists()"),
    )
    await post_transaction(
        measure_client,
        [
            *diabetic("fb-high", flagged(hba1c("fb-high", 9.1, "2025-05-02"), "H")),
            *diabetic("fb-normal", flagged(hba1c("fb-normal", 6.0, "2025-05-02"), "N")),
            *diabetic("fb-unflagged", hba1c("fb-unflagged", 9.4, "2025-05-02")),
            # flagged high, but in 2024: the SQL part (date in the period) leaves it out
            *diabetic("fb-last-year", flagged(hba1c("fb-last-year", 9.0, "2024-11-02"), "H")),
            # two results, one of them flagged
            *diabetic(
                "fb-second",
                hba1c("fb-second", 6.1, "2025-02-02"),
                flagged(hba1c("fb-second", 8.9, "2025-09-02"), "H"),
            ),
            # flagged high but without diabetes: outside the initial population
            patient("fb-no-t2d", "1960-01-01"),
            flagged(hba1c("fb-no-t2d", 9.9, "2025-05-02"), "H"),
        ],
    )
    seen: list[str] = []
    holds = fallback.Predicates.holds

    def spy(self: fallback.Predicates, resource: dict[str, Any]) -> bool:
        seen.append(resource["subject"]["reference"].removeprefix("Patient/"))
        return holds(self, resource)

    monkeypatch.setattr(fallback.Predicates, "holds", spy)
    report = await evaluate(measure_client, "custom", reportType="subject-list")
    got = memberships(report)
    assert got["fb-high"] == {IP, DEN, NUM}
    assert got["fb-second"] == {IP, DEN, NUM}
    for pid in ("fb-normal", "fb-unflagged", "fb-last-year"):
        assert got[pid] == {IP, DEN}, pid
    assert "fb-no-t2d" not in got
    assert counts(report) == {IP: 5, DEN: 5, NUM: 2}
    # the candidates: this year's HbA1c results of the diabetic patients, nothing else
    assert sorted(seen) == ["fb-high", "fb-normal", "fb-second", "fb-second", "fb-unflagged"]

    # the same per patient, with the resources that made the numerator
    one = await evaluate(measure_client, "custom", subject="Patient/fb-second")
    assert counts(one) == {IP: 1, DEN: 1, NUM: 1}
    used = {e["reference"] for e in one["evaluatedResource"]}
    assert any(ref.startswith("Observation/fb-second-") for ref in used), used

    # `.exists(criteria)` is `.where(criteria).exists()`
    await store(measure_client, custom(numerator="%HbA1c.exists(interpretation.coding.code = 'H')"))
    again = await evaluate(measure_client, "custom", reportType="subject-list")
    assert memberships(again) == got


async def test_sql_and_fhirpath_conjuncts_of_one_where(measure_client: httpx.AsyncClient) -> None:
    """`value > 8 '%'` stays SQL; the parenthesised `or` of flags runs in FHIRPath."""
    await store(
        measure_client,
        custom(
            numerator="%HbA1c.where(value.ofType(Quantity).value > 8 '%' and "
            "(interpretation.coding.code = 'H' or interpretation.coding.code = 'HH')).exists()"
        ),
    )
    await post_transaction(
        measure_client,
        [
            *diabetic("mx-hh", flagged(hba1c("mx-hh", 11.0, "2025-03-03"), "HH")),
            *diabetic("mx-h", flagged(hba1c("mx-h", 8.5, "2025-03-03"), "H")),
            # flagged, but not above 8%: the SQL conjunct fails
            *diabetic("mx-low", flagged(hba1c("mx-low", 7.5, "2025-03-03"), "H")),
            # above 8% but not flagged: the FHIRPath conjunct fails
            *diabetic("mx-plain", hba1c("mx-plain", 9.5, "2025-03-03")),
        ],
    )
    got = memberships(await evaluate(measure_client, "custom", reportType="subject-list"))
    assert {p for p, pops in got.items() if NUM in pops} == {"mx-hh", "mx-h"}
    assert got["mx-low"] == got["mx-plain"] == {IP, DEN}


async def test_fallback_with_member_of_and_the_period(measure_client: httpx.AsyncClient) -> None:
    """`memberOf()` reads the server's ValueSet expansions; `%periodEnd - 3 months` is date
    arithmetic on the report's period (here `issued`, which no search parameter covers)."""
    labs = "Observation?date=ge{{%periodStart}}&date=le{{%periodEnd}}"
    await store(
        measure_client,
        custom(
            definitions={"Labs": (QUERY, labs)},
            numerator=f"%Labs.where((code.memberOf('{HBA1C_VS}') or code.memberOf('{LDL_VS}'))"
            " and issued >= %periodEnd - 3 months).exists()",
        ),
    )
    await post_transaction(
        measure_client,
        [
            *diabetic(
                "mo-hba1c", issued(hba1c("mo-hba1c", 7, "2025-11-01"), "2025-11-02T09:00:00Z")
            ),
            *diabetic("mo-ldl", issued(ldl("mo-ldl", 90, "2025-12-01"), "2025-12-01T09:00:00Z")),
            # the right code, reported before the last three months of the period
            *diabetic(
                "mo-early", issued(hba1c("mo-early", 7, "2025-07-30"), "2025-08-01T09:00:00Z")
            ),
            # reported late in the year, but not in either ValueSet (serum creatinine)
            *diabetic(
                "mo-other",
                issued(
                    observation("mo-other", "2160-0", 1, "mg/dL", "2025-12-01"),
                    "2025-12-01T09:00:00Z",
                ),
            ),
        ],
    )
    report = await evaluate(measure_client, "custom", reportType="subject-list")
    got = memberships(report)
    assert {p for p, pops in got.items() if NUM in pops} == {"mo-hba1c", "mo-ldl"}
    # a period that ends in September moves the window: only the August report is in it
    sept = await evaluate(
        measure_client, "custom", reportType="subject-list", periodEnd="2025-09-30"
    )
    assert {p for p, pops in memberships(sept).items() if NUM in pops} == {"mo-early"}


async def test_fallback_failing_on_a_resource_answers_422(
    measure_client: httpx.AsyncClient,
) -> None:
    """A FHIRPath error on a stored resource is the Measure's fault, named, never a 500."""
    await store(
        measure_client,
        custom(numerator="%HbA1c.where(interpretation.coding.code.toInteger() + 'x' > 1).exists()"),
    )
    await post_transaction(
        measure_client, diabetic("err-1", flagged(hba1c("err-1", 9.1, "2025-05-02"), "7"))
    )
    r = await measure_client.get(
        "/Measure/custom/$evaluate-measure",
        params={"periodStart": "2025-01-01", "periodEnd": "2025-12-31"},
    )
    oo = assert_outcome(r, 422)
    assert "toInteger" in oo["issue"][0]["diagnostics"]
    assert "Observation/err-1-" in oo["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("numerator", "mentions"),
    [
        ("%HbA1c.where(note.text = ).exists()", "syntax error"),
        ("%HbA1c.where(note.text.frobnicate()).exists()", "frobnicate"),
        ("%HbA1c.where(value.ofType(Quantity).value > %threshold).exists()", "%threshold"),
        ("%HbA1c.where(status = 'final' or ).exists()", "syntax error"),
    ],
)
async def test_fallback_that_cannot_run_is_rejected_at_creation(
    measure_client: httpx.AsyncClient, numerator: str, mentions: str
) -> None:
    oo = assert_outcome(
        await measure_client.post("/Measure", json=custom(numerator=numerator)), 422
    )
    assert oo["issue"][0]["expression"] == ["Measure.group[0].population[2].criteria"]
    assert mentions in oo["issue"][0]["diagnostics"], oo
