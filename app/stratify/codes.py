"""The code lists of a stratification map: its ValueSets expanded once, from the ValueSets stored
on this server (the shipped library is loaded at start-up, and a region may PUT its own) or,
for one not stored, from the shipped file; kept until a stored ValueSet changes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.definitions import PROFILES
from app.fhir.errors import FhirError
from app.store.schema import resource
from app.store.terminology import expand
from app.stratify.map import StratificationMap

Code = tuple[str, str]  # (system, code)


@dataclass(frozen=True, slots=True)
class MapCodes:
    """Per fact, the (system, code) pairs it matches; per value set, its expansion."""

    by_fact: dict[str, frozenset[Code]]
    by_value_set: dict[str, frozenset[Code]]
    stamp: tuple[int, int]  # (number of ValueSets, newest last_updated) when expanded

    def codes(self, facts: list[str]) -> frozenset[Code]:
        out: set[Code] = set()
        for f in facts:
            out |= self.by_fact[f]
        return frozenset(out)


async def value_set_stamp(conn: AsyncConnection) -> tuple[int, int]:
    q = select(func.count(), func.max(resource.c.last_updated)).where(
        resource.c.res_type == "ValueSet"
    )
    n, newest = (await conn.execute(q)).one()
    return int(n or 0), int(newest or 0)


@functools.cache
def shipped_value_sets() -> dict[str, dict[str, Any]]:
    """The ValueSets under fhir_profiles/valuesets/, by canonical url."""
    out = {}
    for path in sorted((PROFILES / "valuesets").glob("*.json")):
        body = orjson.loads(path.read_bytes())
        if isinstance(body, dict) and body.get("resourceType") == "ValueSet" and "url" in body:
            out[body["url"]] = body
    return out


def _expand_shipped(url: str, depth: int = 0) -> list[tuple[str | None, str | None]]:
    vs = shipped_value_sets().get(url.split("|")[0])
    if vs is None or depth > 10:
        raise ValueError(
            f"ValueSet '{url}' is neither stored on this server nor shipped "
            "under fhir_profiles/valuesets"
        )
    out: list[tuple[str | None, str | None]] = []
    for inc in vs.get("compose", {}).get("include", []):
        for nested in inc.get("valueSet", []):
            out += _expand_shipped(nested, depth + 1)
        if "concept" in inc:
            out += [(inc.get("system"), c["code"]) for c in inc["concept"]]
        elif inc.get("system"):
            out.append((inc["system"], None))
    return out


async def _expand(conn: AsyncConnection, url: str) -> list[tuple[str | None, str | None]]:
    try:
        return await expand(conn, url)
    except FhirError as exc:
        if exc.status == 400 and exc.issues and exc.issues[0].code == "not-found":
            return _expand_shipped(url)
        raise


async def expand_map(conn: AsyncConnection, smap: StratificationMap) -> MapCodes:
    stamp = await value_set_stamp(conn)
    by_vs: dict[str, frozenset[Code]] = {}
    for url in sorted(smap.value_sets()):
        concepts = await _expand(conn, url)
        if any(code is None or system is None for system, code in concepts):
            raise ValueError(
                f"ValueSet '{url}' includes a whole code system; the "
                "stratification engine needs explicit codes"
            )
        by_vs[url] = frozenset((s, c) for s, c in concepts if s and c)
    by_fact = {}
    for name, fact in smap.facts.items():
        out: set[Code] = set()
        for url in fact.value_sets():
            out |= by_vs[url]
        by_fact[name] = frozenset(out)
    return MapCodes(by_fact, by_vs, stamp)


class CodeCache:
    """Expansions per map, refreshed when the stored ValueSets change (one cheap query)."""

    def __init__(self) -> None:
        self._cached: dict[tuple[str, str, str], MapCodes] = {}

    async def get(self, conn: AsyncConnection, smap: StratificationMap) -> MapCodes:
        key = (smap.source_file, smap.id, smap.version)
        hit = self._cached.get(key)
        if hit is not None and hit.stamp == await value_set_stamp(conn):
            return hit
        codes = await expand_map(conn, smap)
        self._cached[key] = codes
        return codes
