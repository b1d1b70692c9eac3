"""Bundles built from stored JSON bytes without re-parsing them (searchset, history, responses)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

import orjson

from app.fhir.dates import to_instant


def _entry(full_url: str, content: bytes, extra: bytes) -> bytes:
    return b'{"fullUrl":' + orjson.dumps(full_url) + b',"resource":' + content + extra + b"}"


def searchset(
    base: str,
    matches: Iterable[tuple[str, str, bytes]],
    included: Iterable[tuple[str, str, bytes]],
    links: dict[str, str],
    total: int | None,
    outcome: dict[str, Any] | None = None,
) -> bytes:
    head: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        head["total"] = total
    head["link"] = [{"relation": k, "url": v} for k, v in links.items()]
    parts = [_entry(f"{base}/{t}/{i}", c, b',"search":{"mode":"match"}') for t, i, c in matches]
    parts += [_entry(f"{base}/{t}/{i}", c, b',"search":{"mode":"include"}')
              for t, i, c in included]
    if outcome is not None:
        parts.append(b'{"resource":' + orjson.dumps(outcome) + b',"search":{"mode":"outcome"}}')
    body = orjson.dumps(head)[:-1]
    if parts:
        body += b',"entry":[' + b",".join(parts) + b"]"
    return body + b"}"


def history_bundle(base: str, versions: Iterable[Any], links: dict[str, str],
                   total: int | None) -> bytes:
    head: dict[str, Any] = {"resourceType": "Bundle", "type": "history"}
    if total is not None:
        head["total"] = total
    head["link"] = [{"relation": k, "url": v} for k, v in links.items()]
    parts = []
    for v in versions:
        url = f"{base}/{v.res_type}/{v.id}"
        method = "POST" if v.method == "POST" else "DELETE" if v.content is None else "PUT"
        req = {"method": method,
               "url": v.res_type if method == "POST" else f"{v.res_type}/{v.id}"}
        status = "201 Created" if method == "POST" else "204 No Content" \
            if method == "DELETE" else "200 OK"
        resp = {"status": status, "etag": f'W/"{v.version}"',
                "lastModified": to_instant(v.last_updated)}
        tail = b',"request":' + orjson.dumps(req) + b',"response":' + orjson.dumps(resp)
        if v.content is None:
            parts.append(b'{"fullUrl":' + orjson.dumps(url) + tail + b"}")
        else:
            parts.append(_entry(url, v.content, tail))
    body = orjson.dumps(head)[:-1]
    if parts:
        body += b',"entry":[' + b",".join(parts) + b"]"
    return body + b"}"


def page_url(base_path: str, params: list[tuple[str, str]], **override: str | None) -> str:
    kept = [(k, v) for k, v in params if k not in override and k not in ("_cursor", "_dir")]
    kept += [(k, v) for k, v in override.items() if v is not None]
    return f"{base_path}?{urlencode(kept)}" if kept else base_path
