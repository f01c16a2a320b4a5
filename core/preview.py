"""A recovery's plan before it runs: what a dry run shows and changes nothing for.

Built from what the recovery itself reads, by the functions it uses: the captured servers,
the mappings resolved on the DR site in the tenant's project (:func:`.recovery.
resolved_mappings`), the addresses :func:`.stacks.address` keeps or moves, the stack
:func:`.stacks.render` writes, and the DR array's recovery points. So the plan is the
failover that follows as far as it can be known before it: only the DR copies' ids (made
by the recovery) and, for a planned failover, the point (replicated once the primary's
servers are stopped) are left to it. Everything here only reads.

What would stop the recovery is listed in ``problems`` beside what could still be planned,
so one dry run shows every problem, not the first.
"""

from __future__ import annotations

from datetime import datetime

import yaml
from openstack import exceptions as sdk_exceptions

from site_recovery.storage.base import ProtectionSpec, RecoveryPoint
from site_recovery.storage.errors import NoRecoveryPoint, StorageError

from .model import Purpose
from .plan import GroupPlan, PlanError, array_volume_name
from .recovery import data_lost, dr_subnets, named_point, resolved_mappings
from .stacks import (
    COPY_PREFIX,
    Mappings,
    RenderError,
    Subnet,
    address,
    ordered,
    render,
    stack_name,
)


def point_plan(storage, spec: ProtectionSpec, now: datetime, *, name: str | None = None,
               planned: bool = False, lost_at: datetime | None = None,
               members: list[str] = ()) -> tuple[dict | None, list[str]]:
    """The recovery point a recovery would use (None: none usable) and the problems with
    it. ``planned``: the recovery replicates a new one once the primary is stopped (its
    RPO is 0); the newest there is now is shown beside it. ``lost_at``: when the primary
    was last seen, where an unplanned failover's data loss ends. ``members``: the member
    volumes' array names, each of which the point must hold."""
    try:
        point = named_point(storage, spec, name) if name else \
            storage.newest_recovery_point(spec)
    except NoRecoveryPoint as exc:
        if planned:
            return {"replicated_at_start": True, "rpo_seconds": 0.0, "newest": None}, []
        return None, [f"no usable recovery point: {exc}"]
    except StorageError as exc:
        return None, [f"the DR array could not be read: {exc}"]
    shown = _point(point, now, lost_at)
    problems = []
    if not storage.point_holds(spec, point, members):
        problems.append(f"recovery point {point.name} does not hold every member volume "
                        "(a member joined after it was taken); wait for the next one")
    if planned:
        return {"replicated_at_start": True, "rpo_seconds": 0.0, "newest": shown}, problems
    return shown, problems


def _point(point: RecoveryPoint, now: datetime, lost_at: datetime | None) -> dict:
    return {"name": point.name, "created_at": point.created.isoformat(),
            "age_seconds": round(point.age_seconds(now), 3),
            "rpo_seconds": round(data_lost(point, lost_at, now), 3)}


def recovery_plan(group: GroupPlan, documents: list, dr, purpose: Purpose,
                  network_mapping: dict[str, str] | None = None,
                  spec: ProtectionSpec | None = None) -> dict:
    """What recovering ``group`` for ``purpose`` on its DR site would build (``dr``: an
    openstacksdk connection as the tenant's project there; ``documents``: its project's
    mappings; ``network_mapping``: a drill's overrides; ``spec``: the group on the arrays,
    to name each volume's source there): the volumes to copy, the servers with their
    ports and the addresses they get, the boot order, the stack's resources, and what
    would stop it."""
    purpose = Purpose(purpose)
    prefix = COPY_PREFIX[purpose]
    plan = {"stack": {"name": stack_name(purpose, group.name), "resources": []},
            "volumes": [], "servers": [], "boot_order": [], "problems": []}
    try:
        servers = ordered(group.servers)
    except PlanError as exc:
        plan["problems"].append(str(exc))
        return plan
    plan["volumes"] = [{"server": server.name, "volume_id": volume.id,
                        "name": volume.name or None,
                        "copy_name": f"{prefix}{volume.name or volume.id}",
                        "boot": volume.boot_index == 0, "device": volume.device,
                        **({"array_volume": group.array_source(spec, volume.id)}
                           if spec else {})}
                       for server in servers for volume in server.volumes]
    tiers, gates = sorted({s.boot_order for s in servers}), group.gates
    plan["boot_order"] = [{
        "boot_order": tier,
        "servers": [f"{prefix}{s.name}" for s in servers if s.boot_order == tier],
        # what each must show before the next tier starts
        "gates": {f"{prefix}{s.name}": gates[s.id].model_dump() for s in servers
                  if s.boot_order == tier and s.id in gates}} for tier in tiers]
    try:
        mappings = resolved_mappings(group, documents, dr, network_mapping)
        subnets = dr_subnets(dr, mappings)
        names = _network_names(dr, mappings)
    except PlanError as exc:
        plan["problems"].append(str(exc))
        return plan
    except sdk_exceptions.SDKException as exc:
        plan["problems"].append(f"{group.secondary}'s cloud could not be asked as project "
                                f"{group.project}: {exc}")
        return plan
    plan["servers"] = [_server(server, prefix, mappings, subnets, names) for server in servers]
    plan["problems"] += [f"server {s['name']}: network {p['source_network']} has no mapping "
                         "to a DR network" for s in plan["servers"] for p in s["ports"]
                         if p["network"] is None]
    copies = {volume.id: f"copy-of-{volume.id}" for volume in group.volumes}
    try:
        template = render(group.name, purpose, servers, volumes=copies, mappings=mappings,
                          subnets=subnets, security_groups=group.security_groups)
    except RenderError as exc:
        if not any(p["network"] is None for s in plan["servers"] for p in s["ports"]):
            plan["problems"].append(str(exc))       # an unmapped network is named above
        return plan
    plan["stack"]["resources"] = stack_resources(template)
    return plan


def stack_resources(template: str) -> list[dict]:
    """A HOT template's resources: name, type and what each waits for, by name."""
    resources = yaml.safe_load(template)["resources"]
    return [{"name": name, "type": resource["type"],
             "depends_on": sorted(_as_list(resource.get("depends_on")))}
            for name, resource in sorted(resources.items())]


def _as_list(value) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def _network_names(dr, mappings: Mappings) -> dict[str, str]:
    """The DR networks' names, for people (the plan shows both)."""
    return {network: dr.network.get_network(network).name
            for network in set(mappings.network.values())}


def _server(server, prefix: str, mappings: Mappings, subnets: list[Subnet],
            names: dict[str, str]) -> dict:
    ports = []
    for port in server.ports:
        network = mappings.network.get(port.network)
        on_network = [s for s in subnets if s.network == network]
        for fixed in port.fixed_ips or [None]:
            landed = address(fixed, on_network, mappings.ip_rule) if fixed and network \
                else None
            kept = landed and landed["ip_address"] == fixed.ip_address
            ports.append({
                "source_network": port.network_name or port.network,
                "source_ip": fixed and fixed.ip_address, "network": network,
                "network_name": names.get(network),
                "ip_address": landed and landed["ip_address"],
                "address": "kept" if kept else "moved" if landed else "allocated"})
    return {"name": f"{prefix}{server.name}", "source_id": server.id,
            "flavor": mappings.flavor.get(server.flavor, server.flavor),
            "boot_order": server.boot_order,
            "availability_zone": mappings.availability_zone.get(server.availability_zone),
            "key_name": server.key_name if server.public_key else None, "ports": ports}


def member_volumes(group: GroupPlan) -> list[str]:
    """The member volumes as the arrays name them (an uncaptured group: none known)."""
    try:
        return [array_volume_name(v.id) for v in group.volumes]
    except PlanError:
        return []
