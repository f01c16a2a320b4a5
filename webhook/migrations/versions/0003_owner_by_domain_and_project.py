"""ownership by domain and project: a project's name is unique only within its Keystone
domain, so groups, mappings, operations and audit entries record the domain too; existing
rows are the Default domain's

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

# How batch mode names the unique constraints 0001 left unnamed, on SQLite.
CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
OWNED = ("protection_groups", "resource_mappings")
UNIQUE = {   # table -> [(name before, columns before, name after, columns after)]
    "protection_groups": [
        (None, ["project_name", "name"], "uq_protection_groups_owner_name",
         ["project_domain", "project_name", "name"])],
    "resource_mappings": [
        (None, ["project_name", "group_id", "kind", "source"],
         "uq_resource_mappings_owner_group",
         ["project_domain", "project_name", "group_id", "kind", "source"]),
        ("uq_resource_mappings_scope", ["project_name", "scope", "kind", "source"],
         "uq_resource_mappings_scope",
         ["project_domain", "project_name", "scope", "kind", "source"])],
}


def _existing_name(table: str, columns: list[str]) -> str:
    """The name the database gave a unique constraint 0001 left unnamed."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        return CONVENTION["uq"] % {"table_name": table,
                                   "column_0_N_name": "_".join(columns)}
    return next(u["name"] for u in sa.inspect(bind).get_unique_constraints(table)
                if u["column_names"] == columns)


def upgrade():
    for table in OWNED:
        with op.batch_alter_table(table, naming_convention=CONVENTION) as batch:
            batch.add_column(sa.Column("project_domain", sa.String(64), nullable=False,
                                       server_default="Default"))
            for before, columns_before, after, columns_after in UNIQUE[table]:
                batch.drop_constraint(before or _existing_name(table, columns_before),
                                      type_="unique")
                batch.create_unique_constraint(after, columns_after)
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("project_domain", sa.String(64), nullable=True))
        batch.add_column(sa.Column("requested_domain", sa.String(64), nullable=True))
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("project_domain", sa.String(64), nullable=True))
    # What was recorded before is the Default domain's.
    for table, columns in (("operations", ("project_domain", "project_name")),
                           ("operations", ("requested_domain", "requested_project")),
                           ("audit_log", ("project_domain", "project_name"))):
        domain, name = columns
        op.execute(f"UPDATE {table} SET {domain} = 'Default' WHERE {name} IS NOT NULL")


def downgrade():
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("project_domain")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("requested_domain")
        batch.drop_column("project_domain")
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            for before, columns_before, after, _ in UNIQUE[table]:
                batch.drop_constraint(after, type_="unique")
                batch.create_unique_constraint(
                    before or f"uq_{table}_{'_'.join(columns_before)}", columns_before)
            batch.drop_column("project_domain")
