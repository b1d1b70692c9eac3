"""`phm seed`: the synthetic region written through the bulk path of the store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import typer
from tqdm import tqdm

from app.config import Settings
from app.store.bulk import is_empty, load
from app.store.db import create_database
from app.store.migrate import upgrade
from app.synth import RegionConfig, generate_region


def _batches(region: Any, size: int, bar: tqdm) -> Iterator[list[dict[str, Any]]]:
    yield region.shared_resources()
    batch: list[dict[str, Any]] = []
    n = 0
    for resources in region.patient_resources():
        batch.extend(resources)
        n += 1
        if n == size:
            yield batch
            bar.update(n)
            batch, n = [], 0
    if batch:
        yield batch
        bar.update(n)


async def seed_database(settings: Settings, config: RegionConfig, if_empty: bool,
                        validate_every: int, batch: int) -> None:
    await upgrade(settings.database_url)
    db = create_database(settings)
    try:
        if not await is_empty(db):
            if if_empty:
                typer.echo("the database already holds data: not seeding")
                return
        t0 = time.perf_counter()
        region = generate_region(config)
        with tqdm(total=len(region), unit="patient", desc="seeding") as bar:
            written = await load(db, _batches(region, batch, bar), validate_every)
        dt = time.perf_counter() - t0
    finally:
        await db.dispose()
    typer.echo(
        f"seeded {len(region)} patients, {written} resources in {dt:.0f} s "
        f"({len(region) / dt:.0f} patients/s, {written / dt:.0f} resources/s)\n"
        "try: http://127.0.0.1:8000/docs  |  http://127.0.0.1:8000/metadata\n"
        "     curl 'http://127.0.0.1:8000/Patient?address-postalcode=3010&_count=5'\n"
        "     curl 'http://127.0.0.1:8000/Condition?code=http://hl7.org/fhir/sid/icpc-2|T90"
        "&_include=Condition:subject&_count=5'\n"
        "     curl 'http://127.0.0.1:8000/Group?_summary=true'"
    )
