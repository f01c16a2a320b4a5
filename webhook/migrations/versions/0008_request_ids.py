"""an operation keeps the id of the API request that started it

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade():
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("request_id", sa.String(64), nullable=True))


def downgrade():
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("request_id")
