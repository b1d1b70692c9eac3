"""Loading Bundle files through the REST API (in-process through ASGI, or to a remote server)."""

from __future__ import annotations

from pathlib import Path

import httpx
from tqdm import tqdm

from app.config import Settings


async def ingest_files(files: list[Path], url: str | None, settings: Settings) -> None:
    if url is None:
        from app.main import create_app

        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://phm") as client:
                await _post_all(client, files)
        return
    async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=300) as client:
        await _post_all(client, files)


async def _post_all(client: httpx.AsyncClient, files: list[Path]) -> None:
    headers = {"content-type": "application/fhir+json", "prefer": "return=minimal"}
    failures = 0
    for path in tqdm(files, unit="bundle", desc="ingest"):
        resp = await client.post("/", content=path.read_bytes(), headers=headers)
        if resp.status_code >= 400:
            failures += 1
            tqdm.write(f"{path.name}: HTTP {resp.status_code} {resp.text[:500]}")
    if failures:
        raise SystemExit(f"{failures} of {len(files)} bundles failed")
