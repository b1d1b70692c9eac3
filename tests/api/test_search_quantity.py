"""Quantity, number and composite search parameters."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.fhir import create, ids, patient, search

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def quantity(value: float, code: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


def lab(subject: str, loinc: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": subject},
        "valueQuantity": value,
    }


def blood_pressure(subject: str, systolic: float, diastolic: float) -> dict[str, Any]:
    def comp(code: str, v: float) -> dict[str, Any]:
        return {
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "valueQuantity": quantity(v, "mm[Hg]", "mmHg"),
        }

    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
        "subject": {"reference": subject},
        "component": [comp("8480-6", systolic), comp("8462-4", diastolic)],
    }


@pytest.fixture
async def labs(client: httpx.AsyncClient) -> dict[str, str]:
    subject = "Patient/" + (await create(client, patient("Lab")))["id"]
    bodies = {
        "a1c_low": lab(subject, "4548-4", quantity(5.4, "%")),
        "a1c_high": lab(subject, "4548-4", quantity(8.1, "%")),
        "a1c_7": lab(subject, "4548-4", quantity(7, "%")),
        "glucose": lab(subject, "15074-8", quantity(5.4, "mmol/L")),
        "weight": lab(subject, "29463-7", {"value": 80, "unit": "kg"}),
        "bp_high": blood_pressure(subject, 150, 85),
        "bp_dia": blood_pressure(subject, 120, 145),
    }
    return {k: (await create(client, b))["id"] for k, b in bodies.items()}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"gt5.4|{UCUM}|%", {"a1c_high", "a1c_7"}),
        (f"5.4|{UCUM}|%", {"a1c_low"}),
        (f"ge5.4|{UCUM}|%", {"a1c_low", "a1c_high", "a1c_7"}),
        (f"lt7|{UCUM}|%", {"a1c_low"}),
        (f"le7|{UCUM}|%", {"a1c_low", "a1c_7"}),
        (f"ne5.4|{UCUM}|%", {"a1c_high", "a1c_7"}),
        ("5.4", {"a1c_low", "glucose"}),
        ("5.4||mmol/L", {"glucose"}),
        ("lt100||kg", {"weight"}),
        (f"80|{UCUM}|kg", set()),  # the weight has no system
        (f"5.4|{UCUM}|mg", set()),
        ("7.0", {"a1c_7"}),
        ("7.05", set()),  # precision: 7.05 means [7.045, 7.055)
    ],
)
async def test_value_quantity(
    client: httpx.AsyncClient, labs: dict[str, str], value: str, expected: set[str]
) -> None:
    got = ids(await search(client, "/Observation", {"value-quantity": value}))
    assert got == {labs[k] for k in expected}


async def test_code_value_quantity(client: httpx.AsyncClient, labs: dict[str, str]) -> None:
    b = await search(client, "/Observation", {"code-value-quantity": f"{LOINC}|4548-4$gt7"})
    assert ids(b) == {labs["a1c_high"]}
    b = await search(client, "/Observation", {"code-value-quantity": "4548-4$ge7"})
    assert ids(b) == {labs["a1c_high"], labs["a1c_7"]}
    b = await search(
        client, "/Observation", {"code-value-quantity": f"{LOINC}|15074-8$5.4|{UCUM}|mmol/L"}
    )
    assert ids(b) == {labs["glucose"]}
    b = await search(
        client, "/Observation", {"code-value-quantity": f"{LOINC}|4548-4$gt9,{LOINC}|15074-8$lt6"}
    )
    assert ids(b) == {labs["glucose"]}


async def test_component_code_value_quantity(
    client: httpx.AsyncClient, labs: dict[str, str]
) -> None:
    # the code and the value must come from the same component
    b = await search(
        client, "/Observation", {"component-code-value-quantity": f"{LOINC}|8480-6$gt140"}
    )
    assert ids(b) == {labs["bp_high"]}
    b = await search(
        client, "/Observation", {"component-code-value-quantity": f"{LOINC}|8462-4$gt90"}
    )
    assert ids(b) == {labs["bp_dia"]}
    b = await search(
        client,
        "/Observation",
        {"component-code-value-quantity": f"{LOINC}|8480-6$lt130|{UCUM}|mm[Hg]"},
    )
    assert ids(b) == {labs["bp_dia"]}
    b = await search(client, "/Observation", {"component-value-quantity": "gt140"})
    assert ids(b) == {labs["bp_high"], labs["bp_dia"]}
    b = await search(client, "/Observation", {"component-code": f"{LOINC}|8480-6"})
    assert ids(b) == {labs["bp_high"], labs["bp_dia"]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.2", {"p20"}),
        ("0.20", {"p20"}),
        ("gt0.2", {"p25"}),
        ("ge0.2", {"p20", "p25"}),
        ("le0.2", {"p02", "p20"}),
        ("lt0.2", {"p02"}),
        ("ne0.2", {"p02", "p25"}),
        ("0.02", {"p02"}),
        ("2e-2", {"p02"}),
        ("1", set()),
    ],
)
async def test_number(client: httpx.AsyncClient, value: str, expected: set[str]) -> None:
    subject = "Patient/" + (await create(client, patient("Risk")))["id"]
    made = {}
    for key, p in (("p02", 0.02), ("p20", 0.2), ("p25", 0.25)):
        body = {
            "resourceType": "RiskAssessment",
            "status": "final",
            "subject": {"reference": subject},
            "prediction": [{"probabilityDecimal": p}],
        }
        made[key] = (await create(client, body))["id"]
    got = ids(await search(client, "/RiskAssessment", {"probability": value}))
    assert got == {made[k] for k in expected}
