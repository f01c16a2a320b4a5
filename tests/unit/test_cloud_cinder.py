"""Simulated Cinder over the simulated FlashArray (in process).

What the DR engine relies on: a Cinder volume is an array volume named as the Pure driver
names it, manage-existing renames the array volume and refuses what the driver refuses,
and unmanage leaves the array volume behind as ``<name>-unmanaged``.
"""

from __future__ import annotations

import pytest

from site_recovery.lab.cloud.testing import Client
from tests.conftest import GIB

HOST = "cinder@pure#pure"
V38 = {"OpenStack-API-Version": "volume 3.8"}


@pytest.fixture
def admin(app):
    return Client(app, "admin", "admin,member,reader",
                  headers={"OpenStack-API-Version": "volume 3.71"})


@pytest.fixture
def alice(app):
    return Client(app, "ecommerce", headers={"OpenStack-API-Version": "volume 3.71"})


def vols(client):
    return f"/volume/v3/{client.project}/volumes"


def advance(admin, seconds=5):
    assert admin.post("/_lab/clock", {"advance": seconds})[0] == 200


def create(client, admin, **volume):
    status, body = client.post(vols(client), {"volume": {"size": 1, **volume}})
    assert status == 202, body
    advance(admin, 1)
    return client.get(f"{vols(client)}/{body['volume']['id']}")[1]["volume"]


def manage(admin, array_volume, **volume):
    ref = {"source-name": array_volume, "name": array_volume}
    body = {"volume": {"host": HOST, "ref": ref, **volume}}
    status, answer = admin.post("/volume/v3/admin/manageable_volumes", body)
    assert status == 202, answer
    assert (answer["volume"]["status"], answer["volume"]["size"]) == ("managing", 0)
    advance(admin, 1)
    return admin.get(f"{vols(admin)}/{answer['volume']['id']}")[1]["volume"]


def test_a_volume_is_an_array_volume_named_as_the_pure_driver_names_it(alice, admin, fabric):
    status, body = alice.post(vols(alice), {"volume": {"size": 3, "name": "data"}})
    assert status == 202
    volume = body["volume"]
    assert volume["status"] == "creating"
    array_name = f"volume-{volume['id']}-cinder"
    assert fabric.array("fa-a").get_volume(array_name)["size"] == 3 * GIB
    advance(admin, 1)
    volume = alice.get(f"{vols(alice)}/{volume['id']}")[1]["volume"]
    assert volume["status"] == "available"
    assert volume["metadata"] == {"array_volume_name": array_name, "array_name": "fa-a"}
    assert "provider_id" not in volume                           # admins only
    assert admin.get(f"/volume/v3/admin/volumes/{volume['id']}")[1]["volume"][
        "provider_id"] == array_name
    assert alice.delete(f"{vols(alice)}/{volume['id']}")[0] == 202
    assert alice.get(f"{vols(alice)}/{volume['id']}")[0] == 404
    assert fabric.inventory("fa-a")["volumes"] == []               # destroyed and eradicated


def test_array_down_makes_the_create_end_in_error(alice, admin, fabric):
    fabric.set_array_up("fa-a", False)
    _, body = alice.post(vols(alice), {"volume": {"size": 1}})
    advance(admin, 1)
    assert alice.get(f"{vols(alice)}/{body['volume']['id']}")[1]["volume"]["status"] == "error"
    fabric.set_array_up("fa-a", True)
    assert fabric.inventory("fa-a")["volumes"] == []


def test_clone_copies_the_array_volume(alice, admin, fabric):
    source = create(alice, admin, size=2)
    fabric.write("fa-a", source["metadata"]["array_volume_name"])
    clone = create(alice, admin, source_volid=source["id"], size=None)
    assert clone["size"] == 2
    assert fabric.generation("fa-a", clone["metadata"]["array_volume_name"]) == 1


def test_manage_renames_the_array_volume_to_the_new_cinder_id(admin, fabric):
    fabric.array("fa-a").create_volume("sr-failover-abc-vm1-disk0", 5 * GIB)
    fabric.write("fa-a", "sr-failover-abc-vm1-disk0")
    volume = manage(admin, "sr-failover-abc-vm1-disk0", name="vm1-disk0", bootable=True,
                    metadata={"dr_source_volume_id": "1234"})
    new_name = f"volume-{volume['id']}-cinder"
    assert (volume["status"], volume["size"], volume["bootable"]) == ("available", 5, "true")
    assert volume["metadata"] == {"dr_source_volume_id": "1234", "array_volume_name": new_name,
                                  "array_name": "fa-a"}
    assert volume["provider_id"] == new_name
    assert fabric.inventory("fa-a")["volumes"] == [new_name]
    assert fabric.generation("fa-a", new_name) == 1                 # the same data


def test_manage_refuses_connected_and_pod_volumes(admin, fabric):
    array = fabric.array("fa-a")
    array.create_volume("attached", GIB)
    array.create_host("compute-1")
    array.connect_host("compute-1", "attached")
    array.create_pod("pod1")
    array.create_volume("pod1::inpod", GIB)
    assert manage(admin, "attached")["status"] == "error_managing"
    assert manage(admin, "pod1::inpod")["status"] == "error_managing"
    assert manage(admin, "no-such-volume")["status"] == "error_managing"
    assert sorted(fabric.inventory("fa-a")["volumes"]) == ["attached", "pod1::inpod"]


def test_manageable_list_gives_the_drivers_reasons(admin, fabric):
    array = fabric.array("fa-a")
    for name in ("free", "attached", "pod1::inpod"):
        if name.startswith("pod1"):
            array.create_pod("pod1")
        array.create_volume(name, GIB + 1)
    array.create_host("compute-1")
    array.connect_host("compute-1", "attached")
    managed = manage(admin, "free")
    array.create_volume("free", GIB)
    _, body = admin.get(f"/volume/v3/admin/manageable_volumes/detail?host={HOST}", headers=V38)
    entries = {e["reference"]["name"]: e for e in body["manageable-volumes"]}
    assert entries["free"]["safe_to_manage"] is True
    assert entries["attached"]["reason_not_safe"] == "Volume connected to host compute-1."
    assert entries["attached"]["size"] == 2                          # GiB, rounded up
    assert entries["pod1::inpod"]["reason_not_safe"] == "Volume is in a Pod."
    mine = entries[f"volume-{managed['id']}-cinder"]
    assert (mine["reason_not_safe"], mine["cinder_id"]) == ("Volume already managed.",
                                                            managed["id"])
    _, summary = admin.get(f"/volume/v3/admin/manageable_volumes?host={HOST}&limit=1",
                           headers=V38)
    assert list(summary["manageable-volumes"][0]) == ["reference", "size", "safe_to_manage"]


def test_manage_needs_admin_3_8_and_our_backend(alice, admin, fabric):
    fabric.array("fa-a").create_volume("v", GIB)
    body = {"volume": {"host": HOST, "ref": {"source-name": "v"}}}
    assert alice.post("/volume/v3/ecommerce/manageable_volumes", body)[0] == 403
    status, answer = admin.post("/volume/v3/admin/manageable_volumes", body,
                                headers={"OpenStack-API-Version": "volume 3.7"})
    assert (status, list(answer)) == (404, ["itemNotFound"])
    assert admin.post("/volume/v3/admin/os-volume-manage", body,      # legacy path, any version
                      headers={"OpenStack-API-Version": "volume 3.0"})[0] == 202
    body["volume"]["host"] = "cinder@other#other"
    assert admin.post("/volume/v3/admin/manageable_volumes", body)[0] == 400


def test_unmanage_leaves_the_array_volume_renamed(admin, fabric):
    fabric.array("fa-a").create_volume("restored", GIB)
    volume = manage(admin, "restored")
    status, _ = admin.post(f"{vols(admin)}/{volume['id']}/action", {"os-unmanage": None})
    assert status == 202
    assert admin.get(f"{vols(admin)}/{volume['id']}")[0] == 404
    assert fabric.inventory("fa-a")["volumes"] == [f"volume-{volume['id']}-cinder-unmanaged"]


def test_in_use_volumes_are_not_deleted_or_unmanaged(alice, admin):
    volume = create(alice, admin)
    admin.post(f"/volume/v3/admin/volumes/{volume['id']}/action",
               {"os-reset_status": {"status": "in-use"}})
    status, body = alice.delete(f"{vols(alice)}/{volume['id']}")
    assert (status, list(body)) == (400, ["badRequest"])
    assert admin.post(f"/volume/v3/admin/volumes/{volume['id']}/action",
                      {"os-unmanage": {}})[0] == 400


def test_types_carry_replication_specs_that_only_admins_see_in_full(alice, admin):
    status, body = admin.post("/volume/v3/admin/types", {"volume_type": {
        "name": "pure-sync", "extra_specs": {"replication_enabled": "<is> True",
                                             "replication_type": "<in> sync",
                                             "volume_backend_name": "pure"}}})
    assert status == 200
    type_id = body["volume_type"]["id"]
    assert alice.get(f"/volume/v3/ecommerce/types/{type_id}")[1]["volume_type"][
        "extra_specs"] == {"replication_enabled": "<is> True"}
    admin.post(f"/volume/v3/admin/types/{type_id}/extra_specs",
               {"extra_specs": {"replication_type": "<in> async"}})
    assert admin.get(f"/volume/v3/admin/types/{type_id}/extra_specs/replication_type")[1] == \
        {"replication_type": "<in> async"}
    volume = create(alice, admin, volume_type="pure-sync")
    assert (volume["volume_type"], volume["replication_status"]) == ("pure-sync", "enabled")
    assert alice.post("/volume/v3/ecommerce/types", {"volume_type": {"name": "x"}})[0] == 403
    assert admin.delete(f"/volume/v3/admin/types/{type_id}")[0] == 400       # in use


def test_groups_collect_volumes_of_their_types(alice, admin):
    admin.post("/volume/v3/admin/types", {"volume_type": {"name": "pure-async"}})
    admin.post("/volume/v3/admin/group_types", {"group_type": {"name": "dr"}})
    status, body = alice.post("/volume/v3/ecommerce/groups", {"group": {
        "name": "app", "group_type": "dr", "volume_types": ["pure-async"]}})
    assert status == 202
    group_id = body["group"]["id"]
    inside = create(alice, admin, volume_type="pure-async")
    outside = create(alice, admin)
    base = f"/volume/v3/ecommerce/groups/{group_id}"
    assert alice.put(base, {"group": {"add_volumes": outside["id"]}})[0] == 400
    assert alice.put(base, {"group": {"add_volumes": inside["id"]}})[0] == 202
    _, body = alice.get(f"{base}?list_volume=True")
    assert (body["group"]["status"], body["group"]["volumes"]) == ("available", [inside["id"]])
    assert alice.get(f"{vols(alice)}/{inside['id']}")[1]["volume"]["group_id"] == group_id
    assert alice.delete(f"{vols(alice)}/{inside['id']}")[0] == 400     # still in the group
    assert alice.post(f"{base}/action", {"delete": {"delete-volumes": False}})[0] == 400
    assert alice.post(f"{base}/action", {"delete": {"delete-volumes": True}})[0] == 202
    assert alice.get(f"{vols(alice)}/{inside['id']}")[0] == 404
    assert alice.get(base, headers={"OpenStack-API-Version": "volume 3.12"})[0] == 404


def test_a_consistency_group_is_a_pgroup_of_the_drivers_own_on_the_array(alice, admin, fabric):
    """As Pure's driver does for a type with consistent_group_snapshot_enabled; its group
    specs are the admin's to see. A generic group has no array object, and neither has a
    group of sync types here (the driver's cinder-pod is not kept)."""
    admin.post("/volume/v3/admin/types", {"volume_type": {"name": "pure-async"}})
    admin.post("/volume/v3/admin/types", {"volume_type": {
        "name": "pure-sync", "extra_specs": {"replication_type": "<in> sync"}}})
    admin.post("/volume/v3/admin/group_types", {"group_type": {
        "name": "cg", "group_specs": {"consistent_group_snapshot_enabled": "<is> True"}}})
    admin.post("/volume/v3/admin/group_types", {"group_type": {"name": "generic"}})
    assert "group_specs" not in alice.get("/volume/v3/ecommerce/group_types/cg")[1][
        "group_type"]
    assert admin.get("/volume/v3/admin/group_types/cg")[1]["group_type"]["group_specs"] == {
        "consistent_group_snapshot_enabled": "<is> True"}

    def group(group_type, volume_type="pure-async"):
        return alice.post("/volume/v3/ecommerce/groups", {"group": {
            "name": group_type, "group_type": group_type,
            "volume_types": [volume_type]}})[1]["group"]["id"]

    consistent, generic, sync = group("cg"), group("generic"), group("cg", "pure-sync")
    pgroup = f"consisgroup-{consistent}-cinder"
    assert fabric.inventory("fa-a")["pgroups"] == [pgroup]
    advance(admin)
    volume = create(alice, admin, volume_type="pure-async")
    base = f"/volume/v3/ecommerce/groups/{consistent}"
    assert alice.put(base, {"group": {"add_volumes": volume["id"]}})[0] == 202
    assert fabric.array("fa-a").get_pgroup(pgroup)["volumes"] == [f"volume-{volume['id']}-cinder"]
    assert alice.put(base, {"group": {"remove_volumes": volume["id"]}})[0] == 202
    assert fabric.array("fa-a").get_pgroup(pgroup)["volumes"] == []
    for group_id in (consistent, generic, sync):
        assert alice.post(f"/volume/v3/ecommerce/groups/{group_id}/action",
                          {"delete": {}})[0] == 202
    assert fabric.inventory("fa-a")["pgroups"] == []


def test_lists_are_per_project_and_admins_ask_for_all_tenants(app, alice, admin):
    mine = create(alice, admin, name="mine")
    bob = Client(app, "analytics")
    create(bob, admin, name="bobs")
    assert [v["name"] for v in alice.get(f"{vols(alice)}/detail")[1]["volumes"]] == ["mine"]
    assert bob.get(f"/volume/v3/analytics/volumes/{mine['id']}")[0] == 404
    assert admin.get("/volume/v3/admin/volumes")[1]["volumes"] == []
    _, body = admin.get("/volume/v3/admin/volumes/detail?all_tenants=1")
    assert sorted(v["name"] for v in body["volumes"]) == ["bobs", "mine"]
    assert body["volumes"][0]["os-vol-host-attr:host"] == HOST
    assert alice.get("/volume/v3/analytics/volumes")[0] == 400          # not her project


def test_version_discovery_and_microversion_header(alice):
    response = alice.http.get("/volume/")
    assert response.status_code == 300
    assert response.get_json()["versions"][0]["version"] == "3.71"
    response = alice.http.get(vols(alice), headers={**alice.headers,
                                                    "OpenStack-API-Version": "volume 3.42"})
    assert response.headers["OpenStack-API-Version"] == "volume 3.42"
    assert alice.get(vols(alice), headers={"OpenStack-API-Version": "volume 3.72"})[0] == 406


def test_volumes_are_filtered_by_metadata_written_as_cinder_reads_it(alice, admin):
    tagged = create(alice, admin, name="tagged", metadata={"group": "g1", "purpose": "drill"})
    create(alice, admin, name="other", metadata={"group": "g2", "purpose": "drill"})
    for written in ('{"group": "g1"}', "{'group': 'g1', 'purpose': 'drill'}"):
        status, body = alice.get(f"{vols(alice)}/detail?metadata={written}")
        assert status == 200
        assert [v["id"] for v in body["volumes"]] == [tagged["id"]]
    status, body = alice.get(f"{vols(alice)}/detail?metadata=group")
    assert status == 400
    assert "metadata='group'" in body["badRequest"]["message"]


def test_a_transfer_moves_a_volume_and_its_metadata_to_the_accepting_project(
        app, alice, admin, fabric):
    """How the DR service hands a volume it managed as admin in its own project to the
    tenant, where it holds no admin role."""
    fabric.array("fa-a").create_volume("recovered", GIB)
    volume = manage(admin, "recovered", metadata={"site_recovery_group": "g1"})
    transfers = f"/volume/v3/{admin.project}/volume-transfers"
    status, made = admin.post(transfers, {"transfer": {"volume_id": volume["id"],
                                                       "name": "to ecommerce"}})
    assert status == 202 and made["transfer"]["auth_key"]
    assert admin.get(f"{vols(admin)}/{volume['id']}")[1]["volume"]["status"] == \
        "awaiting-transfer"
    assert "auth_key" not in admin.get(f"{transfers}/{made['transfer']['id']}")[1]["transfer"]
    # The tenant sees no other project's transfers, and a wrong key takes nothing.
    accept = f"/volume/v3/{alice.project}/volume-transfers/{made['transfer']['id']}/accept"
    assert alice.get(f"/volume/v3/{alice.project}/volume-transfers/detail")[1] == \
        {"transfers": []}
    status, body = alice.post(accept, {"accept": {"auth_key": "0" * 16}})
    assert status == 400 and "invalid auth key" in body["badRequest"]["message"]
    status, _ = alice.post(accept, {"accept": {"auth_key": made["transfer"]["auth_key"]}})
    assert status == 202
    mine = alice.get(f"{vols(alice)}/{volume['id']}")[1]["volume"]
    assert (mine["status"], mine["metadata"]["site_recovery_group"]) == ("available", "g1")
    assert admin.get(f"{vols(admin)}/detail")[1]["volumes"] == []
    assert alice.post(accept, {"accept": {"auth_key": made["transfer"]["auth_key"]}})[0] == 404


def test_a_deleted_transfer_gives_the_volume_back_and_only_available_volumes_move(
        alice, admin):
    volume = create(alice, admin)
    transfers = f"/volume/v3/{alice.project}/volume-transfers"
    status, made = alice.post(transfers, {"transfer": {"volume_id": volume["id"]}})
    assert status == 202
    again = alice.post(transfers, {"transfer": {"volume_id": volume["id"]}})
    assert again[0] == 400 and "awaiting-transfer" in again[1]["badRequest"]["message"]
    listed = alice.get(f"{transfers}/detail")[1]["transfers"]
    assert [(t["id"], t["volume_id"]) for t in listed] == [(made["transfer"]["id"],
                                                             volume["id"])]
    assert alice.delete(f"{transfers}/{made['transfer']['id']}")[0] == 202
    assert alice.get(f"{vols(alice)}/{volume['id']}")[1]["volume"]["status"] == "available"
