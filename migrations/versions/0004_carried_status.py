"""token rows carry their resource's status codes

`Condition?code:in=<diabetes>&clinical-status=active&verification-status:not=refuted` looked up
the two statuses of every diabetes condition (two index probes per row; 30,000 hypertension
conditions in the region). Token rows now carry the code of up to two status parameters per
type (fhir_profiles/search/carried-status.json: '' when the resource has none, NULL when it has
several), so those clauses are conditions on the rows of the code clause; a NULL falls back to
the look-up. Existing rows are filled in from the token index itself.

Revision ID: 0004
Revises: 0003
"""

import json
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_idx_token_0": ["res_type", "param", "code", "system", "res_pk", "patient_id", "low",
                       "high"],
    "ix_idx_token_1": ["res_type", "param", "code", "patient_id", "system", "res_pk", "low",
                       "high"],
}
CARRIED = Path(__file__).resolve().parents[2] / "fhir_profiles" / "search" / \
    "carried-status.json"


def _indexes(extra: list[str]) -> None:
    with op.batch_alter_table("idx_token") as batch_op:
        for name, columns in INDEXES.items():
            batch_op.create_index(name, [*columns, *extra], unique=False)


def _drop_indexes() -> None:
    with op.batch_alter_table("idx_token") as batch_op:
        for name in INDEXES:
            batch_op.drop_index(name)


def upgrade() -> None:
    _drop_indexes()  # the update below would maintain them row by row
    with op.batch_alter_table("idx_token") as batch_op:
        batch_op.add_column(sa.Column("status1", sa.String(64), nullable=True))
        batch_op.add_column(sa.Column("status2", sa.String(64), nullable=True))
    params = json.loads(CARRIED.read_text())["parameters"]
    # one pass over the table; per row, its resource's status rows (by res_pk): one
    # distinct code gives that code, none gives '', several NULL (looked up when searched)
    binds: dict[str, str] = {}
    sets = []
    for i in (1, 2):
        whens = []
        for res_type, codes in params.items():
            if len(codes) < i:
                continue
            t, q = f"t{len(binds)}", f"p{len(binds)}"
            binds[t], binds[q] = res_type, codes[i - 1]
            whens.append(
                f" WHEN :{t} THEN (SELECT CASE WHEN count(*) = 0 THEN ''"
                " WHEN count(DISTINCT coalesce(x.system, '') || '|' || x.code) = 1"
                " AND length(min(x.code)) <= 64 THEN min(x.code) END"
                " FROM idx_token AS x WHERE x.res_pk = idx_token.res_pk"
                f" AND x.res_type = :{t} AND x.param = :{q} AND x.code IS NOT NULL)")
        sets.append(f"status{i} = CASE res_type{''.join(whens)} END")
    types = ", ".join(f"'{t}'" for t in params)  # our own file: resource type names
    op.execute(sa.text(f"UPDATE idx_token SET {', '.join(sets)} WHERE res_type IN ({types})")
               .bindparams(**binds))
    _indexes(["status1", "status2"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA analysis_limit=2000")
    op.execute("ANALYZE idx_token")


def downgrade() -> None:
    _drop_indexes()
    with op.batch_alter_table("idx_token") as batch_op:
        batch_op.drop_column("status2")
        batch_op.drop_column("status1")
    _indexes([])
