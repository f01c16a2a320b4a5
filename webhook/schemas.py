"""Request bodies, strict: an unknown field or a wrong type is a 400 naming the field.

The same models give the OpenAPI document its request schemas.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Name = Annotated[str, StringConstraints(min_length=1, max_length=63,
                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
SiteName = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=255)]
Ref = Annotated[str, StringConstraints(min_length=1, max_length=255)]
Uuid = Annotated[str, StringConstraints(
    pattern=r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")]
RpoSeconds = Annotated[int, Field(ge=0, le=7 * 86400)]
Version = Annotated[int, Field(ge=1)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GroupCreate(Body):
    name: Name
    description: Text = ""
    replication_type: Literal["async", "sync"]
    primary_site: SiteName
    secondary_site: SiteName
    volume_type: Ref
    rpo_target_seconds: RpoSeconds | None = None


class GroupUpdate(Body):
    name: Name | None = None
    description: Text | None = None
    volume_type: Ref | None = None
    rpo_target_seconds: RpoSeconds | None = None
    version: Version | None = None              # the version the change was made against

    @model_validator(mode="after")
    def _something(self):
        if not self.changes():
            raise ValueError("nothing to change: give name, description, volume_type or "
                             "rpo_target_seconds")
        nulls = [f for f in ("name", "description", "volume_type")
                 if f in self.model_fields_set and getattr(self, f) is None]
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null")
        return self

    def changes(self) -> dict:
        return self.model_dump(exclude_unset=True, exclude={"version"})


class MemberAdd(Body):
    server_id: Uuid
    server_name: Text = ""


class MappingCreate(Body):
    kind: Literal["network", "flavor", "security_group", "ip_rule"]
    source: Ref
    target: Ref
    protection_group: Ref | None = None          # none: for the whole project


class MappingUpdate(Body):
    target: Ref
    version: Version | None = None


NetworkMapping = dict[Ref, Ref]


class TestFailover(Body):
    network_mapping: NetworkMapping = Field(default_factory=dict, max_length=100)
    recovery_point: Ref | None = None


class NoOptions(Body):
    pass


class Failover(Body):
    failover_type: Literal["planned", "unplanned"]
    force: bool = False
    network_mapping: NetworkMapping = Field(default_factory=dict, max_length=100)


class SiteFailover(Body):
    failover_type: Literal["planned", "unplanned"]
    force: bool = False


GroupStatus = Literal["unprotected", "protected", "failed_over", "error"]


class Capture(Body):
    """What capture recorded of each member, by server id (``core.capture``)."""

    specs: dict[Ref, dict] = Field(min_length=1, max_length=1000)


class GroupState(Body):
    """A group's status and, after a failover, its swapped sites."""

    status: GroupStatus
    primary_site: SiteName | None = None
    secondary_site: SiteName | None = None

    @model_validator(mode="after")
    def _both_sites(self):
        if (self.primary_site is None) != (self.secondary_site is None):
            raise ValueError("give primary_site and secondary_site together")
        return self


class ProgressReport(Body):
    protection_group_id: Ref | None = None       # none: the operation as a whole
    status: Literal["running", "completed", "failed"]
    step: Annotated[str, StringConstraints(max_length=64)] | None = None
    reason: Annotated[str, StringConstraints(max_length=4000)] | None = None
    recovery_point: Ref | None = None
    rpo_achieved_seconds: Annotated[float, Field(ge=0)] | None = None
    timings: dict[Annotated[str, StringConstraints(max_length=64)], float] = Field(
        default_factory=dict, max_length=50)
    details: dict[Annotated[str, StringConstraints(max_length=64)], Text] = Field(
        default_factory=dict, max_length=10,
        description="what a step found, for people (a drill: test_prefix, "
                    "production_replication); merged into the group's result")


# -- site to site ----------------------------------------------------------------------------

class _Document(BaseModel):
    """What one site pushes to the other: lax about types (JSON has no datetimes), strict
    about fields."""

    model_config = ConfigDict(extra="forbid")


class MemberDocument(_Document):
    id: Ref
    server_id: Ref
    server_name: Text
    position: Annotated[int, Field(ge=0)]
    spec: dict | None
    captured_at: datetime | None


class GroupDocument(_Document):
    id: Ref
    version: Version
    name: Name
    description: Text
    project_name: SiteName
    replication_type: Literal["async", "sync"]
    primary_site: SiteName
    secondary_site: SiteName
    volume_type: Ref
    rpo_target_seconds: RpoSeconds | None
    status: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    created_at: datetime
    updated_at: datetime
    members: list[MemberDocument] = Field(max_length=1000)


class MappingDocument(_Document):
    id: Ref
    version: Version
    project_name: SiteName
    group_id: Ref | None
    kind: Literal["network", "flavor", "security_group", "ip_rule"]
    source: Ref
    target: Ref


class GroupPush(_Document):
    document: GroupDocument
    expected_version: Annotated[int, Field(ge=0)]


class MappingPush(_Document):
    document: MappingDocument
    expected_version: Annotated[int, Field(ge=0)]


class GroupValues(GroupCreate):
    project_name: SiteName
    status: Literal["unprotected"]


class GroupChanges(Body):
    name: Name | None = None
    description: Text | None = None
    volume_type: Ref | None = None
    rpo_target_seconds: RpoSeconds | None = None


class MemberRemoval(Body):
    server_id: Ref


class MappingValues(Body):
    project_name: SiteName
    group_id: Ref | None
    kind: Literal["network", "flavor", "security_group", "ip_rule"]
    source: Ref
    target: Ref


class MappingChanges(Body):
    target: Ref


CHANGE_VALUES = {
    ("protection_group", "create"): GroupValues,
    ("protection_group", "update"): GroupChanges,
    ("protection_group", "delete"): NoOptions,
    ("protection_group", "add_member"): MemberAdd,
    ("protection_group", "remove_member"): MemberRemoval,
    ("protection_group", "capture"): Capture,
    ("protection_group", "set_state"): GroupState,
    ("resource_mapping", "create"): MappingValues,
    ("resource_mapping", "update"): MappingChanges,
    ("resource_mapping", "delete"): NoOptions,
}


class ChangeDocument(_Document):
    kind: Literal["protection_group", "resource_mapping"]
    action: Literal["create", "update", "delete", "add_member", "remove_member", "capture",
                    "set_state"]
    object_id: Ref
    project_name: SiteName
    values: dict
    expected_version: Version | None = None

    @model_validator(mode="after")
    def _values_fit_the_action(self):
        model = CHANGE_VALUES.get((self.kind, self.action))
        if model is None:
            raise ValueError(f"a {self.kind} has no action {self.action}")
        self.values = model.model_validate(self.values).model_dump(exclude_unset=True)
        return self


class Forwarded(_Document):
    change: ChangeDocument
    actor: dict
