"""Content negotiation, bodies and FHIR responses."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response

from app.fhir.dates import http_date
from app.fhir.errors import FhirError
from app.fhir.validation import check_depth

FHIR_JSON = "application/fhir+json; charset=utf-8"
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir", "text/json")
_ACCEPT_OK = (*_JSON_TYPES, "*/*", "application/*", "text/*", "")
_FORMAT_OK = ("json", "application/json", "application/fhir+json", "application/json+fhir")


def check_accept(request: Request) -> None:
    fmt = request.query_params.get("_format")
    if fmt is not None:
        if fmt.split(";")[0].strip().lower() not in _FORMAT_OK:
            raise FhirError.of(406, "not-supported",
                               f"_format={fmt} is not supported: this server speaks FHIR JSON "
                               "(_format=json)")
        return
    accept = request.headers.get("accept")
    if not accept:
        return
    kinds = [a.split(";")[0].strip().lower() for a in accept.split(",")]
    if not any(k in _ACCEPT_OK for k in kinds):
        raise FhirError.of(406, "not-supported",
                           f"cannot answer in {accept}: this server speaks application/fhir+json")


async def read_body(request: Request, max_bytes: int, allow_patch: bool = False) -> Any:
    """The parsed JSON body; 415 for another media type, 413 when too large, 400 unparseable."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed = _JSON_TYPES + (("application/json-patch+json",) if allow_patch else ())
    if ctype not in allowed:
        raise FhirError.of(415, "not-supported",
                           f"Content-Type '{ctype or '(none)'}' is not supported: send "
                           "application/fhir+json" + (" or application/json-patch+json"
                                                      if allow_patch else ""))
    length = request.headers.get("content-length")
    if length and length.isascii() and length.isdigit() and int(length) > max_bytes:
        raise FhirError.of(413, "too-costly", f"the body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise FhirError.of(413, "too-costly", f"the body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    request.state.raw_body = raw  # kept so a retried transaction can start from the original
    if not raw.strip():
        raise FhirError.of(400, "required", "the request has no body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FhirError.of(400, "structure", f"the body is not valid JSON: {exc}") from None
    check_depth(body)
    return body


def fhir_response(content: bytes | dict[str, Any] | None, status: int = 200,
                  headers: dict[str, str] | None = None) -> Response:
    body = content if isinstance(content, bytes) or content is None else orjson.dumps(content)
    return Response(content=body or b"", status_code=status, media_type=FHIR_JSON,
                    headers=headers)


def version_headers(res_type: str, res_id: str, version: int, last_updated: int,
                    base: str, location: bool = False) -> dict[str, str]:
    h = {"ETag": f'W/"{version}"', "Last-Modified": http_date(last_updated)}
    if location:
        h["Location"] = f"{base}/{res_type}/{res_id}/_history/{version}"
    return h


def prefer(request: Request, key: str) -> str | None:
    """The value of one Prefer token (`return`, `handling`)."""
    header = request.headers.get("prefer", "")
    for part in header.split(","):
        for token in part.split(";"):
            k, _, v = token.strip().partition("=")
            if k.strip().lower() == key:
                return v.strip().strip('"')
    return None


def base_url(request: Request) -> str:
    configured = request.app.state.settings.base_url
    return configured.rstrip("/") if configured else str(request.base_url).rstrip("/")
