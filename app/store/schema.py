"""Tables. One `resource` row per logical resource, one `resource_version` row per version (the
JSON bytes served on reads), and one index table per search-parameter type.

Every index row carries `res_type`, `param`, the owning resource's surrogate key `res_pk` and its
compartment owner `patient_id`, so a search is one statement over these tables, population work
selects patients straight from an index, and a future access-control predicate on `patient_id`
applies everywhere.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    String,
    Table,
    Text,
)

metadata = MetaData()

pk_seq = Sequence("resource_pk_seq", metadata=metadata)

resource = Table(
    "resource",
    metadata,
    Column("pk", BigInteger().with_variant(Integer, "sqlite"), pk_seq, primary_key=True),
    Column("res_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),  # epoch microseconds
    Column("deleted", Boolean, nullable=False, default=False),
    Column("patient_id", String(64)),
    Index("ux_resource_type_id", "res_type", "id", unique=True),
    Index("ix_resource_patient", "patient_id", "pk"),
    Index("ix_resource_type_updated", "res_type", "last_updated"),
    Index("ix_resource_updated", "last_updated"),
    # covering: a semi-join from an index table to live resources of a type is index-only
    Index("ix_resource_live", "pk", "res_type", "deleted", "patient_id"),
    # the live resources of a type (the Patients a measure evaluates), index-only
    Index("ix_resource_type_live", "res_type", "deleted", "id", "pk", "patient_id"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("res_pk", BigInteger, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("res_type", String(64), nullable=False),
    Column("id", String(64), nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),  # POST | PUT | PATCH | DELETE
    Column("content", LargeBinary),  # NULL for a deletion
    Index("ix_version_updated", "last_updated"),
    Index("ix_version_type_updated", "res_type", "last_updated"),
)

# Serialises conditional creates/updates with the same criteria across processes (SQLite takes
# its database write lock instead; PostgreSQL uses transaction advisory locks, this is unused).
conditional_lock = Table(
    "conditional_lock",
    metadata,
    Column("key", String(128), primary_key=True),
)


def _index_table(name: str, *columns: Column, indexes: tuple[tuple[str, ...], ...],
                 per_resource: tuple[str, ...] = ()) -> Table:
    t = Table(
        name,
        metadata,
        Column("res_pk", BigInteger, nullable=False),
        Column("res_type", String(64), nullable=False),
        Column("param", String(64), nullable=False),
        *columns,
        Column("patient_id", String(64)),
    )
    # (res_pk, res_type, param): per-resource look-ups (sort values, deletes) must win over the
    # (res_type, param, ...) indexes whatever the planner's statistics say
    # (with the values for token and date: the per-resource probes of searches and measures
    # are then index-only scans)
    Index(f"ix_{name}_pk", t.c.res_pk, t.c.res_type, t.c.param, *(t.c[c] for c in per_resource))
    for i, cols in enumerate(indexes):
        Index(f"ix_{name}_{i}", *(t.c[c] for c in cols))
    return t


idx_token = _index_table(
    "idx_token",
    Column("system", String(255)),
    Column("code", String(255)),
    Column("text", String(255)),  # display / text, case- and accent-folded (for :text)
    # the resource's clinical date (fhir_profiles/search/clinical-date.json): a code and a
    # period are then one range of the code index
    Column("low", BigInteger),
    Column("high", BigInteger),
    # the code of its resource's status parameters (fhir_profiles/search/carried-status.json:
    # '' none, NULL several): a code and a status are then one range of the code index
    Column("status1", String(64)),
    Column("status2", String(64)),
    indexes=(
        ("res_type", "param", "code", "system", "res_pk", "patient_id", "low", "high",
         "status1", "status2"),
        ("res_type", "param", "code", "patient_id", "system", "res_pk", "low", "high",
         "status1", "status2"),
    ),
    per_resource=("code", "system"),
)
idx_string = _index_table(
    "idx_string",
    Column("value", String(255), nullable=False),  # case- and accent-folded
    Column("exact", Text, nullable=False),
    indexes=(("res_type", "param", "value", "res_pk", "patient_id"),),
)
idx_date = _index_table(
    "idx_date",
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    indexes=(("res_type", "param", "low", "high", "res_pk", "patient_id"),
             ("patient_id", "res_type", "param", "low", "high", "res_pk")),
    per_resource=("low", "high"),
)
# a Patient's own dates (birthdate, death-date) by patient: a measure tests each patient of a
# diagnosis for its age with one look-up, and this index holds Patient rows only (a few MB that
# stay cached) where the (patient_id, ...) one above holds every clinical date of the patient (a
# page read per look-up). The look-ups name the type as a literal (SQLite uses a partial index
# only for terms it can see), and the columns are those of the index above, so that SQLite's
# planner, finding the same terms usable in both, takes the smaller.
Index("ix_idx_date_patient_own", *(idx_date.c[c] for c in (
    "patient_id", "res_type", "param", "low", "high", "res_pk")),
      postgresql_where=idx_date.c.res_type == "Patient",
      sqlite_where=idx_date.c.res_type == "Patient")
idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(64)),
    Column("target_id", String(64)),
    Column("url", Text),  # absolute URL or canonical when not a local resource
    indexes=(
        ("res_type", "param", "target_id", "target_type", "res_pk", "patient_id"),
        ("target_type", "target_id"),
        ("res_type", "param", "url"),
    ),
    per_resource=("target_type", "target_id"),
)
idx_quantity = _index_table(
    "idx_quantity",
    Column("value", Double, nullable=False),
    Column("system", String(255)),
    Column("code", String(255)),
    Column("unit", String(255)),
    indexes=(("res_type", "param", "code", "value", "res_pk", "patient_id"),),
)
idx_number = _index_table(
    "idx_number",
    Column("value", Double, nullable=False),
    indexes=(("res_type", "param", "value", "res_pk"),),
)
idx_uri = _index_table(
    "idx_uri",
    Column("value", Text, nullable=False),
    indexes=(("res_type", "param", "value"),),
)
idx_composite = _index_table(
    "idx_composite",
    Column("system1", String(255)),
    Column("code1", String(255)),
    Column("system2", String(255)),  # token / quantity system
    Column("code2", String(255)),  # token / quantity code / string / reference
    Column("num2", Double),  # quantity / number
    Column("low2", BigInteger),  # date
    Column("high2", BigInteger),
    indexes=(("res_type", "param", "code1", "res_pk"),),
    # a measure's probe of a resource's components (blood pressure < 140/90) is index-only
    per_resource=("code1", "code2", "num2", "system1", "system2", "low2", "high2"),
)

INDEX_TABLES: dict[str, Table] = {
    "token": idx_token,
    "string": idx_string,
    "date": idx_date,
    "reference": idx_reference,
    "quantity": idx_quantity,
    "number": idx_number,
    "uri": idx_uri,
    "composite": idx_composite,
}

# Work queue of patients whose compartment changed (read by the stratification engine).
patient_dirty = Table(
    "patient_dirty",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("marked_at", BigInteger, nullable=False),
)
