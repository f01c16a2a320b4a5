"""The DR vocabulary: what every room of the product calls things, defined once.

Operation kinds and statuses, group statuses, failover types and mapping kinds; the
documents both sites hold (a protection group with its members and what capture recorded
of each, a resource mapping); the input every operation's workflow takes and the progress
its steps report; and the limits every room enforces. The API schemas, the database
models, the registry, the recovery plan, the Mistral actions and the CLI take these names
from here and spell none of them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

# The storage layer's words, which the rest of the product takes from here too.
from site_recovery.storage.base import Purpose as Purpose
from site_recovery.storage.base import ReplicationType as ReplicationType
from site_recovery.storage.base import StrEnum as StrEnum

from .schedule import cron_pattern

# -- limits ----------------------------------------------------------------------------------

NAME_MAX = 63            # a group's name: Purity and Heat object names carry it
TEXT_MAX = 255           # a description, a reference to a resource, a finding
SITE_MAX = 64            # a site's or a project's name
STEP_MAX = 64            # a step's name
REASON_MAX = 4000        # why a group failed, as its result keeps it
FINDINGS_MAX = 10        # what a group's steps found, per result
TIMINGS_MAX = 50         # timed steps, per result
MEMBERS_MAX = 1000       # servers in one protection group
NETWORK_MAPPINGS_MAX = 100   # a drill's or a failover's own network mappings
STEP_TIMEOUT = 7200      # Mistral's backstop for one step (the workbook's step_timeout)
SPEC_VERSION = 1         # the version of what capture records of a server


# -- words -----------------------------------------------------------------------------------

class OperationKind(StrEnum):
    """What the protection service starts, and the Mistral workflow of the same name."""

    PROTECT = "protect"
    UNPROTECT = "unprotect"
    TEST_FAILOVER = "test_failover"
    TEST_CLEANUP = "test_cleanup"
    FAILOVER = "failover"
    FAILBACK = "failback"
    # After a failover, once the old site is back: the copies replicate home, so the
    # group is protected again where it runs and its failback is a planned move home.
    REPROTECT = "reprotect"
    SITE_FAILOVER = "site_failover"
    # One step of an operation the peer site runs, on this site's cloud (its VMs, its
    # copies, its side of the replication): each site acts with its own keys only.
    PEER_STEP = "peer_step"
    # The service's own: a site that comes back learns its groups failed over while it was
    # away and stops and locks their original VMs here (a group's fence, below).
    FENCE = "fence"

    @property
    def label(self) -> str:
        """For people: ``test failover``."""
        return self.value.replace("_", " ")

    @property
    def runs_on_primary(self) -> bool:
        """Protect, unprotect and reprotect run where the group's VMs are (its copies, for
        a reprotect); every other kind where they land."""
        return self in (OperationKind.PROTECT, OperationKind.UNPROTECT,
                        OperationKind.REPROTECT)

    @property
    def moves(self) -> bool:
        """Moves the workload between sites (and so needs a decision about the peer)."""
        return self in (OperationKind.FAILOVER, OperationKind.FAILBACK,
                        OperationKind.SITE_FAILOVER)

    @property
    def drill(self) -> bool:
        return self in (OperationKind.TEST_FAILOVER, OperationKind.TEST_CLEANUP)

    @property
    def recovers(self) -> bool:
        """Brings a group's workload up on a site, drilled or for real: its RTO counts."""
        return self is OperationKind.TEST_FAILOVER or self.moves

    @property
    def site_wide(self) -> bool:
        """Covers every group of a site rather than one group."""
        return self is OperationKind.SITE_FAILOVER


class Status(StrEnum):
    """How an operation, or one group's part of it, stands. ``partially_failed`` is an
    operation's only: some of its groups completed and some failed."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"

    @property
    def finished(self) -> bool:
        return self not in UNFINISHED


UNFINISHED = frozenset({Status.PENDING, Status.RUNNING})
FINISHED = frozenset(Status) - UNFINISHED


class GroupStatus(StrEnum):
    UNPROTECTED = "unprotected"       # recorded, not yet replicating
    PROTECTED = "protected"           # replicating from its primary site
    FAILED_OVER = "failed_over"       # running on the site it failed over to
    REPROTECTED = "reprotected"       # running there, replicating back home (reprotect)
    ERROR = "error"

    @property
    def label(self) -> str:
        """For people: ``failed over``."""
        return self.value.replace("_", " ")

    @property
    def away(self) -> bool:
        """Runs on its DR site from copies; its own VMs wait at home for its failback."""
        return self in (GroupStatus.FAILED_OVER, GroupStatus.REPROTECTED)


class FailoverType(StrEnum):
    PLANNED = "planned"               # the primary answers: stopped, replicated once more
    UNPLANNED = "unplanned"           # the primary is gone: the newest recovery point


class MappingKind(StrEnum):
    """What a resource mapping translates from the primary site to the DR site."""

    NETWORK = "network"
    FLAVOR = "flavor"
    SECURITY_GROUP = "security_group"
    IP_RULE = "ip_rule"               # a source CIDR re-addressed into a DR CIDR
    AVAILABILITY_ZONE = "availability_zone"     # a primary-site Nova zone -> a DR-site one

    @property
    def option(self) -> str:
        """As the CLI spells it: ``security-group``."""
        return self.value.replace("_", "-")


# -- constrained text ------------------------------------------------------------------------

Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX,
                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
SiteName = Annotated[str, StringConstraints(min_length=1, max_length=SITE_MAX)]
Text = Annotated[str, StringConstraints(max_length=TEXT_MAX)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX)]
StepName = Annotated[str, StringConstraints(max_length=STEP_MAX)]
Reason = Annotated[str, StringConstraints(max_length=REASON_MAX)]
RpoSeconds = Annotated[int, Field(ge=0, le=7 * 86400)]
RtoSeconds = Annotated[int, Field(ge=1, le=7 * 86400)]
BootTier = Annotated[int, Field(ge=0, le=99)]
Priority = Annotated[int, Field(ge=0, le=1000)]
DrillSchedule = Annotated[str, StringConstraints(max_length=64), AfterValidator(cron_pattern)]
# A result's timings: each phase's seconds and, under this key, the whole recovery's, from
# the request to the group's end (its RTO, measured).
TOTAL = "total"
Version = Annotated[int, Field(ge=1)]
# In JSON as the API shows every time: ISO 8601 with its offset (+00:00).
Timestamp = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str,
                                                when_used="json")]


# -- what capture records of a server -------------------------------------------------------

@dataclass(frozen=True)
class FixedIp:
    ip_address: str
    subnet_cidr: str                  # the source subnet's CIDR


@dataclass(frozen=True)
class Port:
    network: str                      # source network id
    fixed_ips: tuple[FixedIp, ...] = ()
    security_groups: tuple[str, ...] = ()       # source security group ids
    network_name: str = ""            # for mappings that name the network


@dataclass(frozen=True)
class Volume:
    id: str                           # source volume id
    boot_index: int | None = None     # 0: the boot volume
    device: str | None = None
    name: str = ""
    volume_type: str | None = None


@dataclass(frozen=True)
class ServerGroup:
    """A Nova server group a member belongs to: its copy on the DR site takes the same
    policy, and holds the members that shared it."""

    id: str                           # source server group id
    name: str
    policy: str                       # affinity, anti-affinity, soft-affinity, ...
    rules: Mapping[str, int] = field(default_factory=dict)     # max_server_per_host


@dataclass(frozen=True)
class Server:
    """One VM as capture recorded it on the primary site."""

    id: str
    name: str
    flavor: str
    ports: tuple[Port, ...]
    volumes: tuple[Volume, ...]
    key_name: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    boot_order: int = 0               # lower boots first
    # Key pairs are per user and site: the DR site gets the key back from its public key.
    public_key: str | None = None
    availability_zone: str | None = None
    server_group: ServerGroup | None = None


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    rules: tuple[Mapping, ...] = ()   # Neutron rule fields, remote_group_id a source id


class _Document(BaseModel):
    """What one site stores and sends the other: every field named, no other accepted."""

    model_config = ConfigDict(extra="forbid")


class CapturedServer(_Document):
    """A member's captured spec: the server and the security groups its ports use."""

    version: Literal[1] = SPEC_VERSION
    server: Server
    security_groups: dict[str, SecurityGroup] = Field(default_factory=dict)


# -- the documents both sites hold -----------------------------------------------------------

class Gate(_Document):
    """What a recovered server must show before the next boot tier starts: beyond ACTIVE,
    ``console_marker`` in its console log (Nova's, read through the API: the recovered
    guest's own word that its service is up), within ``timeout_seconds``."""

    console_marker: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 300


class MemberDocument(_Document):
    id: Ref
    server_id: Ref                    # on the group's primary site
    server_name: Text
    position: Annotated[int, Field(ge=0)]
    # What capture recorded (a CapturedServer's JSON), kept as the workflow sent it: the
    # service stores and syncs it, the recovery plan reads it. None until captured.
    spec: dict | None
    captured_at: Timestamp | None
    # Set by the tenant: the member's boot tier (lower first; None: its ``tier`` metadata
    # decides, db, app, web, then the rest) and what it must pass before the next tier.
    boot_tier: BootTier | None = None
    gate: Gate | None = None


DEFAULT_DOMAIN = "Default"


class Project(NamedTuple):
    """Who owns a group or a mapping: a project, by domain and name. The two sites'
    Keystones are independent, so this pair, not an id, is what both sites agree on
    (a project's name alone is unique only within its domain)."""

    domain: str
    name: str

    def __str__(self) -> str:
        return self.name if self.domain == DEFAULT_DOMAIN else f"{self.domain}/{self.name}"


class _Owned(_Document):
    project_name: SiteName
    project_domain: SiteName = DEFAULT_DOMAIN

    @property
    def project(self) -> Project:
        return Project(self.project_domain, self.project_name)


# How many versions of a document each site wrote (:mod:`.lineage`).
Clock = dict[SiteName, Annotated[int, Field(ge=0)]]


class FenceState(StrEnum):
    PENDING = "pending"               # the site was away: it fences them when it is back
    FENCED = "fenced"                 # its original VMs are stopped and locked


class Fence(_Document):
    """While a group runs on its DR site, its original VMs on ``site`` must not run beside
    the recovered ones (two copies of one workload, writing apart): they are stopped and
    locked there, and stay so until the group's failback (or an administrator's unlock).
    ``reason`` is what the locked servers and the audit say."""

    site: SiteName
    state: FenceState
    reason: Text
    since: Timestamp


class GroupDocument(_Owned):
    """A protection group: a tenant's VMs that fail over together."""

    id: Ref
    version: Version
    name: Name
    description: Text
    replication_type: ReplicationType
    primary_site: SiteName
    secondary_site: SiteName
    volume_type: Ref
    rpo_target_seconds: RpoSeconds | None
    rto_target_seconds: RtoSeconds | None = None      # how long a recovery may take
    priority: Priority = 0            # in a site failover, higher groups start first
    # When its DR site drills it by itself (a Mistral cron trigger there), and the network
    # of that site its scheduled drills recover every mapped network onto.
    drill_schedule: DrillSchedule | None = None
    drill_network: Ref | None = None
    status: GroupStatus
    created_at: Timestamp
    updated_at: Timestamp
    members: list[MemberDocument] = Field(max_length=MEMBERS_MAX)
    clock: Clock = Field(default_factory=dict)
    # The site that recorded, alone, that a failover made it the primary: in a divergence
    # that copy wins (:func:`~.lineage.takeover_winner`). None once both sites agree again.
    taken_over_by: SiteName | None = None
    fence: Fence | None = None


class MappingDocument(_Owned):
    """A primary-site resource and its DR-site equivalent, for one group or a project."""

    id: Ref
    version: Version
    group_id: Ref | None              # None: every group of the project
    kind: MappingKind
    source: Ref
    target: Ref
    clock: Clock = Field(default_factory=dict)


# -- what the workflows take and report ------------------------------------------------------

class OperationInput(BaseModel):
    """The input of every operation's workflow, as the protection service starts it: the
    operation, its groups, from which site to which (what the execution shows people in
    Mistral), its options, and how many groups run at once."""

    operation_id: str | None = None
    operation_type: OperationKind | None = None
    protection_group_ids: list[str]
    source_site: str | None = None
    target_site: str | None = None
    params: dict = Field(default_factory=dict)
    concurrency: int = 10


ReportedStatus = Literal[Status.RUNNING.value, Status.COMPLETED.value, Status.FAILED.value]


class ProgressReport(BaseModel):
    """What a workflow tells the protection service: an operation's or one group's
    progress (``protection_group_id``), and for a group that finished, how."""

    model_config = ConfigDict(extra="forbid", strict=True)

    protection_group_id: Ref | None = None       # none: the operation as a whole
    status: ReportedStatus
    step: StepName | None = None
    reason: Reason | None = None
    recovery_point: Ref | None = None
    rpo_achieved_seconds: Annotated[float, Field(ge=0)] | None = None
    timings: dict[StepName, float] = Field(default_factory=dict, max_length=TIMINGS_MAX)
    details: dict[StepName, Text] = Field(
        default_factory=dict, max_length=FINDINGS_MAX,
        description="what a step found, for people (a drill: test_prefix, "
                    "production_replication); merged into the group's result")


class ExecutionReport(ProgressReport):
    """A report as an action sends it, from inside a Mistral execution: with the operation
    its workflow says it runs, a claim the service checks against the execution's root."""

    operation_id: Ref | None = None


# -- what a site asks of its peer ------------------------------------------------------------

class PeerStepName(StrEnum):
    """The steps a site runs for its peer, on its own cloud: the only ones it runs so."""

    STOP_SERVERS = "stop_servers"                 # members, or (copies) failover copies
    REVERSE_REPLICATION = "reverse_replication"   # the failover copies, back home
    REMOVE_COPY = "remove_copy"                   # a drill's or a failover's copy
    ACCEPT_REPLICATION = "accept_replication"     # allow the group's replica here
    REPLICATE = "replicate"                       # a recovery point taken and shipped now
    UNPROTECT = "unprotect"                       # the group's replica removed here
    FENCE = "fence"                               # the members stopped and locked here

    @property
    def label(self) -> str:
        """For people: ``stop servers``."""
        return self.value.replace("_", " ")


class PeerStepRequest(BaseModel):
    """A peer step as the asking site's workflow sends it: which group, which step with
    which arguments, and the key that makes asking again return the same step (the asking
    step's Mistral execution and name)."""

    model_config = ConfigDict(extra="forbid")

    protection_group_id: Ref
    step: PeerStepName
    copies: bool = False                          # stop_servers: the failover copies
    fence: bool = False                           # stop_servers: and lock them, fenced
    purpose: Purpose | None = None                # remove_copy: which copy
    key: Annotated[str, StringConstraints(min_length=1, max_length=100,
                                          pattern=r"^[A-Za-z0-9_.:-]+$")]
    requested_by: dict[StepName, Text] = Field(default_factory=dict, max_length=FINDINGS_MAX)
