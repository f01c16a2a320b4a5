"""Will a group recover on its DR site as things stand? Asked before the disaster.

Each check looks at what a failover would use, the way the failover would look it up: the
DR account in the tenant's project on the DR site (never as admin). Each names what it
found and, when it fails, what to do. An ``error`` stops a recovery (or, for addresses,
changes what it brings back); a ``warning`` does not, but says the group is not proven.
The protection service adds the checks that need its own records: replication against the
RPO target, and the last drill.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import yaml
from openstack import exceptions as sdk_exceptions

from .model import Purpose, StrEnum
from .plan import GroupPlan, PlanError
from .recovery import dr_subnets, resolved_mappings
from .stacks import Mappings, RenderError, Subnet, address, render


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    remedy: str | None = None
    severity: Severity = Severity.ERROR

    def as_dict(self) -> dict:
        return {**asdict(self), "severity": str(self.severity)}


def ready(findings: list[Finding]) -> bool:
    """Ready: no failing error (warnings say what is not proven, they do not block)."""
    return not any(not f.ok and f.severity is Severity.ERROR for f in findings)


def assess(group: GroupPlan, documents: list, dr) -> list[Finding]:
    """The cloud-side checks of ``group`` on its DR site (``dr``: an openstacksdk
    connection as the tenant's project there); ``documents``: its project's mappings."""
    findings = [_captured(group)]
    if not findings[0].ok:
        return findings                  # nothing else can be read of uncaptured members
    try:
        mappings = resolved_mappings(group, documents, dr)
    except PlanError as exc:
        return [*findings, Finding("mappings", False, str(exc),
                                   "point the mapping at a network, security group or zone "
                                   f"the project has on {group.secondary}")]
    findings.append(_mapped(group, mappings))
    subnets = dr_subnets(dr, mappings)
    findings += [_addresses(group, mappings, subnets), _flavors(group, mappings, dr),
                 _quota(group, mappings, dr), _key_pairs(group),
                 _template(group, mappings, subnets, dr)]
    return findings


def _captured(group: GroupPlan) -> Finding:
    members = group.document.members
    missing = [m.server_name or m.server_id for m in members if not m.spec]
    if not members:
        return Finding("captured", False, "the group has no member",
                       "add the servers to protect")
    if missing:
        return Finding("captured", False, f"not captured: {', '.join(missing)}",
                       f"protect the group again on {group.primary}: protect captures "
                       "every member")
    return Finding("captured", True, f"{len(members)} members captured")


def _mapped(group: GroupPlan, mappings: Mappings) -> Finding:
    unmapped = sorted({f"{port.network_name or port.network} (of {server.name})"
                       for server in group.servers for port in server.ports
                       if port.network not in mappings.network})
    if unmapped:
        return Finding("mappings", False, "no mapping to a DR network for "
                       + ", ".join(unmapped),
                       f"map each network to one the project has on {group.secondary}")
    return Finding("mappings", True, f"{len(mappings.network)} networks, "
                   f"{len(mappings.security_group)} security groups found on "
                   f"{group.secondary}")


def _addresses(group: GroupPlan, mappings: Mappings, subnets: list[Subnet]) -> Finding:
    """A fixed IP is kept only where a subnet of its DR network holds it (or an IP rule
    moves it into one); elsewhere Neutron gives the recovered VM another address."""
    lost = [f"{server.name} {fixed.ip_address}" for server in group.servers
            for port in server.ports if port.network in mappings.network
            for fixed in port.fixed_ips
            if address(fixed, [s for s in subnets
                               if s.network == mappings.network[port.network]],
                       mappings.ip_rule) is None]
    if lost:
        return Finding("addresses", False, "no subnet of the mapped DR network holds "
                       + ", ".join(lost) + ": they would come back with other addresses",
                       "map the network to one whose subnet holds them, or add an "
                       "ip_rule mapping that moves them")
    kept = sum(len(port.fixed_ips) for server in group.servers for port in server.ports)
    return Finding("addresses", True, f"{kept} fixed IPs kept")


def _flavors(group: GroupPlan, mappings: Mappings, dr) -> Finding:
    wanted = sorted({mappings.flavor.get(s.flavor, s.flavor) for s in group.servers})
    missing = [name for name in wanted if dr.compute.find_flavor(
        name, ignore_missing=True) is None]
    if missing:
        return Finding("flavors", False, f"no flavor {', '.join(missing)} on "
                       f"{group.secondary} for the project",
                       "add a flavor mapping to one the DR site offers")
    return Finding("flavors", True, f"{', '.join(wanted)} found")


def _quota(group: GroupPlan, mappings: Mappings, dr) -> Finding:
    """What a recovery of every member creates in the project on the DR site (servers,
    cores, RAM, volumes, ports; key pairs for the account that builds the stack), against
    what its quotas leave free now (-1: unlimited)."""
    flavors = [dr.compute.find_flavor(mappings.flavor.get(s.flavor, s.flavor),
                                      ignore_missing=True) for s in group.servers]
    compute, storage = dr.compute.get_limits().absolute, dr.block_storage.get_limits().absolute
    ports = (dr.network.get_quota(dr.current_project_id, details=True).ports or {})
    keys = len({(s.key_name, s.public_key) for s in group.servers
                if s.key_name and s.public_key})
    wanted = (("instances", len(group.servers), compute.instances, compute.instances_used),
              ("cores", sum(f.vcpus for f in flavors if f), compute.total_cores,
               compute.total_cores_used),
              ("RAM (MiB)", sum(f.ram for f in flavors if f), compute.total_ram,
               compute.total_ram_used),
              ("volumes", len(group.volumes), storage.max_total_volumes,
               storage.total_volumes_used),
              ("ports", sum(len(s.ports) for s in group.servers), ports.get("limit"),
               ports.get("used")),
              ("key pairs", keys, compute.keypairs,
               len(list(dr.compute.keypairs())) if keys else 0))
    free = [(what, need, limit - (used or 0)) for what, need, limit, used in wanted
            if limit is not None and limit >= 0]
    short = [f"{what}: {need} needed, {left} free" for what, need, left in free if need > left]
    if short:
        return Finding("quota", False, f"the project's quota on {group.secondary} is short: "
                       + "; ".join(short),
                       f"ask {group.secondary}'s cloud admin to raise the project's quota")
    return Finding("quota", True, f"{len(group.servers)} servers, {len(group.volumes)} "
                   f"volumes and {sum(len(s.ports) for s in group.servers)} ports fit the "
                   f"project's quota on {group.secondary}")


def _key_pairs(group: GroupPlan) -> Finding:
    """A member started with a key pair whose public key capture could not read (its
    user deleted it since) comes back without a key: nobody may be able to log in."""
    lost = sorted(f"{s.name} ({s.key_name})" for s in group.servers
                  if s.key_name and not s.public_key)
    if lost:
        return Finding("key_pairs", False, "no public key captured for "
                       + ", ".join(lost) + ": they would come back without a key pair",
                       f"recreate the key pair on {group.primary} for the server's user and "
                       "protect the group again, or make sure the image needs no key",
                       Severity.WARNING)
    kept = {(s.key_name, s.public_key) for s in group.servers if s.key_name}
    return Finding("key_pairs", True, f"{len(kept)} key pairs recreated from their captured "
                   "public keys")


def _template(group: GroupPlan, mappings: Mappings, subnets: list[Subnet], dr) -> Finding:
    """The recovery stack renders, and the DR site's Heat takes it: every resource type
    there, every property one its schema has (Heat checks the structure only; the DR
    copies' ids are only known once made)."""
    copies = {volume.id: f"copy-of-{volume.id}" for volume in group.volumes}
    try:
        rendered = render(group.name, Purpose.FAILOVER, group.servers, volumes=copies,
                          mappings=mappings, subnets=subnets,
                          security_groups=group.security_groups)
    except RenderError as exc:
        return Finding("template", False, str(exc), "capture the group again on "
                       f"{group.primary}")
    try:
        dr.orchestration.validate_template(yaml.safe_load(rendered))
    except sdk_exceptions.BadRequestException as exc:
        return Finding("template", False, f"{group.secondary}'s Heat refuses the recovery "
                       f"stack: {exc.details or exc}",
                       f"check that {group.secondary}'s Heat offers the resource types "
                       "Nova, Neutron and Cinder need, then capture the group again on "
                       f"{group.primary}")
    return Finding("template", True, f"the recovery stack of {len(group.servers)} servers "
                   f"renders and {group.secondary}'s Heat validates it")
