"""operation results carry what their steps found (a drill: the test prefix and whether
production replication was affected)

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    # A JSON column takes no default on MySQL: added empty, filled, then made NOT NULL.
    with op.batch_alter_table("operation_results") as batch:
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
    op.execute("UPDATE operation_results SET details = '{}'")
    with op.batch_alter_table("operation_results") as batch:
        batch.alter_column("details", existing_type=sa.JSON(), nullable=False)


def downgrade():
    with op.batch_alter_table("operation_results") as batch:
        batch.drop_column("details")
