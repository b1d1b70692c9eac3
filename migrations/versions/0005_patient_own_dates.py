"""a partial index of Patients' own dates, by patient (PostgreSQL)

An initial population driven from a diagnosis (`%Adult and %HypertensionCondition`: 15,000
patients) tests each patient's birth date with one look-up. In the (patient_id, res_type, ...)
index of every date row that look-up reads a page of the patient's clinical dates, rarely in
shared buffers; this index holds the Patient rows only. SQLite is left as it is: its planner
uses a partial index for literal terms only, and the statements bind their values.

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
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_idx_date_patient_own", "idx_date", ["patient_id", "param", "low", "high"],
                    unique=False, postgresql_where=sa.text("res_type = 'Patient'"))
    op.execute("ANALYZE idx_date")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_idx_date_patient_own", table_name="idx_date")
