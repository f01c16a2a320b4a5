"""each recovery's report, kept; each group's drill schedule, the network its scheduled
drills recover onto, and each scheduled drill's run

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade():
    op.create_table(
        "operation_reports",
        sa.Column("operation_id", sa.String(36),
                  sa.ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("made_at", sa.DateTime(), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False))
    with op.batch_alter_table("protection_groups") as table:
        table.add_column(sa.Column("drill_schedule", sa.String(64), nullable=True))
        table.add_column(sa.Column("drill_network", sa.String(255), nullable=True))
    op.create_table(
        "scheduled_drills",
        sa.Column("execution_id", sa.String(36), primary_key=True),
        sa.Column("group_id", sa.String(36),
                  sa.ForeignKey("protection_groups.id", ondelete="CASCADE"), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("drill_operation_id", sa.String(36), nullable=True),
        sa.Column("cleanup_operation_id", sa.String(36), nullable=True),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False))
    op.create_index("ix_scheduled_drills_group_id", "scheduled_drills", ["group_id"])


def downgrade():
    op.drop_table("scheduled_drills")             # its index with it (MySQL keeps an
                                                   # index its foreign key needs otherwise)
    with op.batch_alter_table("protection_groups") as table:
        table.drop_column("drill_network")
        table.drop_column("drill_schedule")
    op.drop_table("operation_reports")
