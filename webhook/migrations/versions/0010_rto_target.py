"""each group's RTO target: how long its owners accept a recovery to take

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade():
    with op.batch_alter_table("protection_groups") as table:
        table.add_column(sa.Column("rto_target_seconds", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("protection_groups") as table:
        table.drop_column("rto_target_seconds")
