"""divergence is detected, never silent: each document carries the clock of which site
wrote how many of its versions (and the site that recorded a takeover alone), and copies
written apart are kept side by side until resolved

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade():
    for table in ("protection_groups", "resource_mappings"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("clock", sa.JSON(), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET clock = '{{}}'"))
        with op.batch_alter_table(table) as batch:
            batch.alter_column("clock", existing_type=sa.JSON(), nullable=False)
    with op.batch_alter_table("protection_groups") as batch:
        batch.add_column(sa.Column("taken_over_by", sa.String(64), nullable=True))
    op.create_table(
        "divergences",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(36), nullable=False, index=True),
        sa.Column("open_for", sa.String(36), nullable=True, unique=True),
        sa.Column("project_domain", sa.String(64), nullable=False),
        sa.Column("project_name", sa.String(64), nullable=False),
        sa.Column("peer_site", sa.String(64), nullable=False),
        sa.Column("ours", sa.JSON(), nullable=False),
        sa.Column("theirs", sa.JSON(), nullable=False),
        sa.Column("detected_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True))


def downgrade():
    op.drop_table("divergences")
    with op.batch_alter_table("protection_groups") as batch:
        batch.drop_column("taken_over_by")
    for table in ("resource_mappings", "protection_groups"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("clock")
