"""The FastAPI application: routers, lifespan (database, migrations), errors as
OperationOutcomes."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from app import __version__
from app.api import measure, operations, rest, stratify, system
from app.api.http import fhir_response
from app.config import Settings
from app.fhir.definitions import type_definitions
from app.fhir.errors import FhirError, Issue, operation_outcome
from app.fhir.search_params import registry
from app.store.db import create_database
from app.store.migrate import upgrade
from app.store.profiles import load_profiles
from app.stratify.worker import stratification

log = logging.getLogger("app")

_HTTP_CODES = {404: "not-found", 405: "not-supported", 413: "too-costly", 415: "not-supported"}


_frozen = False


def _freeze_startup_objects() -> None:
    """Take what start-up loaded (the R4 definitions, the search-parameter registry, profiles,
    modules) out of the garbage collector's generations, once per process. They live as long
    as the process, yet every full collection walked them again: about a fifth of the CPU of
    an ingest request (a full collection comes every few hundred thousand allocations)."""
    global _frozen
    if _frozen:
        return
    type_definitions()
    registry()
    gc.collect()
    gc.freeze()
    _frozen = True


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await upgrade(settings.database_url)
        app.state.db = create_database(settings)
        if settings.load_profiles:
            await load_profiles(app.state.db)
        app.state.stratify = stratification(app.state.db, settings)
        app.state.stratify.start()
        _freeze_startup_objects()
        try:
            yield
        finally:
            await app.state.stratify.stop()
            await app.state.db.dispose()

    app = FastAPI(
        title="phm-fhir",
        version=__version__,
        description="FHIR R4 server for population health management (FHIR JSON; every error "
        "is an OperationOutcome).",
        lifespan=lifespan,
    )
    app.state.settings = settings

    @app.exception_handler(FhirError)
    async def fhir_error(_request: Request, exc: FhirError) -> Response:
        return fhir_response(exc.outcome(), exc.status, exc.headers or None)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "processing")
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = "no such path on this FHIR server"
        elif exc.status_code == 405:
            detail = "this interaction is not supported on this path"
        return fhir_response(operation_outcome([Issue(code, detail)]), exc.status_code,
                             dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        msg = "; ".join(str(e.get("msg")) for e in exc.errors()[:5])
        return fhir_response(operation_outcome([Issue("invalid", msg)]), 400)

    @app.exception_handler(Exception)
    async def server_error(_request: Request, exc: Exception) -> Response:
        # No request content in the log: it may hold patient data.
        log.error("internal error: %s", type(exc).__name__, exc_info=exc)
        return fhir_response(operation_outcome([Issue(
            "exception", "internal server error; the request was not applied")]), 500)

    app.include_router(system.router)
    app.include_router(stratify.router)
    app.include_router(measure.router)
    # rest before operations: its literal `_history` routes must win over `{operation}`
    app.include_router(rest.router)
    app.include_router(operations.router)
    return app
