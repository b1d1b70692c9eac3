"""a partial index of Patients' own dates, by patient

An initial population driven from a diagnosis (`%Adult and %HypertensionCondition`: 15,000
patients) tests each patient's birth date with one look-up. In the (patient_id, res_type, ...)
index of every date row that look-up reads a page of the patient's clinical dates, rarely in
shared buffers or SQLite's page cache; this index holds the Patient rows only (the look-ups
name `res_type = 'Patient'` as a literal, which SQLite needs to use a partial index).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    own = sa.text("res_type = 'Patient'")
    op.create_index("ix_idx_date_patient_own", "idx_date",
                    ["patient_id", "res_type", "param", "low", "high", "res_pk"], unique=False,
                    postgresql_where=own, sqlite_where=own)
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA analysis_limit=2000")
    op.execute("ANALYZE idx_date")


def downgrade() -> None:
    op.drop_index("ix_idx_date_patient_own", table_name="idx_date")
