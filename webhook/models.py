"""What the protection service keeps: sites, protection groups, mappings, operations, audit.

Portable across SQLite (the default), PostgreSQL and MariaDB: plain types, JSON columns,
string UUIDs, timezone-aware UTC timestamps. Durable operation state lives here, not only
inside Mistral, so progress survives a Mistral restart and is readable without it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from site_recovery.core.model import (
    DEFAULT_DOMAIN,
    GroupStatus,
    OperationKind,
    Project,
    Status,
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator):
    """Stored naive in UTC (MariaDB keeps no zone), returned aware."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict: JSON, list: JSON}


class Site(Base):
    """This site and its peer, with the peer's reachability as the probes judged it."""

    __tablename__ = "sites"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))                 # local | peer
    url: Mapped[str] = mapped_column(String(255))
    reachable: Mapped[bool | None] = mapped_column(Boolean)      # None until probed
    state_since: Mapped[datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_successes: Mapped[int] = mapped_column(Integer, default=0)
    last_probe_at: Mapped[datetime | None]
    # The last probe the peer answered well: where an unplanned failover's data loss ends.
    last_seen_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class ProjectRecord(Base):
    """The id this site's Keystone gives a project that owns something here, recorded the
    first time the service met it: the domain and name mean that project, on this site,
    from then on (see ``projects.py``)."""

    __tablename__ = "projects"

    project_domain: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_from: Mapped[str] = mapped_column(String(16))      # caller | dr-account

    @property
    def project(self) -> Project:
        return Project(self.project_domain, self.project_name)


class ProtectionGroup(Base):
    """A tenant's VMs that fail over together (= Cinder group = array pgroup or pod)."""

    __tablename__ = "protection_groups"
    __table_args__ = (UniqueConstraint("project_domain", "project_name", "name",
                                       name="uq_protection_groups_owner_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str] = mapped_column(String(255), default="")
    project_domain: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN)
    project_name: Mapped[str] = mapped_column(String(64))
    replication_type: Mapped[str] = mapped_column(String(8))     # async | sync
    primary_site: Mapped[str] = mapped_column(String(64))
    secondary_site: Mapped[str] = mapped_column(String(64))
    volume_type: Mapped[str] = mapped_column(String(255))
    rpo_target_seconds: Mapped[int | None] = mapped_column(Integer)
    rto_target_seconds: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    drill_schedule: Mapped[str | None] = mapped_column(String(64))      # cron, UTC
    drill_network: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32), default=GroupStatus.UNPROTECTED)
    version: Mapped[int] = mapped_column(Integer, default=1)
    clock: Mapped[dict] = mapped_column(default=dict)           # see core/lineage.py
    taken_over_by: Mapped[str | None] = mapped_column(String(64))
    fence: Mapped[dict | None] = mapped_column()                # core.model.Fence
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    members: Mapped[list[Member]] = relationship(
        back_populates="group", cascade="all, delete-orphan", order_by="Member.position")
    # What the peer holds instead, while the two copies diverged (see Divergence).
    divergence: Mapped[Divergence | None] = relationship(
        primaryjoin="ProtectionGroup.id == foreign(Divergence.open_for)",
        viewonly=True, uselist=False, lazy="selectin")

    @property
    def project(self) -> Project:
        return Project(self.project_domain, self.project_name)
    mappings: Mapped[list[ResourceMapping]] = relationship(
        back_populates="group", cascade="all, delete-orphan")


class Member(Base):
    """A VM of a group and, once captured, what is needed to rebuild it elsewhere."""

    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("group_id", "server_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    group_id: Mapped[str] = mapped_column(ForeignKey("protection_groups.id", ondelete="CASCADE"))
    server_id: Mapped[str] = mapped_column(String(36))          # on the group's primary site
    server_name: Mapped[str] = mapped_column(String(255), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    spec: Mapped[dict | None] = mapped_column()                  # the captured VM
    captured_at: Mapped[datetime | None]
    boot_tier: Mapped[int | None] = mapped_column(Integer)
    gate: Mapped[dict | None] = mapped_column()

    group: Mapped[ProtectionGroup] = relationship(back_populates="members")


class ResourceMapping(Base):
    """A primary-site resource and its DR-site equivalent, for one group or a project."""

    __tablename__ = "resource_mappings"
    # ``scope`` is the group's id, or "project": unlike a NULL group_id it makes two
    # project-wide mappings of one source collide.
    __table_args__ = (UniqueConstraint("project_domain", "project_name", "group_id", "kind",
                                       "source", name="uq_resource_mappings_owner_group"),
                      UniqueConstraint("project_domain", "project_name", "scope", "kind",
                                       "source", name="uq_resource_mappings_scope"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    project_domain: Mapped[str] = mapped_column(String(64), default=DEFAULT_DOMAIN)
    project_name: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("protection_groups.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(36), default="project")
    kind: Mapped[str] = mapped_column(String(32))              # a MappingKind
    source: Mapped[str] = mapped_column(String(255))
    target: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer, default=1)
    clock: Mapped[dict] = mapped_column(default=dict)

    group: Mapped[ProtectionGroup | None] = relationship(back_populates="mappings")

    @property
    def project(self) -> Project:
        return Project(self.project_domain, self.project_name)


class Operation(Base):
    """One DR operation on one group or on a whole site, and how it went."""

    __tablename__ = "operations"
    # One operation per execution (one started in Mistral directly is recorded once).
    __table_args__ = (UniqueConstraint("mistral_execution_id",
                                       name="uq_operations_mistral_execution_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    type: Mapped[str] = mapped_column(String(32))              # an OperationKind
    scope: Mapped[str] = mapped_column(String(16))             # protection_group | site
    group_id: Mapped[str | None] = mapped_column(
        ForeignKey("protection_groups.id", ondelete="SET NULL"))
    site: Mapped[str | None] = mapped_column(String(64))
    # The groups' project (none when they are several projects'), and the caller's.
    project_domain: Mapped[str | None] = mapped_column(String(64))
    project_name: Mapped[str | None] = mapped_column(String(64), index=True)
    requested_domain: Mapped[str | None] = mapped_column(String(64))
    requested_project: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(24), default=Status.PENDING)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed_count: Mapped[int] = mapped_column(Integer, default=0)
    failed_count: Mapped[int] = mapped_column(Integer, default=0)
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    peer_reachable: Mapped[bool | None] = mapped_column(Boolean)
    recovery_point: Mapped[str | None] = mapped_column(String(255))
    rpo_achieved_seconds: Mapped[float | None] = mapped_column(Float)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # What the key was given for (a digest of the request): the key answers that only.
    idempotency_request: Mapped[str | None] = mapped_column(String(64))
    mistral_execution_id: Mapped[str | None] = mapped_column(String(36))
    # The id the service asks Mistral to give the execution, chosen when the operation is
    # recorded and never shown: Mistral answers a create of an id it has with that
    # execution, so a start whose answer was lost is repeated, or found, not doubled.
    planned_execution_id: Mapped[str | None] = mapped_column(String(36), default=new_id)
    requested_by: Mapped[dict] = mapped_column(default=dict)    # user, project, roles
    # The id of the API request that started it (x-openstack-request-id): its Mistral
    # execution's description and the engine's log of its end carry it too.
    request_id: Mapped[str | None] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    results: Mapped[list[OperationResult]] = relationship(
        back_populates="operation", cascade="all, delete-orphan", order_by="OperationResult.id")

    @property
    def progress(self) -> int:
        """Percent of groups finished, successfully or not."""
        if not self.total:
            return 100 if Status(self.status).finished else 0
        return int(100 * (self.completed_count + self.failed_count) / self.total)


class OperationResult(Base):
    """One group's part of an operation: where it got to and, if it failed, why."""

    __tablename__ = "operation_results"
    __table_args__ = (UniqueConstraint("operation_id", "group_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"))
    group_id: Mapped[str] = mapped_column(String(36))
    group_name: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(24), default=Status.PENDING)
    step: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    recovery_point: Mapped[str | None] = mapped_column(String(255))
    rpo_achieved_seconds: Mapped[float | None] = mapped_column(Float)
    timings: Mapped[dict] = mapped_column(default=dict)          # phase -> seconds
    details: Mapped[dict] = mapped_column(default=dict)          # finding -> text, for people
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    operation: Mapped[Operation] = relationship(back_populates="results")


class AuditEntry(Base):
    """Append-only: every change and every decision, with who asked and why."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[dict] = mapped_column(default=dict)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    project_domain: Mapped[str | None] = mapped_column(String(64))
    project_name: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(16))            # accepted | refused | recorded
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(default=dict)


def newest_recovery_points():
    """Each group's newest result naming a recovery point (a drill's or a failover's, on
    the group's DR site): a subquery of ``group_id`` and the result's ``id``."""
    return (select(OperationResult.group_id, func.max(OperationResult.id).label("id"))
            .where(OperationResult.recovery_point.is_not(None))
            .group_by(OperationResult.group_id).subquery())


def last_drills(ended=(Status.COMPLETED, Status.FAILED)):
    """Each group's last drill that ended as one of ``ended`` (completed or failed): a
    subquery of ``group_id`` and the result's ``id``."""
    return (select(OperationResult.group_id, func.max(OperationResult.id).label("id"))
            .join(Operation).where(Operation.type == OperationKind.TEST_FAILOVER,
                                   OperationResult.status.in_(ended))
            .group_by(OperationResult.group_id).subquery())


class ReplicationState(Base):
    """What the DR site's array last said of a group's replication (core.rpo): kept on
    the DR site only, where the array's key is; refreshed by the engine."""

    __tablename__ = "replication_states"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("protection_groups.id", ondelete="CASCADE"), primary_key=True)
    checked_at: Mapped[datetime]
    recovery_point_at: Mapped[datetime | None]
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    violated: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class OperationReport(Base):
    """A recovery's report (core.report), kept once it ended: a drill's is made before its
    cleanup removes the servers whose boot times it shows."""

    __tablename__ = "operation_reports"

    operation_id: Mapped[str] = mapped_column(
        ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True)
    made_at: Mapped[datetime]
    document: Mapped[dict] = mapped_column()


class ScheduledDrill(Base):
    """One run of a group's drill schedule (its Mistral execution): the drill and the
    cleanup it started, and how it went: passed, failed (with what was wrong) or skipped
    (the group was busy or not drillable). Kept on the DR site, where it ran."""

    __tablename__ = "scheduled_drills"

    execution_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    group_id: Mapped[str] = mapped_column(
        ForeignKey("protection_groups.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    drill_operation_id: Mapped[str | None] = mapped_column(String(36))
    cleanup_operation_id: Mapped[str | None] = mapped_column(String(36))
    result: Mapped[str] = mapped_column(String(16), default="running")
    problems: Mapped[list] = mapped_column(default=list)


class ReadinessRecord(Base):
    """The last readiness check of a group on its DR site (core.readiness): whether it
    would recover, and each check's finding. Kept on the DR site only."""

    __tablename__ = "readiness"

    group_id: Mapped[str] = mapped_column(
        ForeignKey("protection_groups.id", ondelete="CASCADE"), primary_key=True)
    checked_at: Mapped[datetime]
    ready: Mapped[bool] = mapped_column(Boolean)
    findings: Mapped[list] = mapped_column()


class Divergence(Base):
    """Two copies of one object that the sites wrote apart (a partition): both kept, the
    object refused every change until it is resolved, by the takeover rule or by people
    (see ``registry.Registry.sync``)."""

    __tablename__ = "divergences"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))               # a DocumentKind
    object_id: Mapped[str] = mapped_column(String(36), index=True)
    # The object's id while unresolved, then NULL: one open divergence per object, however
    # many workers find it at once.
    open_for: Mapped[str | None] = mapped_column(String(36), unique=True)
    project_domain: Mapped[str] = mapped_column(String(64))
    project_name: Mapped[str] = mapped_column(String(64))
    peer_site: Mapped[str] = mapped_column(String(64))
    ours: Mapped[dict] = mapped_column()                        # this site's document
    theirs: Mapped[dict] = mapped_column()                      # the peer's
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)


class AlertDelivery(Base):
    """Alerts already decided on, so a redelivery decides nothing twice."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (UniqueConstraint("fingerprint", "starts_at", "status"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))             # firing | resolved
    rule: Mapped[str | None] = mapped_column(String(255))
    decision: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


def owned_by(model, project: Project, *, domain=None, name=None) -> ColumnElement[bool]:
    """``model``'s rows that belong to ``project`` (by default through its
    ``project_domain`` and ``project_name`` columns)."""
    return and_((domain if domain is not None else model.project_domain) == project.domain,
                (name if name is not None else model.project_name) == project.name)
