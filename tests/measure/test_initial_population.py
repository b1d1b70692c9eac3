"""An initial population driven from its diagnosis (the patients of `%T2DCondition`, each tested
against the Patient criteria) holds live Patients of the subject only, as one computed over
the subject's Patients would: a condition whose subject Patient does not exist or was deleted
(dangling references, which a server with PHM_ENFORCE_REFERENTIAL_INTEGRITY=false accepts:
`lenient_client`)
counts nowhere."""

from __future__ import annotations

import httpx
import pytest

from tests.measure.reports import counts, evaluate, memberships
from tests.measure.resources import T2D_SNOMED, condition, hba1c, patient, post_transaction
from tests.measure.test_measure_validation import QUERY, custom

IP, DEN, NUM = "initial-population", "denominator", "numerator"

ACTIVE = ("Active", (QUERY, "Patient?active:not=false"))


@pytest.mark.parametrize(
    ("population", "definitions"),
    [
        ("%T2D", {}),  # adult (a Patient criterion met) and alive
        ("%T2DCondition and %Active", dict([ACTIVE])),  # only a negated Patient criterion
        ("%T2DCondition", {}),  # no Patient criterion at all
    ],
    ids=["adult", "not-inactive", "diagnosis-only"],
)
async def test_driven_population_holds_live_patients_only(
    measure_client: httpx.AsyncClient,
    lenient_client: httpx.AsyncClient,
    population: str,
    definitions: dict[str, tuple[str, str]],
) -> None:
    m = custom(numerator="%HbA1c.exists()", denominator=population, definitions=definitions)
    m["group"][0]["population"][0]["criteria"]["expression"] = population
    r = await measure_client.put("/Measure/custom", json=m)
    assert r.status_code in (200, 201), r.text
    await post_transaction(
        lenient_client,
        [
            patient("live-1", "1960-01-01"),
            condition("live-1", T2D_SNOMED),
            hba1c("live-1", 7.0, "2025-04-01"),
            patient("inactive-1", "1960-01-01", active=False),
            condition("inactive-1", T2D_SNOMED),
            patient("gone-1", "1960-01-01"),
            condition("gone-1", T2D_SNOMED),
            hba1c("gone-1", 7.0, "2025-04-01"),
            # no Patient/ghost-1: the references dangle
            condition("ghost-1", T2D_SNOMED),
            hba1c("ghost-1", 7.0, "2025-04-01"),
        ],
    )
    # deleted while its condition and result stay (possible without integrity checks)
    r = await lenient_client.delete("/Patient/gone-1")
    assert r.status_code in (200, 204), r.text
    report = await evaluate(measure_client, "custom", reportType="subject-list")
    got = memberships(report)
    expected = {"live-1": {IP, DEN, NUM}}
    if population != "%T2DCondition and %Active":
        expected["inactive-1"] = {IP, DEN}  # `active: false` matters to that one only
    assert got == expected
    assert counts(report)[IP] == len(expected)
