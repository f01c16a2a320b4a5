"""Simulated Nova, as novaclient, openstacksdk and Heat see it (in process).

Timings are the defaults (build 1 s, volume 0.5 s, tasks 0.2 s); the tests move the
simulation clock with ``POST /_lab/clock`` instead of sleeping.
"""

from __future__ import annotations

import pytest

from site_recovery.lab.cloud import CloudConfig, create_app
from site_recovery.lab.cloud.testing import Client

NOVA, NET = "/compute/v2.1", "/network/v2.0"
LATEST = {"OpenStack-API-Version": "compute 2.96"}


@pytest.fixture
def app(app):
    """The shared cloud, with flavors to boot."""
    admin = Client(app, "admin", "admin")
    for flavor_id, name, ram in (("1", "m1.tiny", 512), ("2", "m1.small", 2048)):
        admin.post(f"{NOVA}/flavors", {"flavor": {"id": flavor_id, "name": name, "ram": ram,
                                                  "vcpus": 1, "disk": 1}})
    return app


@pytest.fixture
def admin(app):
    return Client(app, "admin", "admin,member,reader")


@pytest.fixture
def alice(app):
    return Client(app, "ecommerce", headers=LATEST)


def advance(admin, seconds=5):
    assert admin.post("/_lab/clock", {"advance": seconds})[0] == 200


@pytest.fixture
def network(alice):
    net = alice.post(f"{NET}/networks", {"network": {"name": "private"}})[1]["network"]
    alice.post(f"{NET}/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24"}})
    return net


@pytest.fixture
def image(alice):
    image = alice.post("/image/v2/images", {"name": "cirros", "disk_format": "qcow2",
                                            "container_format": "bare"})[1]
    alice.http.put(f"/image/v2/images/{image['id']}/file", data=b"disk",
                   headers={**alice.headers, "Content-Type": "application/octet-stream"})
    return image


def volume(alice, admin, size=1):
    project = alice.project
    _, body = alice.post(f"/volume/v3/{project}/volumes", {"volume": {"size": size}})
    advance(admin, 1)
    return body["volume"]["id"]


def boot(alice, **server):
    server = {"name": "vm", "flavorRef": "1", **server}
    status, body = alice.post(f"{NOVA}/servers", {"server": server})
    assert status == 202, body
    return body["server"]["id"]


def show(client, server_id):
    return client.get(f"{NOVA}/servers/{server_id}")[1]["server"]


def test_server_builds_then_runs_with_its_port_bound(alice, admin, network, image):
    server_id = boot(alice, imageRef=image["id"],
                     networks=[{"uuid": network["id"], "fixed_ip": "10.0.0.7"}])
    server = show(alice, server_id)
    assert (server["status"], server["OS-EXT-STS:task_state"]) == ("BUILD", "spawning")
    [port] = alice.get(f"{NET}/ports?device_id={server_id}")[1]["ports"]
    assert (port["status"], port["device_owner"]) == ("DOWN", "compute:nova")
    advance(admin, 1)
    server = show(alice, server_id)
    assert (server["status"], server["OS-EXT-STS:vm_state"],
            server["OS-EXT-STS:power_state"]) == ("ACTIVE", "active", 1)
    assert server["addresses"]["private"][0]["addr"] == "10.0.0.7"
    assert server["flavor"]["original_name"] == "m1.tiny"           # 2.47+ embeds it
    assert alice.get(f"{NET}/ports/{port['id']}")[1]["port"]["status"] == "ACTIVE"


def test_delete_removes_nova_ports_and_unbinds_given_ones(alice, admin, network, image):
    given = alice.post(f"{NET}/ports", {"port": {"network_id": network["id"]}})[1]["port"]
    server_id = boot(alice, imageRef=image["id"],
                     networks=[{"port": given["id"]}, {"uuid": network["id"]}])
    advance(admin)
    assert len(alice.get(f"{NOVA}/servers/{server_id}/os-interface")[1][
        "interfaceAttachments"]) == 2
    assert alice.delete(f"{NOVA}/servers/{server_id}")[0] == 204
    status, body = alice.get(f"{NOVA}/servers/{server_id}")
    assert (status, body["itemNotFound"]["code"]) == (404, 404)
    [left] = alice.get(f"{NET}/ports")[1]["ports"]
    assert (left["id"], left["device_id"], left["status"]) == (given["id"], "", "DOWN")


def test_port_in_use_and_taken_fixed_ip_refuse_the_boot(alice, admin, network, image):
    given = alice.post(f"{NET}/ports", {"port": {"network_id": network["id"]}})[1]["port"]
    boot(alice, imageRef=image["id"], networks=[{"port": given["id"]}])
    status, body = alice.post(f"{NOVA}/servers", {"server": {
        "name": "b", "flavorRef": "1", "imageRef": image["id"],
        "networks": [{"port": given["id"]}]}})
    assert (status, list(body)) == (409, ["conflictingRequest"])
    ip = given["fixed_ips"][0]["ip_address"]
    status, body = alice.post(f"{NOVA}/servers", {"server": {
        "name": "c", "flavorRef": "1", "imageRef": image["id"],
        "networks": [{"uuid": network["id"], "fixed_ip": ip}]}})
    assert (status, list(body)) == (400, ["badRequest"])
    assert len(alice.get(f"{NOVA}/servers")[1]["servers"]) == 1


def test_boot_from_volume_puts_the_volume_in_use_and_delete_frees_it(alice, admin, network):
    volume_id = volume(alice, admin)
    server_id = boot(alice, networks="none", block_device_mapping_v2=[{
        "source_type": "volume", "destination_type": "volume", "boot_index": 0,
        "uuid": volume_id}])
    vol = alice.get(f"/volume/v3/ecommerce/volumes/{volume_id}")[1]["volume"]
    assert vol["status"] == "attaching"
    advance(admin)
    server = show(alice, server_id)
    assert server["image"] == ""
    assert server["os-extended-volumes:volumes_attached"] == [
        {"id": volume_id, "delete_on_termination": False}]
    vol = alice.get(f"/volume/v3/ecommerce/volumes/{volume_id}")[1]["volume"]
    assert vol["status"] == "in-use"
    assert (vol["attachments"][0]["server_id"], vol["attachments"][0]["device"]) == (
        server_id, "/dev/vda")
    alice.delete(f"{NOVA}/servers/{server_id}")
    vol = alice.get(f"/volume/v3/ecommerce/volumes/{volume_id}")[1]["volume"]
    assert (vol["status"], vol["attachments"]) == ("available", [])


def test_boot_from_an_image_backed_volume_creates_it_on_the_array(alice, admin, image, fabric):
    server_id = boot(alice, networks="none", block_device_mapping_v2=[{
        "source_type": "image", "destination_type": "volume", "boot_index": 0,
        "uuid": image["id"], "volume_size": 2, "delete_on_termination": True}])
    advance(admin)
    [attached] = show(alice, server_id)["os-extended-volumes:volumes_attached"]
    vol = alice.get(f"/volume/v3/ecommerce/volumes/{attached['id']}")[1]["volume"]
    assert (vol["bootable"], vol["volume_image_metadata"]["image_id"]) == ("true", image["id"])
    assert f"volume-{attached['id']}-cinder" in fabric.inventory("fa-a")["volumes"]
    alice.delete(f"{NOVA}/servers/{server_id}")
    assert alice.get(f"/volume/v3/ecommerce/volumes/{attached['id']}")[0] == 404
    assert fabric.inventory("fa-a")["volumes"] == []


def test_volume_attach_and_detach_move_the_volume_status(alice, admin, image):
    volume_id = volume(alice, admin)
    server_id = boot(alice, imageRef=image["id"], networks="none")
    base = f"{NOVA}/servers/{server_id}/os-volume_attachments"
    status, body = alice.post(base, {"volumeAttachment": {"volumeId": volume_id}})
    assert (status, list(body)) == (409, ["conflictingRequest"])     # still building
    advance(admin)
    status, body = alice.post(base, {"volumeAttachment": {"volumeId": volume_id}})
    assert status == 200
    assert body["volumeAttachment"]["device"] == "/dev/vdb"
    # As Nova: the attach reply always carries "id" (Heat reads it); from 2.89 the GET
    # view trades it for attachment_id and bdm_uuid.
    assert body["volumeAttachment"]["id"] == volume_id
    shown = alice.get(f"{base}/{volume_id}")[1]["volumeAttachment"]
    assert "attachment_id" in shown and "id" not in shown
    assert alice.get(f"/volume/v3/ecommerce/volumes/{volume_id}")[1]["volume"][
        "status"] == "attaching"
    advance(admin, 1)
    assert alice.get(f"/volume/v3/ecommerce/volumes/{volume_id}")[1]["volume"][
        "status"] == "in-use"
    assert alice.post(base, {"volumeAttachment": {"volumeId": volume_id}})[0] == 400
    assert alice.delete(f"{base}/{volume_id}")[0] == 202
    assert alice.get(f"{base}/{volume_id}")[0] == 404
    assert alice.get(f"/volume/v3/ecommerce/volumes/{volume_id}")[1]["volume"][
        "status"] == "detaching"
    advance(admin, 1)
    assert alice.get(f"/volume/v3/ecommerce/volumes/{volume_id}")[1]["volume"][
        "status"] == "available"


def test_stop_and_start(alice, admin, image):
    server_id = boot(alice, imageRef=image["id"], networks="none")
    action = f"{NOVA}/servers/{server_id}/action"
    assert alice.post(action, {"os-stop": None})[0] == 409
    advance(admin)
    assert alice.post(action, {"os-stop": None})[0] == 202
    assert show(alice, server_id)["OS-EXT-STS:task_state"] == "powering-off"
    advance(admin, 1)
    assert (show(alice, server_id)["status"], show(alice, server_id)[
        "OS-EXT-STS:power_state"]) == ("SHUTOFF", 4)
    assert alice.post(action, {"os-stop": None})[1]["conflictingRequest"]["message"] == \
        f"Cannot 'stop' instance {server_id} while it is in vm_state stopped"
    alice.post(action, {"os-start": None})
    advance(admin, 1)
    assert show(alice, server_id)["status"] == "ACTIVE"


def test_the_console_log_shows_the_boot_and_what_the_guest_prints(app, alice, admin, image):
    server_id = boot(alice, imageRef=image["id"], networks="none",
                     metadata={"lab_console": "postgres: ready to accept connections"})
    action = f"{NOVA}/servers/{server_id}/action"
    status, body = alice.post(action, {"os-getConsoleOutput": {}})
    assert status == 409 and "not ready yet" in str(body)           # still building
    advance(admin)
    status, body = alice.post(action, {"os-getConsoleOutput": {"length": None}})
    assert status == 200
    lines = body["output"].splitlines()
    assert lines[0].startswith("[    0.000000] Linux")
    assert lines[-2:] == ["postgres: ready to accept connections", "vm login:"]
    assert alice.post(action, {"os-getConsoleOutput": {"length": 1}})[1] == {
        "output": "vm login:\n"}
    assert alice.post(action, {"os-getConsoleOutput": {"length": "x"}})[0] == 400
    assert Client(app, "analytics", headers=LATEST).post(
        action, {"os-getConsoleOutput": {}})[0] == 404               # another project's


def test_interfaces_attach_and_detach(alice, admin, network, image):
    server_id = boot(alice, imageRef=image["id"], networks="none")
    advance(admin)
    base = f"{NOVA}/servers/{server_id}/os-interface"
    status, body = alice.post(base, {"interfaceAttachment": {
        "net_id": network["id"], "fixed_ips": [{"ip_address": "10.0.0.9"}]}})
    assert status == 200
    port_id = body["interfaceAttachment"]["port_id"]
    assert show(alice, server_id)["addresses"]["private"][0]["addr"] == "10.0.0.9"
    assert alice.delete(f"{base}/{port_id}")[0] == 202
    assert alice.get(f"{base}/{port_id}")[0] == 404
    assert alice.get(f"{NET}/ports/{port_id}")[0] == 404          # nova made it, nova removes it


def test_server_list_filters_and_microversion_shapes(alice, admin, image):
    first = boot(alice, imageRef=image["id"], networks="none", name="web-1")
    boot(alice, imageRef=image["id"], networks="none", name="db-1")
    advance(admin)
    _, body = alice.get(f"{NOVA}/servers/detail?name=^web")
    assert [s["id"] for s in body["servers"]] == [first]
    _, body = alice.get(f"{NOVA}/servers?status=ACTIVE")
    assert [s["name"] for s in body["servers"]] == ["db-1", "web-1"]      # newest first
    status, body = alice.get(f"{NOVA}/servers/{first}",
                             headers={"OpenStack-API-Version": "compute 2.46"})
    assert status == 200
    assert set(body["server"]["flavor"]) == {"id", "links"}
    assert "server_groups" not in body["server"]
    assert alice.get(f"{NOVA}/servers/{first}",
                     headers={"OpenStack-API-Version": "compute 2.97"})[0] == 406


def test_networks_is_required_from_2_37_and_auto_picks_the_only_network(alice, image, network):
    status, body = alice.post(f"{NOVA}/servers", {"server": {
        "name": "x", "flavorRef": "1", "imageRef": image["id"]}})
    assert (status, list(body)) == (400, ["badRequest"])
    server_id = boot(alice, imageRef=image["id"], networks="auto")
    [port] = alice.get(f"{NET}/ports?device_id={server_id}")[1]["ports"]
    assert port["network_id"] == network["id"]


def test_a_fresh_cloud_has_no_flavors(tmp_path, fabric):
    fresh = create_app(CloudConfig(db=str(tmp_path / "fresh.db"), fabric=fabric.path,
                                   array="fa-a"))
    assert Client(fresh, "ecommerce").get(f"{NOVA}/flavors/detail")[1] == {"flavors": []}


def test_flavor_lookup_by_name_is_a_404_then_a_list(alice, admin):
    status, body = alice.get(f"{NOVA}/flavors/m1.small")
    assert (status, body["itemNotFound"]["code"]) == (404, 404)
    _, body = alice.get(f"{NOVA}/flavors")
    assert [f["name"] for f in body["flavors"]][:2] == ["m1.tiny", "m1.small"]
    assert alice.post(f"{NOVA}/flavors", {"flavor": {
        "name": "x", "ram": 1, "vcpus": 1, "disk": 1}})[0] == 403
    status, body = admin.post(f"{NOVA}/flavors", {"flavor": {
        "id": "42", "name": "dr.large", "ram": 16384, "vcpus": 8, "disk": 0}})
    assert (status, body["flavor"]["id"]) == (200, "42")
    assert alice.get(f"{NOVA}/flavors/42")[1]["flavor"]["name"] == "dr.large"
    assert alice.get(f"{NOVA}/flavors/42/os-extra_specs")[1] == {"extra_specs": {}}


def test_keypairs_belong_to_their_user(app, alice):
    status, body = alice.post(f"{NOVA}/os-keypairs", {"keypair": {"name": "k"}},
                              headers={"OpenStack-API-Version": "compute 2.91"})
    assert status == 201
    assert body["keypair"]["private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    public = body["keypair"]["public_key"]
    assert alice.post(f"{NOVA}/os-keypairs", {"keypair": {"name": "k2"}})[0] == 400  # 2.92
    assert alice.post(f"{NOVA}/os-keypairs", {"keypair": {
        "name": "k", "public_key": public}})[0] == 409
    assert alice.get(f"{NOVA}/os-keypairs/k")[1]["keypair"]["public_key"] == public
    other = Client(app, "ecommerce", user="rita")
    assert other.get(f"{NOVA}/os-keypairs")[1] == {"keypairs": []}
    assert alice.delete(f"{NOVA}/os-keypairs/k")[0] == 204


def test_server_groups_record_their_members(alice, image):
    _, body = alice.post(f"{NOVA}/os-server-groups", {"server_group": {
        "name": "ha", "policy": "anti-affinity"}})
    group = body["server_group"]
    assert (group["policy"], group["rules"]) == ("anti-affinity", {})
    status, body = alice.post(f"{NOVA}/servers", {
        "server": {"name": "vm", "flavorRef": "1", "imageRef": image["id"], "networks": "none"},
        "os:scheduler_hints": {"group": group["id"]}})
    assert status == 202
    assert alice.get(f"{NOVA}/os-server-groups/{group['id']}")[1]["server_group"][
        "members"] == [body["server"]["id"]]
    assert show(alice, body["server"]["id"])["server_groups"] == [group["id"]]
    old = alice.get(f"{NOVA}/os-server-groups/{group['id']}",
                    headers={"OpenStack-API-Version": "compute 2.63"})[1]["server_group"]
    assert old["policies"] == ["anti-affinity"]


def test_an_admin_reads_another_users_key_pair_which_no_one_else_may(app, alice, admin):
    _, made = alice.post(f"{NOVA}/os-keypairs", {"keypair": {"name": "k"}},
                         headers={"OpenStack-API-Version": "compute 2.91"})
    user = made["keypair"]["user_id"]
    shown = admin.get(f"{NOVA}/os-keypairs/k?user_id={user}", headers=LATEST)[1]["keypair"]
    assert (shown["public_key"], shown["user_id"]) == (made["keypair"]["public_key"], user)
    other = Client(app, "ecommerce", user="rita")
    assert other.get(f"{NOVA}/os-keypairs/k?user_id={user}")[0] == 403


def test_openstacksdks_spelling_of_scheduler_hints_places_the_server_too(alice, image):
    group = alice.post(f"{NOVA}/os-server-groups", {"server_group": {
        "name": "ha", "policy": "affinity"}})[1]["server_group"]
    _, body = alice.post(f"{NOVA}/servers", {
        "server": {"name": "vm", "flavorRef": "1", "imageRef": image["id"], "networks": "none"},
        "OS-SCH-HNT:scheduler_hints": {"group": group["id"]}})
    assert show(alice, body["server"]["id"])["server_groups"] == [group["id"]]


def test_metadata_and_rename(alice, image):
    server_id = boot(alice, imageRef=image["id"], networks="none", metadata={"tier": "web"})
    alice.post(f"{NOVA}/servers/{server_id}/metadata", {"metadata": {"dr": "protected"}})
    assert alice.get(f"{NOVA}/servers/{server_id}/metadata")[1]["metadata"] == {
        "tier": "web", "dr": "protected"}
    _, body = alice.put(f"{NOVA}/servers/{server_id}", {"server": {"name": "renamed"}})
    assert body["server"]["name"] == "renamed"
    assert alice.delete(f"{NOVA}/servers/{server_id}/metadata/tier")[0] == 204
    assert alice.get(f"{NOVA}/servers/{server_id}/metadata/tier")[0] == 404


def test_version_document_and_headers(alice):
    _, body = alice.get("/compute/v2.1")
    assert (body["version"]["version"], body["version"]["min_version"]) == ("2.96", "2.1")
    legacy = {k: v for k, v in alice.headers.items() if k != "OpenStack-API-Version"}
    response = alice.http.get(f"{NOVA}/flavors", headers={
        **legacy, "X-OpenStack-Nova-API-Version": "2.60"})
    assert response.headers["X-OpenStack-Nova-API-Version"] == "2.60"
    assert response.headers["OpenStack-API-Version"] == "compute 2.60"
    assert response.headers["X-OpenStack-Request-Id"].startswith("req-")
    assert alice.get(f"{NOVA}/limits")[1]["limits"]["absolute"]["maxTotalInstances"] == 10
    assert alice.get(f"{NOVA}/os-availability-zone")[1]["availabilityZoneInfo"][0][
        "zoneName"] == "nova"


def test_limits_count_the_projects_servers_cores_and_ram(alice, admin, network, image):
    flavor = alice.get(f"{NOVA}/flavors/1")[1]["flavor"]
    for name in ("vm-1", "vm-2"):
        boot(alice, name=name, imageRef=image["id"], networks=[{"uuid": network["id"]}])
    used = alice.get(f"{NOVA}/limits")[1]["limits"]["absolute"]
    assert (used["totalInstancesUsed"], used["totalCoresUsed"], used["totalRAMUsed"]) == (
        2, 2 * flavor["vcpus"], 2 * flavor["ram"])
    assert admin.get(f"{NOVA}/limits")[1]["limits"]["absolute"]["totalInstancesUsed"] == 0
