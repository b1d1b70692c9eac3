"""Measure operations: `$evaluate-measure` (R4) and `$care-gaps` (Da Vinci DEQM style)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.http import base_url, check_accept, fhir_response, read_body
from app.api.rest import write
from app.fhir.dates import now_us, to_instant
from app.fhir.errors import FhirError
from app.fhir.validation import RESOURCE_CHECKS
from app.measure.criteria import measure_issues
from app.measure.period import measurement_period
from app.measure.service import care_gaps, evaluate, load_measure, resolve_subject

RESOURCE_CHECKS["Measure"] = measure_issues
router = APIRouter()

_SCALARS = ("valueString", "valueDate", "valueDateTime", "valueCode", "valueUri",
            "valueCanonical", "valueId", "valueBoolean")


async def _parameters(request: Request) -> dict[str, list[str]]:
    """Operation parameters from the query string, and from a Parameters body on POST."""
    params: dict[str, list[str]] = {}
    for k, v in request.query_params.multi_items():
        params.setdefault(k, []).append(v)
    if request.method == "POST" and request.headers.get("content-length", "0") != "0":
        body = await read_body(request, request.app.state.settings.max_body_bytes)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FhirError.of(400, "invalid", "the body of an operation must be Parameters")
        for p in body.get("parameter", []):
            name = p.get("name")
            value = next((p[k] for k in _SCALARS if k in p), None)
            if value is None and "valueReference" in p:
                value = p["valueReference"].get("reference")
            if name and value is not None:
                params.setdefault(name, []).append(str(value).lower()
                                                   if isinstance(value, bool) else str(value))
    return params


def _one(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise FhirError.of(400, "invalid", f"parameter '{name}' may be given once")
    return values[0]


async def _evaluate(request: Request, measure_id: str | None) -> Response:
    check_accept(request)
    params = await _parameters(request)
    period = measurement_period(_one(params, "periodStart"), _one(params, "periodEnd"))
    persist = (_one(params, "persist") or "false").lower() == "true"
    async with request.app.state.db.read() as conn:
        loaded = await load_measure(conn, measure_id, _one(params, "measure"))
        subject = await resolve_subject(conn, _one(params, "subject"),
                                        _one(params, "practitioner"))
        report = await evaluate(conn, loaded, period, _one(params, "reportType"), subject)
    if not persist:
        return fhir_response(report)
    out = await write(request, lambda s: s.create("MeasureReport", report, "MeasureReport"))
    headers = {"Location": f"{base_url(request)}/MeasureReport/{out.id}/_history/{out.version}",
               "ETag": f'W/"{out.version}"'}
    return fhir_response(out.content, 201, headers)


@router.get("/Measure/$evaluate-measure", summary="Evaluate a Measure (by its url)")
@router.post("/Measure/$evaluate-measure", summary="Evaluate a Measure (by its url)")
async def evaluate_by_url(request: Request) -> Response:
    return await _evaluate(request, None)


@router.get("/Measure/{measure_id}/$evaluate-measure", summary="Evaluate a Measure")
@router.post("/Measure/{measure_id}/$evaluate-measure", summary="Evaluate a Measure")
async def evaluate_by_id(request: Request, measure_id: str) -> Response:
    return await _evaluate(request, measure_id)


@router.get("/Measure/$care-gaps", summary="Open care gaps per patient")
@router.post("/Measure/$care-gaps", summary="Open care gaps per patient")
async def care_gaps_operation(request: Request) -> Response:
    check_accept(request)
    params = await _parameters(request)
    period = measurement_period(_one(params, "periodStart"), _one(params, "periodEnd"))
    status = params.get("status", ["open-gap"])
    if any(s != "open-gap" for s in status):
        raise FhirError.of(400, "not-supported", "only status=open-gap is supported")
    ids = params.get("measureId", [])
    urls = params.get("measureUrl", [])
    subjects = params.get("subject", [])
    if len(subjects) > 1:
        raise FhirError.of(400, "invalid", "give one subject (a Patient or a Group)")
    base = base_url(request)
    async with request.app.state.db.read() as conn:
        if not ids and not urls:
            ids = await _all_measure_ids(conn)
        measures = [await load_measure(conn, i, None) for i in ids]
        measures += [await load_measure(conn, None, u) for u in urls]
        subject = await resolve_subject(conn, subjects[0] if subjects else None,
                                        _one(params, "practitioner"))
        gaps = await care_gaps(conn, measures, period, subject)
    return fhir_response(_gaps_parameters(gaps, period, base))


async def _all_measure_ids(conn: Any) -> list[str]:
    from sqlalchemy import select

    from app.store.schema import resource

    q = select(resource.c.id).where(resource.c.res_type == "Measure", ~resource.c.deleted)
    return sorted(row[0] for row in await conn.execute(q))


def _gaps_parameters(gaps: list[dict[str, Any]], period: tuple[str, str],
                     base: str) -> dict[str, Any]:
    out = []
    for g in gaps:
        patient = f"Patient/{g['patient']}"
        issues = []
        for canonical, title, what, measure_id in g["gaps"]:
            issues.append({
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "DetectedIssue", "status": "final",
                    "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                         "v3-ActCode", "code": "CAREGAP",
                                         "display": "Care Gaps"}]},
                    "patient": {"reference": patient},
                    "detail": f"{title}: {what}" if title else what,
                    "evidence": [{"detail": [{"reference": f"Measure/{measure_id}"}]}],
                    "extension": [{"url": "http://hl7.org/fhir/us/davinci-deqm/"
                                   "StructureDefinition/extension-gapStatus",
                                   "valueCodeableConcept": {"coding": [{
                                       "system": "http://hl7.org/fhir/us/davinci-deqm/"
                                       "CodeSystem/gaps-status", "code": "open-gap"}]}}],
                    "identifiedPeriod": {"start": period[0], "end": period[1]},
                    "reference": canonical,
                },
            })
        composition = {
            "resourceType": "Composition", "status": "final",
            "type": {"coding": [{"system": "http://loinc.org", "code": "96315-7",
                                 "display": "Gaps in care report"}]},
            "subject": {"reference": patient}, "date": period[1],
            "author": [{"display": "phm-fhir"}], "title": "Care gaps",
            "section": [{"title": i["resource"]["detail"],
                         "entry": [{"reference": i["fullUrl"]}]} for i in issues],
        }
        bundle = {"resourceType": "Bundle", "type": "document",
                  # bdl-9, bdl-10: a document has an identifier and a timestamp
                  "identifier": {"system": "urn:ietf:rfc:3986",
                                 "value": f"urn:uuid:{uuid.uuid4()}"},
                  "timestamp": to_instant(now_us()),
                  "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": composition},
                            {"fullUrl": f"{base}/{patient}",
                             "resource": {"resourceType": "Patient", "id": g["patient"]}},
                            *issues]}
        out.append({"name": "return", "resource": bundle})
    # FHIR JSON has no empty arrays: no open gap, no parameter
    return {"resourceType": "Parameters", **({"parameter": out} if out else {})}

