"""`$care-gaps`: per patient, the measures whose denominator holds them and whose numerator does
not; for a measure where lower is better (improvementNotation decrease), being IN the
numerator is the gap."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.fhir.validation import validate_resource
from tests.api.fhir import assert_outcome
from tests.measure.cases import ADULT_BIRTH
from tests.measure.reports import YEAR_2025
from tests.measure.resources import (
    T2D_SNOMED,
    Resource,
    condition,
    group,
    hba1c,
    patient,
    post_transaction,
)

TESTED = "An HbA1c result in the measurement period"
CONTROL = "Last HbA1c of the period above 8% (64 mmol/mol): intensify treatment"
MEASURES = ["t2d-hba1c-tested", "t2d-hba1c-poor-control"]


def region() -> list[Resource]:
    return [
        patient("untested", ADULT_BIRTH),
        condition("untested", T2D_SNOMED),
        patient("controlled", ADULT_BIRTH),
        condition("controlled", T2D_SNOMED),
        hba1c("controlled", 9.1, "2025-02-01"),
        hba1c("controlled", 7.2, "2025-08-01"),
        patient("uncontrolled", ADULT_BIRTH),
        condition("uncontrolled", T2D_SNOMED),
        hba1c("uncontrolled", 9.1, "2025-08-01"),
        patient("healthy", ADULT_BIRTH),
        hba1c("healthy", 9.0, "2025-08-01"),
        group("panel", ["untested", "controlled", "healthy"]),
    ]


async def care_gaps(client: httpx.AsyncClient, **params: Any) -> dict[str, list[str]]:
    """Patient id -> the DetectedIssue details of their open gaps (checks each Bundle)."""
    r = await client.get("/Measure/$care-gaps", params={**YEAR_2025, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["resourceType"] == "Parameters"
    validate_resource(body)
    out: dict[str, list[str]] = {}
    for p in body.get("parameter", []):
        assert p["name"] == "return"
        bundle = p["resource"]
        assert bundle["type"] == "document"
        assert bundle["identifier"]["system"] and bundle["identifier"]["value"]  # bdl-9
        assert bundle["timestamp"]  # bdl-10
        resources = [e["resource"] for e in bundle["entry"]]
        composition = resources[0]
        assert composition["resourceType"] == "Composition"
        assert composition["type"]["coding"][0]["code"] == "96315-7"
        pid = composition["subject"]["reference"].removeprefix("Patient/")
        assert {"resourceType": "Patient", "id": pid} in resources
        issues = [x for x in resources if x["resourceType"] == "DetectedIssue"]
        assert all(i["patient"] == {"reference": f"Patient/{pid}"} for i in issues)
        assert all(
            i["identifiedPeriod"] == {"start": "2025-01-01", "end": "2025-12-31"} for i in issues
        )
        assert len(composition["section"]) == len(issues)
        out[pid] = sorted(i["detail"] for i in issues)
    return out


@pytest.fixture
async def loaded(measure_client: httpx.AsyncClient) -> httpx.AsyncClient:
    await post_transaction(measure_client, region())
    return measure_client


def gap(title_of: str, what: str) -> str:
    titles = {
        "t2d-hba1c-tested": "Type 2 diabetes: HbA1c measured in the period",
        "t2d-hba1c-poor-control": "Type 2 diabetes: last HbA1c above 8% (64 mmol/mol)",
    }
    return f"{titles[title_of]}: {what}"


async def test_region(loaded: httpx.AsyncClient) -> None:
    gaps = await care_gaps(loaded, measureId=MEASURES)
    assert gaps == {
        "untested": [gap("t2d-hba1c-tested", TESTED)],
        "uncontrolled": [gap("t2d-hba1c-poor-control", CONTROL)],
    }


async def test_one_patient(loaded: httpx.AsyncClient) -> None:
    assert await care_gaps(loaded, subject="Patient/untested", measureId=MEASURES) == {
        "untested": [gap("t2d-hba1c-tested", TESTED)]
    }
    assert await care_gaps(
        loaded, subject="Patient/uncontrolled", measureId="t2d-hba1c-poor-control"
    ) == {"uncontrolled": [gap("t2d-hba1c-poor-control", CONTROL)]}
    # the last HbA1c is fine: no gap, though an earlier one was high
    assert await care_gaps(loaded, subject="Patient/controlled", measureId=MEASURES) == {}
    assert await care_gaps(loaded, subject="Patient/healthy", measureId=MEASURES) == {}


async def test_group(loaded: httpx.AsyncClient) -> None:
    assert await care_gaps(
        loaded, subject="Group/panel", measureId=MEASURES, status="open-gap"
    ) == {"untested": [gap("t2d-hba1c-tested", TESTED)]}


async def test_every_measure_by_default(loaded: httpx.AsyncClient) -> None:
    gaps = await care_gaps(loaded, subject="Patient/untested")
    assert gap("t2d-hba1c-tested", TESTED) in gaps["untested"]
    assert not any("poor" in g or "above 8%" in g for g in gaps["untested"])
    # LDL, kidney monitoring and statin are open too: no data at all
    assert len(gaps["untested"]) >= 4


async def test_by_measure_url(loaded: httpx.AsyncClient) -> None:
    gaps = await care_gaps(loaded, measureUrl="https://phm-fhir.be/fhir/Measure/t2d-hba1c-tested")
    assert gaps == {"untested": [gap("t2d-hba1c-tested", TESTED)]}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"status": "closed-gap"}, 400),
        ({"subject": "Group/none"}, 404),
        ({"measureId": "none"}, 404),
        ({"subject": ["Patient/untested", "Patient/healthy"]}, 400),
    ],
)
async def test_bad_input(loaded: httpx.AsyncClient, params: dict[str, Any], status: int) -> None:
    r = await loaded.get("/Measure/$care-gaps", params={**YEAR_2025, **params})
    assert_outcome(r, status)
    r = await loaded.get("/Measure/$care-gaps", params={"periodEnd": "2025-12-31"})
    assert_outcome(r, 400)
