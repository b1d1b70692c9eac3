"""A Measure whose criteria cannot run is rejected when it is stored (422 naming the element),
not when it is evaluated."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import orjson
import pytest

from app.fhir.definitions import PROFILES
from tests.api.fhir import assert_outcome
from tests.measure.reports import counts, evaluate

DEFINITION = "https://phm-fhir.be/fhir/StructureDefinition/measure-definition"
NUMERATOR = "Measure.group[0].population[2].criteria"
DENOMINATOR = "Measure.group[0].population[1].criteria"


def shipped(measure_id: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads((PROFILES / "measures" / f"{measure_id}.json").read_bytes())
    return body


def custom(
    numerator: str = "%HbA1c.exists()",
    denominator: str = "%T2D",
    definitions: dict[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """A copy of t2d-hba1c-tested under a new id, with its criteria replaced."""
    m = copy.deepcopy(shipped("t2d-hba1c-tested"))
    m["id"] = "custom"
    m["url"] = "https://phm-fhir.be/fhir/Measure/custom"
    pops = m["group"][0]["population"]
    pops[1]["criteria"]["expression"] = denominator
    pops[2]["criteria"]["expression"] = numerator
    for name, (language, text) in (definitions or {}).items():
        m["extension"].append(
            {
                "url": DEFINITION,
                "valueExpression": {"name": name, "language": language, "expression": text},
            }
        )
    return m


def extension_path(m: dict[str, Any], name: str) -> str:
    i = next(
        i for i, e in enumerate(m["extension"]) if e.get("valueExpression", {}).get("name") == name
    )
    return f"Measure.extension[{i}].valueExpression"


QUERY, FHIRPATH = "application/x-fhir-query", "text/fhirpath"
BAD = {
    "unknown-definition": (custom(numerator="%HbA1cc.exists()"), NUMERATOR, "HbA1cc"),
    "unsupported-function": (custom(numerator="%HbA1c.first().exists()"), NUMERATOR, "first()"),
    "parse-error": (custom(numerator="%HbA1c.exists("), NUMERATOR, "end of expression"),
    "where-fallback-syntax": (
        custom(numerator="%HbA1c.where(note.text = ).exists()"),
        NUMERATOR,
        "note.text",
    ),
    "where-on-patients": (custom(numerator="%T2D.where(status = 'final')"), NUMERATOR, "retrieve"),
    "value-is-no-set": (custom(denominator="%periodEnd"), DENOMINATOR, "periodEnd"),
    "unknown-language": (
        custom(definitions={"Cql": ("text/cql", "[Observation]")}, numerator="%Cql"),
        "Cql",
        "text/cql",
    ),
    "bad-query-parameter": (
        custom(
            definitions={
                "Coloured": (
                    QUERY,
                    "Observation?code:in=https://phm-fhir.be/fhir/ValueSet/hba1c&colour=red",
                )
            },
            numerator="%Coloured.exists()",
        ),
        "Coloured",
        "colour",
    ),
    "bad-query-type": (
        custom(definitions={"Labs": (QUERY, "LabResult?code=4548-4")}, numerator="%Labs.exists()"),
        "Labs",
        "LabResult",
    ),
    "bad-query-modifier": (
        custom(
            definitions={"Odd": (QUERY, "Observation?date:contains=2025")},
            numerator="%Odd.exists()",
        ),
        "Odd",
        "contains",
    ),
    "bad-sort": (
        custom(
            definitions={"Last": (QUERY, "Observation?code=4548-4&_sort=-date&_count=2")},
            numerator="%Last.exists()",
        ),
        "Last",
        "_count=1",
    ),
    "unused-bad-definition": (
        custom(definitions={"Unused": (QUERY, "Observation?colour=red")}),
        "Unused",
        "colour",
    ),
    "self-reference": (
        custom(definitions={"Loop": (FHIRPATH, "%Loop and %T2D")}, numerator="%Loop"),
        "Loop",
        "itself",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
async def test_uncompilable_measure_is_rejected(client: httpx.AsyncClient, case: str) -> None:
    measure, where, mentions = BAD[case]
    # a population's criteria, or the name of a definition (then its extension)
    expression = where if where.startswith("Measure.") else extension_path(measure, where)
    for r in (
        await client.post("/Measure", json=measure),
        await client.put("/Measure/custom", json=measure),
    ):
        oo = assert_outcome(r, 422)
        issue = oo["issue"][0]
        assert issue["severity"] == "error"
        assert issue["expression"] == [expression], issue
        assert mentions in issue["diagnostics"], issue
    assert (await client.get("/Measure/custom")).status_code == 404


async def test_stratifier_that_maps_to_nothing_is_rejected(
    measure_client: httpx.AsyncClient,
) -> None:
    m = custom()
    m["group"][0]["stratifier"][2]["criteria"]["expression"] = "Patient.photo"
    oo = assert_outcome(await measure_client.post("/Measure", json=m), 422)
    assert oo["issue"][0]["expression"] == ["Measure.group[0].stratifier[2]"]
    m = custom()
    m["group"][0]["stratifier"][4]["component"][1]["criteria"]["expression"] = "%postcode"
    oo = assert_outcome(await measure_client.post("/Measure", json=m), 422)
    assert oo["issue"][0]["expression"] == ["Measure.group[0].stratifier[4].component[1]"]


async def test_compilable_measure_is_stored_and_runs(measure_client: httpx.AsyncClient) -> None:
    m = custom(numerator="%HbA1c.where(value.ofType(Quantity).value <= 7 '%').exists()")
    r = await measure_client.put("/Measure/custom", json=m)
    assert r.status_code == 201, r.text
    report = await evaluate(measure_client, "custom")
    assert counts(report) == {"initial-population": 0, "denominator": 0, "numerator": 0}
