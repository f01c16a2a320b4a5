"""The two-site lab, through real clients only: the openstack CLI, openstacksdk, heatclient.

One lab for the module (its own port range and run name, the shared venvs of the lab
home). The first run on a machine creates the services' venvs, which takes minutes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import openstack
import pytest
import requests
import yaml
from mistralclient.api import client as mistral_client

from site_recovery.core import capture, model, protection, stacks
from site_recovery.core.config import parse
from site_recovery.lab import seed
from site_recovery.lab.layout import SITES, lab_home
from site_recovery.lab.services import keystone, venvs
from site_recovery.webhook.errors import APIError, Unavailable
from site_recovery.webhook.launcher import Launcher, service_session
from tests.conftest import fresh_lab

PORT_BASE = 21000

SERVER_STACK = """
heat_template_version: 2021-04-16
parameters:
  network: {type: string}
  volume: {type: string}
  data_volume: {type: string}
resources:
  sg:
    type: OS::Neutron::SecurityGroup
    properties:
      rules: [{protocol: tcp, port_range_min: 443, port_range_max: 443}]
  port:
    type: OS::Neutron::Port
    properties:
      network: {get_param: network}
      fixed_ips: [{ip_address: 10.0.0.77}]
      security_groups: [{get_resource: sg}]
  server:
    type: OS::Nova::Server
    properties:
      flavor: m1.small
      networks: [{port: {get_resource: port}}]
      block_device_mapping_v2: [{boot_index: 0, volume_id: {get_param: volume}}]
  attachment:
    type: OS::Cinder::VolumeAttachment
    properties:
      instance_uuid: {get_resource: server}
      volume_id: {get_param: data_volume}
outputs:
  server_id: {value: {get_resource: server}}
"""


@pytest.fixture(scope="module")
def lab():
    yield from fresh_lab(PORT_BASE, "test")


@pytest.fixture(scope="module")
def cli(lab):
    """The real ``openstack`` CLI, from its own venv, with the lab's clouds.yaml."""
    venv = venvs.ensure(lab_home() / "venvs", "clients")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(lab.clouds_yaml()),
           "PYTHONWARNINGS": "ignore"}

    def run(cloud: str, *args: str, check=True) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "openstack"), "--os-cloud", cloud, *args],
                              env=env, capture_output=True, text=True, timeout=120,
                              check=check)

    return run


def connect(lab, site, user):
    return openstack.connect(**lab.sites[site].auth(user), region_name="RegionOne",
                             api_timeout=60)


@pytest.mark.parametrize("site", SITES)
def test_the_cli_lists_and_shows_every_resource_kind_on_both_sites(cli, site):
    issued = json.loads(cli(f"{site}-alice", "token", "issue", "-f", "json").stdout)
    assert issued["project_id"] and issued["expires"]
    shown_kinds = set()
    for kind in ("server", "volume", "network", "subnet", "port", "security group",
                 "flavor", "keypair", "stack", "image"):
        listed = json.loads(cli(f"{site}-alice", *kind.split(), "list", "-f", "json").stdout)
        assert isinstance(listed, list)
        if listed:
            key = "Name" if kind == "keypair" else "ID"
            shown = json.loads(cli(f"{site}-alice", *kind.split(), "show", listed[0][key],
                                   "-f", "json").stdout)
            assert listed[0][key] in (shown.get("id"), shown.get("name"))
            shown_kinds.add(kind)
    expected = {"network", "subnet", "security group", "flavor", "image"}
    if site == "site-a":
        expected |= {"server", "volume", "port", "keypair"}
    assert expected <= shown_kinds


def test_site_a_holds_the_seeded_workload_with_its_fixed_ips(cli):
    servers = json.loads(cli("site-a-alice", "server", "list", "--long", "-f", "json").stdout)
    by_name = {s["Name"]: s for s in servers}
    assert set(by_name) == {"web-1", "web-2", "app-1", "db-1"}
    assert all(s["Status"] == "ACTIVE" for s in servers)
    assert "10.0.1.31" in json.dumps(by_name["db-1"]["Networks"])
    volume = json.loads(cli("site-a-alice", "volume", "show", "db-1-data", "-f", "json").stdout)
    assert volume["status"] == "in-use" and volume["type"] == "replicated-sync"


def test_the_sites_are_independent_clouds(lab):
    a, b = connect(lab, "site-a", "admin"), connect(lab, "site-b", "admin")
    assert a.identity.find_project("ecommerce", domain_id="default").id != \
        b.identity.find_project("ecommerce", domain_id="default").id
    assert {f.name for f in b.compute.flavors()} == {"dr.small", "dr.medium", "dr.large"}


def test_a_reader_reads_but_cannot_create(cli):
    assert cli("site-a-rita", "server", "list", "-f", "json").returncode == 0
    denied = cli("site-a-rita", "network", "create", "rita-net", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr + denied.stdout


def test_a_tenant_does_not_see_another_tenants_servers(lab):
    assert list(connect(lab, "site-a", "bob").compute.servers()) == []


def test_a_real_heat_stack_builds_a_server_from_volumes_and_deletes_cleanly(lab, cli):
    alice = connect(lab, "site-a", "alice")
    boot = alice.block_storage.create_volume(name="stack-boot", size=1,
                                             volume_type="replicated-ssd")
    data = alice.block_storage.create_volume(name="stack-data", size=1)
    for volume in (boot, data):
        alice.block_storage.wait_for_status(volume, "available", wait=60)
    network = alice.network.find_network("prod-net")
    stack = alice.orchestration.create_stack(
        name="lab-check", template=yaml.safe_load(SERVER_STACK.replace(
            "2021-04-16", "'2021-04-16'")),
        parameters={"network": network.id, "volume": boot.id, "data_volume": data.id})
    stack = alice.orchestration.wait_for_status(stack, "CREATE_COMPLETE",
                                                failures=["CREATE_FAILED"], interval=1, wait=180)
    listed = json.loads(cli("site-a-alice", "stack", "resource", "list", stack.id,
                            "-f", "json").stdout)
    resources = {r["resource_name"]: r["resource_status"] for r in listed}
    assert resources == dict.fromkeys(("sg", "port", "server", "attachment"), "CREATE_COMPLETE")
    server = alice.compute.get_server(stack.outputs[0]["output_value"])
    assert server.status == "ACTIVE"
    assert alice.block_storage.get_volume(data.id).status == "in-use"
    assert "10.0.0.77" in json.dumps(server.addresses)
    alice.orchestration.delete_stack(stack)
    alice.orchestration.wait_for_delete(stack, interval=1, wait=180)
    assert alice.compute.find_server(server.id, ignore_missing=True) is None
    assert alice.block_storage.get_volume(data.id).status == "available"


def test_a_rendered_recovery_stack_passes_heats_validation_and_rebuilds_the_group(lab):
    """core.stacks on the DR site (site-b): the seeded tier layout, volumes standing in
    for the DR copies, networks and flavors mapped, one address re-addressed by a rule."""
    alice_b = connect(lab, "site-b", "alice")
    copies = {}
    for name, size in (("web-1-boot", 1), ("db-1-boot", 1), ("db-1-data", 2)):
        copies[name] = alice_b.block_storage.create_volume(name=f"copy-{name}", size=size,
                                                         volume_type="replicated-ssd")
    for volume in copies.values():
        alice_b.block_storage.wait_for_status(volume, "available", wait=60)
    networks = {n: alice_b.network.find_network(n) for n in ("dr-prod-net", "dr-db-net")}
    subnets = [stacks.Subnet(s.id, net.id, s.cidr) for net in networks.values()
               for s in alice_b.network.subnets(network_id=net.id)]
    web_sg = model.SecurityGroup("sg-web", "web-sg", (
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 443, "port_range_max": 443, "remote_ip_prefix": "0.0.0.0/0"},))
    db_sg = model.SecurityGroup("sg-db", "db-sg", (
        {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
         "port_range_min": 5432, "port_range_max": 5432, "remote_group_id": "sg-web"},))
    servers = [
        model.Server("src-web-1", "web-1", "m1.small", (model.Port(
            "prod-net", (model.FixedIp("10.0.0.11", "10.0.0.0/24"),), ("sg-web",)),),
            (model.Volume("web-1-boot", 0),), key_name=None, metadata={"tier": "web"},
            boot_order=1),
        model.Server("src-db-1", "db-1", "m1.large", (model.Port(
            "db-net", (model.FixedIp("10.0.1.31", "10.0.1.0/24"),), ("sg-db",)),),
            (model.Volume("db-1-boot", 0), model.Volume("db-1-data", None, "/dev/vdb")),
            metadata={"tier": "db"}, boot_order=0)]
    template = stacks.render(
        "prod-ecommerce", "drill", servers,
        volumes={name: volume.id for name, volume in copies.items()},
        mappings=stacks.Mappings(
            network={"prod-net": networks["dr-prod-net"].id,
                     "db-net": networks["dr-db-net"].id},
            flavor={"m1.small": "dr.small", "m1.large": "dr.large"},
            ip_rule={"10.0.1.0/24": "10.1.1.0/24"}),
        subnets=subnets, security_groups={"sg-web": web_sg, "sg-db": db_sg})
    parsed = yaml.safe_load(template)
    validated = alice_b.orchestration.validate_template(template=parsed)   # Heat's own code
    assert "Site Recovery drill" in validated["Description"]
    stack = alice_b.orchestration.create_stack(name=stacks.stack_name("drill", "prod-ecommerce"),
                                            template=parsed)
    stack = alice_b.orchestration.wait_for_status(stack, "CREATE_COMPLETE",
                                                failures=["CREATE_FAILED"], interval=1,
                                                wait=240)
    try:
        (output,) = [o["output_value"] for o in stack.outputs if o["output_key"] == "servers"]
        recovered = {o["name"]: alice_b.compute.get_server(o["id"]) for o in output}
        assert sorted(recovered) == ["test-db-1", "test-web-1"]
        assert all(server.status == "ACTIVE" for server in recovered.values())
        assert recovered["test-web-1"].flavor["original_name"] == "dr.small"
        assert recovered["test-db-1"].flavor["original_name"] == "dr.large"
        web_ips = json.dumps(recovered["test-web-1"].addresses)
        db_ips = json.dumps(recovered["test-db-1"].addresses)
        assert "10.0.0.11" in web_ips and "10.1.1.31" in db_ips
        assert alice_b.block_storage.get_volume(copies["db-1-data"].id).status == "in-use"
        groups = {g.name: g for g in alice_b.network.security_groups()}
        rules = list(alice_b.network.security_group_rules(
            security_group_id=groups["test-db-sg"].id))
        assert any(r.port_range_min == 5432 and r.remote_group_id == groups["test-web-sg"].id
                   for r in rules)
    finally:
        alice_b.orchestration.delete_stack(stack)
        alice_b.orchestration.wait_for_delete(stack, interval=1, wait=180)
    assert alice_b.block_storage.get_volume(copies["web-1-boot"].id).status == "available"


def test_capture_records_the_seeded_workload_and_its_stack_validates_on_the_dr_site(lab):
    alice_a, alice_b = connect(lab, "site-a", "alice"), connect(lab, "site-b", "alice")
    ids = [alice_a.compute.find_server(n).id for n in ("web-1", "app-1", "db-1")]
    servers, groups = capture.capture(alice_a, ids, admin=connect(lab, "site-a", "admin"),
                                      tier_order=("db", "app", "web"))
    web, app, db = servers
    assert (web.name, web.flavor, web.key_name, web.boot_order) == (
        "web-1", "m1.small", "ecommerce-key", 2)
    assert web.public_key == seed.PUBLIC_KEY and web.availability_zone == seed.ZONE
    assert (web.server_group.name, web.server_group.policy) == ("web-anti-affinity",
                                                                "anti-affinity")
    assert (db.flavor, db.boot_order, app.boot_order) == ("m1.large", 0, 1)
    assert [f.ip_address for f in web.ports[0].fixed_ips] == ["10.0.0.11"]
    assert db.ports[0].fixed_ips[0].subnet_cidr == "10.0.1.0/24"
    assert [v.boot_index for v in app.volumes] == [0, None]      # boot, then the data disk
    assert [v.boot_index for v in web.volumes] == [0]
    names = {g.name: g for g in groups.values()}
    assert set(names) == {"web-sg", "app-sg", "db-sg"}
    assert any(r.get("port_range_min") == 5432 and
               r.get("remote_group_id") == names["app-sg"].id for r in names["db-sg"].rules)
    networks = {n: alice_b.network.find_network(n) for n in ("dr-prod-net", "dr-db-net")}
    prod, db_net = (alice_a.network.find_network(n).id for n in ("prod-net", "db-net"))
    copies = {v.id: alice_b.block_storage.create_volume(name=f"copy-{v.id[:8]}", size=1)
              for s in servers for v in s.volumes}
    for volume in copies.values():
        alice_b.block_storage.wait_for_status(volume, "available", wait=60)
    template = stacks.render(
        "prod-ecommerce", "failover", servers,
        volumes={source: copy.id for source, copy in copies.items()},
        mappings=stacks.Mappings(
            network={prod: networks["dr-prod-net"].id, db_net: networks["dr-db-net"].id},
            flavor={"m1.small": "dr.small", "m1.medium": "dr.medium", "m1.large": "dr.large"},
            ip_rule={"10.0.1.0/24": "10.1.1.0/24"}),
        subnets=[stacks.Subnet(s.id, net.id, s.cidr) for net in networks.values()
                 for s in alice_b.network.subnets(network_id=net.id)],
        security_groups=groups)
    validated = alice_b.orchestration.validate_template(template=yaml.safe_load(template))
    assert "protection group prod-ecommerce" in validated["Description"]


def test_only_members_whose_volumes_replicate_the_groups_way_may_be_protected(lab):
    admin_a = connect(lab, "site-a", "admin")        # the DR service reads type specs
    servers = {n: admin_a.compute.find_server(n, all_projects=True).id
               for n in ("web-1", "app-1", "db-1")}
    volumes, specs = protection.member_volumes(admin_a, [servers["web-1"], servers["app-1"]])
    assert sorted(v.volume_name for v in volumes) == ["app-1-boot", "app-1-data",
                                                      "web-1-boot"]
    protection.check(volumes, specs, "async")
    volumes, specs = protection.member_volumes(admin_a, list(servers.values()))
    with pytest.raises(protection.Unprotectable,
                       match="db-1: volume db-1-boot has volume type 'replicated-sync', "
                             "which replicates sync, not async"):
        protection.check(volumes, specs, "async")


def test_manage_existing_imports_an_array_volume_and_unmanage_leaves_it(lab):
    site = lab.sites["site-b"]
    lab.fabric.array(site.array_name).create_volume("restored-disk-0", "2G")
    admin = connect(lab, "site-b", "admin")
    volume = admin.block_storage.manage_volume(
        host="cinder@pure#pure", ref={"source-name": "restored-disk-0", "name": "restored-disk-0"},
        name="restored-disk-0", volume_type="replicated-ssd")
    volume = admin.block_storage.wait_for_status(volume, "available", wait=60)
    assert (volume.name, volume.volume_type, volume.size) == ("restored-disk-0",
                                                              "replicated-ssd", 2)
    admin.block_storage.unmanage_volume(volume)
    admin.block_storage.wait_for_delete(volume, wait=60)
    names = [v["name"] for v in lab.fabric.array(site.array_name).list_volumes()]
    assert f"volume-{volume.id}-cinder-unmanaged" in names


def test_an_injected_api_fault_reaches_the_client_until_cleared(lab):
    alice = connect(lab, "site-a", "alice")
    lab.cloud_fault("site-a", {"service": "compute", "method": "GET", "path": "/servers",
                               "status": 503, "message": "compute is on fire"})
    try:
        with pytest.raises(openstack.exceptions.HttpException, match="compute is on fire"):
            list(alice.compute.servers())
    finally:
        lab.clear_faults()
    assert len(list(alice.compute.servers())) == 4


def protector(lab, site: str, path: str, user: str | None = "alice") -> requests.Response:
    """A call to a site's protection service, found in that site's Keystone catalog."""
    layout = lab.sites[site]
    headers = {"X-Auth-Token": keystone.token(layout, user)} if user else {}
    catalog = connect(lab, site, "alice").session.get_endpoint(service_type="protector")
    return requests.get(f"{catalog}{path}", headers=headers, timeout=10, verify=lab.ca_file())


def peer_state_becomes(lab, site: str, state: str, within: float = 20.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        peer = protector(lab, site, f"/sites/{lab.sites[site].peer}").json()["site"]
        if peer["state"] == state or time.monotonic() > deadline:
            return peer
        time.sleep(0.5)


def test_the_protection_service_validates_tokens_and_knows_its_peer(lab):
    reply = protector(lab, "site-a", "/sites")
    assert reply.status_code == 200
    assert {s["name"]: s["state"] for s in reply.json()["sites"]} == {
        "site-a": "local", "site-b": "reachable"}
    anonymous = protector(lab, "site-a", "/sites", user=None)
    assert anonymous.status_code == 401 and "Keystone uri=" in anonymous.headers[
        "WWW-Authenticate"]
    assert set(anonymous.json()["error"]) == {"code", "message", "details"}


def test_a_site_down_fails_fast_and_comes_back(lab, cli):
    lab.site_down("site-b", progress=lambda line: None)
    try:
        started = time.monotonic()
        failed = cli("site-b-alice", "server", "list", check=False)
        assert failed.returncode != 0
        assert time.monotonic() - started < 30
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", lab.sites["site-b"].port("keystone"))) != 0
        assert cli("site-a-alice", "server", "list").returncode == 0
        peer = peer_state_becomes(lab, "site-a", "unreachable")
        assert peer["state"] == "unreachable" and peer["since"] and peer["last_error"]
    finally:
        lab.site_up("site-b", progress=lambda line: None)
    assert cli("site-b-alice", "server", "list").returncode == 0
    assert peer_state_becomes(lab, "site-a", "reachable")["state"] == "reachable"


NOOP_WORKFLOW = """
version: '2.0'
lab_launcher_check:
  input: [operation]
  tasks:
    say:
      action: std.echo output=<% $.operation %>
"""


FAILING_WORKFLOW = """
version: '2.0'
lab_launcher_failure:
  tasks:
    boom:
      action: std.fail
"""


def test_the_launcher_starts_workflows_on_the_sites_mistral(lab, tmp_path):
    site = lab.sites["site-a"]
    account = site.account("site-recovery")
    (tmp_path / "password").write_text(account.password)
    config = parse({"site": "site-a", "peer": {"name": "site-b", "url": site.url("webhook")},
                    "keystone": {"auth_url": site.keystone_url, "username": account.user,
                                 "password_file": str(tmp_path / "password")},
                    "clouds": {"file": str(site.service_dir("webhook") / "clouds.yaml"),
                               "local": "site-a", "peer": "site-b"}})
    session = service_session(config, timeout=10)
    launch = Launcher(session)                       # Mistral's URL from the catalog
    mistral_client.client(mistral_url=launch.url, session=session).workflows.create(
        NOOP_WORKFLOW)
    started = launch.start("lab_launcher_check", {"operation": "op-1"}, description="op-1",
                           execution_id=str(uuid.uuid4()))
    deadline = time.monotonic() + 30
    while launch.find(started.id).state == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert launch.find(started.id).state == "SUCCESS"
    since = datetime.now(UTC) - timedelta(seconds=5)
    client = mistral_client.client(mistral_url=launch.url, session=session)
    client.workflows.create(FAILING_WORKFLOW)
    failing = launch.start("lab_launcher_failure", {}, description="op-4",
                           execution_id=str(uuid.uuid4()))

    def states() -> dict[str, str]:
        return {e.id: e.state for e in launch.since(since)}

    deadline = time.monotonic() + 30
    while states().get(failing.id) != "ERROR" and time.monotonic() < deadline:
        time.sleep(0.3)
    (ended,) = [e for e in launch.since(since) if e.id == failing.id]
    assert ended.state == "ERROR" and "boom" in ended.state_info
    with pytest.raises(APIError, match="not known to this site's Mistral"):
        launch.start("no_such_workflow", {}, description="op-2",
                     execution_id=str(uuid.uuid4()))
    began = time.monotonic()
    with pytest.raises(Unavailable, match="Mistral is unreachable"):
        Launcher(session, url="http://127.0.0.1:1/v2").start(
            "lab_launcher_check", {"operation": "op-3"}, description="op-3",
            execution_id=str(uuid.uuid4()))
    assert time.monotonic() - began < 10


def test_down_leaves_no_process_and_no_listening_port(lab):
    """Last in the module on purpose: it stops the lab every test above shares."""
    pids = [entry["pid"] for site in lab.state()["sites"].values() for entry in site.values()]
    ports = [lab.sites[s].port(service) for s in SITES
             for service in ("keystone", "cloud", "heat", "mistral", "array", "webhook")]
    lab.down(progress=lambda line: None)
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, port

