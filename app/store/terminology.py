"""ValueSet expansion for `:in`/`:not-in` (and later the measure engine): from ValueSets stored
on this server, `compose.include` concepts, whole code systems and nested value sets."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.errors import FhirError
from app.store.schema import idx_uri, resource, resource_version

Concept = tuple[str | None, str | None]  # (system, code); code None = the whole system


async def _load(conn: AsyncConnection, url: str) -> dict[str, Any] | None:
    canonical = url.split("|")[0]
    v = resource_version
    q = (
        select(v.c.content)
        .select_from(resource.join(v, and_(v.c.res_pk == resource.c.pk,
                                           v.c.version == resource.c.version)))
        .where(resource.c.res_type == "ValueSet", ~resource.c.deleted,
               resource.c.pk.in_(select(idx_uri.c.res_pk).where(
                   idx_uri.c.res_type == "ValueSet", idx_uri.c.param == "url",
                   idx_uri.c.value == canonical)))
        .order_by(resource.c.last_updated.desc())
        .limit(1)
    )
    content = (await conn.execute(q)).scalar()
    if content is None:
        return None
    loaded: dict[str, Any] = orjson.loads(content)
    return loaded


async def expand(conn: AsyncConnection, url: str, _depth: int = 0) -> list[Concept]:
    if _depth > 10:
        raise FhirError.of(400, "processing", f"ValueSet '{url}' includes itself")
    vs = await _load(conn, url)
    if vs is None:
        raise FhirError.of(400, "not-found", f"ValueSet '{url}' is not stored on this server")
    out: list[Concept] = []
    if "expansion" in vs:
        stack = list(vs["expansion"].get("contains", []))
        while stack:
            c = stack.pop()
            if c.get("code"):
                out.append((c.get("system"), c["code"]))
            stack += c.get("contains", [])
        return out
    for inc in vs.get("compose", {}).get("include", []):
        if inc.get("filter"):
            raise FhirError.of(400, "not-supported",
                               f"ValueSet '{url}' uses filters, which this server cannot expand")
        system = inc.get("system")
        for nested in inc.get("valueSet", []):
            out += await expand(conn, nested, _depth + 1)
        if "concept" in inc:
            out += [(system, c["code"]) for c in inc["concept"]]
        elif system:
            out.append((system, None))
    return out
