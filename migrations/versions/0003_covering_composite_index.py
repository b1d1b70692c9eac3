"""composite rows: the per-resource index covers the values a measure tests

A measure's blood-pressure criterion (`component-code-value-quantity=8480-6$lt140`) probes the
composite rows of each patient's last blood pressure by res_pk; with the codes and values in
the index that probe is index-only instead of a heap fetch per row.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD = ["res_pk", "res_type", "param"]
NEW = ["res_pk", "res_type", "param", "code1", "code2", "num2", "system1", "system2", "low2",
       "high2"]


def _replace(columns: list[str]) -> None:
    with op.batch_alter_table("idx_composite") as batch_op:
        batch_op.drop_index("ix_idx_composite_pk")
        batch_op.create_index("ix_idx_composite_pk", columns, unique=False)


def upgrade() -> None:
    _replace(NEW)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA analysis_limit=2000")
    op.execute("ANALYZE idx_composite")


def downgrade() -> None:
    _replace(OLD)
