"""`phm stratify [--all]`: the engine from the command line, with a progress bar."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from sqlalchemy import func, select
from tqdm import tqdm

from app.config import Settings
from app.store.db import create_database
from app.store.migrate import upgrade
from app.store.profiles import load_profiles
from app.store.schema import patient_dirty, resource
from app.stratify.engine import Stratifier
from app.stratify.map import MapError, load_map
from app.stratify.worker import EngineLock


async def run_stratify(
    settings: Settings, everyone: bool, map_file: Path | None, on: str | None
) -> None:
    try:
        smap = load_map(map_file or settings.stratification_map or None)
    except MapError as exc:
        typer.echo(f"the stratification map is not valid: {exc}", err=True)
        raise typer.Exit(2) from None
    day = (
        date.fromisoformat(on or settings.stratify_date) if (on or settings.stratify_date) else None
    )
    await upgrade(settings.database_url)
    db = create_database(settings)
    try:
        await load_profiles(db)
        stratifier = Stratifier(db, smap, day)
        async with db.read() as conn:
            if everyone:
                q = select(func.count()).where(resource.c.res_type == "Patient")
            else:
                q = select(func.count()).select_from(patient_dirty)
            total = int((await conn.execute(q)).scalar() or 0)
        async with EngineLock(db).hold():
            with tqdm(total=total, unit="patient", desc="stratifying") as bar:
                if everyone:
                    summary = await stratifier.stratify_all(bar.update)
                else:
                    summary = await stratifier.stratify_marked(bar.update)
    finally:
        await db.dispose()
    rate = summary.patients / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"stratified {summary.patients} patients in {summary.seconds:.1f} s "
        f"({rate:.0f} patients/s): {summary.written} RiskAssessments and "
        f"{summary.groups_written} Groups written, {summary.removed} removed"
    )
    for s in smap.strata:
        typer.echo(f"  {s.code:<24} {summary.counts.get(s.code, 0):>8}")
