"""Synthea's patient Bundles (independently generated R4 data) load through `POST /`, and every
resource reads back as it was sent, apart from `id`, the server's `meta` additions and the
`urn:uuid:` references the server rewrote to the ids it assigned."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

BUNDLES = 25
MAX_BYTES = 500_000  # the smallest eighth of the set (~2,700 resources), to keep it quick


@pytest.fixture(scope="module")
def synthea_bundles(synthea_dir: Path) -> list[Path]:
    """25 patient Bundles spread evenly over the alphabetical list of those under MAX_BYTES."""
    patients = sorted(
        p
        for p in synthea_dir.glob("*.json")
        if not p.name.startswith(("hospitalInformation", "practitionerInformation"))
        and p.stat().st_size <= MAX_BYTES
    )
    step = len(patients) / BUNDLES
    return [patients[int(i * step)] for i in range(BUNDLES)]


def rewrite_references(node: Any, ids: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: ids.get(v, v)
            if k == "reference" and isinstance(v, str)
            else rewrite_references(v, ids)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [rewrite_references(v, ids) for v in node]
    return node


def first_difference(sent: Any, got: Any, path: str = "") -> str | None:
    if isinstance(sent, dict) and isinstance(got, dict):
        for key in sorted(set(sent) | set(got)):
            if key not in got or key not in sent:
                return f"{path}.{key}: sent {sent.get(key)!r:.80}, read {got.get(key)!r:.80}"
            diff = first_difference(sent[key], got[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(sent, list) and isinstance(got, list) and len(sent) == len(got):
        for i, (a, b) in enumerate(zip(sent, got, strict=True)):
            diff = first_difference(a, b, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if sent == got else f"{path}: sent {sent!r:.80}, read {got!r:.80}"


async def load(client: httpx.AsyncClient, path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """POST the Bundle; return it and the map fullUrl -> Type/id from the response."""
    raw = path.read_bytes()
    bundle = orjson.loads(raw)
    r = await client.post("/", content=raw)
    assert r.status_code == 200, f"{path.name}: {r.text[:1000]}"
    response = r.json()
    assert response["type"] == "transaction-response"
    assert len(response["entry"]) == len(bundle["entry"])
    ids = {}
    for sent, got in zip(bundle["entry"], response["entry"], strict=True):
        assert got["response"]["status"] == "201 Created", f"{path.name}: {got}"
        res_type, res_id, history, version = got["response"]["location"].split("/")
        assert (res_type, history, version) == (sent["resource"]["resourceType"], "_history", "1")
        ids[sent["fullUrl"]] = f"{res_type}/{res_id}"
    return bundle, ids


async def read_back(
    client: httpx.AsyncClient, name: str, entry: dict[str, Any], ids: dict[str, str]
) -> str | None:
    """What differs between the entry's resource as sent and as read back, if anything."""
    sent = rewrite_references(copy.deepcopy(entry["resource"]), ids)
    ref = ids[entry["fullUrl"]]
    r = await client.get(f"/{ref}")
    assert r.status_code == 200, f"{name} {ref}: {r.text[:500]}"
    got = r.json()
    assert got.pop("id") == ref.split("/")[1]
    meta = got.pop("meta")
    assert meta["versionId"] == "1" and meta["lastUpdated"]
    sent_meta = sent.pop("meta", {})
    assert {k: meta.get(k) for k in sent_meta} == sent_meta, f"{name} {ref}"
    sent.pop("id", None)
    return None if got == sent else f"{name} {ref}: {first_difference(sent, got)}"


async def test_synthea_bundles_load_and_read_back(
    client: httpx.AsyncClient, synthea_bundles: list[Path]
) -> None:
    problems: list[str] = []
    resources = 0
    for path in synthea_bundles:
        bundle, ids = await load(client, path)
        entries = bundle["entry"]
        resources += len(entries)
        for start in range(0, len(entries), 8):  # a few reads in flight at a time
            found = await asyncio.gather(
                *(read_back(client, path.name, e, ids) for e in entries[start : start + 8])
            )
            problems += [p for p in found if p]
    assert not problems, f"{len(problems)} of {resources} differ:\n" + "\n".join(problems[:20])
    assert resources > 2000
