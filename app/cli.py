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


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
