"""Many small VMs for one tenant, for scale tests and benchmarks.

Each VM boots from its own 1 GiB volume of the replicated type (and may have a data
volume of that type attached) on a network of the tenant's own (made on both sites), with
a fixed IP; the site-b network has the same CIDR, so a failover keeps the addresses.
Creation runs a few at a time and finds what exists.
"""

from __future__ import annotations

import ipaddress
import threading
from concurrent.futures import ThreadPoolExecutor

from .seed import IMAGE, POLL, _network, _volume, connect


def seed_fleet(lab, *, user: str, prefix: str, count: int, cidr: str,
               volume_type: str = "replicated-ssd", workers: int = 8,
               data_gb: int = 0) -> dict[str, str]:
    """``count`` VMs named ``<prefix>-<n>`` on site-a; their ids by name. ``data_gb``: each
    also has a data volume ``<prefix>-<n>-data`` of that size attached."""
    primary, dr = connect(lab.sites["site-a"], user), connect(lab.sites["site-b"], user)
    network = _network(primary, f"{prefix}-net", f"{prefix}-subnet", cidr, dhcp=True)
    _network(dr, f"dr-{prefix}-net", f"dr-{prefix}-subnet", cidr, dhcp=True)
    group = primary.network.find_security_group(f"{prefix}-sg", ignore_missing=True) or \
        primary.network.create_security_group(name=f"{prefix}-sg")
    image = primary.image.find_image(IMAGE)
    flavor = primary.compute.find_flavor("m1.small")
    hosts = ipaddress.ip_network(cidr).hosts()
    addresses = [str(next(hosts)) for _ in range(count + 10)][10:]   # past the gateway

    local = threading.local()           # one connection (one token) per worker

    def one(index: int) -> tuple[str, str]:
        if not hasattr(local, "conn"):
            local.conn = connect(lab.sites["site-a"], user)
        conn = local.conn
        name = f"{prefix}-{index + 1}"
        server = conn.compute.find_server(name, ignore_missing=True)
        if server is None:
            boot = _volume(conn, f"{name}-boot", 1, volume_type, image.id)
            port = conn.network.find_port(f"{name}-port", ignore_missing=True) or \
                conn.network.create_port(name=f"{name}-port", network_id=network.id,
                                         fixed_ips=[{"ip_address": addresses[index]}],
                                         security_group_ids=[group.id])
            server = conn.compute.create_server(
                name=name, flavor_id=flavor.id, networks=[{"port": port.id}],
                metadata={"tier": "app"},
                block_device_mapping=[{"uuid": boot.id, "source_type": "volume",
                                       "destination_type": "volume", "boot_index": 0,
                                       "delete_on_termination": False}])
        server = conn.compute.wait_for_server(server, status="ACTIVE", wait=600, interval=POLL)
        if data_gb:
            data = _volume(conn, f"{name}-data", data_gb, volume_type)
            if data.id not in {a.volume_id for a in conn.compute.volume_attachments(server)}:
                conn.compute.create_volume_attachment(server, volume_id=data.id)
                conn.block_storage.wait_for_status(data, "in-use", wait=120, interval=POLL)
        return name, server.id

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(pool.map(one, range(count)))
