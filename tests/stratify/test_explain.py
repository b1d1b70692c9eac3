"""`POST Patient/{id}/$stratify?_explain=true`: which rule matched, why, and every fact."""

from __future__ import annotations

from typing import Any

import httpx

from app.fhir.validation import validate_resource
from app.stratify.engine import Stratifier
from tests.stratify.conftest import ICPC, P, born, day, post


def by_name(params: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [p for p in params if p["name"] == name]


def part(p: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for q in p["part"] if q["name"] == name)


async def test_explanation(client: httpx.AsyncClient, engine: Stratifier) -> None:
    await post(
        client,
        P("p1", born(60)).t2d().lab("59261-8", 64, "mmol/mol", day(-20)).condition(ICPC, "K86"),
    )
    r = await client.post("/Patient/p1/$stratify?_explain=true")
    assert r.status_code == 200, r.text
    body = r.json()
    validate_resource(body)
    params = body["parameter"]
    ra = by_name(params, "riskAssessment")[0]["resource"]
    assert ra["prediction"][0]["outcome"]["coding"][0]["code"] == "chronic-uncontrolled"
    why = by_name(params, "explanation")[0]["valueString"]
    assert why.startswith("Chronic uncontrolled or multimorbid: ")
    assert "latest HbA1c (%) 8.006" in why and "mmol/mol converted" in why
    # the strata tried, top first, up to the one that matched
    tried = by_name(params, "tried")
    assert [part(t, "stratum")["valueCoding"]["code"] for t in tried] == [
        "frail-end-of-life",
        "complex",
        "chronic-uncontrolled",
    ]
    assert [part(t, "matched")["valueBoolean"] for t in tried] == [False, False, True]
    rule = part(tried[2], "rule")
    assert part(rule, "test")["valueString"] == "any"
    # the facts, with their values and the resources behind them
    facts = {part(f, "name")["valueString"]: f for f in by_name(params, "fact")}
    assert part(facts["age"], "value")["valueInteger"] == 60
    assert part(facts["hba1c"], "value")["valueDecimal"] == 8.006
    assert part(facts["hypertension"], "value")["valueBoolean"] is True
    assert part(facts["t2d"], "basis")["valueReference"]["reference"].startswith("Condition/")
    axes = by_name(params, "axis")
    assert {part(a, "name")["valueString"] for a in axes} == {"diabetes", "cardiovascular"}


async def test_explain_in_a_parameters_body(client: httpx.AsyncClient, engine: Stratifier) -> None:
    await post(client, P("p1", born(30)))
    r = await client.post(
        "/Patient/p1/$stratify",
        json={
            "resourceType": "Parameters",
            "parameter": [{"name": "_explain", "valueBoolean": True}],
        },
    )
    assert r.status_code == 200, r.text
    tried = by_name(r.json()["parameter"], "tried")
    assert part(tried[-1], "stratum")["valueCoding"]["code"] == "healthy"
    assert part(part(tried[-1], "rule"), "test")["valueString"] == "always"
    bad = await client.post("/Patient/p1/$stratify", json={"resourceType": "Patient"})
    assert bad.status_code == 400
