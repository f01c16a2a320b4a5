"""A faithful rebuild, on the lab: bob's two VMs carry a key pair, an availability zone and
an anti-affinity server group; a drill rebuilds them on site-b with the key pair's public
key, the zone (through an availability_zone mapping) and a server group of the same policy
holding both, and its cleanup removes them. The group's Cinder group is a consistency
group on the site it runs on: site-a's members, and after a planned failover site-b's
copies, until failback removes them.

The steps build on each other, in file order.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from site_recovery.core.recovery import cinder_group_description
from site_recovery.lab.seed import IMAGE, POLL, ZONE, _network, _volume, connect
from tests.scenarios.conftest import protected_group

GROUP, USER, PREFIX = "vault", "bob", "vault"
KEY, SERVER_GROUP = "vault-key", "vault-spread"
PUBLIC_KEY = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
    serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + " bob@vault"


@pytest.fixture(scope="module")
def vault(lab, api, cli):
    """vault-1 and vault-2 on site-a, booted with bob's key pair in zone ``nova`` and in an
    anti-affinity server group, protected as group ``vault`` with its zone mapped."""
    bob_a, bob_b = connect(lab.sites["site-a"], USER), connect(lab.sites["site-b"], USER)
    network = _network(bob_a, f"{PREFIX}-net", f"{PREFIX}-subnet", "10.28.0.0/24", dhcp=True)
    _network(bob_b, f"dr-{PREFIX}-net", f"dr-{PREFIX}-subnet", "10.28.0.0/24", dhcp=True)
    security_group = bob_a.network.create_security_group(name=f"{PREFIX}-sg")
    bob_a.compute.create_keypair(name=KEY, public_key=PUBLIC_KEY)
    spread = bob_a.compute.create_server_group(name=SERVER_GROUP, policy="anti-affinity")
    image, flavor = bob_a.image.find_image(IMAGE), bob_a.compute.find_flavor("m1.small")
    servers = {}
    for number in (1, 2):
        name = f"{PREFIX}-{number}"
        boot = _volume(bob_a, f"{name}-boot", 1, "replicated-ssd", image.id)
        port = bob_a.network.create_port(name=f"{name}-port", network_id=network.id,
                                         security_group_ids=[security_group.id])
        server = bob_a.compute.create_server(
            name=name, flavor_id=flavor.id, networks=[{"port": port.id}], key_name=KEY,
            availability_zone=ZONE, scheduler_hints={"group": spread.id},
            block_device_mapping=[{"uuid": boot.id, "source_type": "volume",
                                   "destination_type": "volume", "boot_index": 0,
                                   "delete_on_termination": False}])
        servers[name] = bob_a.compute.wait_for_server(server, status="ACTIVE", wait=300,
                                                      interval=POLL).id
    group = protected_group(lab, api, cli, name=GROUP, prefix=PREFIX, servers=servers,
                            user=USER)
    api("site-a", "POST", "/resource-mappings", user=USER, expect=201, json={
        "kind": "availability_zone", "source": ZONE, "target": ZONE,
        "protection_group": GROUP})           # its target checked on site-b
    return {"id": group["id"], "servers": servers}


def test_a_zone_mapping_to_a_zone_site_b_lacks_is_refused_naming_it(vault, api):
    refused = api("site-a", "POST", "/resource-mappings", user=USER, expect=400, json={
        "kind": "availability_zone", "source": ZONE, "target": "az-nowhere",
        "protection_group": GROUP})
    assert "availability zone 'az-nowhere'" in refused["error"]["message"]
    assert "site-b" in refused["error"]["message"]


def test_the_members_cinder_group_is_a_consistency_group_of_the_drivers_own_pgroup(
        lab, vault, clouds):
    bob_a, admin_a = clouds("site-a", USER), clouds("site-a", "admin")
    (cinder_group,) = [g for g in bob_a.block_storage.groups()
                       if g.description == cinder_group_description(vault["id"])]
    group_type = admin_a.block_storage.get_group_type(cinder_group.group_type)
    assert group_type.group_specs["consistent_group_snapshot_enabled"] == "<is> True"
    members = {f"volume-{a.volume_id}-cinder" for s in vault["servers"].values()
               for a in bob_a.compute.volume_attachments(s)}
    pgroup = lab.fabric.array(lab.sites["site-a"].array_name).get_pgroup(
        f"consisgroup-{cinder_group.id}-cinder")
    assert set(pgroup["volumes"]) == members


def recovered(clouds, stack_name: str) -> dict:
    """The servers of stack ``stack_name`` on site-b, by name, as bob sees them."""
    bob_b = clouds("site-b", USER)
    stack = bob_b.orchestration.find_stack(stack_name)
    assert stack.status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), stack.status_reason
    (outputs,) = [o["output_value"] for o in bob_b.orchestration.get_stack(stack.id).outputs
                  if o["output_key"] == "servers"]
    return {o["name"]: bob_b.compute.get_server(o["id"]) for o in outputs}


def assert_faithful(clouds, stack: str, prefix: str):
    """Each server of ``stack`` (named ``<prefix><original>``) carries the key pair (the
    same public key, named after the stack), the zone and one server group of the
    original's policy holding both."""
    servers = recovered(clouds, stack)
    admin_b = clouds("site-b", "admin")
    assert sorted(servers) == [f"{prefix}{PREFIX}-1", f"{prefix}{PREFIX}-2"]
    for server in servers.values():
        assert server.status == "ACTIVE"
        assert server.key_name.startswith(f"{stack}-{KEY}-"), server.key_name
        # The DR account built it, and owns the key pair: read as an admin for that user.
        key = admin_b.compute.get_keypair(server.key_name, user_id=server.user_id)
        assert key.public_key == PUBLIC_KEY
        assert server.availability_zone == ZONE
    (group_id,) = {g for s in servers.values() for g in s.server_groups}
    group = clouds("site-b", USER).compute.get_server_group(group_id)
    assert (group.name, group.policy) == (f"{prefix}{SERVER_GROUP}", "anti-affinity")
    assert sorted(group.member_ids) == sorted(s.id for s in servers.values())
    server = next(iter(servers.values()))
    return {"key": server.key_name, "user": server.user_id, "server_group": group_id}


def test_a_drill_rebuilds_the_key_pair_zone_and_server_group(vault, api, clouds):
    started = api("site-b", "POST", f"/protection-groups/{GROUP}/test-failover", user=USER,
                  expect=202, json={})
    op = api.wait_operation("site-b", started["operation"]["id"], user=USER)
    assert op["status"] == "completed", op
    vault["drill"] = assert_faithful(clouds, f"test-{GROUP}", "test-")


def test_the_drills_cleanup_removes_its_key_pair_and_server_group(vault, api, clouds):
    started = api("site-b", "POST", f"/protection-groups/{GROUP}/test-cleanup", user=USER,
                  expect=202, json={})
    op = api.wait_operation("site-b", started["operation"]["id"], user=USER)
    assert op["status"] == "completed", op
    bob_b, admin_b = clouds("site-b", USER), clouds("site-b", "admin")
    assert bob_b.orchestration.find_stack(f"test-{GROUP}") is None
    assert admin_b.compute.find_keypair(vault["drill"]["key"], ignore_missing=True,
                                        user_id=vault["drill"]["user"]) is None
    assert vault["drill"]["server_group"] not in {g.id for g in bob_b.compute.server_groups()}


def test_after_a_failover_the_copies_are_a_consistency_group_on_site_b_until_failback(
        lab, vault, api, clouds):
    started = api("site-b", "POST", f"/protection-groups/{GROUP}/failover", user=USER,
                  expect=202, json={"failover_type": "planned"})
    op = api.wait_operation("site-b", started["operation"]["id"], user=USER)
    assert op["status"] == "completed", op
    assert_faithful(clouds, f"dr-{GROUP}", "")
    bob_b = clouds("site-b", USER)
    (cinder_group,) = [g for g in bob_b.block_storage.groups()
                       if g.description == cinder_group_description(vault["id"])]
    copies = {v.id for v in bob_b.block_storage.volumes()
              if v.metadata.get("site_recovery_purpose") == "failover"
              and v.metadata.get("site_recovery_group") == vault["id"]}
    assert len(copies) == 2
    assert {v.id for v in bob_b.block_storage.volumes() if v.group_id == cinder_group.id} == \
        copies
    array_b = lab.fabric.array(lab.sites["site-b"].array_name)
    assert set(array_b.get_pgroup(f"consisgroup-{cinder_group.id}-cinder")["volumes"]) == {
        f"volume-{c}-cinder" for c in copies}

    started = api("site-a", "POST", f"/protection-groups/{GROUP}/failback", user=USER,
                  expect=202, json={})
    op = api.wait_operation("site-a", started["operation"]["id"], user=USER)
    assert op["status"] == "completed", op
    assert not [g for g in bob_b.block_storage.groups()
                if g.description == cinder_group_description(vault["id"])]
    assert f"consisgroup-{cinder_group.id}-cinder" not in lab.fabric.inventory(
        lab.sites["site-b"].array_name)["pgroups"]
