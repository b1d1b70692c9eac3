"""Boundary cases as data: each case is one patient (its resources) and the populations the
patient must be in. `check_cases` posts them all in one transaction Bundle, evaluates the
Measure as a subject-list report for 2025 and compares every patient's populations, the counts,
the score and the improvement notation."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from tests.measure.reports import counts, evaluate, improvement, memberships, score
from tests.measure.resources import T2D_SNOMED, Resource, condition, patient, post_transaction

IP, DEN, NUM = "initial-population", "denominator", "numerator"
OUT: frozenset[str] = frozenset()
IN_DEN = frozenset({IP, DEN})
IN_NUM = frozenset({IP, DEN, NUM})
ADULT_BIRTH = "1960-05-15"  # 65 at the end of 2025


@dataclass
class Case:
    """One patient: their resources (the Patient first) and the populations they belong to."""

    pid: str
    resources: list[Resource]
    expected: frozenset[str]
    why: str = ""


def diabetic(
    pid: str, *more: Resource, birth: str = ADULT_BIRTH, code: tuple[str, str] = T2D_SNOMED
) -> list[Resource]:
    """A patient with active type 2 diabetes (SNOMED CT unless `code`) and `more`."""
    return [patient(pid, birth), condition(pid, code), *more]


async def check_cases(
    client: httpx.AsyncClient, measure_id: str, cases: list[Case], notation: str = "increase"
) -> dict[str, int]:
    resources = [r for c in cases for r in c.resources]
    pids = [c.pid for c in cases]
    assert len(set(pids)) == len(pids)
    await post_transaction(client, resources)
    report = await evaluate(client, measure_id, reportType="subject-list")
    assert report["type"] == "subject-list"
    got = memberships(report)
    wrong = {
        c.pid: (sorted(got.get(c.pid, set())), sorted(c.expected), c.why)
        for c in cases
        if got.get(c.pid, set()) != c.expected
    }
    assert not wrong, "patient: (got, expected, why)\n" + "\n".join(
        f"  {k}: {v}" for k, v in wrong.items()
    )
    expected_counts = {code: sum(code in c.expected for c in cases) for code in (IP, DEN, NUM)}
    got_counts = counts(report)
    assert {k: got_counts.get(k) for k in expected_counts} == expected_counts
    assert improvement(report) == notation
    den = (
        got_counts[DEN]
        - got_counts.get("denominator-exclusion", 0)
        - got_counts.get("denominator-exception", 0)
    )
    if den:
        assert score(report) == round(got_counts[NUM] / den, 6)
    else:
        assert score(report) is None
    # the summary report gives the same counts
    summary = await evaluate(client, measure_id, reportType="population")
    assert summary["type"] == "summary"
    assert counts(summary) == got_counts
    assert score(summary) == score(report)
    return got_counts
