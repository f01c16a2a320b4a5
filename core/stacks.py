"""The Heat stack that rebuilds one protection group on the DR site.

:func:`render` turns what capture recorded of each VM (:class:`.model.Server`) into one HOT
template: ``test-<group>`` for a drill, ``dr-<group>`` for a failover. The decisions live
here, in plain Python a unit test reaches; the Jinja2 template only lays them out:

- networks must be mapped (the two clouds' ids never match); flavors and security groups
  may be (else a flavor keeps its name, and a security group is recreated with its rules,
  a rule naming another group pointing at that group's copy);
- a port keeps its fixed IP when a DR subnet of its network contains it, is re-addressed
  through the group's IP rules (same host part in the target CIDR) otherwise, and is left
  to Neutron when neither applies;
- servers boot in tiers: each waits for every server of the previous boot order; a tier
  after a gated server's is added by a later stage, once the gate has passed (:func:`stages`);
- boot volumes and data volumes are the DR copies (``volumes``: source id -> DR id);
- a server's key pair is recreated from its captured public key, owned by the DR account
  that builds the stack, so its name carries the stack's id to be unique among every
  tenant's (and ``<stack>-<key>`` for the tenant to recognise); a server without one, or
  whose public key was not captured, boots without;
- a server keeps its availability zone as the mappings resolved it (none: Nova chooses);
- each server group is recreated with its policy and holds the members that shared it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources

import jinja2

from .model import FixedIp, Purpose, SecurityGroup, Server

# The stack a purpose builds is named <prefix>-<group>.
PURPOSES = {Purpose.DRILL: "test", Purpose.FAILOVER: "dr"}
# A drill's VMs and groups carry "test-" beside production's; a failover's keep their names.
COPY_PREFIX = {Purpose.DRILL: "test-", Purpose.FAILOVER: ""}
TEMPLATE = "protection_group.yaml.j2"
RULE_FIELDS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
               "remote_ip_prefix")
# Nova's limit on a key pair's name, less the "-<stack id>" that makes it unique.
KEY_NAME_MAX = 255 - 37
# Heat makes key pairs at compute 2.1, whose names take these characters only; a group's
# name (and a key's, from 2.92) may hold others, such as '.' and '@'.
_KEY_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9 _-]")


class RenderError(ValueError):
    """The group cannot be rebuilt from what is known; the message names what is missing."""


@dataclass(frozen=True)
class Subnet:
    id: str
    network: str                      # DR network id
    cidr: str


@dataclass(frozen=True)
class Mappings:
    network: Mapping[str, str] = field(default_factory=dict)
    flavor: Mapping[str, str] = field(default_factory=dict)
    security_group: Mapping[str, str] = field(default_factory=dict)
    ip_rule: Mapping[str, str] = field(default_factory=dict)     # source CIDR -> DR CIDR
    # source zone -> DR zone; None: no mapping names one and the DR site has no such zone
    availability_zone: Mapping[str, str | None] = field(default_factory=dict)


def stack_name(purpose: str, group: str) -> str:
    return f"{PURPOSES[purpose]}-{group}"


def address(fixed: FixedIp, subnets: list[Subnet], ip_rules: Mapping[str, str]) -> dict | None:
    """Where a fixed IP lands on the DR network: kept, re-addressed, or None (Neutron
    allocates). Rules may name their subnets loosely ("10.0.1.5/24" is 10.0.1.0/24)."""
    ip = ipaddress.ip_address(fixed.ip_address)
    ip_rules = {str(ipaddress.ip_network(k, strict=False)): v for k, v in ip_rules.items()}
    for subnet in subnets:
        if ip in ipaddress.ip_network(subnet.cidr):
            return {"subnet": subnet.id, "ip_address": str(ip)}
    source = ipaddress.ip_network(fixed.subnet_cidr)
    target_cidr = ip_rules.get(str(source))
    if target_cidr is None or ip not in source:
        return None
    target = ipaddress.ip_network(target_cidr, strict=False)
    moved = target.network_address + (int(ip) - int(source.network_address))
    for subnet in subnets:
        if ipaddress.ip_network(subnet.cidr) == target and moved in target:
            return {"subnet": subnet.id, "ip_address": str(moved)}
    return None


def stages(servers: list[Server], gated: Iterable[str]) -> list[int]:
    """The boot tiers the stack is built up to, one stage after another: a stage ends
    with each tier holding a gated server (``gated``: their ids), whose gate is checked
    before the next stage adds the tiers after it; one stage when nothing is gated."""
    gated = set(gated)
    tiers = sorted({s.boot_order for s in servers})
    ends = [tier for tier in tiers[:-1]
            if any(s.id in gated for s in servers if s.boot_order == tier)]
    return [*ends, tiers[-1]] if tiers else []


def render(group: str, purpose: str, servers: list[Server], *, volumes: Mapping[str, str],
           mappings: Mappings, subnets: list[Subnet],
           security_groups: Mapping[str, SecurityGroup], boot_until: int | None = None) -> str:
    """The HOT template (YAML) that rebuilds ``servers`` on the DR site; ``boot_until``:
    only the servers of the boot tiers up to it (a stage of :func:`stages`), every other
    resource as for all of them, so each stage's template adds to the one before and
    never renames what it made."""
    if purpose not in PURPOSES:
        raise RenderError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    if not servers:
        raise RenderError(f"protection group {group} has no captured server to rebuild")
    recreated = _recreated_groups(servers, mappings, security_groups, purpose, group)
    sg_targets = {**{source: {"get_resource": sg["resource"]}
                     for source, sg in recreated.items()}, **mappings.security_group}
    key_pairs = _key_pairs(servers, stack_name(purpose, group))
    server_groups = _server_groups(servers, purpose)
    in_order = ordered(servers)
    plans = [_server_plan(index, server, volumes, mappings, subnets, sg_targets, purpose)
             | _placement(server, key_pairs, server_groups, mappings)
             for index, server in enumerate(in_order)]
    tiers = sorted({s.boot_order for s in servers})
    for plan, server in zip(plans, in_order, strict=True):
        tier = tiers.index(server.boot_order)
        if tier:                        # wait for every server of the tier before
            plan["depends_on"] = [p["resource"] for p, s in zip(plans, in_order, strict=True)
                                  if s.boot_order == tiers[tier - 1]]
    if boot_until is not None:
        plans = [plan for plan, server in zip(plans, in_order, strict=True)
                 if server.boot_order <= boot_until]
    return _environment().get_template(TEMPLATE).render(
        group=group, purpose=purpose, servers=plans,
        security_groups=list(recreated.values()), key_pairs=list(key_pairs.values()),
        server_groups=list(server_groups.values()))


def ordered(servers: list[Server]) -> list[Server]:
    """The order servers take in the template and boot in: boot order, then name."""
    return sorted(servers, key=lambda s: (s.boot_order, s.name))


def server_resources(servers: list[Server]) -> dict[str, str]:
    """Each captured server's resource in the template, by its source id."""
    return {server.id: f"server_{index}" for index, server in enumerate(ordered(servers))}


def _key_pairs(servers: list[Server], stack: str) -> dict[tuple[str, str], dict]:
    """One key pair per captured key (its name and public key). Two users' keys of one
    name both come back, numbered."""
    keys = sorted({(s.key_name, s.public_key) for s in servers if s.key_name and s.public_key})
    pairs = {}
    for index, (name, public_key) in enumerate(keys):
        namesakes = [key for key in keys if key[0] == name]
        label = name if len(namesakes) == 1 else \
            f"{name}-{namesakes.index((name, public_key)) + 1}"
        pairs[name, public_key] = {
            "resource": f"key_{index}", "public_key": public_key,
            "name": {"list_join": ["-", [_KEY_NAME_UNSAFE.sub(
                "-", f"{stack}-{label}")[:KEY_NAME_MAX], {"get_param": "OS::stack_id"}]]}}
    return pairs



def _server_groups(servers: list[Server], purpose: str) -> dict[str, dict]:
    """Each captured server group once, with its policy (and rules), by source id."""
    captured = {s.server_group.id: s.server_group for s in servers if s.server_group}
    return {group.id: {"resource": f"server_group_{index}",
                       "name": f"{COPY_PREFIX[purpose]}{group.name}", "policy": group.policy,
                       "rules": dict(group.rules)}
            for index, group in enumerate(captured[g] for g in sorted(captured))}


def _placement(server: Server, key_pairs: dict, server_groups: dict, mappings: Mappings
               ) -> dict:
    """A server's key pair, availability zone and server group on the DR site, as
    resource names and values (None: not set)."""
    key = key_pairs.get((server.key_name, server.public_key))
    group = server.server_group and server_groups[server.server_group.id]
    return {"key_pair": key and key["resource"],
            "availability_zone": mappings.availability_zone.get(server.availability_zone),
            "server_group": group and group["resource"]}


def _recreated_groups(servers, mappings, security_groups, purpose, group) -> dict:
    used = {sg for s in servers for p in s.ports for sg in p.security_groups}
    wanted = sorted(used - set(mappings.security_group))
    missing = [sg for sg in wanted if sg not in security_groups]
    if missing:
        raise RenderError(f"security groups {missing} of protection group {group} are "
                          "neither mapped nor captured")
    resources_ = {sg: f"sg_{i}" for i, sg in enumerate(wanted)}
    recreated = {}
    for sg in wanted:
        captured = security_groups[sg]
        rules = []
        for rule in captured.rules:
            copy = {k: rule[k] for k in RULE_FIELDS if rule.get(k) is not None}
            remote = rule.get("remote_group_id")
            if remote:
                if remote in resources_:
                    copy["remote_mode"] = "remote_group_id"
                    copy["remote_group_id"] = {"get_resource": resources_[remote]}
                elif remote in mappings.security_group:
                    copy["remote_mode"] = "remote_group_id"
                    copy["remote_group_id"] = mappings.security_group[remote]
                else:
                    continue        # a group outside this one: nothing to point at
            rules.append(copy)
        recreated[sg] = {"resource": resources_[sg], "source": captured.name,
                         "name": f"{COPY_PREFIX[purpose]}{captured.name}", "rules": rules}
    return recreated


def _server_plan(index, server: Server, volumes, mappings: Mappings, subnets, sg_targets,
                 purpose) -> dict:
    boot = [v for v in server.volumes if v.boot_index == 0]
    if len(boot) != 1:
        raise RenderError(f"server {server.name} has {len(boot)} boot volumes; one is needed")
    unknown = [v.id for v in server.volumes if v.id not in volumes]
    if unknown:
        raise RenderError(f"server {server.name}: no DR copy of volumes {unknown}")
    ports = []
    for number, port in enumerate(server.ports):
        network = mappings.network.get(port.network)
        if network is None:
            raise RenderError(f"server {server.name}: network {port.network} has no mapping "
                              "to a DR network")
        on_network = [s for s in subnets if s.network == network]
        fixed = [a for a in (address(f, on_network, mappings.ip_rule)
                             for f in port.fixed_ips) if a]
        ports.append({"resource": f"port_{index}_{number}", "network": network,
                      "fixed_ips": fixed,
                      "security_groups": [sg_targets[sg] for sg in port.security_groups]})
    return {"resource": f"server_{index}", "name": f"{COPY_PREFIX[purpose]}{server.name}",
            "source_id": server.id, "flavor": mappings.flavor.get(server.flavor, server.flavor),
            "metadata": {**server.metadata, "site_recovery_source": server.id},
            "ports": ports, "boot_volume": volumes[boot[0].id],
            "data_volumes": [{"resource": f"volume_{index}_{n}", "id": volumes[v.id],
                              "device": v.device}
                             for n, v in enumerate(server.volumes) if v.boot_index != 0],
            "depends_on": []}


def _environment() -> jinja2.Environment:
    source = resources.files("site_recovery.heat_templates")
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: source.joinpath(name).read_text()),
        undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)
