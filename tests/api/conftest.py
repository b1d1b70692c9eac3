"""Fixtures for the HTTP tests: the R4 JSON Schema (a second opinion on what we serve) and a
client on an app with referential integrity off (for resources whose targets are elsewhere)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from jsonschema import Draft6Validator

from tests.conftest import SHARED


class SchemaCheck:
    """Validates resources against `fhir.schema.json`, one compiled validator per type."""

    def __init__(self) -> None:
        self.schema: dict[str, Any] = orjson.loads(
            (SHARED / "fhir-r4" / "fhir.schema.json").read_bytes()
        )
        self.whole = Draft6Validator(self.schema)
        self._by_type: dict[str, Draft6Validator] = {}

    def errors(self, resource: dict[str, Any]) -> list[str]:
        rt = resource.get("resourceType")
        if rt not in self.schema["definitions"]:
            return [f"no schema for resourceType {rt!r}"]
        validator = self._by_type.get(rt)
        if validator is None:
            validator = Draft6Validator(
                {"$ref": f"#/definitions/{rt}", "definitions": self.schema["definitions"]}
            )
            self._by_type[rt] = validator
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in validator.iter_errors(resource)
        ]


@pytest.fixture(scope="session")
def fhir_schema() -> SchemaCheck:
    return SchemaCheck()
