"""`$evaluate-measure` over HTTP: subjects (a Patient, a Group, a practitioner's panel, the
region), report types (R4 and R4B/R5 names), GET and POST, persist, and errors."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import assert_outcome, search
from tests.measure.cases import ADULT_BIRTH
from tests.measure.reports import YEAR_2025, counts, evaluate, score, subject_lists
from tests.measure.resources import (
    T2D_SNOMED,
    Resource,
    condition,
    group,
    hba1c,
    patient,
    post_transaction,
)

URL = "https://phm-fhir.be/fhir/Measure/t2d-hba1c-tested"
IP, DEN, NUM = "initial-population", "denominator", "numerator"


def region() -> list[Resource]:
    """Four patients: tested (2 HbA1c), untested diabetic, non-diabetic, and one outside the
    Group; a Group with the first three; a GP with a panel of one."""
    tested_a1 = hba1c("tested", 7.1, "2025-03-01")
    tested_a2 = hba1c("tested", 7.4, "2025-09-01")
    return [
        {"resourceType": "Practitioner", "id": "gp"},
        patient("tested", ADULT_BIRTH, generalPractitioner=[{"reference": "Practitioner/gp"}]),
        condition("tested", T2D_SNOMED),
        tested_a1,
        tested_a2,
        hba1c("tested", 6.9, "2024-06-01"),  # before the period: not used
        patient("untested", ADULT_BIRTH),
        condition("untested", T2D_SNOMED),
        patient("healthy", ADULT_BIRTH),
        patient("elsewhere", ADULT_BIRTH),
        condition("elsewhere", T2D_SNOMED),
        hba1c("elsewhere", 6.0, "2025-05-05"),
        group("some", ["tested", "untested", "healthy"]),
        group("empty", []),
    ]


@pytest.fixture
async def loaded(measure_client: httpx.AsyncClient) -> httpx.AsyncClient:
    await post_transaction(measure_client, region())
    return measure_client


def population_counts(report: dict[str, Any]) -> tuple[int, int, int]:
    c = counts(report)
    return c[IP], c[DEN], c[NUM]


async def test_patient_subject_gives_an_individual_report(loaded: httpx.AsyncClient) -> None:
    report = await evaluate(loaded, "t2d-hba1c-tested", subject="Patient/tested")
    assert report["type"] == "individual"
    assert report["subject"] == {"reference": "Patient/tested"}
    assert report["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
    assert report["measure"].split("|")[0] == URL
    assert population_counts(report) == (1, 1, 1)
    assert score(report) == 1.0
    used = {e["reference"] for e in report["evaluatedResource"]}
    condition_ref = next(u for u in used if u.startswith("Condition/"))
    assert condition_ref.startswith("Condition/tested-")
    observations = {u for u in used if u.startswith("Observation/")}
    assert len(observations) == 2, "the two HbA1c of the period, not the one before"
    assert all(
        u.split("/")[1].startswith("tested-")
        for u in used
        if "/" in u and not u.startswith("Patient/")
    ), used
    assert used <= {"Patient/tested", condition_ref, *observations}


@pytest.mark.parametrize("report_type", ["subject", "individual"])
async def test_individual_counts_zero_or_one(loaded: httpx.AsyncClient, report_type: str) -> None:
    untested = await evaluate(
        loaded, "t2d-hba1c-tested", subject="Patient/untested", reportType=report_type
    )
    assert untested["type"] == "individual"
    assert population_counts(untested) == (1, 1, 0)
    assert score(untested) == 0.0
    healthy = await evaluate(
        loaded, "t2d-hba1c-tested", subject="Patient/healthy", reportType=report_type
    )
    assert population_counts(healthy) == (0, 0, 0)
    assert score(healthy) is None
    assert all(
        not e["reference"].startswith(("Condition/", "Observation/"))
        for e in healthy.get("evaluatedResource", [])
    )


async def test_group_subject_counts_its_members(loaded: httpx.AsyncClient) -> None:
    report = await evaluate(loaded, "t2d-hba1c-tested", subject="Group/some")
    assert report["type"] == "summary"
    assert report["subject"] == {"reference": "Group/some"}
    assert population_counts(report) == (2, 2, 1)
    assert score(report) == 0.5
    # a population report names no patient's resources (only its supplemental data)
    assert all(e["reference"].startswith("#") for e in report.get("evaluatedResource", []))
    r = await loaded.get(
        "/Measure/t2d-hba1c-tested/$evaluate-measure",
        params={**YEAR_2025, "subject": "Group/some", "reportType": "individual"},
    )
    assert assert_outcome(r, 400)["issue"][0]["code"] == "invalid"
    empty = await evaluate(loaded, "t2d-hba1c-tested", subject="Group/empty")
    assert population_counts(empty) == (0, 0, 0)
    assert score(empty) is None


async def test_region_and_practitioner(loaded: httpx.AsyncClient) -> None:
    report = await evaluate(loaded, "t2d-hba1c-tested")
    assert report["type"] == "summary"
    assert "subject" not in report
    assert population_counts(report) == (3, 3, 2)
    panel = await evaluate(loaded, "t2d-hba1c-tested", practitioner="Practitioner/gp")
    assert population_counts(panel) == (1, 1, 1)
    by_subject = await evaluate(loaded, "t2d-hba1c-tested", subject="Practitioner/gp")
    assert population_counts(by_subject) == (1, 1, 1)


@pytest.mark.parametrize("report_type", ["population", "summary"])
async def test_population_report_names(loaded: httpx.AsyncClient, report_type: str) -> None:
    report = await evaluate(loaded, "t2d-hba1c-tested", reportType=report_type)
    assert report["type"] == "summary"
    assert all(c["resourceType"] != "List" for c in report.get("contained", []))
    assert all("subjectResults" not in p for p in report["group"][0]["population"])


async def test_subject_list(loaded: httpx.AsyncClient) -> None:
    report = await evaluate(
        loaded, "t2d-hba1c-tested", subject="Group/some", reportType="subject-list"
    )
    assert report["type"] == "subject-list"
    lists = subject_lists(report)
    assert lists == {IP: {"tested", "untested"}, DEN: {"tested", "untested"}, NUM: {"tested"}}
    for population in report["group"][0]["population"]:
        listed = lists[population["code"]["coding"][0]["code"]]
        assert population["count"] == len(listed)
    ids = [c["id"] for c in report["contained"]]
    assert len(ids) == len(set(ids))
    assert sum(c["resourceType"] == "List" for c in report["contained"]) == 3


async def test_post_with_parameters(loaded: httpx.AsyncClient) -> None:
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "periodStart", "valueDate": "2025-01-01"},
            {"name": "periodEnd", "valueDate": "2025-12-31"},
            {"name": "subject", "valueString": "Group/some"},
            {"name": "reportType", "valueCode": "subject-list"},
        ],
    }
    r = await loaded.post("/Measure/t2d-hba1c-tested/$evaluate-measure", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "subject-list"
    assert population_counts(r.json()) == (2, 2, 1)
    by_url = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "measure", "valueCanonical": URL},
            {"name": "periodStart", "valueDate": "2025"},
            {"name": "periodEnd", "valueDate": "2025"},
            {"name": "subject", "valueReference": {"reference": "Patient/tested"}},
        ],
    }
    r = await loaded.post("/Measure/$evaluate-measure", json=by_url)
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "individual"
    assert r.json()["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
    assert population_counts(r.json()) == (1, 1, 1)


async def test_group_leavers_are_not_members(loaded: httpx.AsyncClient) -> None:
    await post_transaction(
        loaded,
        [
            {
                "resourceType": "Group",
                "id": "leavers",
                "type": "person",
                "actual": True,
                "member": [
                    {"entity": {"reference": "Patient/tested"}},
                    {"entity": {"reference": "Patient/untested"}, "inactive": True},
                    {"entity": {"reference": "Patient/elsewhere"}, "inactive": True},
                    {"entity": {"reference": "Patient/elsewhere"}},
                ],
            }
        ],
    )
    report = await evaluate(
        loaded, "t2d-hba1c-tested", subject="Group/leavers", reportType="subject-list"
    )
    assert subject_lists(report)[DEN] == {"tested", "elsewhere"}


async def test_url_with_version_picks_that_version(loaded: httpx.AsyncClient) -> None:
    v2 = (await loaded.get("/Measure/t2d-hba1c-tested")).json()
    v2.update(id="t2d-hba1c-tested-2", version="2.0.0")
    del v2["meta"]
    numerator = v2["group"][0]["population"][2]["criteria"]
    numerator["expression"] = "%HbA1c.where(value.ofType(Quantity).value > 7 '%').exists()"
    assert (await loaded.put("/Measure/t2d-hba1c-tested-2", json=v2)).status_code == 201
    for url, want in (
        (f"{URL}|1.0.0", (3, 3, 2)),
        (f"{URL}|2.0.0", (3, 3, 1)),
        (URL, (3, 3, 1)),
    ):  # no version: the latest stored
        r = await loaded.get("/Measure/$evaluate-measure", params={**YEAR_2025, "measure": url})
        assert r.status_code == 200, r.text
        assert population_counts(r.json()) == want, url
        assert r.json()["measure"] == f"{URL}|{url.partition('|')[2] or '2.0.0'}"
    r = await loaded.get(
        "/Measure/$evaluate-measure", params={**YEAR_2025, "measure": f"{URL}|9.9.9"}
    )
    assert_outcome(r, 404)


async def test_type_level_get_by_url(loaded: httpx.AsyncClient) -> None:
    for url in (URL, f"{URL}|1.0.0"):
        r = await loaded.get("/Measure/$evaluate-measure", params={**YEAR_2025, "measure": url})
        assert r.status_code == 200, r.text
        assert population_counts(r.json()) == (3, 3, 2)


async def test_persist_stores_a_findable_report(loaded: httpx.AsyncClient) -> None:
    r = await loaded.get(
        "/Measure/t2d-hba1c-tested/$evaluate-measure",
        params={**YEAR_2025, "subject": "Group/some", "persist": "true"},
    )
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["id"] and stored["meta"]["versionId"] == "1"
    assert r.headers["location"].endswith(f"/MeasureReport/{stored['id']}/_history/1")
    read = await loaded.get(f"/MeasureReport/{stored['id']}")
    assert read.status_code == 200
    assert population_counts(read.json()) == (2, 2, 1)
    for params in (
        {"measure": URL},
        {"measure": stored["measure"]},
        {"measure": URL, "subject": "Group/some", "period": "2025"},
    ):
        found = await search(loaded, "/MeasureReport", params)
        assert [e["resource"]["id"] for e in found.get("entry", [])] == [stored["id"]], params
    # a report with nobody in it is still valid R4 (no empty arrays) and can be stored
    r = await loaded.get(
        "/Measure/t2d-hba1c-tested/$evaluate-measure",
        params={**YEAR_2025, "subject": "Group/empty", "persist": "true"},
    )
    assert r.status_code == 201, r.text
    other = await search(
        loaded, "/MeasureReport", {"measure": "https://phm-fhir.be/fhir/Measure/t2d-statin"}
    )
    assert not other.get("entry")
    # a subject-list report keeps its contained Lists when stored
    r = await loaded.post(
        "/Measure/t2d-hba1c-tested/$evaluate-measure",
        json={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "periodStart", "valueDate": "2025-01-01"},
                {"name": "periodEnd", "valueDate": "2025-12-31"},
                {"name": "reportType", "valueCode": "subject-list"},
                {"name": "persist", "valueBoolean": True},
            ],
        },
    )
    assert r.status_code == 201, r.text
    assert subject_lists(r.json())[NUM] == {"tested", "elsewhere"}


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {"periodEnd": "2025-12-31"},
            400,
            "required",
        ),
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {"periodStart": "2025-01-01"},
            400,
            "required",
        ),
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {"periodStart": "2026-01-01", "periodEnd": "2025-12-31"},
            400,
            "invalid",
        ),
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {"periodStart": "2025-13-01", "periodEnd": "2025-12-31"},
            400,
            "invalid",
        ),
        ("/Measure/no-such-measure/$evaluate-measure", YEAR_2025, 404, "not-found"),
        (
            "/Measure/$evaluate-measure",
            {**YEAR_2025, "measure": "https://x.org/Measure/none"},
            404,
            "not-found",
        ),
        ("/Measure/$evaluate-measure", YEAR_2025, 400, "required"),
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {**YEAR_2025, "subject": "Group/none"},
            404,
            "not-found",
        ),
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {**YEAR_2025, "subject": "Patient/none"},
            404,
            "not-found",
        ),
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {**YEAR_2025, "subject": "Encounter/x"},
            400,
            "invalid",
        ),
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {**YEAR_2025, "reportType": "subject"},
            400,
            "invalid",
        ),
        (
            "/Measure/t2d-hba1c-tested/$evaluate-measure",
            {**YEAR_2025, "reportType": "detailed"},
            400,
            "invalid",
        ),
    ],
)
async def test_bad_input(
    measure_client: httpx.AsyncClient, path: str, params: dict[str, str], status: int, code: str
) -> None:
    r = await measure_client.get(path, params=params)
    oo = assert_outcome(r, status)
    assert oo["issue"][0]["code"] == code, oo
    assert oo["issue"][0]["diagnostics"]


async def test_bad_body(measure_client: httpx.AsyncClient) -> None:
    r = await measure_client.post(
        "/Measure/t2d-hba1c-tested/$evaluate-measure", json={"resourceType": "Patient"}
    )
    assert_outcome(r, 400)
    r = await measure_client.post(
        "/Measure/t2d-hba1c-tested/$evaluate-measure",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "periodStart", "valueDate": "2025-01-01"}],
        },
    )
    assert_outcome(r, 400)
