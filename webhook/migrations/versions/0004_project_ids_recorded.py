"""each site records the id its Keystone gives a project that owns something there: a
project deleted and created again under the same name is another tenant; the per-group
``project_ids`` column, which nothing filled, goes (its local entries move over)

Revision ID: 0004
Revises: 0003
"""

import json
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade():
    projects = op.create_table(
        "projects",
        sa.Column("project_domain", sa.String(64), primary_key=True),
        sa.Column("project_name", sa.String(64), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_from", sa.String(16), nullable=False))
    bind = op.get_bind()
    local = bind.execute(sa.text("SELECT name FROM sites WHERE role = 'local'")).scalar()
    moved: dict[tuple[str, str], str] = {}
    for domain, name, ids in bind.execute(sa.text(
            "SELECT project_domain, project_name, project_ids FROM protection_groups")):
        ids = json.loads(ids) if isinstance(ids, str) else ids or {}
        if local in ids:
            moved.setdefault((domain, name), ids[local])
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    if moved:
        op.bulk_insert(projects, [
            {"project_domain": domain, "project_name": name, "project_id": project_id,
             "recorded_at": now, "recorded_from": "caller"}
            for (domain, name), project_id in moved.items()])
    with op.batch_alter_table("protection_groups") as batch:
        batch.drop_column("project_ids")


def downgrade():
    with op.batch_alter_table("protection_groups") as batch:
        batch.add_column(sa.Column("project_ids", sa.JSON(), nullable=False,
                                   server_default="{}"))
    op.drop_table("projects")
