"""A faithful rebuild, against the simulated cloud served in process: capture reads each
member's key pair (as an admin, for the server's user), availability zone and server group;
the group's Cinder group is a consistency group, refused otherwise, and after a failover
the copies are put in one on the DR site, taken out again when they are removed."""

from __future__ import annotations

from types import SimpleNamespace

import openstack
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.token_endpoint import Token

from site_recovery.core import capture, recovery
from site_recovery.core.model import MappingKind, Project
from site_recovery.core.stacks import Mappings
from site_recovery.lab.cloud import CloudConfig, CloudServer, create_app
from site_recovery.lab.cloud.testing import Client, wrap_with_tokens
from tests.unit import test_core_recovery
from tests.unit.test_core_recovery import (
    GROUP_ID,
    GROUPS_API,
    VOLUMES,
    advance,
    array_groups,
    cinder_groups,
)

lab = test_core_recovery.lab            # site-a with web-1, web-2 and their group

NOVA = "/compute/v2.1"
LATEST = {"OpenStack-API-Version": "compute 2.96"}
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOJLpPHe5WtVAUPiYf+OLeI/"
              "mXrCWVBwW6l72rsqa49P alice@ecommerce")


def connect(url: str, token: str):
    project = token.split(":")[0]
    return openstack.connection.Connection(
        session=ks_session.Session(auth=Token(url, token)),
        compute_endpoint_override=f"{url}/compute/v2.1",
        block_storage_endpoint_override=f"{url}/volume/v3/{project}",
        network_endpoint_override=f"{url}/network")


@pytest.fixture
def cloud(tmp_path, fabric):
    """A site where alice (project ecommerce) booted web-1 and web-2 with her key pair into
    an anti-affinity server group, and app-1 without either."""
    app = create_app(CloudConfig(db=str(tmp_path / "cloud.db"), fabric=fabric.path,
                                 array="fa-a"))
    admin = Client(app, "admin", "admin,member,reader", headers=GROUPS_API)
    alice = Client(app, "ecommerce", user="alice", headers=LATEST)
    admin.post(f"{NOVA}/flavors", {"flavor": {"id": "1", "name": "m1.tiny", "ram": 512,
                                              "vcpus": 1, "disk": 1}})
    assert alice.post(f"{NOVA}/os-keypairs", {"keypair": {
        "name": "ecommerce-key", "public_key": PUBLIC_KEY}})[0] == 201
    group = alice.post(f"{NOVA}/os-server-groups", {"server_group": {
        "name": "web-spread", "policy": "anti-affinity"}})[1]["server_group"]
    ids = {}
    for name in ("web-1", "web-2", "app-1"):
        volume = alice.post(f"{VOLUMES}/volumes", {"volume": {"size": 1}})[1]["volume"]
        advance(admin)
        web = name.startswith("web")
        status, body = alice.post(f"{NOVA}/servers", {
            "server": {"name": name, "flavorRef": "1", "networks": "none",
                       **({"key_name": "ecommerce-key"} if web else {}),
                       "block_device_mapping_v2": [{
                           "source_type": "volume", "destination_type": "volume",
                           "boot_index": 0, "uuid": volume["id"]}]},
            **({"os:scheduler_hints": {"group": group["id"]}} if web else {})})
        assert status == 202, body
        ids[name] = body["server"]["id"]
    advance(admin)
    with CloudServer(wrap_with_tokens(app)) as server:
        yield server.url, ids, group


def test_capture_records_the_key_pairs_public_key_the_zone_and_the_server_group(cloud):
    url, ids, group = cloud
    tenant = connect(url, "ecommerce:member,reader:dr-account")    # not alice: no key of hers
    admin = connect(url, "service:admin,member,reader:dr-account")
    servers, _ = capture.capture(tenant, [ids["web-1"], ids["web-2"], ids["app-1"]],
                                 admin=admin)
    web_1, web_2, app_1 = servers
    assert (web_1.key_name, web_1.public_key) == ("ecommerce-key", PUBLIC_KEY)
    assert web_1.availability_zone == app_1.availability_zone == "nova"
    assert web_1.server_group == web_2.server_group
    assert (web_1.server_group.id, web_1.server_group.name, web_1.server_group.policy) == (
        group["id"], "web-spread", "anti-affinity")
    assert (app_1.key_name, app_1.public_key, app_1.server_group) == (None, None, None)


def test_a_key_pair_its_user_deleted_since_is_captured_without_a_key(cloud):
    url, ids, _ = cloud
    alice = connect(url, "ecommerce:member,reader:alice")
    alice.compute.delete_keypair("ecommerce-key")
    (web_1,), _ = capture.capture(connect(url, "ecommerce:member,reader:dr-account"),
                                  [ids["web-1"]],
                                  admin=connect(url, "service:admin,member,reader:dr-account"))
    assert (web_1.key_name, web_1.public_key) == ("ecommerce-key", None)


def test_a_zone_mapping_target_is_a_zone_the_site_has(cloud):
    tenant = connect(cloud[0], "ecommerce:member,reader:dr-account")
    assert recovery.find_reference(tenant, MappingKind.AVAILABILITY_ZONE, "nova") == "nova"
    assert recovery.find_reference(tenant, MappingKind.AVAILABILITY_ZONE, "az-9") is None


def test_the_recovery_says_where_each_zone_lands_and_why_one_is_not_set():
    zones = Mappings(availability_zone={"az-a1": "az-b1", "az-a2": None})
    assert recovery._zones_found(SimpleNamespace(secondary="site-b"), zones) == (
        "az-a1 -> az-b1; az-a2: none set (site-b has no such zone and no availability_zone "
        "mapping names one)")
    assert recovery._zones_found(SimpleNamespace(secondary="site-b"), Mappings()) is None


# -- the Cinder group: a consistency group, on the site where the group lives ---------------

def test_a_group_type_without_consistent_group_snapshots_is_refused_naming_the_fix(lab):
    [group_type] = lab.admin.get("/volume/v3/admin/group_types")[1]["group_types"]
    lab.admin.delete(f"/volume/v3/admin/group_types/{group_type['id']}")
    lab.admin.post("/volume/v3/admin/group_types", {"group_type": {"name": "site-recovery"}})
    with pytest.raises(recovery.StepFailed,
                       match=r"the Cinder group type 'site-recovery' .* on site-a lacks the "
                             r"group spec consistent_group_snapshot_enabled='<is> True'.*"
                             r"openstack volume group type set --property "
                             r"consistent_group_snapshot_enabled='<is> True' site-recovery"):
        recovery.protect(lab.engine, GROUP_ID)
    assert cinder_groups(lab.alice) == []
    assert array_groups(lab) == [] and lab.service.states == []


def test_a_tenant_sees_no_group_specs_so_the_type_is_read_as_admin(lab):
    [shown] = lab.alice.get("/volume/v3/ecommerce/group_types")[1]["group_types"]
    assert "group_specs" not in shown
    assert recovery.protect(lab.engine, GROUP_ID)["cinder_group"]


def failover_copies(lab) -> dict:
    """Copies of web-1 and web-2 as a failover leaves them: managed, then the tenant's."""
    own = lab.engine.clouds.connect("site-a")
    tenant = lab.engine.clouds.connect("site-a", Project("Default", "ecommerce"))
    for name, source in lab.volumes.items():
        lab.fabric.array("fa-a").create_volume(f"copy-of-{name}", 1 << 30)
        own.block_storage.manage_volume(
            host="cinder@pure#pure", ref={"source-name": f"copy-of-{name}"}, name=name,
            volume_type="replicated-ssd", metadata={
                recovery.TAG_GROUP: GROUP_ID, recovery.TAG_PURPOSE: "failover",
                recovery.TAG_SOURCE: source})
    advance(lab.admin)
    for volume in recovery.imported_volumes(own, GROUP_ID, "failover").values():
        recovery._give(own, tenant, volume, "to the tenant")
    return recovery.imported_volumes(tenant, GROUP_ID, "failover")


def test_failover_copies_join_a_consistency_group_once_and_leave_it_when_removed(lab):
    copies = failover_copies(lab)
    own = lab.engine.clouds.connect("site-a")
    tenant = lab.engine.clouds.connect("site-a", Project("Default", "ecommerce"))
    group = lab.engine.group(GROUP_ID)

    made = recovery._group_copies(lab.engine, group, tenant, own)
    assert recovery._group_copies(lab.engine, group, tenant, own) == made   # a rerun
    [cinder_group] = cinder_groups(lab.alice)
    assert cinder_group["id"] == made
    assert cinder_group["description"] == recovery.cinder_group_description(GROUP_ID)
    assert sorted(cinder_group["volumes"]) == sorted(v.id for v in copies.values())
    assert array_groups(lab) == [f"consisgroup-{made}-cinder"]

    recovery._ungroup_copies(lab.engine, group, tenant, "failover")
    assert cinder_groups(lab.alice) == [] and array_groups(lab) == []
    for volume in recovery.imported_volumes(tenant, GROUP_ID, "failover").values():
        assert volume.group_id is None          # and so Cinder may unmanage it
