"""The `phm` command: serve, migrate, ingest, seed (more commands arrive with the engines)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from app.config import Settings

cli = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="phm-fhir: FHIR R4 server for population health management.")


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    migrate: Annotated[bool, typer.Option(help="apply pending migrations first")] = True,
) -> None:
    """Serve the FHIR API (http://HOST:PORT, docs at /docs, CapabilityStatement at /metadata)."""
    import uvicorn

    from app.store.migrate import upgrade_sync

    settings = Settings()
    if migrate:
        upgrade_sync(settings.database_url)
    # Workers read their settings from the environment; migrations ran once, above.
    os.environ["PHM_AUTO_MIGRATE"] = "false"
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers,
                log_level=settings.log_level, access_log=False)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations (alembic upgrade head)."""
    from app.store.migrate import upgrade_sync

    upgrade_sync(Settings().database_url)
    typer.echo("database schema is up to date")


@cli.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Bundle JSON files or folders of them")],
    url: Annotated[str | None, typer.Option(help="post to this FHIR server instead")] = None,
) -> None:
    """Load transaction/batch Bundles through POST / (in-process, or to --url)."""
    from app.ingest import ingest_files

    files = sorted(p for path in paths for p in ([path] if path.is_file()
                                                  else path.rglob("*.json")))
    asyncio.run(ingest_files(files, url, Settings()))


@cli.command()
def seed(
    patients: Annotated[int, typer.Option(help="inhabitants to generate")] = 20000,
    teams: Annotated[int, typer.Option(help="neighbourhood teams")] = 8,
    seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same data)")] = 42,
    out: Annotated[Path | None, typer.Option(help="write files to this folder instead")] = None,
    fmt: Annotated[str, typer.Option("--format", help="bundle | ndjson (with --out)")] = "bundle",
    url: Annotated[str | None, typer.Option(help="POST the bundles to this FHIR server")] = None,
    if_empty: Annotated[bool, typer.Option(help="do nothing if the database holds data")] = False,
    validate_every: Annotated[int, typer.Option(help="fully validate every Nth resource")] = 25,
    batch: Annotated[int, typer.Option(help="patients per database transaction")] = 250,
) -> None:
    """Generate the synthetic Leuven-like region and load it (bulk path), or write or post it."""
    from app.synth import RegionConfig, generate_region

    region_config = RegionConfig(patients=patients, teams=teams, seed=seed)
    if out is not None:
        from app.synth.output import write_bundles, write_ndjson

        region = generate_region(region_config)
        if fmt == "ndjson":
            write_ndjson(region, out, progress=True)
        elif fmt == "bundle":
            write_bundles(region, out, progress=True)
        else:
            raise typer.BadParameter("--format must be bundle or ndjson")
        typer.echo(f"wrote {len(region)} patients to {out} ({fmt})")
        return
    if url is not None:
        from app.synth.output import post_bundles

        n = post_bundles(generate_region(region_config), url, progress=True)
        typer.echo(f"posted {n} bundles to {url}")
        return
    from app.seed import seed_database

    asyncio.run(seed_database(Settings(), region_config, if_empty, validate_every, batch))


@cli.command()
def evaluate(
    measure: Annotated[str, typer.Argument(help="Measure id or canonical url")],
    period: Annotated[str | None, typer.Option(help="a year or month: 2025, 2025-03")] = None,
    period_start: Annotated[str | None, typer.Option("--period-start")] = None,
    period_end: Annotated[str | None, typer.Option("--period-end")] = None,
    subject: Annotated[str | None, typer.Option(help="Patient/x, Group/x, Practitioner/x")] = None,
    report: Annotated[str, typer.Option(help="population | subject-list | subject")] = "population",
    out: Annotated[Path | None, typer.Option(help="write the MeasureReport JSON here")] = None,
) -> None:
    """Evaluate a Measure and print its MeasureReport as a table (and write the JSON)."""
    from app.measure.cli import evaluate_command

    asyncio.run(evaluate_command(Settings(), measure, period_start or period,
                                 period_end or period, subject, report, out))


@cli.command()
def stratify(
    everyone: Annotated[bool, typer.Option("--all", help="every patient, not only the changed "
                                           "ones")] = False,
    map_file: Annotated[Path | None, typer.Option("--map", help="stratification map (JSON); "
                                                  "default: the shipped one")] = None,
    on: Annotated[str | None, typer.Option("--date", help="reference date YYYY-MM-DD "
                                           "(default: today)")] = None,
) -> None:
    """Place patients on the stratification map: those whose data changed since the last run,
    or everyone with --all (RiskAssessment per patient, Groups per stratum and team)."""
    from app.stratify.command import run_stratify

    asyncio.run(run_stratify(Settings(), everyone, map_file, on))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
