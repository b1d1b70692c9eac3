"""The scorings the library does not use yet (ratio, continuous-variable) and the populations
it does not use (exclusions, exceptions), on small Measures written for the test, and a
stratifier on another Patient element (the README promises any with a search parameter)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.measure.reports import counts, evaluate, score, strata, subject_lists
from tests.measure.resources import (
    ATC,
    T2D_SNOMED,
    condition,
    hba1c,
    medication_statement,
    patient,
    post_transaction,
)

DEFINITION = "https://phm-fhir.be/fhir/StructureDefinition/measure-definition"
QUERY, FHIRPATH = "application/x-fhir-query", "text/fhirpath"
POP = "http://terminology.hl7.org/CodeSystem/measure-population"
INSULIN = (ATC, "A10AE04")


def measure(mid: str, scoring: str, populations: dict[str, str], **extra: Any) -> dict[str, Any]:
    definitions = {
        "T2D": (
            QUERY,
            "Condition?code:in=https://phm-fhir.be/fhir/ValueSet/type-2-diabetes"
            "&clinical-status=active",
        ),
        "HbA1c": (
            QUERY,
            "Observation?code:in=https://phm-fhir.be/fhir/ValueSet/hba1c"
            "&date=ge{{%periodStart}}&date=le{{%periodEnd}}",
        ),
        "Insulin": (
            QUERY,
            "MedicationStatement?code:in=https://phm-fhir.be/fhir/ValueSet/"
            "insulins&effective=ge{{%periodStart}}&effective=le{{%periodEnd}}",
        ),
    }
    return {
        "resourceType": "Measure",
        "id": mid,
        "status": "active",
        "url": f"https://phm-fhir.be/fhir/Measure/{mid}",
        "scoring": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/measure-scoring", "code": scoring}
            ]
        },
        "extension": [
            {
                "url": DEFINITION,
                "valueExpression": {"name": name, "language": language, "expression": text},
            }
            for name, (language, text) in definitions.items()
        ],
        "group": [
            {
                "population": [
                    {
                        "code": {"coding": [{"system": POP, "code": code}]},
                        "criteria": {"language": FHIRPATH, "expression": text},
                    }
                    for code, text in populations.items()
                ],
                **extra,
            }
        ],
    }


def region() -> list[dict[str, Any]]:
    out = []
    for pid, tests, insulin, postcode in (
        ("a", 3, False, "3000"),
        ("b", 1, True, "3010"),
        ("c", 0, True, "3010"),
        ("d", 2, False, None),
    ):
        p = patient(pid, "1960-01-01")
        if postcode:
            p["address"] = [{"postalCode": postcode, "city": "Leuven"}]
        out += [p, condition(pid, T2D_SNOMED)]
        out += [hba1c(pid, 7.0, f"2025-0{m + 1}-15") for m in range(tests)]
        if insulin:
            out.append(medication_statement(pid, INSULIN, start="2024-01-01"))
    out.append(patient("healthy", "1960-01-01"))
    return out


async def put_and_evaluate(
    client: httpx.AsyncClient, m: dict[str, Any], **params: str
) -> dict[str, Any]:
    r = await client.put(f"/Measure/{m['id']}", json=m)
    assert r.status_code == 201, r.text
    return await evaluate(client, m["id"], **params)


async def test_proportion_with_exclusion_and_exception(
    measure_client: httpx.AsyncClient,
) -> None:
    await post_transaction(measure_client, region())
    m = measure(
        "excl",
        "proportion",
        {
            "initial-population": "%T2D",
            "denominator": "%T2D",
            "denominator-exclusion": "%Insulin.exists() and %HbA1c.exists().not()",
            "denominator-exception": "%Insulin",
            "numerator": "%HbA1c.count() >= 2",
        },
    )
    report = await put_and_evaluate(measure_client, m, reportType="subject-list")
    lists = subject_lists(report)
    assert lists["denominator-exclusion"] == {"c"}
    assert lists["numerator"] == {"a", "d"}
    # an exception applies only to those not in the numerator: b
    assert lists["denominator-exception"] == {"b"}
    assert score(report) == 1.0  # 2 / (4 - 1 - 1)


async def test_ratio(measure_client: httpx.AsyncClient) -> None:
    await post_transaction(measure_client, region())
    m = measure(
        "ratio",
        "ratio",
        {"initial-population": "%T2D", "denominator": "%T2D", "numerator": "%Insulin"},
    )
    report = await put_and_evaluate(measure_client, m)
    assert counts(report) == {"initial-population": 4, "denominator": 4, "numerator": 2}
    assert score(report) == 0.5


async def test_continuous_variable(measure_client: httpx.AsyncClient) -> None:
    await post_transaction(measure_client, region())
    m = measure(
        "cv",
        "continuous-variable",
        {
            "initial-population": "%T2D",
            "measure-population": "%T2D",
            "measure-population-exclusion": "%Insulin",
            "measure-observation": "%HbA1c",
        },
    )
    report = await put_and_evaluate(measure_client, m)
    assert counts(report) == {
        "initial-population": 4,
        "measure-population": 4,
        "measure-population-exclusion": 2,
    }
    assert score(report) == 2.5  # HbA1c tests per patient of a and d: (3 + 2) / 2


async def test_stratifier_on_a_patient_element(measure_client: httpx.AsyncClient) -> None:
    await post_transaction(measure_client, region())
    m = measure(
        "by-postcode",
        "cohort",
        {"initial-population": "%T2D"},
        stratifier=[
            {
                "code": {"text": "postcode"},
                "criteria": {"language": FHIRPATH, "expression": "Patient.address.postalCode"},
            }
        ],
    )
    report = await put_and_evaluate(measure_client, m)
    assert strata(report, "postcode") == {
        "3000": {"initial-population": 1},
        "3010": {"initial-population": 2},
        "unknown": {"initial-population": 1},
    }


async def test_stratifier_with_many_values_counts_the_same(
    measure_client: httpx.AsyncClient, monkeypatch: Any
) -> None:
    """Past MAX_CASES distinct values a stratifier is a join on each patient's smallest value
    instead of one IN test per value: the strata must not change."""
    from app.measure import population

    await post_transaction(measure_client, region())
    m = measure(
        "by-postcode-join",
        "cohort",
        {"initial-population": "%T2D"},
        stratifier=[
            {
                "code": {"text": "postcode"},
                "criteria": {"language": FHIRPATH, "expression": "Patient.address.postalCode"},
            }
        ],
    )
    by_case = await put_and_evaluate(measure_client, m)
    monkeypatch.setattr(population, "MAX_CASES", 1)
    by_join = await evaluate(measure_client, m["id"])
    assert strata(by_join, "postcode") == strata(by_case, "postcode") == {
        "3000": {"initial-population": 1},
        "3010": {"initial-population": 2},
        "unknown": {"initial-population": 1},
    }


async def test_a_criterion_read_within_one_conjunction_is_not_reused_in_another(
    measure_client: httpx.AsyncClient,
) -> None:
    """`A and X` reads X for the patients of A only; in `(A and X) or (B and X)` the second
    X must be read for the patients of B, or b (B and X, not A) would be lost."""
    await post_transaction(measure_client, [
        *region(),
        patient("e", "1960-01-01"),
        hba1c("e", 7.0, "2025-03-01"),
    ])
    m = measure(
        "scoped",
        "cohort",
        {"initial-population": "(%T2D and %Insulin.exists() and %HbA1c.exists()) or "
                               "(%HbA1c.exists() and %T2D.not())"},
    )
    report = await put_and_evaluate(measure_client, m, reportType="subject-list")
    # a, d: T2D without insulin; c: insulin, no HbA1c; b: all three; e: HbA1c without T2D
    assert subject_lists(report)["initial-population"] == {"b", "e"}
