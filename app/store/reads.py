"""Reads: current and past versions, and history, straight from the stored JSON bytes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.fhir.references import ID
from app.store.schema import resource, resource_version

MAX_VERSION = 2**31 - 1  # resource.version is an INTEGER


@dataclass(slots=True)
class StoredVersion:
    pk: int
    res_type: str
    id: str
    version: int
    last_updated: int
    method: str
    content: bytes | None  # None: a deletion

    @property
    def deleted(self) -> bool:
        return self.content is None


@dataclass(slots=True)
class Current:
    pk: int
    version: int
    deleted: bool
    last_updated: int
    patient_id: str | None


_v = resource_version


async def current(conn: AsyncConnection, res_type: str, res_id: str,
                  for_update: bool = False) -> Current | None:
    if not ID.match(res_id):
        return None
    q = select(resource.c.pk, resource.c.version, resource.c.deleted, resource.c.last_updated,
               resource.c.patient_id).where(resource.c.res_type == res_type,
                                            resource.c.id == res_id)
    if for_update and conn.dialect.name == "postgresql":
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    return Current(*row) if row else None


async def read_version(conn: AsyncConnection, res_type: str, res_id: str,
                       version: int | None = None) -> StoredVersion | None:
    """The current version (or version `version`) of a resource, deleted or not."""
    if not ID.match(res_id) or version is not None and not 0 < version <= MAX_VERSION:
        return None  # cannot exist (and would be an error, not a miss, on PostgreSQL)
    cols = (_v.c.res_pk, _v.c.res_type, _v.c.id, _v.c.version, _v.c.last_updated, _v.c.method,
            _v.c.content)
    if version is None:
        q = select(*cols).select_from(
            resource.join(_v, and_(_v.c.res_pk == resource.c.pk,
                                   _v.c.version == resource.c.version))
        ).where(resource.c.res_type == res_type, resource.c.id == res_id)
    else:
        q = select(*cols).select_from(resource.join(_v, _v.c.res_pk == resource.c.pk)).where(
            resource.c.res_type == res_type, resource.c.id == res_id, _v.c.version == version
        )
    row = (await conn.execute(q)).first()
    return StoredVersion(*row) if row else None


async def history(conn: AsyncConnection, res_type: str | None, res_id: str | None,
                  since: int | None, at: int | None, count: int,
                  cursor: tuple[int, int, int] | None) -> list[StoredVersion]:
    """Versions newest first; `cursor` is the (last_updated, res_pk, version) of the last row
    of the previous page (keyset paging, stable while new versions are written)."""
    q = select(_v.c.res_pk, _v.c.res_type, _v.c.id, _v.c.version, _v.c.last_updated,
               _v.c.method, _v.c.content)
    if res_id is not None:
        q = q.where(_v.c.res_type == res_type, _v.c.id == res_id)
    elif res_type is not None:
        q = q.where(_v.c.res_type == res_type)
    if since is not None:
        q = q.where(_v.c.last_updated >= since)
    if at is not None:
        # the version current at `at`: the newest version of each resource not after `at`
        newer = _v.alias("newer")
        q = q.where(_v.c.last_updated <= at).where(
            ~select(newer.c.version).where(newer.c.res_pk == _v.c.res_pk,
                                           newer.c.version > _v.c.version,
                                           newer.c.last_updated <= at).exists()
        )
    if cursor is not None:
        lu, pk, ver = cursor
        q = q.where(or_(_v.c.last_updated < lu,
                        and_(_v.c.last_updated == lu, _v.c.res_pk < pk),
                        and_(_v.c.last_updated == lu, _v.c.res_pk == pk, _v.c.version < ver)))
    q = q.order_by(_v.c.last_updated.desc(), _v.c.res_pk.desc(), _v.c.version.desc())
    q = q.limit(count)
    return [StoredVersion(*row) for row in await conn.execute(q)]


async def count_history(conn: AsyncConnection, res_type: str | None, res_id: str | None,
                        since: int | None) -> int:
    from sqlalchemy import func

    q = select(func.count()).select_from(_v)
    if res_id is not None:
        q = q.where(_v.c.res_type == res_type, _v.c.id == res_id)
    elif res_type is not None:
        q = q.where(_v.c.res_type == res_type)
    if since is not None:
        q = q.where(_v.c.last_updated >= since)
    return int((await conn.execute(q)).scalar() or 0)
