"""Alembic environment: the database URL comes from Settings (PHM_DATABASE_URL) or the caller."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from app.config import Settings
from app.store.db import sync_url
from app.store.schema import metadata

config = context.config
url = config.attributes.get("database_url") or Settings().database_url


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = create_engine(sync_url(url))
    with engine.begin() as conn:
        _migrate(conn)
    engine.dispose()


def _migrate(conn: object) -> None:
    context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run()
