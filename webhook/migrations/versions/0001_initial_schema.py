"""initial schema: sites, protection groups and their members, resource mappings,
operations and their per-group results, the audit log, alert deliveries

Revision ID: 0001
Revises: (none)
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

GROUP_ID = "protection_groups.id"


def _key() -> sa.Column:
    """A string UUID, the primary key."""
    return sa.Column("id", sa.String(36), primary_key=True)


def _serial() -> sa.Column:
    """A counter, the primary key of an append-only table."""
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                     primary_key=True, autoincrement=True)


def _text(name: str, length: int | None = None, *, null: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length) if length else sa.Text(), nullable=null)


def _of(kind: sa.types.TypeEngine, *names: str, null: bool = False) -> list[sa.Column]:
    """Columns of one type: times, counts, flags, JSON documents."""
    return [sa.Column(name, kind, nullable=null) for name in names]


def _reference(name: str, target: str, on_delete: str, *, null: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(36), sa.ForeignKey(target, ondelete=on_delete),
                     nullable=null)


def upgrade():
    op.create_table(
        "sites", sa.Column("name", sa.String(64), primary_key=True), _text("role", 8),
        _text("url", 255), *_of(sa.Boolean(), "reachable", null=True),
        *_of(sa.DateTime(), "state_since", "last_probe_at", null=True),
        *_of(sa.Integer(), "consecutive_failures", "consecutive_successes"),
        _text("last_error", null=True))
    op.create_table(
        "protection_groups", _key(), _text("name", 63), _text("description", 255),
        _text("project_name", 64), *_of(sa.JSON(), "project_ids"),
        _text("replication_type", 8), _text("primary_site", 64), _text("secondary_site", 64),
        _text("volume_type", 255), *_of(sa.Integer(), "rpo_target_seconds", null=True),
        _text("status", 32), *_of(sa.Integer(), "version"),
        *_of(sa.DateTime(), "created_at", "updated_at"),
        sa.UniqueConstraint("project_name", "name"))
    op.create_table(
        "members", _key(), _reference("group_id", GROUP_ID, "CASCADE"),
        _text("server_id", 36), _text("server_name", 255), *_of(sa.Integer(), "position"),
        *_of(sa.JSON(), "spec", null=True), *_of(sa.DateTime(), "captured_at", null=True),
        sa.UniqueConstraint("group_id", "server_id"))
    op.create_table(
        "resource_mappings", _key(), _text("project_name", 64),
        _reference("group_id", GROUP_ID, "CASCADE", null=True), _text("scope", 36),
        _text("kind", 16), _text("source", 255), _text("target", 255),
        *_of(sa.Integer(), "version"),
        sa.UniqueConstraint("project_name", "group_id", "kind", "source"),
        sa.UniqueConstraint("project_name", "scope", "kind", "source",
                            name="uq_resource_mappings_scope"))
    op.create_table(
        "operations", _key(), _text("type", 32), _text("scope", 16),
        _reference("group_id", GROUP_ID, "SET NULL", null=True), _text("site", 64, null=True),
        _text("project_name", 64, null=True), _text("requested_project", 64, null=True),
        _text("status", 24), *_of(sa.Integer(), "total", "completed_count", "failed_count"),
        *_of(sa.Boolean(), "force"), *_of(sa.Boolean(), "peer_reachable", null=True),
        _text("recovery_point", 255, null=True),
        *_of(sa.Float(), "rpo_achieved_seconds", null=True),
        _text("idempotency_key", 128, null=True), _text("mistral_execution_id", 36, null=True),
        *_of(sa.JSON(), "requested_by", "params"), _text("error", null=True),
        *_of(sa.DateTime(), "created_at"),
        *_of(sa.DateTime(), "started_at", "finished_at", null=True),
        sa.UniqueConstraint("idempotency_key"))
    op.create_index("ix_operations_project_name", "operations", ["project_name"])
    op.create_index("ix_operations_requested_project", "operations", ["requested_project"])
    op.create_table(
        "operation_results", _serial(),
        _reference("operation_id", "operations.id", "CASCADE"), _text("group_id", 36),
        _text("group_name", 63), _text("status", 24), _text("step", 64, null=True),
        _text("reason", null=True), _text("recovery_point", 255, null=True),
        *_of(sa.Float(), "rpo_achieved_seconds", null=True),
        *_of(sa.JSON(), "timings", "details"),
        *_of(sa.DateTime(), "started_at", "finished_at", null=True),
        sa.UniqueConstraint("operation_id", "group_id"))
    op.create_table(
        "audit_log", _serial(), *_of(sa.DateTime(), "at"), *_of(sa.JSON(), "actor"),
        _text("action", 64), _text("target", 255, null=True),
        _text("project_name", 64, null=True), _text("outcome", 16), _text("reason", null=True),
        *_of(sa.JSON(), "details"))
    op.create_index("ix_audit_log_project_name", "audit_log", ["project_name"])
    op.create_table(
        "alert_deliveries", _serial(), _text("fingerprint", 64), _text("starts_at", 40),
        _text("status", 16), _text("rule", 255, null=True), _text("decision", 32),
        *_of(sa.DateTime(), "received_at"),
        sa.UniqueConstraint("fingerprint", "starts_at", "status"))


def downgrade():
    for table in ("alert_deliveries", "audit_log", "operation_results", "operations",
                  "resource_mappings", "members", "protection_groups", "sites"):
        op.drop_table(table)
