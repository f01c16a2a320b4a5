"""Faults the lab injects into a running cloud (``/_lab/faults``)."""

from __future__ import annotations

import time

import pytest

from site_recovery.lab.cloud.testing import Client
from tests.conftest import GIB


@pytest.fixture
def app(app):
    """The shared cloud, with a flavor to boot."""
    Client(app, "admin", "admin").post("/compute/v2.1/flavors", {"flavor": {
        "id": "1", "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1}})
    return app


@pytest.fixture
def admin(app):
    return Client(app, "admin", "admin,member,reader",
                  headers={"OpenStack-API-Version": "volume 3.71"})


@pytest.fixture
def alice(app):
    return Client(app, "ecommerce")


def fault(admin, **spec):
    status, body = admin.post("/_lab/faults", spec)
    assert status == 201, body
    return body["fault"]


def boot(client) -> str:
    _, body = client.post("/compute/v2.1/servers", {"server": {
        "name": "vm", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [{
            "source_type": "blank", "destination_type": "volume", "boot_index": 0,
            "volume_size": 1}]}})
    return body["server"]["id"]


def test_a_status_fault_fails_matching_requests_in_the_services_own_body(admin, alice):
    fault(admin, service="network", method="POST", path="/ports$", status=503,
          message="neutron-server is restarting", count=2)
    for _ in range(2):
        status, body = alice.post("/network/v2.0/ports", {"port": {"network_id": "x"}})
        assert (status, body["NeutronError"]["message"]) == (503,
                                                             "neutron-server is restarting")
    assert alice.post("/network/v2.0/ports", {"port": {"network_id": "x"}})[0] == 404
    fault(admin, service="compute", status=500, message="boom")
    assert alice.get("/compute/v2.1/servers")[1] == {"computeFault": {"code": 500,
                                                                      "message": "boom"}}
    assert alice.get("/network/v2.0/networks")[0] == 200             # other services unharmed
    assert admin.delete("/_lab/faults")[0] == 204
    assert alice.get("/compute/v2.1/servers")[0] == 200


def test_latency_slows_only_what_matches(admin, alice):
    added = fault(admin, service="volume", path="/volumes", latency=0.3)
    started = time.monotonic()
    assert alice.get("/volume/v3/ecommerce/volumes")[0] == 200
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    alice.get("/compute/v2.1/flavors")
    assert time.monotonic() - started < 0.3
    assert [f["id"] for f in admin.get("/_lab/faults")[1]["faults"]] == [added["id"]]
    assert admin.delete(f"/_lab/faults/{added['id']}")[0] == 204
    assert admin.get("/_lab/faults")[1] == {"faults": []}


def test_failed_builds_end_in_error_with_a_fault(admin, alice):
    fault(admin, behaviour="server_build_error", count=1, message="No valid host was found.")
    doomed, healthy = boot(alice), boot(alice)
    admin.post("/_lab/clock", {"advance": 5})
    server = alice.get(f"/compute/v2.1/servers/{doomed}")[1]["server"]
    assert (server["status"], server["fault"]["message"]) == ("ERROR",
                                                              "No valid host was found.")
    assert alice.get(f"/compute/v2.1/servers/{healthy}")[1]["server"]["status"] == "ACTIVE"


def test_slow_builds_stay_in_build_longer(admin, alice):
    fault(admin, behaviour="server_build_delay", seconds=60)
    server_id = boot(alice)
    admin.post("/_lab/clock", {"advance": 30})
    assert alice.get(f"/compute/v2.1/servers/{server_id}")[1]["server"]["status"] == "BUILD"
    admin.post("/_lab/clock", {"advance": 30})
    assert alice.get(f"/compute/v2.1/servers/{server_id}")[1]["server"]["status"] == "ACTIVE"


def test_failed_manages_end_in_error_managing_and_leave_the_array_alone(admin, fabric):
    fabric.array("fa-a").create_volume("restored", GIB)
    fault(admin, behaviour="manage_error", count=1)
    body = {"volume": {"host": "cinder@pure#pure", "ref": {"source-name": "restored"}}}
    failed = admin.post("/volume/v3/admin/manageable_volumes", body)[1]["volume"]
    admin.post("/_lab/clock", {"advance": 5})
    assert admin.get(f"/volume/v3/admin/volumes/{failed['id']}")[1]["volume"][
        "status"] == "error_managing"
    assert fabric.inventory("fa-a")["volumes"] == ["restored"]
    retried = admin.post("/volume/v3/admin/manageable_volumes", body)[1]["volume"]
    admin.post("/_lab/clock", {"advance": 5})
    assert admin.get(f"/volume/v3/admin/volumes/{retried['id']}")[1]["volume"][
        "status"] == "available"


def test_only_admins_inject_faults(admin, alice):
    status, body = alice.post("/_lab/faults", {"service": "compute", "status": 500})
    assert (status, list(body)) == (403, ["forbidden"])
    assert admin.post("/_lab/faults", {"behaviour": "meteor"})[0] == 400
    assert admin.post("/_lab/faults", {"status": 200})[0] == 400
