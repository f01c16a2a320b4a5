"""``site-recovery-lab seed``: the concept document's e-commerce tenant.

Site A runs the tenant ``ecommerce``: web, app and database tiers booted from volumes of
replicated volume types (async ``replicated-ssd``, sync ``replicated-sync``), fixed IPs on
two networks, security groups per tier, a key pair, an availability zone, the web tier in
an anti-affinity server group, and data volumes attached. Site B has equivalent flavors
under other ids and names, its own networks (one with the same CIDR, one re-addressed) and
an isolated drill network, so protection groups need mappings. Both sites get the Cinder
group type (a consistency group type) protect puts each group's Cinder group in, and a
failover its copies, as an admin makes it once per site.
Every step finds what exists first, so ``seed`` can run again.
"""

from __future__ import annotations

from dataclasses import dataclass

import openstack

from site_recovery.core.config import EngineConfig

from .layout import SiteLayout

IMAGE = "cirros-0.6"
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOJLpPHe5WtVAUPiYf+OLeI/"
              "mXrCWVBwW6l72rsqa49P ecommerce@lab")

FLAVORS = {
    "site-a": [("m1.small", "101", 1, 2048, 20), ("m1.medium", "102", 2, 4096, 40),
               ("m1.large", "103", 4, 8192, 80)],
    "site-b": [("dr.small", "201", 1, 2048, 20), ("dr.medium", "202", 2, 4096, 40),
               ("dr.large", "203", 4, 8192, 80)],
}
VOLUME_TYPES = {
    "replicated-ssd": {"replication_enabled": "<is> True", "replication_type": "<in> async",
                       "volume_backend_name": "pure"},
    "replicated-sync": {"replication_enabled": "<is> True", "replication_type": "<in> sync",
                        "volume_backend_name": "pure"},
}
GROUP_TYPE = EngineConfig().cinder_group_type
GROUP_SPECS = {"consistent_group_snapshot_enabled": "<is> True"}
ZONE = "nova"                                      # the simulated Nova's one zone
SERVER_GROUPS = {"web-anti-affinity": "anti-affinity"}
NETWORKS = {
    "site-a": [("prod-net", "prod-subnet", "10.0.0.0/24"), ("db-net", "db-subnet", "10.0.1.0/24")],
    "site-b": [("dr-prod-net", "dr-prod-subnet", "10.0.0.0/24"),
               ("dr-db-net", "dr-db-subnet", "10.1.1.0/24"),
               ("dr-test-net", "dr-test-subnet", "10.99.0.0/24")],
}
SECURITY_GROUPS = {   # name -> [(port, remote: CIDR or another group)]
    "web-sg": [(80, "0.0.0.0/0"), (443, "0.0.0.0/0"), (22, "10.0.0.0/16")],
    "app-sg": [(8080, "web-sg")],
    "db-sg": [(5432, "app-sg")],
}


@dataclass(frozen=True)
class Vm:
    name: str
    tier: str
    flavor: str
    network: str
    ip: str
    group: str
    boot_type: str
    data_gb: int = 0
    server_group: str | None = None


VMS = (
    Vm("web-1", "web", "m1.small", "prod-net", "10.0.0.11", "web-sg", "replicated-ssd",
       server_group="web-anti-affinity"),
    Vm("web-2", "web", "m1.small", "prod-net", "10.0.0.12", "web-sg", "replicated-ssd",
       server_group="web-anti-affinity"),
    Vm("app-1", "app", "m1.medium", "prod-net", "10.0.0.21", "app-sg", "replicated-ssd", 10),
    Vm("db-1", "db", "m1.large", "db-net", "10.0.1.31", "db-sg", "replicated-sync", 50),
)


# The simulated clouds build in well under a second: openstacksdk's stock 2 s between
# polls would make seeding mostly waiting.
POLL = 0.25


def connect(site: SiteLayout, user: str) -> openstack.connection.Connection:
    return openstack.connect(**site.auth(user), region_name="RegionOne",
                             identity_api_version="3", api_timeout=60)


def seed(lab, progress=print):
    for name, site in lab.sites.items():
        _seed_admin(connect(site, "admin"), name)
        tenant = connect(site, "alice")
        for net, subnet, cidr in NETWORKS[name]:
            _network(tenant, net, subnet, cidr, dhcp=not net.endswith("test-net"))
        progress(f"{name}: flavors, volume and group types, image and tenant networks ready")
    _seed_workload(connect(lab.sites["site-a"], "alice"), progress)


def _seed_admin(admin, site_name: str):
    for name, flavor_id, vcpus, ram, disk in FLAVORS[site_name]:
        if admin.compute.find_flavor(flavor_id, ignore_missing=True) is None:
            admin.compute.create_flavor(name=name, id=flavor_id, vcpus=vcpus, ram=ram, disk=disk)
    for name, specs in VOLUME_TYPES.items():
        if admin.block_storage.find_type(name, ignore_missing=True) is None:
            admin.block_storage.create_type(name=name, extra_specs=specs)
    group_type = admin.block_storage.find_group_type(GROUP_TYPE, ignore_missing=True)
    if group_type is None:
        admin.block_storage.create_group_type(name=GROUP_TYPE, group_specs=GROUP_SPECS,
                                              description="Site Recovery protection groups")
    elif any((group_type.group_specs or {}).get(k) != v for k, v in GROUP_SPECS.items()):
        admin.block_storage.create_group_type_group_specs(group_type, GROUP_SPECS)
    if admin.image.find_image(IMAGE, ignore_missing=True) is None:
        admin.image.create_image(name=IMAGE, disk_format="qcow2", container_format="bare",
                                 visibility="public", allow_duplicates=False)


def _network(conn, name: str, subnet: str, cidr: str, dhcp: bool):
    network = conn.network.find_network(name, ignore_missing=True) or \
        conn.network.create_network(name=name)
    if conn.network.find_subnet(subnet, ignore_missing=True) is None:
        conn.network.create_subnet(name=subnet, network_id=network.id, cidr=cidr,
                                   ip_version=4, enable_dhcp=dhcp)
    return network


def _security_groups(conn) -> dict[str, str]:
    ids = {}
    for name in SECURITY_GROUPS:
        group = conn.network.find_security_group(name, ignore_missing=True) or \
            conn.network.create_security_group(name=name, description=f"{name} tier")
        ids[name] = group.id
    for name, rules in SECURITY_GROUPS.items():
        existing = {(r.port_range_min, r.remote_ip_prefix, r.remote_group_id)
                    for r in conn.network.security_group_rules(security_group_id=ids[name])}
        for port, remote in rules:
            remote_ip = remote if "/" in remote else None
            remote_group = None if remote_ip else ids[remote]
            if (port, remote_ip, remote_group) not in existing:
                conn.network.create_security_group_rule(
                    security_group_id=ids[name], direction="ingress", ethertype="IPv4",
                    protocol="tcp", port_range_min=port, port_range_max=port,
                    remote_ip_prefix=remote_ip, remote_group_id=remote_group)
    return ids


def _volume(conn, name: str, size: int, volume_type: str, image_id: str | None = None):
    volume = conn.block_storage.find_volume(name, ignore_missing=True)
    if volume is None:
        volume = conn.block_storage.create_volume(name=name, size=size, volume_type=volume_type,
                                                  image_id=image_id)
    return conn.block_storage.wait_for_status(volume, "available", wait=120, interval=POLL) \
        if volume.status not in ("available", "in-use") else volume


def _seed_workload(conn, progress):
    groups = _security_groups(conn)
    if conn.compute.find_keypair("ecommerce-key", ignore_missing=True) is None:
        conn.compute.create_keypair(name="ecommerce-key", public_key=PUBLIC_KEY)
    image = conn.image.find_image(IMAGE)
    server_groups = {name: (conn.compute.find_server_group(name, ignore_missing=True) or
                            conn.compute.create_server_group(name=name, policy=policy)).id
                     for name, policy in SERVER_GROUPS.items()}
    for vm in VMS:
        server = conn.compute.find_server(vm.name, ignore_missing=True)
        if server is None:
            boot = _volume(conn, f"{vm.name}-boot", 20, vm.boot_type, image.id)
            network = conn.network.find_network(vm.network)
            port = conn.network.find_port(f"{vm.name}-port", ignore_missing=True) or \
                conn.network.create_port(name=f"{vm.name}-port", network_id=network.id,
                                         fixed_ips=[{"ip_address": vm.ip}],
                                         security_group_ids=[groups[vm.group]])
            server = conn.compute.create_server(
                name=vm.name, flavor_id=conn.compute.find_flavor(vm.flavor).id,
                key_name="ecommerce-key", networks=[{"port": port.id}],
                availability_zone=ZONE,
                scheduler_hints={"group": server_groups[vm.server_group]}
                if vm.server_group else {},
                metadata={"tier": vm.tier, "application": "ecommerce"},
                block_device_mapping=[{"uuid": boot.id, "source_type": "volume",
                                       "destination_type": "volume", "boot_index": 0,
                                       "delete_on_termination": False}])
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=120,
                                              interval=POLL)
        if vm.data_gb:
            data = _volume(conn, f"{vm.name}-data", vm.data_gb, vm.boot_type)
            attached = {a.volume_id for a in conn.compute.volume_attachments(server)}
            if data.id not in attached:
                conn.compute.create_volume_attachment(server, volume_id=data.id)
                conn.block_storage.wait_for_status(data, "in-use", wait=120, interval=POLL)
        progress(f"site-a: {vm.name} ({vm.tier}) ACTIVE at {vm.ip}")
