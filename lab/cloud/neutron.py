"""Simulated Neutron (``/network/v2.0``): networks, subnets, ports and security groups.

Enough of the real API for neutronclient (which Heat uses), openstacksdk and the CLI:
bulk creates (Heat posts ``security_group_rules`` as a list), list filters on any attribute
plus ``fixed_ips=ip_address=...``, ``fields`` that really restrict the answer, IP
allocation from the subnets' pools with Neutron's 409s, and a ``default`` security group
that appears per project the first time it is needed. Admins see every project; others
see their own resources and shared networks. Nova binds and unbinds ports through
:func:`bind_port` and :func:`unbind_port`.
"""

from __future__ import annotations

import ipaddress
import json
import random

import flask

from .common import ApiError, cloud, matches, next_links, paginate
from .identity import caller
from .store import Doc, Store, iso, new_id, schedule

bp = flask.Blueprint("neutron", __name__, url_prefix="/network/v2.0")

# URL collection -> (document kind, JSON collection key)
COLLECTIONS = {"networks": ("network", "networks"), "subnets": ("subnet", "subnets"),
               "ports": ("port", "ports"),
               "security-groups": ("security_group", "security_groups"),
               "security-group-rules": ("security_group_rule", "security_group_rules")}
_NOUNS = {"network": "Network", "subnet": "Subnet", "port": "Port",
          "security_group": "Security group", "security_group_rule": "Security group rule"}
_NOT_FOUND = {"network": "NetworkNotFound", "subnet": "SubnetNotFound", "port": "PortNotFound",
              "security_group": "SecurityGroupNotFound",
              "security_group_rule": "SecurityGroupRuleNotFound"}
EXTENSIONS = {
    "agent": "agent", "allowed-address-pairs": "Allowed Address Pairs",
    "availability_zone": "Availability Zone", "binding": "Port Binding",
    "binding-extended": "Port Bindings Extended", "extra_dhcp_opt": "Neutron Extra DHCP options",
    "external-net": "Neutron external network",
    "network_availability_zone": "Network Availability Zone", "port-security": "Port Security",
    "project-id": "project_id field enabled", "quotas": "Quota management support",
    "security-group": "security-group", "standard-attr-description": "standard-attr-description",
    "standard-attr-revisions": "Resource revision numbers",
    "standard-attr-tag": "Tag support for resources with standard attribute",
    "standard-attr-timestamp": "Resource timestamps", "subnet_allocation": "Subnet Allocation",
    "net-mtu": "Network MTU",
}
_LIST_CONTROLS = {"fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse",
                  "fixed_ips"}
_COMMON = {"id", "name", "description", "tenant_id", "project_id", "tags", "created_at",
           "updated_at", "revision_number"}
_WRITABLE = {
    "network": {"name", "description", "admin_state_up", "shared", "router:external", "mtu",
                "port_security_enabled", "availability_zone_hints", "provider:network_type",
                "provider:physical_network", "provider:segmentation_id"},
    "subnet": {"name", "description", "gateway_ip", "allocation_pools", "enable_dhcp",
               "dns_nameservers", "host_routes"},
    "port": {"name", "description", "admin_state_up", "fixed_ips", "device_id", "device_owner",
             "security_groups", "allowed_address_pairs", "extra_dhcp_opts",
             "binding:vnic_type", "binding:host_id", "binding:profile",
             "port_security_enabled", "mac_address"},
    "security_group": {"name", "description", "stateful"},
    "security_group_rule": set(),
}
_CREATE_ONLY = {
    "network": set(), "subnet": {"network_id", "cidr", "ip_version", "ipv6_ra_mode",
                                 "ipv6_address_mode", "subnetpool_id", "prefixlen"},
    "port": {"network_id"}, "security_group": set(),
    "security_group_rule": {"security_group_id", "direction", "ethertype", "protocol",
                            "port_range_min", "port_range_max", "remote_ip_prefix",
                            "remote_group_id"},
}


def error(status: int, kind: str, message: str) -> ApiError:
    return ApiError(status, message, kind)


def _kind(collection: str) -> tuple[str, str]:
    if collection not in COLLECTIONS:
        raise error(404, "HTTPNotFound", "The resource could not be found.")
    return COLLECTIONS[collection]


def _store() -> Store:
    return cloud().store


# -- visibility ---------------------------------------------------------------------------
def _visible(store: Store, kind: str, doc: Doc) -> bool:
    who = caller()
    if who.is_admin or who.owns(doc):
        return True
    if kind == "network":
        return doc["shared"] or doc["router:external"]
    if kind == "subnet":
        network = store.get("network", doc["network_id"])
        return bool(network and (network["shared"] or network["router:external"]))
    return False


def find(store: Store, kind: str, doc_id: str) -> Doc:
    """A resource the caller may see, or Neutron's 404."""
    doc = store.get(kind, doc_id)
    if doc is None or not _visible(store, kind, doc):
        raise error(404, _NOT_FOUND[kind], f"{_NOUNS[kind]} {doc_id} could not be found.")
    return doc


def _owner(data: dict) -> str:
    who = caller()
    project = data.pop("project_id", None) or data.pop("tenant_id", None) or who.project_id
    data.pop("tenant_id", None)
    if project != who.project_id and not who.is_admin:
        raise error(403, "PolicyNotAuthorized",
                    "Only admins may create resources on behalf of other projects.")
    return project


def _refuse_unknown(data: dict, kind: str):
    unknown = set(data) - _WRITABLE[kind] - _CREATE_ONLY[kind] - {"name", "description",
                                                                 "tags"}
    if unknown:
        raise error(400, "HTTPBadRequest",
                    f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")


def _base(store: Store, project_id: str, data: dict, kind: str) -> Doc:
    _refuse_unknown(data, kind)
    now = iso(store.now())
    return {"id": new_id(), "name": data.get("name") or "", "tenant_id": project_id,
            "project_id": project_id, "description": data.get("description") or "",
            "tags": [], "created_at": now, "updated_at": now, "revision_number": 0}


# -- networks -----------------------------------------------------------------------------
def _create_network(store: Store, data: dict) -> Doc:
    project = _owner(data)
    if (data.get("shared") or data.get("router:external")) and not caller().is_admin:
        raise error(403, "PolicyNotAuthorized",
                    "Only admins may create shared or external networks.")
    doc = _base(store, project, data, "network")
    doc.update({"admin_state_up": data.get("admin_state_up", True), "status": "ACTIVE",
                "shared": bool(data.get("shared", False)),
                "router:external": bool(data.get("router:external", False)),
                "mtu": data.get("mtu", 1450),
                "port_security_enabled": data.get("port_security_enabled", True),
                "availability_zone_hints": data.get("availability_zone_hints", []),
                "availability_zones": [cloud().config.availability_zone],
                "ipv4_address_scope": None, "ipv6_address_scope": None, "is_default": False,
                "l2_adjacency": True,
                "provider:network_type": data.get("provider:network_type", "vxlan"),
                "provider:physical_network": data.get("provider:physical_network"),
                "provider:segmentation_id": data.get("provider:segmentation_id",
                                                     random.randint(1, 16000))})
    return store.put("network", doc)


def _delete_network(store: Store, doc: Doc):
    in_use = [p for p in store.list("port", network_id=doc["id"])
              if p["device_owner"] and not p["device_owner"].startswith("network:")]
    if in_use:
        raise error(409, "NetworkInUse", f"Unable to complete operation on network "
                                         f"{doc['id']}. There are one or more ports still in "
                                         "use on the network.")
    for port in store.list("port", network_id=doc["id"]):
        store.delete("port", port["id"])
    for subnet in _subnets_of(store, doc["id"]):
        store.delete("subnet", subnet["id"])


# -- subnets ------------------------------------------------------------------------------
def _subnets_of(store: Store, network_id: str) -> list[Doc]:
    return [s for s in store.list("subnet") if s["network_id"] == network_id]


def _pools(net: ipaddress.IPv4Network | ipaddress.IPv6Network, gateway: str | None) -> list:
    """Neutron's default pool: every host address but the gateway."""
    first = net.network_address + 1
    last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
    gw = ipaddress.ip_address(gateway) if gateway else None
    if gw is None or not first <= gw <= last:
        return [{"start": str(first), "end": str(last)}]
    pools = [{"start": str(first), "end": str(gw - 1)}] if gw > first else []
    return pools + ([{"start": str(gw + 1), "end": str(last)}] if gw < last else [])


def _create_subnet(store: Store, data: dict) -> Doc:
    project = _owner(data)
    network = find(store, "network", str(data.get("network_id")))
    if not caller().is_admin and network["project_id"] != project:
        raise error(403, "PolicyNotAuthorized",
                    "Only the network's project may add subnets to it.")
    try:
        net = ipaddress.ip_network(str(data.get("cidr")), strict=True)
    except ValueError:
        raise error(400, "InvalidInput",
                    f"Invalid input for cidr. Reason: '{data.get('cidr')}' is not a valid "
                    "IP subnet.") from None
    if int(data.get("ip_version", net.version)) != net.version:
        raise error(400, "InvalidInput", "Invalid input for operation: cidr and ip_version "
                                         "do not match.")
    for other in _subnets_of(store, network["id"]):
        if net.overlaps(ipaddress.ip_network(other["cidr"])):
            raise error(400, "InvalidInput",
                        f"Invalid input for operation: Requested subnet with cidr: {net} for "
                        f"network: {network['id']} overlaps with another subnet.")
    gateway = data["gateway_ip"] if "gateway_ip" in data else str(net.network_address + 1)
    if gateway and ipaddress.ip_address(gateway) not in net:
        raise error(400, "InvalidInput", f"Gateway {gateway} is not in subnet {net}.")
    pools = data.get("allocation_pools") or _pools(net, gateway)
    for pool in pools:
        start, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
        if not (start in net and end in net and start <= end):
            raise error(400, "InvalidAllocationPool",
                        f"The allocation pool {pool['start']}-{pool['end']} spans beyond "
                        f"the subnet cidr {net}.")
    doc = _base(store, project, data, "subnet")
    doc.update({"network_id": network["id"], "cidr": str(net), "ip_version": net.version,
                "gateway_ip": gateway, "allocation_pools": pools,
                "enable_dhcp": data.get("enable_dhcp", True),
                "dns_nameservers": data.get("dns_nameservers", []),
                "host_routes": data.get("host_routes", []), "ipv6_ra_mode": None,
                "ipv6_address_mode": None, "subnetpool_id": None, "service_types": [],
                "segment_id": None, "dns_publish_fixed_ip": False})
    return store.put("subnet", doc)


def _delete_subnet(store: Store, doc: Doc):
    for port in store.list("port"):
        if any(ip["subnet_id"] == doc["id"] for ip in port["fixed_ips"]):
            raise error(409, "SubnetInUse", f"Unable to complete operation on subnet "
                                            f"{doc['id']}: One or more ports have an IP "
                                            "allocation from this subnet.")


# -- IP allocation ------------------------------------------------------------------------
def _used_ips(store: Store, network_id: str, except_port: str | None = None) -> set[str]:
    return {ip["ip_address"] for p in store.list("port", network_id=network_id)
            if p["id"] != except_port for ip in p["fixed_ips"]}


def _free_ip(subnet: Doc, used: set[str]) -> str | None:
    for pool in subnet["allocation_pools"]:
        address, end = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
        while address <= end:
            if str(address) not in used and str(address) != subnet["gateway_ip"]:
                return str(address)
            address += 1
    return None


def _allocate(store: Store, network: Doc, requests: list[dict] | None,
              port_id: str | None = None) -> list[dict]:
    """Fixed IPs for a port: the requested ones if free, else the first free of a subnet."""
    subnets = _subnets_of(store, network["id"])
    used = _used_ips(store, network["id"], port_id)
    if requests is None:
        subnets.sort(key=lambda s: s["ip_version"])
        requests = [{"subnet_id": subnets[0]["id"]}] if subnets else []
    allocated = []
    for request in requests:
        subnet = next((s for s in subnets if s["id"] == request.get("subnet_id")), None)
        if request.get("subnet_id") and subnet is None:
            raise error(400, "InvalidInput", f"Invalid input for operation: Failed to create "
                                             f"port on network {network['id']}, because "
                                             "fixed_ips included invalid subnet "
                                             f"{request['subnet_id']}.")
        address = request.get("ip_address")
        if address:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                raise error(400, "InvalidInput",
                            f"Invalid input for fixed_ips. '{address}' is not a valid IP "
                            "address.") from None
            if subnet is None:
                subnet = next((s for s in subnets if ip in ipaddress.ip_network(s["cidr"])),
                              None)
                if subnet is None:
                    raise error(400, "InvalidIpForNetwork",
                                f"IP address {address} is not a valid IP for any of the "
                                "subnets on the specified network.")
            elif ip not in ipaddress.ip_network(subnet["cidr"]):
                raise error(400, "InvalidIpForSubnet", f"IP address {address} is not a valid "
                                                       "IP for the specified subnet.")
            if address in used:
                raise error(409, "IpAddressAlreadyAllocated",
                            f"IP address {address} already allocated in subnet "
                            f"{subnet['id']}")
        else:
            address = _free_ip(subnet, used) if subnet else None
            if address is None:
                raise error(409, "IpAddressGenerationFailure",
                            f"No more IP addresses available on network {network['id']}.")
        used.add(address)
        allocated.append({"subnet_id": subnet["id"], "ip_address": address})
    return allocated


# -- ports --------------------------------------------------------------------------------
def _mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randint(0, 255):02x}" for _ in range(3))


def _check_groups(store: Store, project_id: str, groups: list[str]) -> list[str]:
    for group in groups:
        doc = store.get("security_group", group)
        if doc is None or (doc["project_id"] != project_id and not caller().is_admin):
            raise error(404, "SecurityGroupNotFound", f"Security group {group} does not exist")
    return list(groups)


def create_port(store: Store, data: dict) -> Doc:
    """A port as ``POST /ports`` makes it (Nova uses this for the ports it creates)."""
    data = dict(data)
    project = _owner(data)
    network = find(store, "network", str(data.get("network_id")))
    security = data.get("port_security_enabled", network["port_security_enabled"])
    owner = data.get("device_owner") or ""
    if "security_groups" in data:
        groups = _check_groups(store, project, data["security_groups"] or [])
    else:
        default = [ensure_default_group(store, project)["id"]]
        groups = default if security and not owner.startswith("network:") else []
    if groups and not security:
        raise error(400, "PortSecurityAndIPRequiredForSecurityGroups",
                    "Port security must be enabled and port must have an IP address in order "
                    "to use security groups.")
    doc = _base(store, project, data, "port")
    doc.update({"network_id": network["id"], "admin_state_up": data.get("admin_state_up", True),
                "mac_address": data.get("mac_address") or _mac(),
                "fixed_ips": _allocate(store, network, data.get("fixed_ips")),
                "device_id": data.get("device_id") or "", "device_owner": owner,
                "security_groups": groups,
                "allowed_address_pairs": data.get("allowed_address_pairs", []),
                "extra_dhcp_opts": data.get("extra_dhcp_opts", []),
                "binding:vnic_type": data.get("binding:vnic_type", "normal"),
                "binding:host_id": data.get("binding:host_id") or "",
                "binding:profile": data.get("binding:profile") or {},
                "binding:vif_type": "unbound", "binding:vif_details": {},
                "port_security_enabled": security, "ip_allocation": "immediate"})
    _refresh_binding(doc)
    return store.put("port", doc)


def _refresh_binding(port: Doc):
    bound = bool(port["binding:host_id"])
    port["binding:vif_type"] = "ovs" if bound else "unbound"
    port["binding:vif_details"] = {"port_filter": True} if bound else {}
    port["status"] = "ACTIVE" if bound and port["device_id"] else "DOWN"


def bind_port(store: Store, port: Doc, server_id: str, host: str, active_at: float) -> Doc:
    """Nova plugs the port into a server; it goes ACTIVE once the server runs."""
    port.update({"device_id": server_id, "device_owner": f"compute:{host_zone()}",
                 "binding:host_id": host, "binding:vif_type": "ovs",
                 "binding:vif_details": {"port_filter": True}, "status": "DOWN"})
    schedule(port, active_at, status="ACTIVE")
    return _touch(store, port)


def unbind_port(store: Store, port: Doc) -> Doc:
    port.update({"device_id": "", "device_owner": "", "binding:host_id": "", "_pending": []})
    _refresh_binding(port)
    return _touch(store, port)


def host_zone() -> str:
    return cloud().config.availability_zone


def ports_of(store: Store, device_id: str) -> list[Doc]:
    return store.list("port", device_id=device_id)


def _touch(store: Store, doc: Doc, kind: str = "port") -> Doc:
    doc["updated_at"] = iso(store.now())
    doc["revision_number"] += 1
    return store.put(kind, doc)


def _update_port(store: Store, doc: Doc, changes: dict):
    if "fixed_ips" in changes:
        network = store.get("network", doc["network_id"])
        doc["fixed_ips"] = _allocate(store, network, changes.pop("fixed_ips"), doc["id"])
    if "security_groups" in changes:
        doc["security_groups"] = _check_groups(store, doc["project_id"],
                                               changes.pop("security_groups") or [])
    doc.update(changes)
    if doc["security_groups"] and not doc["port_security_enabled"]:
        raise error(400, "PortSecurityAndIPRequiredForSecurityGroups",
                    "Port security must be enabled and port must have an IP address in order "
                    "to use security groups.")
    doc["_pending"] = []
    _refresh_binding(doc)


# -- security groups ----------------------------------------------------------------------
def _rule(store: Store, group: Doc, **fields) -> Doc:
    now = iso(store.now())
    rule = {"id": new_id(), "security_group_id": group["id"], "direction": "ingress",
            "ethertype": "IPv4", "protocol": None, "port_range_min": None,
            "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None,
            "remote_address_group_id": None, "normalized_cidr": None,
            "tenant_id": group["project_id"], "project_id": group["project_id"],
            "description": "", "created_at": now, "updated_at": now, "revision_number": 0,
            "belongs_to_default_sg": group["name"] == "default"}
    rule.update(fields)
    return store.put("security_group_rule", rule)


def _new_group(store: Store, project: str, data: dict) -> Doc:
    group = _base(store, project, data, "security_group")
    group.update({"stateful": data.get("stateful", True), "shared": False})
    store.put("security_group", group)
    for ethertype in ("IPv4", "IPv6"):
        _rule(store, group, direction="egress", ethertype=ethertype)
    return group


def _default_group(store: Store, project_id: str) -> Doc | None:
    return next((g for g in store.list("security_group", project_id)
                 if g["name"] == "default"), None)


def ensure_default_group(store: Store, project_id: str) -> Doc:
    """The project's ``default`` group, made as Neutron does on first use."""
    if found := _default_group(store, project_id):
        return found
    with store.transaction():
        if found := _default_group(store, project_id):
            return found
        group = _new_group(store, project_id, {"name": "default",
                                               "description": "Default security group"})
        for ethertype in ("IPv4", "IPv6"):
            _rule(store, group, ethertype=ethertype, remote_group_id=group["id"])
        return group


def _create_security_group(store: Store, data: dict) -> Doc:
    project = _owner(data)
    ensure_default_group(store, project)
    if data.get("name") == "default":
        raise error(409, "SecurityGroupDefaultAlreadyExists",
                    "Default security group already exists.")
    return _new_group(store, project, data)


def _delete_security_group(store: Store, doc: Doc):
    if doc["name"] == "default" and not caller().is_admin:
        raise error(409, "SecurityGroupCannotRemoveDefault",
                    "Insufficient rights for removing default security group.")
    if any(doc["id"] in p["security_groups"] for p in store.list("port")):
        raise error(409, "SecurityGroupInUse", f"Security Group {doc['id']} in use.")
    for rule in store.list("security_group_rule"):
        if doc["id"] in (rule["security_group_id"], rule["remote_group_id"]):
            store.delete("security_group_rule", rule["id"])


def _port_range(data: dict, protocol: str | None) -> tuple[int | None, int | None]:
    low, high = data.get("port_range_min"), data.get("port_range_max")
    if low is None and high is None:
        return None, None
    if protocol is None:
        raise error(400, "SecurityGroupProtocolRequiredWithPorts",
                    "Must also specify protocol if port range is given.")
    try:
        low, high = int(low if low is not None else high), int(high if high is not None else low)
    except (TypeError, ValueError):
        raise error(400, "InvalidInput", "Invalid port range.") from None
    if protocol in ("tcp", "udp", "6", "17") and not 1 <= low <= high <= 65535:
        raise error(400, "SecurityGroupInvalidPortRange",
                    "For TCP/UDP protocols, port_range_min must be <= port_range_max")
    return low, high


def _create_security_group_rule(store: Store, data: dict) -> Doc:
    group = find(store, "security_group", str(data.get("security_group_id")))
    _owner(data)
    if data.get("direction") not in ("ingress", "egress"):
        raise error(400, "InvalidInput", f"Invalid input for direction. Reason: "
                                         f"'{data.get('direction')}' is not in "
                                         "['ingress', 'egress'].")
    ethertype = data.get("ethertype") or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise error(400, "SecurityGroupRuleInvalidEtherType",
                    f"Security group rule for ethertype '{ethertype}' not supported. Allowed "
                    "values are ['IPv4', 'IPv6'].")
    protocol = str(data["protocol"]).lower() if data.get("protocol") not in (None, "") else None
    low, high = _port_range(data, protocol)
    prefix, remote = data.get("remote_ip_prefix"), data.get("remote_group_id")
    if prefix and remote:
        raise error(400, "SecurityGroupRemoteGroupAndRemoteIpPrefix",
                    "Only remote_ip_prefix or remote_group_id may be provided.")
    if remote:
        find(store, "security_group", remote)
    normalized = None
    if prefix:
        try:
            network = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            raise error(400, "InvalidInput", f"'{prefix}' is not a valid IP prefix.") from None
        if f"IPv{network.version}" != ethertype:
            raise error(400, "SecurityGroupRuleParameterConflict",
                        f"Conflicting value ethertype {ethertype} for CIDR {prefix}")
        normalized = str(network)
    fields = {"direction": data["direction"], "ethertype": ethertype, "protocol": protocol,
              "port_range_min": low, "port_range_max": high, "remote_ip_prefix": prefix,
              "remote_group_id": remote}
    for rule in store.list("security_group_rule", security_group_id=group["id"]):
        if all(
                rule[k] == v for k, v in fields.items() if k != "remote_ip_prefix") and \
                rule["normalized_cidr"] == normalized:
            raise error(409, "SecurityGroupRuleExists",
                        f"Security group rule already exists. Rule id is {rule['id']}.")
    _refuse_unknown(data, "security_group_rule")
    return _rule(store, group, description=data.get("description") or "",
                 normalized_cidr=normalized, **fields)


_CREATE = {"network": _create_network, "subnet": _create_subnet, "port": create_port,
           "security_group": _create_security_group,
           "security_group_rule": _create_security_group_rule}
_DELETE = {"network": _delete_network, "subnet": _delete_subnet,
           "security_group": _delete_security_group}


# -- views ---------------------------------------------------------------------------------
def view(store: Store, kind: str, doc: Doc) -> Doc:
    out = {k: v for k, v in doc.items() if not k.startswith("_")}
    if kind == "network":
        out["subnets"] = [s["id"] for s in _subnets_of(store, doc["id"])]
    elif kind == "security_group":
        out["security_group_rules"] = [
            view(store, "security_group_rule", r)
            for r in store.list("security_group_rule", security_group_id=doc["id"])]
    return out


def _fields(out: Doc) -> Doc:
    wanted = flask.request.args.getlist("fields")
    return {k: v for k, v in out.items() if k in wanted} if wanted else out


# String fields of each kind that the store matches before decoding (what Heat and the DR
# engine filter on; no pending transition changes them); _list_filter checks them again
# with the rest.
_PUSHED_DOWN = {"port": {"id", "name", "network_id", "device_id", "device_owner"},
                "network": {"id", "name"}, "subnet": {"id", "name", "network_id"},
                "security_group": {"id", "name"},
                "security_group_rule": {"id", "security_group_id"}}


def _pushed_down(kind: str) -> dict[str, str]:
    args = flask.request.args
    return {key: args[key] for key in _PUSHED_DOWN.get(kind, set()) & set(args)
            if len(args.getlist(key)) == 1}


def _list_filter(kind: str, docs: list[Doc]) -> list[Doc]:
    """Neutron refuses a filter on an attribute the resource lacks, even when nothing
    would match: the attributes known without a document, then the first one's."""
    args = flask.request.args
    known = _COMMON | _WRITABLE[kind] | _CREATE_ONLY[kind] | {"status"}
    for key in set(args) - _LIST_CONTROLS:
        wanted = args.getlist(key)
        if key not in known and not (docs and key in docs[0]):
            raise error(400, "HTTPBadRequest", f"{key} is invalid attribute for filtering")
        docs = [d for d in docs if (any(w in d[key] for w in wanted)
                                    if isinstance(d.get(key), list)
                                    else matches(d.get(key), wanted))]
    for condition in args.getlist("fixed_ips"):
        field, _, value = condition.partition("=")
        docs = [d for d in docs if any(ip.get(field) == value for ip in d.get("fixed_ips", []))]
    sort_key = args.get("sort_key")
    if sort_key:
        docs.sort(key=lambda d: str(d.get(sort_key)), reverse=args.get("sort_dir") == "desc")
    return docs


# -- routes --------------------------------------------------------------------------------
@bp.get("/floatingips")
def list_floating_ips():
    """The lab has no routers, so no floating IPs; Heat still asks for a server's (its
    ``addresses`` attribute lists them beside the fixed ones)."""
    return {"floatingips": []}


@bp.get("/extensions")
def extensions():
    return {"extensions": [{"alias": alias, "name": name, "description": name, "links": [],
                            "updated": "2013-01-01T10:00:00-00:00"}
                           for alias, name in EXTENSIONS.items()]}


@bp.get("/extensions/<alias>")
def extension(alias):
    if alias not in EXTENSIONS:
        raise error(404, "HTTPNotFound", f"Extension with alias {alias} does not exist")
    return {"extension": {"alias": alias, "name": EXTENSIONS[alias], "links": [],
                          "description": EXTENSIONS[alias],
                          "updated": "2013-01-01T10:00:00-00:00"}}


@bp.get("/<collection>")
def list_resources(collection):
    kind, key = _kind(collection)
    store = _store()
    if kind in ("security_group", "security_group_rule"):
        ensure_default_group(store, caller().project_id)
    docs = [view(store, kind, d) for d in store.list(kind, **_pushed_down(kind))
            if _visible(store, kind, d)]
    page = paginate(_list_filter(kind, docs))
    result = {key: [_fields(d) for d in page]}
    if links := next_links(page):
        result[f"{key}_links"] = links
    return result


@bp.get("/<collection>/<rid>")
def show_resource(collection, rid):
    kind, _ = _kind(collection)
    store = _store()
    return {kind: _fields(view(store, kind, find(store, kind, rid)))}


@bp.post("/<collection>")
def create_resources(collection):
    kind, key = _kind(collection)
    data = flask.request.get_json(force=True, silent=True) or {}
    items = data.get(key) if isinstance(data.get(key), list) else None
    if items is None and not isinstance(data.get(kind), dict):
        raise error(400, "HTTPBadRequest", f"Resource body required: '{kind}' or '{key}'")
    store = _store()
    with store.transaction():
        created = [_CREATE[kind](store, dict(item)) for item in (items or [data[kind]])]
        views = [view(store, kind, d) for d in created]
    return ({key: views} if items is not None else {kind: views[0]}), 201


@bp.put("/<collection>/<rid>")
def update_resource(collection, rid):
    kind, _ = _kind(collection)
    data = flask.request.get_json(force=True, silent=True) or {}
    if not isinstance(data.get(kind), dict):
        raise error(400, "HTTPBadRequest", f"Resource body required: '{kind}'")
    changes = dict(data[kind])
    store = _store()
    with store.transaction():
        doc = find(store, kind, rid)
        if not caller().is_admin and not caller().owns(doc):
            raise error(404, _NOT_FOUND[kind], f"{_NOUNS[kind]} {rid} could not be found.")
        bad = set(changes) - _WRITABLE[kind] - {"name", "description"}
        if bad:
            raise error(400, "HTTPBadRequest",
                        f"Cannot update read-only attribute {', '.join(sorted(bad))}")
        if {"shared", "router:external"} & set(changes) and not caller().is_admin:
            raise error(403, "PolicyNotAuthorized",
                        "Only admins may share networks or make them external.")
        if kind == "port":
            _update_port(store, doc, changes)
        else:
            doc.update(changes)
        _touch(store, doc, kind)
        return {kind: view(store, kind, doc)}


@bp.delete("/<collection>/<rid>")
def delete_resource(collection, rid):
    kind, _ = _kind(collection)
    store = _store()
    with store.transaction():
        doc = find(store, kind, rid)
        if not caller().is_admin and not caller().owns(doc):
            raise error(404, _NOT_FOUND[kind], f"{_NOUNS[kind]} {rid} could not be found.")
        if kind in _DELETE:
            _DELETE[kind](store, doc)
        store.delete(kind, rid)
    return "", 204


QUOTAS = {"network": 100, "subnet": 100, "port": 500, "security_group": 10,
          "security_group_rule": 100, "router": 10, "floatingip": 50, "rbac_policy": 10,
          "subnetpool": -1}


def _quotas(project_id: str) -> dict[str, int]:
    """The project's quotas: the defaults, with what an admin set (``PUT``)."""
    return {**QUOTAS, **json.loads(_store().setting(f"neutron-quota:{project_id}", "{}"))}


def _readable(project_id: str):
    if project_id != caller().project_id and not caller().is_admin:
        raise error(403, "Forbidden", "not authorized to read another project's quotas")


@bp.get("/quotas/<project_id>")
def quotas(project_id):
    _readable(project_id)
    return {"quota": _quotas(project_id)}


@bp.get("/quotas/<project_id>/details")
def quota_details(project_id):
    """Each quota's limit with what the project uses (ports, networks, subnets and
    security groups counted; the rest reported unused)."""
    _readable(project_id)
    store = _store()
    used = {kind: store.count(kind, project_id)
            for kind in ("network", "subnet", "port", "security_group")}
    return {"quota": {k: {"limit": v, "used": used.get(k, 0), "reserved": 0}
                      for k, v in _quotas(project_id).items()}}


@bp.put("/quotas/<project_id>")
def update_quotas(project_id):
    """An admin sets some of a project's quotas (the others keep theirs)."""
    if not caller().is_admin:
        raise error(403, "Forbidden", "only an admin sets quotas")
    asked = (flask.request.get_json(silent=True) or {}).get("quota") or {}
    unknown = sorted(set(asked) - set(QUOTAS))
    if unknown or not all(isinstance(v, int) and v >= -1 for v in asked.values()):
        raise error(400, "BadRequest", f"Invalid quota: {', '.join(unknown) or 'a value'} is "
                    "not a known quota or not an integer >= -1.")
    store = _store()
    with store.transaction():
        store.put_setting(f"neutron-quota:{project_id}", json.dumps(
            {**json.loads(store.setting(f"neutron-quota:{project_id}", "{}")), **asked}))
    return {"quota": _quotas(project_id)}
