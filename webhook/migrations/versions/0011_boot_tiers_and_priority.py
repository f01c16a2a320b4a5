"""each member's boot tier and health gate, set by the tenant; each group's priority in a
site failover

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"


def upgrade():
    with op.batch_alter_table("members") as table:
        table.add_column(sa.Column("boot_tier", sa.Integer(), nullable=True))
        table.add_column(sa.Column("gate", sa.JSON(), nullable=True))
    with op.batch_alter_table("protection_groups") as table:
        table.add_column(sa.Column("priority", sa.Integer(), nullable=False,
                                   server_default="0"))


def downgrade():
    with op.batch_alter_table("protection_groups") as table:
        table.drop_column("priority")
    with op.batch_alter_table("members") as table:
        table.drop_column("gate")
        table.drop_column("boot_tier")
