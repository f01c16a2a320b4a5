"""Decisions inside the DR steps: most need no cloud to check; protect's Cinder group is
checked against the simulated cloud, served in process, through openstacksdk."""

from __future__ import annotations

import json
from types import SimpleNamespace

import openstack
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.token_endpoint import Token

from site_recovery.core import recovery
from site_recovery.core.clouds import Clouds
from site_recovery.core.config import ConfigError, parse
from site_recovery.core.model import Project
from site_recovery.lab.cloud import CloudConfig, CloudServer, create_app
from site_recovery.lab.cloud.testing import Client, wrap_with_tokens
from tests.unit.documents import group_document
from tests.unit.test_core_config import minimal


def test_copies_are_recognised_by_their_tags_only_for_their_group_and_purpose():
    def volume(group, purpose, source, status="available"):
        return SimpleNamespace(status=status, name=source, metadata={
            recovery.TAG_GROUP: group, recovery.TAG_PURPOSE: purpose,
            recovery.TAG_SOURCE: source})

    listed = [volume("g1", "drill", "v1"), volume("g1", "failover", "v2"),
              volume("g2", "drill", "v3"), SimpleNamespace(status="available", name="x",
                                                           metadata={})]
    asked = []

    def volumes(details, properties):          # a Cinder that ignores the filter
        asked.append(json.loads(properties))
        return listed

    conn = SimpleNamespace(block_storage=SimpleNamespace(volumes=volumes))
    assert set(recovery.imported_volumes(conn, "g1", "drill")) == {"v1"}
    assert set(recovery.imported_volumes(conn, "g1", "failover")) == {"v2"}
    assert asked[0] == {recovery.TAG_GROUP: "g1", recovery.TAG_PURPOSE: "drill"}


# -- protect: the Cinder group, against the simulated Cinder through openstacksdk ------------

GROUP_ID = "0d6f3c52-9d1e-4a8e-8f0c-1b2a3c4d5e6f"
VOLUMES = "/volume/v3/ecommerce"
GROUPS_API = {"OpenStack-API-Version": "volume 3.25"}


class LabClouds:
    """Site-a's simulated cloud as the DR service sees it (tokens stand in for Keystone),
    and the arrays through the mock storage driver."""

    def __init__(self, url: str, storage):
        self.url, self._storage = url, storage

    def connect(self, site: str, project: str | None = None):
        token = f"{project}:member,reader" if project else "admin:admin,member,reader"
        return openstack.connection.Connection(
            session=ks_session.Session(auth=Token(self.url, token)),
            block_storage_api_version="3",
            compute_endpoint_override=f"{self.url}/compute/v2.1",
            block_storage_endpoint_override=f"{self.url}/volume/v3/{project or 'admin'}")

    def storage(self):
        return self._storage


class DrArray:
    """Site-b's service as protect asks it: its array allows the group's replica in."""

    def __init__(self, storage, config, service):
        self.storage, self.config, self.service = storage, config, service

    def run_step(self, request, timeout):
        assert request.step == "accept_replication", request
        plan = recovery.GroupPlan(self.service.group(request.protection_group_id))
        self.storage.accept(plan.protection(self.config))
        return {"details": {}, "recovery_point": None}


class Service:
    """The protection service's record of one group."""

    def __init__(self, document: dict):
        self.document, self.states = document, []

    def group(self, group_id: str) -> dict:
        return group_document(**self.document)

    def set_state(self, group_id: str, **state):
        self.states.append(state)


@pytest.fixture
def lab(tmp_path, fabric, mock):
    """Site-a with web-1 and web-2 booted from replicated volumes, the group type
    ``site-recovery``, and a protection group of both VMs."""
    app = create_app(CloudConfig(db=str(tmp_path / "cloud.db"), fabric=fabric.path,
                                 array="fa-a"))
    admin = Client(app, "admin", "admin,member,reader",   # tokens: served wrapped, below
                   headers={**GROUPS_API, "X-Auth-Token": "admin:admin,member,reader"})
    alice = Client(app, "ecommerce", headers={**GROUPS_API,
                                              "X-Auth-Token": "ecommerce:member,reader"})
    admin.post("/compute/v2.1/flavors", {"flavor": {"id": "1", "name": "m1.tiny", "ram": 512,
                                                    "vcpus": 1, "disk": 1}})
    admin.post("/volume/v3/admin/types", {"volume_type": {
        "name": "replicated-ssd", "extra_specs": {"replication_enabled": "<is> True",
                                                  "replication_type": "<in> async"}}})
    admin.post("/volume/v3/admin/group_types", {"group_type": {
        "name": "site-recovery",
        "group_specs": {"consistent_group_snapshot_enabled": "<is> True"}}})
    members, volumes = [], {}
    for name in ("web-1", "web-2"):
        volume = alice.post(f"{VOLUMES}/volumes", {"volume": {
            "size": 1, "name": f"{name}-boot", "volume_type": "replicated-ssd"}})[1]["volume"]
        advance(admin)
        status, body = alice.post("/compute/v2.1/servers", {"server": {
            "name": name, "flavorRef": "1", "networks": "none",
            "block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume",
                                         "boot_index": 0, "uuid": volume["id"]}]}})
        assert status == 202, body
        members.append({"server_id": body["server"]["id"], "server_name": name})
        volumes[name] = volume["id"]
    advance(admin)
    config = parse(minimal(tmp_path, arrays=[
        {"name": "fa-a", "site": "site-a", "address": "fa-a",
         "token_file": str(tmp_path / "token"), "cinder_host": "cinder@pure#pure"},
        {"name": "fa-b", "site": "site-b", "address": "fa-b",
         "cinder_host": "cinder@pure#pure"}]))
    service = Service({"id": GROUP_ID, "name": "prod-web", "project_name": "ecommerce",
                       "primary_site": "site-a", "secondary_site": "site-b",
                       "replication_type": "async", "rpo_target_seconds": 600,
                       "members": members})
    with CloudServer(wrap_with_tokens(app)) as server:
        engine = recovery.Engine(config, LabClouds(server.url, mock), service,
                                 sleep=lambda seconds: advance(admin),
                                 peer=DrArray(mock, config, service), step_key="task-1.0")
        yield SimpleNamespace(engine=engine, admin=admin, alice=alice, volumes=volumes,
                              service=service, fabric=fabric)


def advance(admin, seconds=5):
    assert admin.post("/_lab/clock", {"advance": seconds})[0] == 200


def cinder_groups(client) -> list[dict]:
    groups = client.get(f"{VOLUMES}/groups/detail?list_volume=true")[1]["groups"]
    return sorted(groups, key=lambda g: g["name"])


def array_groups(lab) -> list[str]:
    return lab.fabric.inventory("fa-a")["pgroups"]


def test_protect_puts_the_members_volumes_in_one_cinder_group_and_a_rerun_adds_none(lab):
    result = recovery.protect(lab.engine, GROUP_ID)
    [group] = cinder_groups(lab.alice)
    assert result["cinder_group"] == group["id"]
    assert (group["name"], group["status"]) == ("prod-web", "available")
    assert group["description"] == f"Site Recovery protection group {GROUP_ID}"
    assert sorted(group["volumes"]) == sorted(lab.volumes.values())
    [group_type] = lab.admin.get("/volume/v3/admin/group_types")[1]["group_types"]
    assert group["group_type"] == group_type["id"]
    # A consistency group: Cinder's Pure driver keeps a pgroup of its own beside ours.
    assert array_groups(lab) == [f"consisgroup-{group['id']}-cinder", f"sr-{GROUP_ID}"]

    again = recovery.protect(lab.engine, GROUP_ID)
    assert again["cinder_group"] == group["id"]
    assert cinder_groups(lab.alice) == [group]


def test_a_member_volume_in_another_cinder_group_is_refused_before_anything_changes(lab):
    _, made = lab.alice.post(f"{VOLUMES}/groups", {"group": {
        "name": "legacy", "group_type": "site-recovery", "volume_types": ["replicated-ssd"]}})
    advance(lab.admin)
    lab.alice.put(f"{VOLUMES}/groups/{made['group']['id']}",
                  {"group": {"add_volumes": lab.volumes["web-2"]}})
    with pytest.raises(recovery.StepFailed) as refused:
        recovery.protect(lab.engine, GROUP_ID)
    assert f"web-2: volume web-2-boot is in Cinder group legacy ({made['group']['id']})" \
        in str(refused.value)
    assert "web-1" not in str(refused.value)
    assert [g["name"] for g in cinder_groups(lab.alice)] == ["legacy"]
    assert array_groups(lab) == [f"consisgroup-{made['group']['id']}-cinder"]   # legacy's
    assert lab.service.states == []


def test_a_missing_group_type_is_named_and_nothing_is_made(lab):
    [group_type] = lab.admin.get("/volume/v3/admin/group_types")[1]["group_types"]
    lab.admin.delete(f"/volume/v3/admin/group_types/{group_type['id']}")
    with pytest.raises(recovery.StepFailed,
                       match=r"the Cinder group type 'site-recovery' .* does not exist on "
                             r"site-a; an operator must create it: openstack volume group "
                             r"type create site-recovery && openstack volume group type set "
                             r"--property consistent_group_snapshot_enabled='<is> True' "
                             r"site-recovery"):
        recovery.protect(lab.engine, GROUP_ID)
    assert cinder_groups(lab.alice) == []
    assert array_groups(lab) == [] and lab.service.states == []


def test_a_new_member_of_a_type_the_cinder_group_lacks_is_refused_naming_the_type(lab):
    recovery.protect(lab.engine, GROUP_ID)
    lab.admin.post("/volume/v3/admin/types", {"volume_type": {
        "name": "pure-default", "extra_specs": {"replication_enabled": "<is> True"}}})
    volume = lab.alice.post(f"{VOLUMES}/volumes", {"volume": {
        "size": 1, "name": "app-1-boot", "volume_type": "pure-default"}})[1]["volume"]
    advance(lab.admin)
    _, body = lab.alice.post("/compute/v2.1/servers", {"server": {
        "name": "app-1", "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume",
                                     "boot_index": 0, "uuid": volume["id"]}]}})
    advance(lab.admin)
    lab.service.document["members"].append({"server_id": body["server"]["id"],
                                            "server_name": "app-1"})
    with pytest.raises(recovery.StepFailed, match=r"prod-web \(.*\) was made without volume "
                                                  r"types \['pure-default'\]"):
        recovery.protect(lab.engine, GROUP_ID)
    [group] = cinder_groups(lab.alice)
    assert volume["id"] not in group["volumes"]


def test_a_group_whose_members_have_no_volumes_gets_no_cinder_group(lab):
    lab.service.document["members"] = []
    assert recovery.protect(lab.engine, GROUP_ID)["cinder_group"] is None
    assert cinder_groups(lab.alice) == []


def test_a_planned_failover_with_the_link_down_stops_no_vm_and_says_why(lab):
    recovery.protect(lab.engine, GROUP_ID)
    lab.fabric.set_link("fa-a", "fa-b", up=False)
    with pytest.raises(recovery.StepFailed, match=r"prod-web: nothing was stopped.*fa-a"):
        recovery.stop_servers(lab.engine, GROUP_ID)
    servers = lab.alice.get("/compute/v2.1/servers/detail")[1]["servers"]
    assert {s["status"] for s in servers} == {"ACTIVE"}

    lab.fabric.set_link("fa-a", "fa-b", up=True)
    assert recovery.stop_servers(lab.engine, GROUP_ID) == {"stopped": 2, "servers": 2}


def test_the_failover_copies_are_read_from_outputs_heat_resolves_only_when_asked():
    """Heat leaves ``outputs`` out of a stack fetched with resolve_outputs=False (the
    cheap poll); finding the copies to stop must ask for them."""
    class Stacks:
        def get(self, name, resolve_outputs=True):
            stack = SimpleNamespace(id="s1", stack_status="CREATE_COMPLETE")
            if resolve_outputs:
                stack.outputs = [{"output_key": "servers", "output_value": [
                    {"name": "web-1", "id": "copy-1"}, {"name": "web-2", "id": None}]}]
            return stack

    heat = SimpleNamespace(stacks=Stacks())
    engine = SimpleNamespace(clouds=SimpleNamespace(heat=lambda site, project: heat))
    group = SimpleNamespace(project="ecommerce", name="web")
    assert recovery._copy_ids(engine, group, "site-b") == ["copy-1"]


def test_a_copy_managed_in_the_dr_accounts_project_is_given_to_the_tenant_even_after_a_lost_key(
        lab):
    """The DR account manages as admin in its own project and holds only ``member`` in the
    tenant's: the copy moves with a volume transfer. A transfer an interrupted run made
    (its key lost with it) is withdrawn and made again."""
    lab.fabric.array("fa-a").create_volume("copy-of-web-1", 1 << 30)
    own = lab.engine.clouds.connect("site-a")
    tenant = lab.engine.clouds.connect("site-a", Project("Default", "ecommerce"))
    tags = {recovery.TAG_GROUP: GROUP_ID, recovery.TAG_PURPOSE: "drill",
            recovery.TAG_SOURCE: lab.volumes["web-1"]}
    managed = own.block_storage.manage_volume(host="cinder@pure#pure",
                                              ref={"source-name": "copy-of-web-1"},
                                              name="test-web-1", metadata=tags)
    advance(lab.admin)
    own.block_storage.create_transfer(volume_id=managed.id, name="interrupted")   # key lost
    waiting = recovery.imported_volumes(own, GROUP_ID, "drill")
    assert [v.status for v in waiting.values()] == ["awaiting-transfer"]

    recovery._give(own, tenant, waiting[lab.volumes["web-1"]], "to the tenant")

    assert recovery.imported_volumes(own, GROUP_ID, "drill") == {}
    (given,) = recovery.imported_volumes(tenant, GROUP_ID, "drill").values()
    assert (given.id, given.status, given.metadata[recovery.TAG_SOURCE]) == \
        (managed.id, "available", lab.volumes["web-1"])
    assert list(own.block_storage.transfers()) == []


def test_a_rerun_keeps_only_the_copies_of_its_own_recovery_point(lab):
    """An earlier attempt's copy from another point is deleted (so the rerun copies that
    volume again, from its point), one of its own point kept; one of another point that
    a VM uses is refused, named, and left alone."""
    own = lab.engine.clouds.connect("site-a")
    tenant = lab.engine.clouds.connect("site-a", Project("Default", "ecommerce"))
    group = lab.engine.group(GROUP_ID)

    def copy(name: str, source: str, point: str):
        lab.fabric.array("fa-a").create_volume(name, 1 << 30)
        made = own.block_storage.manage_volume(
            host="cinder@pure#pure", ref={"source-name": name}, name=name, metadata={
                recovery.TAG_GROUP: GROUP_ID, recovery.TAG_PURPOSE: "failover",
                recovery.TAG_SOURCE: lab.volumes[source], recovery.TAG_POINT: point})
        advance(lab.admin)
        return made

    copy("older-web-1", "web-1", "fa-a:web.sr-1")
    same = copy("same-web-2", "web-2", "fa-a:web.sr-2")
    kept = recovery._copies_of_point(lab.engine, group, own, tenant, "failover",
                                     "fa-a:web.sr-2")
    assert {source: v.id for source, v in kept.items()} == {lab.volumes["web-2"]: same.id}
    left = recovery.imported_volumes(own, GROUP_ID, "failover")
    assert [v.id for v in left.values()] == [same.id], "the older point's copy is gone"

    recovery._give(own, tenant, left[lab.volumes["web-2"]], "to the tenant")
    server = lab.alice.get("/compute/v2.1/servers/detail")[1]["servers"][0]
    assert lab.alice.post(f"/compute/v2.1/servers/{server['id']}/os-volume_attachments", {
        "volumeAttachment": {"volumeId": same.id}})[0] == 200
    advance(lab.admin)
    with pytest.raises(recovery.StepFailed, match=r"same-web-2 on site-b hold another "
                                                  r"recovery point than fa-a:web\.sr-3"):
        recovery._copies_of_point(lab.engine, group, own, tenant, "failover",
                                  "fa-a:web.sr-3")
    assert [v.id for v in recovery.imported_volumes(tenant, GROUP_ID, "failover").values()] \
        == [same.id]


# -- the peer's cloud: through the peer's service ---------------------------------------------

class PeerService:
    """The peer site's protection service as the engine asks it: what it was asked."""

    def __init__(self):
        self.asked = []

    def run_step(self, request, timeout):
        self.asked.append((request.step.value, request.key, request.copies, request.purpose))
        return {}


class SiteBArray:
    """Site-b's array as its engine uses it: the link is up; it records what it allowed."""

    def __init__(self):
        self.accepted = []

    def check_link(self, source, target, via=None):
        assert via == "fa-b", "a site looks at the link from its own array"

    def accept(self, spec):
        self.accepted.append((spec.source_array, spec.target_array))


def test_what_a_step_needs_of_the_peers_cloud_it_asks_of_the_peers_service(tmp_path):
    """site-b runs web's planned failover: the VMs to stop are site-a's. site-b holds no
    credentials for site-a's cloud; site-a's service stops them, once per task."""
    config = parse(minimal(tmp_path, site="site-b",
                           peer={"name": "site-a", "url": "http://127.0.0.1:15010"},
                           clouds={"file": str(tmp_path / "clouds.yaml"), "local": "site-b",
                                   "peer": "site-a"}, arrays=[
        {"name": "fa-a", "site": "site-a", "address": "fa-a",
         "cinder_host": "cinder@pure#pure"},
        {"name": "fa-b", "site": "site-b", "address": "fa-b", "token_file": str(tmp_path / "t"),
         "cinder_host": "cinder@pure#pure"}]))
    clouds = Clouds(config)
    with pytest.raises(ConfigError, match="site-a's cloud is reached only through "
                                                   "its protection service"):
        clouds.connect("site-a", Project("Default", "ecommerce"))
    service = Service({"id": GROUP_ID, "name": "prod-web", "project_name": "ecommerce",
                       "primary_site": "site-a", "secondary_site": "site-b",
                       "replication_type": "async", "members": []})
    peer = PeerService()
    array = SiteBArray()
    engine = recovery.Engine(config, SimpleNamespace(storage=lambda: array,
                                                     connect=clouds.connect),
                             service, peer=peer, step_key="task-7.0")

    assert recovery.stop_servers(engine, GROUP_ID) == {"stopped_by": "site-a",
                                                       "fenced": False}
    assert recovery.reverse_replication(engine, GROUP_ID) == {
        "array_group": f"sr-{GROUP_ID}", "reversed_by": "site-a"}
    assert array.accepted == [("fa-a", "fa-b")], "site-b's array lets the copies in itself"
    assert recovery.remove_copy(engine, GROUP_ID, "failover", site="site-a") == \
        {"removed_by": "site-a"}
    assert peer.asked == [("stop_servers", "task-7.0", False, None),
                          ("reverse_replication", "task-7.0", False, None),
                          ("remove_copy", "task-7.0", False, "failover")]
    with pytest.raises(recovery.StepFailed, match="runs only inside a workflow"):
        recovery.stop_servers(engine.for_step(None), GROUP_ID)
