"""Who may do what in the simulated cloud: the rules every service applies to the identity
headers that keystonemiddleware's ``auth_token`` sets."""

from __future__ import annotations

import time

import pytest

from site_recovery.lab.cloud import CloudConfig, create_app, wrap_with_keystone
from site_recovery.lab.cloud.testing import Client

NET = "/network/v2.0"


@pytest.fixture
def config(tmp_path, fabric):
    return CloudConfig(db=str(tmp_path / "cloud.db"), fabric=fabric.path, array="fa-a")


@pytest.fixture
def app(config):
    app = create_app(config)
    Client(app, "admin", "admin").post("/compute/v2.1/flavors", {"flavor": {
        "id": "1", "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1}})
    return app


@pytest.fixture
def alice(app):
    return Client(app, "ecommerce")


@pytest.fixture
def bob(app):
    return Client(app, "analytics")


@pytest.fixture
def admin(app):
    return Client(app, "admin", "admin,member,reader")


def network_with_port(client) -> tuple[dict, dict]:
    net = client.post(f"{NET}/networks", {"network": {"name": "n"}})[1]["network"]
    client.post(f"{NET}/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.0.0.0/24"}})
    port = client.post(f"{NET}/ports", {"port": {"network_id": net["id"]}})[1]["port"]
    return net, port


def server(client) -> str:
    _, body = client.post("/compute/v2.1/servers", {"server": {
        "name": "vm", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [{
            "source_type": "blank", "destination_type": "volume", "boot_index": 0,
            "volume_size": 1}]}})
    return body["server"]["id"]


def test_readers_may_look_but_not_write_and_get_each_services_error(app, alice):
    net, port = network_with_port(alice)
    rita = Client(app, "ecommerce", "reader", user="rita")
    assert rita.get(f"{NET}/ports/{port['id']}")[0] == 200
    writes = [
        ("POST", "/compute/v2.1/servers", {"server": {"name": "x"}}, "forbidden"),
        ("POST", "/volume/v3/ecommerce/volumes", {"volume": {"size": 1}}, "forbidden"),
        ("DELETE", f"{NET}/ports/{port['id']}", None, "NeutronError"),
        ("PUT", f"{NET}/networks/{net['id']}", {"network": {"name": "y"}}, "NeutronError"),
        ("POST", "/image/v2/images", {"name": "i"}, "error"),
    ]
    for method, path, body, error_key in writes:
        status, answer = rita.call(method, path, body)
        assert (status, list(answer)) == (403, [error_key]), path
    assert alice.get(f"{NET}/ports/{port['id']}")[0] == 200


def test_another_projects_resources_are_not_found_never_forbidden(alice, bob):
    server_id = server(alice)
    volume_id = alice.get("/volume/v3/ecommerce/volumes")[1]["volumes"][0]["id"]
    _, port = network_with_port(alice)
    for path in (f"/compute/v2.1/servers/{server_id}",
                 f"/compute/v2.1/servers/{server_id}/os-interface",
                 f"/volume/v3/analytics/volumes/{volume_id}", f"{NET}/ports/{port['id']}"):
        assert bob.get(path)[0] == 404, path
    status, body = bob.delete(f"/compute/v2.1/servers/{server_id}")
    assert (status, list(body)) == (404, ["itemNotFound"])
    assert bob.get("/compute/v2.1/servers")[1]["servers"] == []
    assert alice.get(f"/compute/v2.1/servers/{server_id}")[0] == 200


def test_admins_list_across_projects_only_when_they_ask(alice, bob, admin):
    mine, theirs = server(alice), server(bob)
    assert admin.get("/compute/v2.1/servers")[1]["servers"] == []
    _, body = admin.get("/compute/v2.1/servers?all_tenants=1")
    assert {s["id"] for s in body["servers"]} == {mine, theirs}
    _, body = admin.get("/compute/v2.1/servers/detail?all_tenants=True&project_id=analytics")
    assert [s["id"] for s in body["servers"]] == [theirs]
    assert admin.get(f"/compute/v2.1/servers/{mine}")[0] == 200
    assert alice.get("/compute/v2.1/servers?all_tenants=1")[0] == 403
    _, body = admin.get("/volume/v3/admin/volumes?all_tenants=1")
    assert len(body["volumes"]) == 2


def test_no_identity_is_a_401(app):
    response = app.test_client().get("/compute/v2.1/servers")
    assert response.status_code == 401
    assert app.test_client().get("/compute/v2.1").status_code == 200     # discovery is public


def test_keystone_wrapping_rejects_missing_tokens_and_forged_headers(config):
    config = CloudConfig(**{**config.__dict__, "keystone_url": "http://127.0.0.1:9/v3"})
    app = wrap_with_keystone(create_app(config), config)
    http = app.test_client()
    started = time.monotonic()
    response = http.get("/compute/v2.1/servers",
                        headers={"X-Project-Id": "admin", "X-Roles": "admin"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Keystone uri="http://127.0.0.1:9/v3"'
    assert http.get("/volume/").status_code == 300
    assert http.get("/compute/v2.1").get_json()["version"]["version"] == "2.96"
    assert time.monotonic() - started < 2
