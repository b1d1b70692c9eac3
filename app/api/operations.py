"""Operations: `Patient/{id}/$everything` (more arrive with the engines)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import known_type
from app.api.http import base_url, check_accept, fhir_response
from app.api.rest import _instant_param, _page_size, render_searchset
from app.fhir.definitions import resource_types
from app.fhir.errors import FhirError
from app.fhir.query import Include, ParsedQuery, parse_query
from app.store import reads
from app.store.search import CompileContext, r
from app.store.searchset import includes, run_search

router = APIRouter()


async def everything(request: Request, patient_id: str) -> Response:
    """The patient, every resource in its compartment, and the resources they reference
    (R4 Patient-everything), paged by `_count`, filtered by `_type` and `_since`."""
    check_accept(request)
    settings = request.app.state.settings
    qp = request.query_params
    size = _page_size(qp.get("_count"), settings)
    since = _instant_param("_since", qp.get("_since"))
    types = [t for t in (qp.get("_type") or "").split(",") if t]
    unknown = [t for t in types if t not in resource_types()]
    if unknown:
        raise FhirError.of(400, "not-supported", f"_type: {unknown[0]!r} is not a resource type")
    pq: ParsedQuery = parse_query([(k, v) for k, v in qp.multi_items()
                                   if k in ("_cursor", "_dir")])
    async with request.app.state.db.read() as conn:
        cur = await reads.current(conn, "Patient", patient_id)
        if cur is None:
            raise FhirError.of(404, "not-found", f"Patient/{patient_id} is not known")
        if cur.deleted:
            raise FhirError.of(410, "deleted", f"Patient/{patient_id} was deleted")
        pq.total = "accurate" if not pq.cursor else "none"
        extra = r.c.patient_id == patient_id
        if since is not None:
            extra = extra & (r.c.last_updated >= since)
        if types:
            extra = extra & r.c.res_type.in_(types)
        page = await run_search(conn, None, pq, CompileContext(), size, extra=extra)
        page.included = await includes(conn, page.matches,
                                       [Include("*", "*", None, False, False)],
                                       outside_compartment=patient_id)
        page.included = [h for h in page.included if h.res_type not in ("Patient",)
                         or h.id != patient_id]
    path = f"{base_url(request)}/Patient/{patient_id}/$everything"
    pairs = [(k, v) for k, v in qp.multi_items() if k not in ("_cursor", "_dir")]
    return fhir_response(render_searchset(request, page, pairs, path, None, None))


@router.get("/{res_type}/{res_id}/{operation}", summary="Instance operation")
async def instance_operation(request: Request, res_type: str, res_id: str,
                             operation: str) -> Response:
    known_type(res_type)
    if res_type == "Patient" and operation == "$everything":
        return await everything(request, res_id)
    raise FhirError.of(404, "not-supported",
                       f"unknown operation or path '{res_type}/{res_id}/{operation}'")
