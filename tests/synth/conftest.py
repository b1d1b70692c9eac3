"""Fixtures for the synthetic-region tests: generated regions (once per session) and validators
against the official FHIR R4 JSON Schema and the fhir.resources R4B models."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft6Validator

from app.synth import Region, RegionConfig, generate_region

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# the helper module synth_facts sits next to the tests; make it importable in any import mode
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
Resource = dict[str, Any]


@dataclass
class Generated:
    """A region with every resource materialised."""

    region: Region
    shared: list[Resource]
    patients: list[list[Resource]]

    def all_resources(self) -> list[Resource]:
        return self.shared + [r for p in self.patients for r in p]


def _generate(config: RegionConfig) -> Generated:
    region = generate_region(config)
    return Generated(region, region.shared_resources(), list(region.patient_resources()))


@pytest.fixture(scope="session")
def small() -> Generated:
    """300 patients: every resource gets validated."""
    return _generate(RegionConfig(patients=300, seed=7))


@pytest.fixture(scope="session")
def large() -> Generated:
    """20,000 patients (the default size): distributions and samples."""
    return _generate(RegionConfig(patients=20000, seed=42))


@pytest.fixture(scope="session")
def fhir_schema() -> dict[str, Any]:
    with (SHARED_DATA / "fhir-r4" / "fhir.schema.json").open(encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    return schema


@pytest.fixture(scope="session")
def schema_errors(fhir_schema: dict[str, Any]) -> Callable[[Resource], list[str]]:
    """Errors of a resource against its R4 JSON Schema definition (one validator per type)."""
    validators: dict[str, Draft6Validator] = {}

    def check(resource: Resource) -> list[str]:
        rtype = resource["resourceType"]
        v = validators.get(rtype)
        if v is None:
            v = validators[rtype] = Draft6Validator(
                {"$ref": f"#/definitions/{rtype}", "definitions": fhir_schema["definitions"]}
            )
        return [
            f"{rtype}/{resource.get('id')} {list(e.absolute_path)}: {e.message}"
            for e in v.iter_errors(resource)
        ]

    return check


@pytest.fixture(scope="session")
def model_errors() -> Callable[[Resource], list[str]]:
    """Errors of a resource against the fhir.resources R4B model of its type."""
    from fhir.resources.R4B import get_fhir_model_class

    def check(resource: Resource) -> list[str]:
        try:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except Exception as e:  # pydantic ValidationError and fhir_core errors alike
            return [f"{resource['resourceType']}/{resource.get('id')}: {e}"]
        return []

    return check
