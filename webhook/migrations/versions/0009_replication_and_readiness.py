"""the DR site keeps what its array last said of each group's replication lag, and each
group's last readiness check

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def _group_id() -> sa.Column:
    return sa.Column("group_id", sa.String(36),
                     sa.ForeignKey("protection_groups.id", ondelete="CASCADE"),
                     primary_key=True)


def upgrade():
    op.create_table(
        "replication_states", _group_id(),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("recovery_point_at", sa.DateTime(), nullable=True),
        sa.Column("lag_seconds", sa.Float(), nullable=True),
        sa.Column("violated", sa.Boolean(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True))
    op.create_table(
        "readiness", _group_id(),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False))


def downgrade():
    op.drop_table("readiness")
    op.drop_table("replication_states")
