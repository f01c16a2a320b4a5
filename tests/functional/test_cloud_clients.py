"""The real OpenStack clients against the simulated cloud served on a real port.

The clients (openstacksdk, python-openstackclient, and the novaclient / neutronclient /
cinderclient / glanceclient that Heat uses) live in their own virtualenv, never in the
project's: each scenario below is a short script run there, printing one JSON line that
the test checks. The virtualenv is the lab's ``clients`` venv (made on first use).
Keystone is not needed:
the cloud is wrapped in :func:`~site_recovery.lab.cloud.testing.wrap_with_tokens`, and
the clients authenticate with keystoneauth's ``token_endpoint`` plugin and a token
``<project>:<roles>`` plus one endpoint override per service.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from site_recovery.lab.cloud import CloudConfig, CloudServer, create_app
from site_recovery.lab.cloud.testing import Client, wrap_with_tokens
from site_recovery.lab.layout import lab_home
from site_recovery.lab.services import venvs
from tests.conftest import GIB


@functools.cache
def client_venv() -> Path:
    """The lab's client venv, made on first use (a test, not collection, pays for it)."""
    return venvs.ensure(lab_home() / "venvs", "clients")

PRELUDE = '''
import io, json, os, sys, time
URL = os.environ["CLOUD_URL"]
PARAMS = json.loads(os.environ["PARAMS"])

def session(project, roles="member,reader"):
    from keystoneauth1 import session as ks_session
    from keystoneauth1.token_endpoint import Token
    return ks_session.Session(auth=Token(URL, f"{project}:{roles}"))

def sdk(project, roles="member,reader"):
    import openstack
    return openstack.connection.Connection(
        session=session(project, roles), block_storage_api_version="3",
        compute_endpoint_override=f"{URL}/compute/v2.1",
        network_endpoint_override=f"{URL}/network",
        block_storage_endpoint_override=f"{URL}/volume/v3/{project}",
        image_endpoint_override=f"{URL}/image")

def nova(project, roles="member,reader"):
    from novaclient import client
    args = dict(session=session(project, roles), endpoint_override=f"{URL}/compute/v2.1")
    newest = client.Client("2.1", **args).versions.get_current().version   # as Heat does
    return client.Client(newest, **args)

def neutron(project, roles="member,reader"):
    from neutronclient.v2_0 import client
    return client.Client(session=session(project, roles), endpoint_override=f"{URL}/network")

def cinder(project, roles="member,reader"):
    from cinderclient import api_versions, client
    args = dict(session=session(project, roles), endpoint_override=f"{URL}/volume/v3/{project}")
    newest = api_versions.get_highest_version(client.Client("3.0", **args))
    return client.Client(newest.get_string(), **args)

def glance(project, roles="member,reader"):
    from glanceclient import client
    return client.Client("2", session=session(project, roles), endpoint_override=f"{URL}/image")

def wait(check, timeout=10):
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)

def done(**result):
    print(json.dumps(result))
'''


@pytest.fixture
def cloud_url(tmp_path, fabric):
    """The cloud on a free port, with the flavors m1.tiny (id 1) and m1.small (id 2)."""
    config = CloudConfig(db=str(tmp_path / "cloud.db"), fabric=fabric.path, array="fa-a",
                         build_seconds=0.3, volume_seconds=0.2, task_seconds=0.1)
    app = create_app(config)
    admin = Client(app, "admin", "admin")
    for flavor_id, name, ram in (("1", "m1.tiny", 512), ("2", "m1.small", 2048)):
        admin.post("/compute/v2.1/flavors", {"flavor": {"id": flavor_id, "name": name,
                                                        "ram": ram, "vcpus": 1, "disk": 1}})
    with CloudServer(wrap_with_tokens(app)) as server:
        yield server.url


def run(url: str, script: str, **params) -> dict:
    """Run a scenario in the client virtualenv; its last stdout line is the JSON result."""
    env = {**os.environ, "CLOUD_URL": url, "PARAMS": json.dumps(params),
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(client_venv() / "bin" / "python"), "-c",
                           PRELUDE + textwrap.dedent(script)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_openstacksdk_builds_a_server_on_a_fixed_ip_port(cloud_url):
    result = run(cloud_url, '''
        admin = sdk("admin", "admin")
        admin.compute.create_flavor(name="dr.large", id="203", vcpus=4, ram=8192, disk=80)
        c = sdk("ecommerce")
        net = c.network.create_network(name="private")
        c.network.create_subnet(network_id=net.id, cidr="10.1.0.0/24", ip_version=4)
        sg = c.network.create_security_group(name="web")
        c.network.create_security_group_rule(security_group_id=sg.id, direction="ingress",
                                             protocol="tcp", port_range_min=22,
                                             port_range_max=22)
        port = c.network.create_port(network_id=net.id, security_group_ids=[sg.id],
                                     fixed_ips=[{"ip_address": "10.1.0.10"}])
        image = c.image.create_image(name="cirros", data=b"disk", disk_format="qcow2",
                                     container_format="bare")
        flavor = c.compute.find_flavor("dr.large")
        server = c.compute.create_server(name="vm1", flavor_id=flavor.id, image_id=image.id,
                                         networks=[{"port": port.id}])
        built = c.compute.wait_for_server(server, interval=0.05, wait=10)
        listed = [s.name for s in c.compute.servers()]
        port_status = c.network.get_port(port.id).status
        c.compute.delete_server(server)
        c.compute.wait_for_delete(server, interval=0.05, wait=10)
        done(status=built.status, addresses=built.addresses, listed=listed,
             port_status=port_status, rules=len(c.network.get_security_group(sg.id).
                                                security_group_rules),
             port_after=c.network.get_port(port.id).device_id,
             images=[i.name for i in c.image.images()])
    ''')
    assert result["status"] == "ACTIVE"
    assert result["addresses"]["private"][0]["addr"] == "10.1.0.10"
    assert result["listed"] == ["vm1"]
    assert result["port_status"] == "ACTIVE"
    assert result["rules"] == 3                  # two default egress rules plus ssh
    assert result["port_after"] == ""            # the port was given, so only unbound
    assert result["images"] == ["cirros"]


def test_openstacksdk_manages_and_unmanages_an_array_volume(cloud_url, fabric):
    fabric.array("fa-a").create_volume("sr-failover-g1-vm1-disk0", 2 * GIB)
    result = run(cloud_url, '''
        admin = sdk("admin", "admin,member,reader")
        vol = admin.block_storage.create_volume(size=1, name="plain")
        vol = admin.block_storage.wait_for_status(vol, "available", interval=0.05, wait=10)
        # openstacksdk's manageable_volumes() sends no microversion, and Cinder wants 3.8.
        listing = admin.block_storage.get("/manageable_volumes/detail?host=cinder@pure%23pure",
                                          microversion="3.8").json()["manageable-volumes"]
        name = PARAMS["name"]
        managed = admin.block_storage.manage_volume(
            host="cinder@pure#pure", ref={"source-name": name, "name": name},
            name="vm1-disk0", bootable=True)
        first_status = managed.status
        managed = admin.block_storage.wait_for_status(
            managed, "available", failures=["error_managing"], interval=0.05, wait=10)
        array_name = managed.metadata["array_volume_name"]
        admin.block_storage.unmanage_volume(managed)
        admin.block_storage.wait_for_delete(managed, interval=0.05, wait=10)
        done(plain=vol.metadata, listing={e["reference"]["name"]: e["safe_to_manage"]
                                          for e in listing},
             first_status=first_status, size=managed.size, id=managed.id,
             array_name=array_name, left=[v.name for v in admin.block_storage.volumes()])
    ''', name="sr-failover-g1-vm1-disk0")
    plain = result["plain"]["array_volume_name"]
    assert result["listing"] == {"sr-failover-g1-vm1-disk0": True, plain: False}
    assert (result["first_status"], result["size"]) == ("managing", 2)
    assert result["array_name"] == f"volume-{result['id']}-cinder"
    assert result["left"] == ["plain"]
    assert sorted(fabric.inventory("fa-a")["volumes"]) == sorted(
        [plain, f"volume-{result['id']}-cinder-unmanaged"])


def test_novaclient_boots_from_volume_and_plugs_ports_and_volumes(cloud_url):
    result = run(cloud_url, '''
        net = neutron("ecommerce")
        private = net.create_network({"network": {"name": "private"}})["network"]
        net.create_subnet({"subnet": {"network_id": private["id"], "cidr": "10.2.0.0/24",
                                      "ip_version": 4}})
        port = net.create_port({"port": {"network_id": private["id"]}})["port"]
        volumes = cinder("ecommerce")
        boot = volumes.volumes.create(size=1, name="boot")
        data = volumes.volumes.create(size=1, name="data")
        wait(lambda: volumes.volumes.get(data.id).status == "available")
        compute = nova("ecommerce")
        server = compute.servers.create(
            "bfv", image=None, flavor=compute.flavors.find(name="m1.small"),
            nics=[{"port-id": port["id"]}],
            block_device_mapping_v2=[{"source_type": "volume", "destination_type": "volume",
                                      "boot_index": 0, "uuid": boot.id}])
        wait(lambda: compute.servers.get(server.id).status == "ACTIVE")
        interfaces = [i.port_id for i in compute.servers.interface_list(server.id)]
        compute.volumes.create_server_volume(server.id, data.id)
        wait(lambda: volumes.volumes.get(data.id).status == "in-use")
        attached = sorted(a.volumeId for a in compute.volumes.get_server_volumes(server.id))
        compute.volumes.delete_server_volume(server.id, data.id)
        wait(lambda: volumes.volumes.get(data.id).status == "available")
        extra = compute.servers.interface_attach(server.id, None, private["id"], "10.2.0.50")
        addresses = compute.servers.get(server.id).addresses
        compute.servers.interface_detach(server.id, extra.port_id)
        compute.servers.stop(server.id)
        wait(lambda: compute.servers.get(server.id).status == "SHUTOFF")
        compute.servers.delete(server.id)
        done(version=compute.api_version.get_string(), interfaces=interfaces,
             port=port["id"], attached=attached, boot=boot.id, data=data.id,
             addresses=sorted(a["addr"] for a in addresses["private"]),
             boot_after=volumes.volumes.get(boot.id).status,
             servers=len(compute.servers.list()))
    ''')
    assert result["version"] == "2.96"
    assert result["interfaces"] == [result["port"]]
    assert result["attached"] == sorted([result["boot"], result["data"]])
    assert result["addresses"] == ["10.2.0.2", "10.2.0.50"]
    assert (result["boot_after"], result["servers"]) == ("available", 0)


def test_neutronclient_bulk_rules_and_lookup_by_name(cloud_url):
    result = run(cloud_url, '''
        from neutronclient.common import exceptions
        from neutronclient.neutron import v2_0 as neutronV20
        client = neutron("ecommerce")
        net = client.create_network({"network": {"name": "private"}})["network"]
        found = neutronV20.find_resourceid_by_name_or_id(client, "network", "private")
        group = client.create_security_group({"security_group": {"name": "web"}})
        group = group["security_group"]
        rule = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
                "port_range_min": 443, "port_range_max": 443}
        bulk = client.create_security_group_rule({"security_group_rules": [
            rule, {**rule, "port_range_min": 80, "port_range_max": 80}]})
        try:
            client.create_security_group_rule({"security_group_rule": rule})
            duplicate = None
        except exceptions.Conflict as exc:
            duplicate = type(exc).__name__
        try:
            client.show_port("no-such-port")
            missing = None
        except exceptions.PortNotFoundClient as exc:
            missing = exc.status_code
        done(found=found == net["id"], bulk=len(bulk["security_group_rules"]),
             duplicate=duplicate, missing=missing,
             rules=len(client.show_security_group(group["id"])["security_group"][
                 "security_group_rules"]))
    ''')
    assert result == {"found": True, "bulk": 2, "duplicate": "Conflict", "missing": 404,
                      "rules": 4}


def test_cinderclient_and_glanceclient(cloud_url, fabric):
    fabric.array("fa-a").create_volume("orphan", GIB)
    result = run(cloud_url, '''
        volumes = cinder("ecommerce")
        vol = volumes.volumes.create(size=1, name="data")
        first = vol.status
        wait(lambda: volumes.volumes.get(vol.id).status == "available")
        admin = cinder("admin", "admin")
        manageable = {v.reference["name"]: v.safe_to_manage
                      for v in admin.volumes.list_manageable("cinder@pure#pure")}
        images = glance("ecommerce")
        image = images.images.create(name="cirros", disk_format="raw", container_format="bare")
        images.images.upload(image.id, io.BytesIO(b"bytes"))
        done(version=volumes.api_version.get_string(), first=first, id=vol.id,
             manageable=manageable, images=[(i.name, i.status) for i in images.images.list()])
    ''')
    assert result["version"] == "3.71"
    assert result["first"] == "creating"
    assert result["manageable"] == {"orphan": True, f"volume-{result['id']}-cinder": False}
    assert result["images"] == [["cirros", "active"]]


def test_openstack_cli_lists(cloud_url, tmp_path):
    """The CLI with a clouds.yaml; ``server list`` and ``volume list`` also query the
    identity service, so they wait for the lab's Keystone."""
    (tmp_path / "clouds.yaml").write_text(json.dumps({"clouds": {"lab": {
        "auth_type": "admin_token",
        "auth": {"endpoint": f"{cloud_url}/compute/v2.1", "token": "ecommerce:member,reader"},
        "network_endpoint_override": f"{cloud_url}/network",
        "compute_endpoint_override": f"{cloud_url}/compute/v2.1",
        "image_endpoint_override": f"{cloud_url}/image"}}}))
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(tmp_path / "clouds.yaml"),
           "PYTHONWARNINGS": "ignore"}

    def cli(*args):
        proc = subprocess.run([str(client_venv() / "bin" / "openstack"), "--os-cloud", "lab",
                               *args, "-f", "json"], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout)

    assert [f["Name"] for f in cli("flavor", "list")][:2] == ["m1.tiny", "m1.small"]
    assert cli("network", "list") == []
