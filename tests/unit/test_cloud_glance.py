"""Simulated Glance v2 (in process)."""

from __future__ import annotations

import pytest

from site_recovery.lab.cloud.testing import Client

IMAGES = "/image/v2/images"


@pytest.fixture
def alice(app):
    return Client(app, "ecommerce")


def upload(client, image_id, data=b"qcow2 bytes"):
    return client.http.put(f"{IMAGES}/{image_id}/file", data=data, headers={
        **client.headers, "Content-Type": "application/octet-stream"}).status_code


def test_an_image_with_its_formats_is_usable_at_once_and_takes_data_once(alice):
    status, image = alice.post(IMAGES, {"name": "cirros", "disk_format": "qcow2",
                                        "container_format": "bare", "os_distro": "cirros"})
    assert status == 201
    assert (image["status"], image["size"], image["owner"], image["os_distro"]) == (
        "active", None, "ecommerce", "cirros")
    assert image["self"] == f"/v2/images/{image['id']}"
    assert upload(alice, image["id"]) == 204
    image = alice.get(f"{IMAGES}/{image['id']}")[1]
    assert (image["status"], image["size"]) == ("active", 11)
    assert len(image["os_hash_value"]) == 128
    assert upload(alice, image["id"]) == 409


def test_an_image_without_formats_stays_queued_until_data_arrives(alice):
    _, image = alice.post(IMAGES, {"name": "raw"})
    assert image["status"] == "queued"
    assert upload(alice, image["id"]) == 400
    alice.call("PATCH", f"{IMAGES}/{image['id']}", [
        {"op": "add", "path": "/disk_format", "value": "raw"},
        {"op": "add", "path": "/container_format", "value": "bare"}])
    assert upload(alice, image["id"]) == 204
    assert alice.get(f"{IMAGES}/{image['id']}")[1]["status"] == "active"


def test_list_filters_by_name_and_pages_with_next(alice):
    for name in ("a", "b", "c"):
        alice.post(IMAGES, {"name": name})
    _, body = alice.get(f"{IMAGES}?name=b")
    assert [i["name"] for i in body["images"]] == ["b"]
    _, page = alice.get(f"{IMAGES}?limit=2")
    assert len(page["images"]) == 2
    _, rest = alice.get(page["next"].replace("/v2/images", IMAGES))
    assert {i["name"] for i in page["images"] + rest["images"]} == {"a", "b", "c"}
    assert "next" not in rest


def test_private_images_stay_in_their_project_public_ones_need_an_admin(app, alice):
    bob = Client(app, "analytics")
    _, image = alice.post(IMAGES, {"name": "mine"})
    assert bob.get(f"{IMAGES}/{image['id']}")[0] == 404
    assert bob.get(IMAGES)[1]["images"] == []
    assert alice.post(IMAGES, {"name": "x", "visibility": "public"})[0] == 403
    admin = Client(app, "admin", "admin")
    _, public = admin.post(IMAGES, {"name": "shared-os", "visibility": "public"})
    assert [i["id"] for i in bob.get(IMAGES)[1]["images"]] == [public["id"]]


def test_patch_and_delete(alice):
    _, image = alice.post(IMAGES, {"name": "old", "protected": True})
    patch = [{"op": "replace", "path": "/name", "value": "new"},
             {"op": "add", "path": "/dr_role", "value": "golden"}]
    status, body = alice.call("PATCH", f"{IMAGES}/{image['id']}", patch, headers={
        "Content-Type": "application/openstack-images-v2.1-json-patch"})
    assert (status, body["name"], body["dr_role"]) == (200, "new", "golden")
    status, body = alice.call("PATCH", f"{IMAGES}/{image['id']}",
                              [{"op": "replace", "path": "/status", "value": "active"}])
    assert (status, body["error"]["code"]) == (403, 403)
    assert alice.delete(f"{IMAGES}/{image['id']}")[0] == 403           # protected
    alice.call("PATCH", f"{IMAGES}/{image['id']}",
               [{"op": "replace", "path": "/protected", "value": False}])
    assert alice.delete(f"{IMAGES}/{image['id']}")[0] == 204
    assert alice.get(f"{IMAGES}/{image['id']}")[0] == 404


def test_schema_and_versions_for_glanceclient(alice):
    _, schema = alice.get("/image/v2/schemas/image")
    assert schema["name"] == "image"
    assert schema["additionalProperties"] == {"type": "string"}
    _, image = alice.post(IMAGES, {"name": "x"})
    assert set(image) - {"os_distro"} <= set(schema["properties"])
    response = alice.http.get("/image/versions")
    assert response.status_code == 200
    assert response.get_json()["versions"][0] == {
        "id": "v2.16", "status": "CURRENT",
        "links": [{"rel": "self", "href": "http://localhost/image/v2/"}]}
