"""openapi/openapi.json must match the app: regenerate it with `make openapi`."""

from __future__ import annotations

from pathlib import Path

from app.openapi import openapi_json


def test_openapi_document_is_current() -> None:
    committed = (Path(__file__).resolve().parents[1] / "openapi" / "openapi.json").read_text()
    assert committed == openapi_json(), "openapi/openapi.json is stale: run `make openapi`"
