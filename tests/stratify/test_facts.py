"""Per-patient facts, computed in SQL from the index tables, one kind at a time, with the
resources behind each (the basis of the RiskAssessment)."""

from __future__ import annotations

import httpx
import pytest

from app.stratify.engine import Stratifier
from tests.stratify.conftest import ICD, ICPC, RXNORM, SCT, P, born, day, post, team


def _everything(pid: str) -> P:
    return (
        P(pid, born(72, 10), gender="male")
        .t2d()
        .condition(ICD, "E11.9")
        .condition(SCT, "13645005")  # T2D twice, COPD
        .condition(ICPC, "K86", "resolved")  # not active
        .lab("4548-4", 7.1, "%", day(-300))
        .lab("59261-8", 70, "mmol/mol", day(-30))
        .lab("22748-8", 3.0, "mmol/L", day(-40))
        .bp(150, 85, day(-60))
        .bp(132, 78, day(-20))
        .smoking("8517006", day(-100))
        .statement("A10BA02", day(-800))
        .statement("A10AE04", day(-50))
        .statement("C10AA05", day(-400), day(-10), "completed")  # stopped
        .dispense("B01AC06", day(-200))
        .dispense("B01AC06", day(-80))
        .dispense("C08CA01", day(-30))  # once only
        .request("314076")  # RxNorm lisinopril
        .encounter("IMP", day(-100))
        .encounter("EMER", day(-101))
        .encounter("EMER", day(-400))
        .encounter("HH", day(-5))
        .encounter("AMB", day(-6))
    )


async def test_every_kind_of_fact(client: httpx.AsyncClient, engine: Stratifier) -> None:
    await post(client, _everything("p1"), extra=[team("team-x", "p1")])
    f = await engine.facts_of("p1")
    assert f is not None
    v = f.values
    assert v["age"] == 72 and v["sex"] == "male"
    assert v["t2d"] is True and v["copd"] is True
    assert "hypertension" not in v
    assert v["chronic_conditions"] == 2
    assert len(f.basis["t2d"]) == 2  # both T2D records are the basis
    assert v["hba1c"] == round(70 * 0.0915 + 2.15, 4)  # the latest, IFCC converted
    assert "mmol/mol converted" in f.detail["hba1c"]
    assert v["ldl"] == round(3.0 * 38.67, 4)
    assert (v["sbp"], v["dbp"]) == (132, 78)  # components of the latest panel
    assert "smoker" not in v
    assert v["insulin"] is True and "statin" not in v
    assert v["bp_lowering"] is True  # the RxNorm request
    # metformin, insulin glargine, aspirin (dispensed twice), lisinopril (RxNorm)
    assert v["medicines"] == 4
    assert (v["admissions"], v["emergency_visits"], v["home_visits"]) == (1, 1, 1)
    refs = {pk for pks in f.basis.values() for pk in pks}
    assert len(refs) >= 10


async def test_facts_of_unknown_and_deceased(client: httpx.AsyncClient, engine: Stratifier) -> None:
    await post(client, P("p1", born(90), deceasedBoolean=True).t2d())
    assert await engine.facts_of("p1") is None
    assert await engine.facts_of("nobody") is None


async def test_medicines_counted_once_per_substance(
    client: httpx.AsyncClient, engine: Stratifier
) -> None:
    p = (
        P("p1", born(60))
        .statement("C10AA05", day(-100))
        .statement("C10AA05", day(-50))
        .dispense("C10AA05", day(-90))
        .dispense("C10AA05", day(-30))
        .request("316672")
        .statement("259255", day(-10), system=RXNORM)
    )
    await post(client, p)
    f = await engine.facts_of("p1")
    assert f is not None
    # atorvastatin (ATC, from two statements and two dispenses) + two RxNorm-only medicines
    assert f.values["medicines"] == 3


async def test_facts_of_patients_with_more_resources_than_a_statement_takes_parameters(
    client: httpx.AsyncClient, engine: Stratifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch of 250 Synthea patients owns ~37,000 Observations; their pks go to the fact
    queries as one parameter past pklist.LISTED (a statement takes at most 32,767). Forced here
    for every scope: the facts must be those of the listed form."""
    from app.store import pklist

    await post(client, _everything("p1"), _everything("p2"), extra=[team("team-x", "p1")])
    listed = {pid: await engine.facts_of(pid) for pid in ("p1", "p2")}
    monkeypatch.setattr(pklist, "LISTED", 0)
    one_parameter = {pid: await engine.facts_of(pid) for pid in ("p1", "p2")}
    assert listed["p1"] is not None and listed["p1"].values["medicines"] == 4
    for pid in ("p1", "p2"):
        a, b = listed[pid], one_parameter[pid]
        assert a is not None and b is not None
        assert (a.values, a.basis) == (b.values, b.basis), pid
