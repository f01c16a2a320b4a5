"""A protection group as the workflows see it: its document from the protection service,
read into what the steps need (the captured servers, the arrays, the mappings).

Captured specs travel as JSON in the group's members (``spec``): :func:`spec_document`
writes one, :class:`GroupPlan` reads them back into :mod:`core.stacks` values.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import cached_property

from site_recovery.storage.base import ProtectionSpec, ReplicationType

from .config import ServiceConfig
from .stacks import FixedIp, Mappings, Port, SecurityGroup, Server, Volume

SPEC_VERSION = 1
_CINDER_ARRAY_NAME = re.compile(r"(?:^|::)volume-([0-9a-f-]{36})-cinder$")


class PlanError(ValueError):
    """The group cannot be worked on as it is recorded; the message says what is missing."""


def array_group_name(group_id: str) -> str:
    """The pgroup or pod of a group on both arrays: fixed by its id, which both sites share
    (a group's name may hold characters Purity refuses, and may change)."""
    return f"sr-{group_id}"


def array_volume_name(volume_id: str) -> str:
    """Cinder's Pure driver names a volume's array volume after its id."""
    return f"volume-{volume_id}-cinder"


def cinder_id_of(array_name: str) -> str | None:
    match = _CINDER_ARRAY_NAME.search(array_name)
    return match.group(1) if match else None


def spec_document(server: Server, security_groups: dict[str, SecurityGroup]) -> dict:
    """One member's captured spec as stored in the group (JSON)."""
    used = {sg for port in server.ports for sg in port.security_groups}
    return {"version": SPEC_VERSION, "server": asdict(server),
            "security_groups": {sg: asdict(security_groups[sg]) for sg in sorted(used)
                                if sg in security_groups}}


def _server(data: dict) -> Server:
    ports = tuple(Port(p["network"], tuple(FixedIp(**f) for f in p["fixed_ips"]),
                       tuple(p["security_groups"]), p.get("network_name", ""))
                  for p in data["ports"])
    volumes = tuple(Volume(**v) for v in data["volumes"])
    return Server(data["id"], data["name"], data["flavor"], ports, volumes,
                  key_name=data.get("key_name"), metadata=dict(data.get("metadata") or {}),
                  boot_order=int(data.get("boot_order", 0)))


@dataclass(frozen=True)
class GroupPlan:
    document: dict

    @property
    def id(self) -> str:
        return self.document["id"]

    @property
    def name(self) -> str:
        return self.document["name"]

    @property
    def project(self) -> str:
        return self.document["project_name"]

    @property
    def primary(self) -> str:
        return self.document["primary_site"]

    @property
    def secondary(self) -> str:
        return self.document["secondary_site"]

    @property
    def replication_type(self) -> ReplicationType:
        return ReplicationType(self.document["replication_type"])

    @property
    def server_ids(self) -> list[str]:
        return [m["server_id"] for m in self.document["members"]]

    @cached_property
    def servers(self) -> list[Server]:
        """The captured servers; refuses when a member was never captured."""
        missing = [m["server_name"] or m["server_id"] for m in self.document["members"]
                   if not m.get("spec")]
        if not self.document["members"]:
            raise PlanError(f"protection group {self.name} has no members")
        if missing:
            raise PlanError(f"protection group {self.name}: members {missing} have not been "
                            "captured; run capture on the primary site first")
        return [_server(m["spec"]["server"]) for m in self.document["members"]]

    @cached_property
    def security_groups(self) -> dict[str, SecurityGroup]:
        groups = {}
        for member in self.document["members"]:
            for sg_id, sg in ((member.get("spec") or {}).get("security_groups") or {}).items():
                groups[sg_id] = SecurityGroup(sg["id"], sg["name"],
                                              tuple(dict(r) for r in sg["rules"]))
        return groups

    @property
    def volumes(self) -> list[Volume]:
        return [v for server in self.servers for v in server.volumes]

    def protection(self, config: ServiceConfig) -> ProtectionSpec:
        """The group on the arrays, replicating from its primary site to its secondary."""
        return ProtectionSpec(array_group_name(self.id), self.replication_type,
                              config.array_of(self.primary).name,
                              config.array_of(self.secondary).name,
                              replicate_interval=int(self.document.get("rpo_target_seconds")
                                                     or 3600))

    def array_source(self, spec: ProtectionSpec, volume_id: str) -> str:
        """A member volume as a recovery point names its source."""
        name = array_volume_name(volume_id)
        return f"{spec.name}::{name}" if spec.replication_type is ReplicationType.SYNC else name

    def mappings(self, documents: list[dict], overrides: dict[str, str] | None = None
                 ) -> RawMappings:
        """The mappings that apply: project-wide ones, then the group's own, then
        ``overrides`` (a drill's ``--network-mapping``), each later one winning."""
        kinds: dict[str, dict[str, str]] = {k: {} for k in RawMappings.KINDS}
        ordered = sorted((d for d in documents if d["project_name"] == self.project
                          and d["group_id"] in (None, self.id)),
                         key=lambda d: d["group_id"] is not None)
        for doc in ordered:
            kinds[doc["kind"]][doc["source"]] = doc["target"]
        kinds["network"].update(overrides or {})
        return RawMappings(**kinds)


@dataclass(frozen=True)
class RawMappings:
    """Mappings as people wrote them: sources and targets by id or by name."""

    KINDS = ("network", "flavor", "security_group", "ip_rule")
    network: dict[str, str]
    flavor: dict[str, str]
    security_group: dict[str, str]
    ip_rule: dict[str, str]

    def resolve(self, servers: list[Server], security_groups: dict[str, SecurityGroup],
                find_network, find_security_group) -> Mappings:
        """Sources matched against what capture recorded (id or name); targets looked up on
        the DR site (``find_*``: id or name -> id, or None)."""
        networks, groups = {}, {}
        for port in (p for s in servers for p in s.ports):
            target = self.network.get(port.network) or self.network.get(port.network_name)
            if target is not None and port.network not in networks:
                found = find_network(target)
                if found is None:
                    raise PlanError(f"network mapping {port.network_name or port.network} -> "
                                    f"{target}: no network {target!r} on the DR site")
                networks[port.network] = found
        for sg_id, sg in security_groups.items():
            target = self.security_group.get(sg_id) or self.security_group.get(sg.name)
            if target is not None:
                found = find_security_group(target)
                if found is None:
                    raise PlanError(f"security group mapping {sg.name} -> {target}: no "
                                    f"security group {target!r} on the DR site")
                groups[sg_id] = found
        return Mappings(network=networks, flavor=dict(self.flavor),
                        security_group=groups, ip_rule=dict(self.ip_rule))
