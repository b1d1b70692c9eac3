"""Fixtures for the HTTP tests: the R4 JSON Schema (a second opinion on what we serve) and a
client on an app with referential integrity off (for resources whose targets are elsewhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from jsonschema import Draft6Validator

from app.config import Settings
from app.main import create_app
from tests.conftest import FHIR_JSON, SHARED


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


@pytest.fixture(scope="module")
async def lenient_app(database_url: str) -> AsyncIterator[object]:
    application = create_app(
        Settings(
            database_url=database_url,
            base_url="http://testserver",
            enforce_referential_integrity=False,
            auto_migrate=False,
        )
    )
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def lenient_client(
    lenient_app: object,
    client: httpx.AsyncClient,
) -> AsyncIterator[httpx.AsyncClient]:
    """Like `client` (same emptied database) but references need not resolve."""
    transport = httpx.ASGITransport(app=lenient_app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=FHIR_JSON
    ) as c:
        yield c
