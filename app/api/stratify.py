"""Stratification operations: `POST Patient/{id}/$stratify` (with `_explain=true`: which rule
matched and why), `POST /$stratify` (the marked patients, or everyone with `all=true`) and
`GET /$stratification-summary` (patients per stratum and team, movement since a date)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.http import check_accept, fhir_response, read_body
from app.fhir.dates import DateError, date_range
from app.fhir.errors import FhirError, Issue, operation_outcome
from app.store import reads
from app.stratify import parameters
from app.stratify.assign import explain
from app.stratify.facts import resource_refs
from app.stratify.output import assessment_id
from app.stratify.summary import summarise
from app.stratify.worker import StratifyTask

router = APIRouter()


def _task(request: Request) -> StratifyTask:
    task: StratifyTask = request.app.state.stratify
    return task


async def _flags(request: Request) -> dict[str, str]:
    """Operation parameters from the query string and, if any, a Parameters body."""
    out = {k: v for k, v in request.query_params.items()}
    if request.headers.get("content-length", "0") not in ("", "0") or request.headers.get(
        "transfer-encoding"
    ):
        body = await read_body(request, request.app.state.settings.max_body_bytes)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError.of(
                400,
                "invalid",
                "the body of $stratify must be a Parameters resource (or empty)",
                ["resourceType"],
            )
        for p in body.get("parameter", ()):
            for k, v in p.items():
                if k.startswith("value"):
                    out[p.get("name", "")] = str(v).lower() if isinstance(v, bool) else str(v)
    return out


def _boolean(flags: dict[str, str], name: str) -> bool:
    v = flags.get(name, "false").lower()
    if v not in ("true", "false"):
        raise FhirError.of(400, "invalid", f"{name} must be true or false, not '{v}'")
    return v == "true"


@router.post("/Patient/{patient_id}/$stratify", summary="Stratify one patient now")
async def stratify_patient(request: Request, patient_id: str) -> Response:
    check_accept(request)
    flags = await _flags(request)
    want_explain = _boolean(flags, "_explain")
    task = _task(request)
    db = request.app.state.db
    async with db.read() as conn:
        cur = await reads.current(conn, "Patient", patient_id)
    if cur is None:
        raise FhirError.of(404, "not-found", f"Patient/{patient_id} is not known")
    if cur.deleted:
        raise FhirError.of(410, "deleted", f"Patient/{patient_id} was deleted")
    async with task.lock.hold():
        await task.stratifier.stratify_patients([patient_id])
    async with db.read() as conn:
        found = await reads.read_version(conn, "RiskAssessment", assessment_id(patient_id))
    assessment = orjson.loads(found.content) if found and found.content else None
    if not want_explain:
        if assessment is None:
            return fhir_response(
                operation_outcome(
                    [
                        Issue(
                            "informational",
                            f"Patient/{patient_id} is deceased: not stratified",
                            severity="information",
                        )
                    ]
                )
            )
        return fhir_response(found.content if found else None)
    smap = task.stratifier.map
    facts = await task.stratifier.facts_of(patient_id)
    if facts is None:
        return fhir_response(
            operation_outcome(
                [
                    Issue(
                        "informational",
                        f"Patient/{patient_id} is deceased: not stratified",
                        severity="information",
                    )
                ]
            )
        )
    async with db.read() as conn:
        refs = await resource_refs(conn, [pk for pks in facts.basis.values() for pk in pks])
    return fhir_response(
        parameters.explanation(smap, explain(smap, facts), facts, refs, assessment)
    )


@router.post("/$stratify", summary="Stratify the changed patients (or everyone: all=true)")
async def stratify_population(request: Request) -> Response:
    check_accept(request)
    flags = await _flags(request)
    task = _task(request)
    async with task.lock.hold():
        if _boolean(flags, "all"):
            summary = await task.stratifier.stratify_all()
        else:
            summary = await task.stratifier.stratify_marked()
    return fhir_response(parameters.run_summary(task.stratifier.map, summary))


@router.get("/$stratification-summary", summary="Patients per stratum and team; movement")
async def stratification_summary(request: Request) -> Response:
    check_accept(request)
    since_param = request.query_params.get("since")
    since: int | None = None
    if since_param is not None:
        try:
            since = date_range(since_param)[0]
        except DateError as exc:
            raise FhirError.of(400, "invalid", f"since: {exc}") from None
    task = _task(request)
    async with request.app.state.db.read() as conn:
        summary = await summarise(conn, task.stratifier.map, since)
    body: dict[str, Any] = parameters.population(task.stratifier.map, summary)
    return fhir_response(body)
