"""audit entries and operations name their projects, so tenants read their own; a
mapping's scope makes project-wide mappings unique

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("project_name", sa.String(length=64), nullable=True))
        batch.create_index("ix_audit_log_project_name", ["project_name"])
    with op.batch_alter_table("resource_mappings") as batch:
        batch.add_column(sa.Column("scope", sa.String(length=36), nullable=False,
                                   server_default="project"))
    op.execute("UPDATE resource_mappings SET scope = group_id WHERE group_id IS NOT NULL")
    with op.batch_alter_table("resource_mappings") as batch:
        batch.create_unique_constraint("uq_resource_mappings_scope",
                                       ["project_name", "scope", "kind", "source"])
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("requested_project", sa.String(length=64), nullable=True))
        batch.create_index("ix_operations_requested_project", ["requested_project"])
        batch.create_index("ix_operations_project_name", ["project_name"])


def downgrade():
    with op.batch_alter_table("operations") as batch:
        batch.drop_index("ix_operations_project_name")
        batch.drop_index("ix_operations_requested_project")
        batch.drop_column("requested_project")
    with op.batch_alter_table("resource_mappings") as batch:
        batch.drop_constraint("uq_resource_mappings_scope", type_="unique")
        batch.drop_column("scope")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_index("ix_audit_log_project_name")
        batch.drop_column("project_name")
