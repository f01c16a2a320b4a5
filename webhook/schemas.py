"""Request bodies, strict: an unknown field or a wrong type is a 400 naming the field.

The words and documents are the DR vocabulary's (:mod:`site_recovery.core.model`); the
same models give the OpenAPI document its request schemas.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, StringConstraints, model_validator

from site_recovery.core.model import (
    DEFAULT_DOMAIN,
    MEMBERS_MAX,
    NETWORK_MAPPINGS_MAX,
    BootTier,
    Clock,
    DrillSchedule,
    FailoverType,
    Fence,
    Gate,
    GroupDocument,
    GroupStatus,
    MappingDocument,
    MappingKind,
    Name,
    OperationKind,
    Priority,
    Reason,
    Ref,
    ReplicationType,
    RpoSeconds,
    RtoSeconds,
    SiteName,
    Text,
    Version,
)
from site_recovery.core.model import ExecutionReport as ExecutionReport  # /v1/internal's
from site_recovery.core.model import PeerStepRequest as PeerStepRequest  # /v1/internal's

from .registry import ChangeAction, DocumentKind

Uuid = Annotated[str, StringConstraints(
    pattern=r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")]
# Words of the vocabulary, as JSON strings.
ReplicationTypeText = Annotated[ReplicationType, Strict(False)]
MappingKindText = Annotated[MappingKind, Strict(False)]
FailoverTypeText = Annotated[FailoverType, Strict(False)]
GroupStatusText = Annotated[GroupStatus, Strict(False)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GroupCreate(Body):
    name: Name
    description: Text = ""
    replication_type: ReplicationTypeText
    primary_site: SiteName
    secondary_site: SiteName
    volume_type: Ref
    rpo_target_seconds: RpoSeconds | None = None
    rto_target_seconds: RtoSeconds | None = None
    priority: Priority = 0
    drill_schedule: DrillSchedule | None = None
    drill_network: Ref | None = None


class GroupChanges(Body):
    name: Name | None = None
    description: Text | None = None
    volume_type: Ref | None = None
    rpo_target_seconds: RpoSeconds | None = None
    rto_target_seconds: RtoSeconds | None = None
    priority: Priority | None = None
    drill_schedule: DrillSchedule | None = None
    drill_network: Ref | None = None


class GroupUpdate(GroupChanges):
    version: Version | None = None              # the version the change was made against

    @model_validator(mode="after")
    def _something(self):
        if not self.changes():
            raise ValueError("nothing to change: give name, description, volume_type, "
                             "rpo_target_seconds, rto_target_seconds, priority, drill_schedule or "
                             "drill_network")
        nulls = [f for f in ("name", "description", "volume_type", "priority")
                 if f in self.model_fields_set and getattr(self, f) is None]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self

    def changes(self) -> dict:
        return self.model_dump(exclude_unset=True, exclude={"version"})


class MemberAdd(Body):
    server_id: Uuid
    server_name: Text = ""


class MemberSettings(Body):
    """A member's boot tier and gate (null: its ``tier`` metadata decides; no gate). Only
    what is given changes."""

    boot_tier: BootTier | None = None
    gate: Gate | None = None

    @model_validator(mode="after")
    def _something(self):
        if not self.model_fields_set:
            raise ValueError("nothing to change: give boot_tier, gate or both")
        return self


class MemberChange(MemberSettings):
    server_id: Ref


class MappingCreate(Body):
    kind: MappingKindText
    source: Ref
    target: Ref
    protection_group: Ref | None = None          # none: for the whole project


class MappingChanges(Body):
    target: Ref


class MappingUpdate(MappingChanges):
    version: Version | None = None


NetworkMapping = dict[Ref, Ref]


class TestFailover(Body):
    network_mapping: NetworkMapping = Field(default_factory=dict,
                                            max_length=NETWORK_MAPPINGS_MAX)
    recovery_point: Ref | None = None
    dry_run: bool = Field(False, description="answer with the plan (200) and start nothing")


class ScheduledStart(Body):
    """What a scheduled drill's step starts: the drill, or its cleanup."""

    kind: Literal["test_failover", "test_cleanup"]


class ScheduledOutcome(Body):
    """How a scheduled drill's run ended: each problem its steps found (none: passed)."""

    problems: list[Reason] = Field(default_factory=list, max_length=50)


class NoOptions(Body):
    pass


class SiteFailover(Body):
    failover_type: FailoverTypeText
    force: bool = False
    dry_run: bool = Field(False, description="answer with the plan (200) and start nothing")


class Failover(SiteFailover):
    network_mapping: NetworkMapping = Field(default_factory=dict,
                                            max_length=NETWORK_MAPPINGS_MAX)


class Capture(Body):
    """What capture recorded of each member, by server id (``core.capture``): the specs
    that changed, and the members captured again as they were."""

    specs: dict[Ref, dict] = Field(default_factory=dict, max_length=MEMBERS_MAX)
    unchanged: list[Ref] = Field(default_factory=list, max_length=MEMBERS_MAX)

    @model_validator(mode="after")
    def _something(self):
        if not self.specs and not self.unchanged:
            raise ValueError("give specs, unchanged members, or both")
        return self


class GroupState(Body):
    """A group's status and, after a failover, its swapped sites; its fence (null: lifted).
    Only what is given changes."""

    status: GroupStatusText | None = None
    primary_site: SiteName | None = None
    secondary_site: SiteName | None = None
    fence: Fence | None = None

    @model_validator(mode="after")
    def _both_sites(self):
        if (self.primary_site is None) != (self.secondary_site is None):
            raise ValueError("give primary_site and secondary_site together")
        if self.primary_site and self.status is None:
            raise ValueError("give the status that swapping the sites brings")
        if not self.model_fields_set:
            raise ValueError("give status, fence, or both")
        return self


# -- site to site ----------------------------------------------------------------------------

class _Push(BaseModel):
    """What one site pushes to the other: lax about types (JSON has no datetimes), strict
    about fields."""

    model_config = ConfigDict(extra="forbid")

    expected_version: Annotated[int, Field(ge=0)]
    expected_clock: Clock | None = None       # None: from a peer that keeps no clocks
    resolution: Text | None = None            # the push keeps one of two diverged copies


class GroupPush(_Push):
    document: GroupDocument
    # Members whose captured spec is as in the copy the push was built on: sent without
    # it, and taken from this site's copy (a capture of hundreds of VMs moves only what
    # changed).
    specs_held: list[Ref] = Field(default_factory=list, max_length=MEMBERS_MAX)


class MappingPush(_Push):
    document: MappingDocument


class GroupValues(GroupCreate):
    project_name: SiteName
    project_domain: SiteName = DEFAULT_DOMAIN
    status: Literal[GroupStatus.UNPROTECTED.value]


class Resolution(Body):
    """Which of two diverged copies to keep: the one this site holds, or the peer's."""

    keep: SiteName


class BusyQuery(BaseModel):
    """The peer asks which of its groups an operation here holds."""

    model_config = ConfigDict(extra="forbid")

    operation_type: Annotated[OperationKind, Strict(False)]
    groups: list[Ref] = Field(min_length=1, max_length=10_000)   # a site's, at most


class Divergence(BaseModel):
    """The peer found a group or a mapping written apart: its copy and this site's."""

    model_config = ConfigDict(extra="forbid")

    kind: DocumentKind
    object_id: Ref
    ours: dict
    theirs: dict


class MemberRemoval(Body):
    server_id: Ref


class GroupDeletion(Body):
    """A group deleted with ``force`` though it may replicate: its record goes, its
    replication stays (``replication``: what the audit entry says of it)."""

    force: bool = False
    replication: Literal["left in place"] | None = None


class MappingValues(Body):
    project_name: SiteName
    project_domain: SiteName = DEFAULT_DOMAIN
    group_id: Ref | None
    kind: MappingKindText
    source: Ref
    target: Ref


CHANGE_VALUES = {
    (DocumentKind.PROTECTION_GROUP, ChangeAction.CREATE): GroupValues,
    (DocumentKind.PROTECTION_GROUP, ChangeAction.UPDATE): GroupChanges,
    (DocumentKind.PROTECTION_GROUP, ChangeAction.DELETE): GroupDeletion,
    (DocumentKind.PROTECTION_GROUP, ChangeAction.ADD_MEMBER): MemberAdd,
    (DocumentKind.PROTECTION_GROUP, ChangeAction.REMOVE_MEMBER): MemberRemoval,
    (DocumentKind.PROTECTION_GROUP, ChangeAction.SET_MEMBER): MemberChange,
    (DocumentKind.PROTECTION_GROUP, ChangeAction.CAPTURE): Capture,
    (DocumentKind.PROTECTION_GROUP, ChangeAction.SET_STATE): GroupState,
    (DocumentKind.PROTECTION_GROUP, ChangeAction.RESOLVE): Resolution,
    (DocumentKind.RESOURCE_MAPPING, ChangeAction.RESOLVE): Resolution,
    (DocumentKind.RESOURCE_MAPPING, ChangeAction.CREATE): MappingValues,
    (DocumentKind.RESOURCE_MAPPING, ChangeAction.UPDATE): MappingChanges,
    (DocumentKind.RESOURCE_MAPPING, ChangeAction.DELETE): NoOptions,
}


class ChangeDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: DocumentKind
    action: ChangeAction
    object_id: Ref
    project_name: SiteName
    project_domain: SiteName = DEFAULT_DOMAIN
    values: dict
    expected_version: Version | None = None

    @model_validator(mode="after")
    def _values_fit_the_action(self):
        model = CHANGE_VALUES.get((self.kind, self.action))
        if model is None:
            raise ValueError(f"a {self.kind} has no action {self.action}")
        self.values = model.model_validate(self.values).model_dump(mode="json",
                                                                  exclude_unset=True)
        return self


class Forwarded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    change: ChangeDocument
    actor: dict
