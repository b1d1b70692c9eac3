"""Request-scoped access to the app's database and settings."""

from __future__ import annotations

from fastapi import Request

from app.config import Settings
from app.fhir.definitions import resource_types
from app.fhir.errors import FhirError
from app.store.db import Database


def db(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


def settings(request: Request) -> Settings:
    s: Settings = request.app.state.settings
    return s


def known_type(res_type: str) -> str:
    if res_type not in resource_types():
        raise FhirError.of(404, "not-supported",
                           f"'{res_type}' is not a FHIR R4 resource type this server knows")
    return res_type
