"""a failed-over group's original VMs are fenced (stopped and locked) where they ran, an
unplanned failover's data loss is measured from the last moment the peer was seen, and a
mapping's kind may be as long as availability_zone

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade():
    with op.batch_alter_table("protection_groups") as batch:
        batch.add_column(sa.Column("fence", sa.JSON(), nullable=True))
    with op.batch_alter_table("sites") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("resource_mappings") as batch:
        batch.alter_column("kind", existing_type=sa.String(16), type_=sa.String(32),
                           existing_nullable=False)


def downgrade():
    with op.batch_alter_table("resource_mappings") as batch:
        batch.alter_column("kind", existing_type=sa.String(32), type_=sa.String(16),
                           existing_nullable=False)
    with op.batch_alter_table("sites") as batch:
        batch.drop_column("last_seen_at")
    with op.batch_alter_table("protection_groups") as batch:
        batch.drop_column("fence")
