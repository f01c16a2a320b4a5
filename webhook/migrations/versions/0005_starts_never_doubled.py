"""a start is never doubled: each operation records the execution id it asks Mistral for
(a repeated create returns that execution), and what its idempotency key was given for

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade():
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("idempotency_request", sa.String(64), nullable=True))
        batch.add_column(sa.Column("planned_execution_id", sa.String(36), nullable=True))


def downgrade():
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("planned_execution_id")
        batch.drop_column("idempotency_request")
