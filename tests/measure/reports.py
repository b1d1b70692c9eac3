"""Reading MeasureReports in the measure tests: evaluate over HTTP, then the counts, scores and
subject lists of a report as plain Python values."""

from __future__ import annotations

from typing import Any

import httpx

from app.fhir.validation import validate_resource

Report = dict[str, Any]
YEAR_2025 = {"periodStart": "2025-01-01", "periodEnd": "2025-12-31"}


async def evaluate(client: httpx.AsyncClient, measure_id: str, **params: str) -> Report:
    """GET `Measure/<id>/$evaluate-measure`; asserts a 200 MeasureReport."""
    query = {**YEAR_2025, **params}
    r = await client.get(f"/Measure/{measure_id}/$evaluate-measure", params=query)
    assert r.status_code == 200, r.text
    report: Report = r.json()
    assert report["resourceType"] == "MeasureReport", report
    validate_resource(report)  # what we serve is valid R4, whatever the report type
    return report


def code_of(population: dict[str, Any]) -> str:
    return str(population["code"]["coding"][0]["code"])


def counts(report: Report, group: int = 0) -> dict[str, int]:
    """Population code -> count, for one group of the report."""
    return {code_of(p): p["count"] for p in report["group"][group]["population"]}


def score(report: Report, group: int = 0) -> float | None:
    value = report["group"][group].get("measureScore", {}).get("value")
    return None if value is None else float(value)


def improvement(report: Report) -> str:
    return str(report["improvementNotation"]["coding"][0]["code"])


def subject_lists(report: Report, group: int = 0) -> dict[str, set[str]]:
    """Population code -> the patient ids of its contained List (a subject-list report)."""
    contained = {c["id"]: c for c in report.get("contained", [])}
    out: dict[str, set[str]] = {}
    for p in report["group"][group]["population"]:
        ref = p["subjectResults"]["reference"]
        assert ref.startswith("#"), ref
        listed = contained[ref[1:]]
        assert listed["resourceType"] == "List"
        out[code_of(p)] = {
            e["item"]["reference"].removeprefix("Patient/") for e in listed.get("entry", [])
        }
    return out


def memberships(report: Report, group: int = 0) -> dict[str, set[str]]:
    """Patient id -> the populations they are in (a subject-list report)."""
    out: dict[str, set[str]] = {}
    for code, ids in subject_lists(report, group).items():
        for pid in ids:
            out.setdefault(pid, set()).add(code)
    return out


def strata(report: Report, stratifier: str, group: int = 0) -> dict[Any, dict[str, int]]:
    """Stratum value (a tuple for component stratifiers) -> population counts."""
    found = [
        s
        for s in report["group"][group].get("stratifier", [])
        if s["code"][0]["text"] == stratifier
    ]
    assert len(found) == 1, f"no stratifier {stratifier!r}"
    out: dict[Any, dict[str, int]] = {}
    for stratum in found[0].get("stratum", []):
        if "value" in stratum:
            key: Any = stratum["value"]["text"]
        else:
            key = tuple(c["value"]["text"] for c in stratum["component"])
        assert key not in out, f"stratum {key!r} twice"
        out[key] = {code_of(p): p["count"] for p in stratum["population"]}
    return out


def assert_strata_add_up(report: dict[str, Any]) -> None:
    """Every stratifier's strata sum to the group's count, population by population."""
    for gi, g in enumerate(report["group"]):
        total = counts(report, gi)
        for s in g.get("stratifier", []):
            sums: dict[str, int] = dict.fromkeys(total, 0)
            for stratum in strata(report, s["code"][0]["text"], gi).values():
                assert set(stratum) == set(total)
                for code, n in stratum.items():
                    sums[code] += n
            assert sums == total, s["code"][0]["text"]
