"""A protection group as the workflows see it: its document from the protection service,
read into what the steps need (the captured servers, the arrays, the mappings).

What capture records of each member travels in the group's document as a
:class:`~.model.CapturedServer`: :func:`spec_document` writes one, :class:`GroupPlan` reads
them back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from operator import attrgetter

from pydantic import ValidationError

from site_recovery.storage.base import ProtectionSpec, ReplicationType

from .config import ServiceConfig
from .model import (
    CapturedServer,
    Gate,
    GroupDocument,
    MappingDocument,
    MappingKind,
    SecurityGroup,
    Server,
    Volume,
)
from .stacks import Mappings

_CINDER_ARRAY_NAME = re.compile(r"(?:^|::)volume-([0-9a-f-]{36})-cinder$")


class PlanError(ValueError):
    """The group cannot be worked on as it is recorded; the message says what is missing."""


def array_group_name(group_id: str) -> str:
    """The pgroup or pod of a group on both arrays: fixed by its id, which both sites share
    (a group's name may hold characters Purity refuses, and may change)."""
    return f"sr-{group_id}"


def protection_spec(config: ServiceConfig, group_id: str, replication_type: str,
                    primary: str, secondary: str, rpo_target: int | None) -> ProtectionSpec:
    """A group on the arrays, replicating from its primary site to its secondary as often
    as its RPO target asks (hourly without one)."""
    return ProtectionSpec(array_group_name(group_id), replication_type,
                          config.array_of(primary).name, config.array_of(secondary).name,
                          replicate_interval=rpo_target or 3600)


def array_volume_name(volume_id: str) -> str:
    """Cinder's Pure driver names a volume's array volume after its id."""
    return f"volume-{volume_id}-cinder"


def cinder_id_of(array_name: str) -> str | None:
    match = _CINDER_ARRAY_NAME.search(array_name)
    return match.group(1) if match else None


def spec_document(server: Server, security_groups: Mapping[str, SecurityGroup]) -> dict:
    """One member's captured spec as stored in the group (JSON)."""
    used = {sg for port in server.ports for sg in port.security_groups}
    return CapturedServer(server=server, security_groups={
        sg: security_groups[sg] for sg in sorted(used) if sg in security_groups}
    ).model_dump(mode="json")


@dataclass(frozen=True)
class GroupPlan:
    """What the DR steps read of one group (``document``: its document, or the JSON of
    it that the protection service sends)."""

    document: GroupDocument

    def __post_init__(self):
        object.__setattr__(self, "document", GroupDocument.model_validate(self.document))

    # The document's fields the steps read most, by the names the steps use.
    id = property(attrgetter("document.id"))
    name = property(attrgetter("document.name"))
    project = property(attrgetter("document.project"))       # a model.Project
    primary = property(attrgetter("document.primary_site"))
    secondary = property(attrgetter("document.secondary_site"))
    replication_type = property(attrgetter("document.replication_type"))

    @property
    def server_ids(self) -> list[str]:
        return [m.server_id for m in self.document.members]

    @cached_property
    def servers(self) -> list[Server]:
        """The captured servers; refuses when a member was never captured."""
        members = self.document.members
        if not members:
            raise PlanError(f"protection group {self.name} has no members")
        missing = [m.server_name or m.server_id for m in members if not m.spec]
        if missing:
            raise PlanError(f"protection group {self.name}: members {missing} have not been "
                            "captured; run capture on the primary site first")
        tiers = {m.server_id: m.boot_tier for m in members if m.boot_tier is not None}
        return [replace(spec.server, boot_order=tiers[spec.server.id])
                if spec.server.id in tiers else spec.server for spec in self._captured]

    @property
    def gates(self) -> dict[str, Gate]:
        """What each gated member must show before the next tier boots, by server id."""
        return {m.server_id: m.gate for m in self.document.members if m.gate}

    @cached_property
    def security_groups(self) -> dict[str, SecurityGroup]:
        return {sg_id: sg for spec in self._captured
                for sg_id, sg in spec.security_groups.items()}

    @cached_property
    def _captured(self) -> list[CapturedServer]:
        """What capture recorded of each captured member."""
        try:
            return [CapturedServer.model_validate(m.spec) for m in self.document.members
                    if m.spec]
        except ValidationError as exc:
            raise PlanError(f"protection group {self.name}: a member's captured spec is not "
                            f"one capture writes ({exc.error_count()} problems); run capture "
                            "on the primary site again") from None

    @property
    def volumes(self) -> list[Volume]:
        return [v for server in self.servers for v in server.volumes]

    def protection(self, config: ServiceConfig) -> ProtectionSpec:
        return protection_spec(config, self.id, self.replication_type, self.primary,
                               self.secondary, self.document.rpo_target_seconds)

    def array_source(self, spec: ProtectionSpec, volume_id: str) -> str:
        """A member volume as a recovery point names its source."""
        name = array_volume_name(volume_id)
        return f"{spec.name}::{name}" if spec.replication_type is ReplicationType.SYNC else name

    def mappings(self, documents: list[MappingDocument],
                 overrides: dict[str, str] | None = None) -> RawMappings:
        """The mappings that apply: project-wide ones, then the group's own, then
        ``overrides`` (a drill's ``--network-mapping``), each later one winning."""
        kinds: dict[MappingKind, dict[str, str]] = {kind: {} for kind in MappingKind}
        documents = [MappingDocument.model_validate(d) for d in documents]
        ordered = sorted((d for d in documents if d.project == self.project
                          and d.group_id in (None, self.id)),
                         key=lambda d: d.group_id is not None)
        for doc in ordered:
            kinds[doc.kind][doc.source] = doc.target
        kinds[MappingKind.NETWORK].update(overrides or {})
        return RawMappings(**{kind.value: targets for kind, targets in kinds.items()})


@dataclass(frozen=True)
class RawMappings:
    """Mappings as people wrote them: sources and targets by id or by name."""

    network: dict[str, str]
    flavor: dict[str, str]
    security_group: dict[str, str]
    ip_rule: dict[str, str]
    availability_zone: dict[str, str]

    def resolve(self, servers: list[Server], security_groups: dict[str, SecurityGroup],
                find_network, find_security_group, find_zone=lambda name: None,
                where: str = "the DR site") -> Mappings:
        """Sources matched against what capture recorded (id or name); targets looked up on
        the DR site (``find_*``: id or name -> id, or None; ``find_zone``: a zone's name
        if the DR site has it; ``where`` names the site and the project they were looked
        up as). A zone without a mapping keeps its name where the DR site has it; where
        it does not, its servers are left to Nova's scheduler (the zone maps to None)."""
        networks, groups, zones = {}, {}, {}
        for port in (p for s in servers for p in s.ports):
            target = self.network.get(port.network) or self.network.get(port.network_name)
            if target is not None and port.network not in networks:
                found = find_network(target)
                if found is None:
                    raise PlanError(f"network mapping {port.network_name or port.network} -> "
                                    f"{target}: no network {target!r} on {where}")
                networks[port.network] = found
        for sg_id, sg in security_groups.items():
            target = self.security_group.get(sg_id) or self.security_group.get(sg.name)
            if target is not None:
                found = find_security_group(target)
                if found is None:
                    raise PlanError(f"security group mapping {sg.name} -> {target}: no "
                                    f"security group {target!r} on {where}")
                groups[sg_id] = found
        for zone in sorted({s.availability_zone for s in servers if s.availability_zone}):
            target = self.availability_zone.get(zone)
            found = find_zone(target or zone)
            if target is not None and found is None:
                raise PlanError(f"availability zone mapping {zone} -> {target}: no "
                                f"availability zone {target!r} on {where}")
            zones[zone] = found
        return Mappings(network=networks, flavor=dict(self.flavor),
                        security_group=groups, ip_rule=dict(self.ip_rule),
                        availability_zone=zones)
