"""Capture: what the DR site needs to rebuild a VM once its primary site is gone.

Read on the primary site through openstacksdk, as the tenant sees it: the flavor,
availability zone, server group (with its policy) and metadata; every port in Nova's
interface order with its network, fixed IPs (and their subnets' CIDRs, for re-addressing)
and security groups; the volumes in device order, the root device's being the boot volume;
and each security group with its rules. A key pair belongs to the user who booted the
server, so its public key is read as an admin for that user (Nova 2.10+). The result is
what :func:`core.stacks.render` takes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from openstack import exceptions as sdk_exceptions

from .model import FixedIp, Port, SecurityGroup, Server, ServerGroup, Volume

# What one record of a capture sends at most of members' specs (JSON): well below the
# service's body limit, however many members the group has.
RECORD_BYTES = 256 * 1024

RULE_FIELDS = ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
               "remote_ip_prefix", "remote_group_id")
TIER_KEY = "tier"                    # server metadata naming the VM's tier


def capture(conn, server_ids: Sequence[str], *, admin, tier_order: Sequence[str] = ()
            ) -> tuple[list[Server], dict[str, SecurityGroup]]:
    """The servers ``server_ids`` and the security groups their ports use.

    ``conn`` sees the servers as the tenant does; ``admin`` (a connection with admin rights)
    reads their users' key pairs. ``tier_order`` names the tiers (metadata ``tier``) in boot
    order; a VM of another tier, or of none, boots last.
    """
    cidrs: dict[str, str] = {}
    names: dict[str, str] = {}
    server_groups: dict[str, ServerGroup] = {}
    public_keys: dict[tuple[str, str], str | None] = {}
    servers = [_server(conn, admin, server_id, tier_order, cidrs, names, server_groups,
                       public_keys) for server_id in server_ids]
    used = sorted({sg for s in servers for p in s.ports for sg in p.security_groups})
    groups = {sg_id: _security_group(conn, sg_id) for sg_id in used}
    return servers, groups


def records(specs: Mapping[str, dict], held: Mapping[str, dict | None],
            budget: int = RECORD_BYTES) -> list[tuple[dict[str, dict], list[str]]]:
    """A capture's records for the protection service, each ``(specs, unchanged)``: only
    the specs that differ from what the group holds (``held``, by server id), in records
    of at most ``budget`` bytes of JSON, and the servers whose spec is as held, named
    once, in the last record. A group of hundreds of VMs is recorded in small changes, and
    a capture that found nothing new sends no spec at all."""
    unchanged = sorted(sid for sid, spec in specs.items() if held.get(sid) == spec)
    out: list[tuple[dict[str, dict], list[str]]] = []
    batch: dict[str, dict] = {}
    size = 0
    for server_id in sorted(specs):
        if server_id in unchanged:
            continue
        spec_size = len(json.dumps(specs[server_id]))
        if batch and size + spec_size > budget:
            out.append((batch, []))
            batch, size = {}, 0
        batch[server_id] = specs[server_id]
        size += spec_size
    out.append((batch, unchanged))
    return out


def _server(conn, admin, server_id: str, tier_order: Sequence[str], cidrs: dict,
            names: dict, server_groups: dict, public_keys: dict) -> Server:
    server = conn.compute.get_server(server_id)
    root = getattr(server, "root_device_name", None) or "/dev/vda"
    attachments = sorted(conn.compute.volume_attachments(server), key=lambda a: a.device or "")
    volumes = []
    for attachment in attachments:
        volume = conn.block_storage.get_volume(attachment.volume_id)
        boot = attachment.device == root
        volumes.append(Volume(volume.id, 0 if boot else None, None if boot else attachment.device,
                              volume.name or "", volume.volume_type))
    ports = tuple(_port(conn, interface.port_id, cidrs, names)
                  for interface in conn.compute.server_interfaces(server))
    metadata = dict(server.metadata or {})
    tier = metadata.get(TIER_KEY)
    flavor = server.flavor.original_name or server.flavor.name or server.flavor.id
    group_id = next(iter(server.server_groups or ()), None)     # Nova allows one
    if group_id and group_id not in server_groups:
        server_groups[group_id] = _server_group(conn, group_id)
    key = (server.user_id, server.key_name)
    if server.key_name and key not in public_keys:
        public_keys[key] = _public_key(admin, server.key_name, server.user_id)
    return Server(server.id, server.name, flavor, ports, tuple(volumes), key_name=server.key_name,
                  metadata=metadata, boot_order=(list(tier_order).index(tier)
                                                 if tier in tier_order else len(tier_order)),
                  public_key=public_keys.get(key),
                  availability_zone=server.availability_zone or None,
                  server_group=server_groups.get(group_id))


def _public_key(admin, key_name: str, user_id: str) -> str | None:
    """The public key of the server's key pair; None when its user has deleted it since
    (the server keeps the name only)."""
    try:
        return admin.compute.get_keypair(key_name, user_id=user_id).public_key
    except sdk_exceptions.NotFoundException:
        return None


def _server_group(conn, group_id: str) -> ServerGroup:
    group = conn.compute.get_server_group(group_id)
    policy = group.policy or next(iter(group.policies or ()), None)    # before Nova 2.64
    return ServerGroup(group.id, group.name or "", policy, dict(group.rules or {}))


def _port(conn, port_id: str, cidrs: dict, names: dict) -> Port:
    port = conn.network.get_port(port_id)
    fixed = []
    for entry in port.fixed_ips or []:
        subnet = entry["subnet_id"]
        if subnet not in cidrs:
            cidrs[subnet] = conn.network.get_subnet(subnet).cidr
        fixed.append(FixedIp(entry["ip_address"], cidrs[subnet]))
    if port.network_id not in names:
        names[port.network_id] = conn.network.get_network(port.network_id).name or ""
    return Port(port.network_id, tuple(fixed), tuple(port.security_group_ids or ()),
                names[port.network_id])


def _security_group(conn, sg_id: str) -> SecurityGroup:
    group = conn.network.get_security_group(sg_id)
    rules = tuple({k: rule.get(k) for k in RULE_FIELDS if rule.get(k) is not None}
                  for rule in group.security_group_rules or [])
    return SecurityGroup(group.id, group.name, rules)
