"""one operation per Mistral execution: a workflow started in Mistral directly is recorded
as an operation the first time one of its actions reports, and only once

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade():
    with op.batch_alter_table("operations") as table:
        table.create_unique_constraint("uq_operations_mistral_execution_id",
                                       ["mistral_execution_id"])


def downgrade():
    with op.batch_alter_table("operations") as table:
        table.drop_constraint("uq_operations_mistral_execution_id", type_="unique")
