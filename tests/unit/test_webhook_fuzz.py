"""Property-based fuzzing of the service through its own OpenAPI document.

Schemathesis generates requests for every documented operation, valid and not; whatever
arrives, the service answers without a server error, and every error is JSON with a
message. Then the refusals every body-taking endpoint shares: malformed JSON, unknown
fields, an oversize body.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from site_recovery.webhook.services import services
from tests.unit.webhook_sites import SERVICE, make_site

# Every door open: the service's own account (the workflows' and the peer's) with every
# role, so the fuzzer reaches the internal routes too.
CALLER = {**SERVICE, "X-Roles": "admin,dr_site_admin,member,site_recovery_service"}


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """site-b, linked to a site-a, with groups to find: the fuzzer reaches past lookups."""
    root = tmp_path_factory.mktemp("fuzz")
    apps = {name: make_site(root, name, peer)
            for name, peer in (("site-a", "site-b"), ("site-b", "site-a"))}
    services(apps["site-a"]).registry.peer.client = apps["site-b"].test_client()
    services(apps["site-b"]).registry.peer.client = apps["site-a"].test_client()
    client = apps["site-b"].test_client()
    for name in ("web", "db"):
        client.post("/v1/protection-groups", headers=CALLER, json={
            "name": name, "replication_type": "async", "primary_site": "site-a",
            "secondary_site": "site-b", "volume_type": "ssd"})
    return apps["site-b"]


def error_is_json_with_a_message(ctx, response, case):
    if response.status_code >= 400:
        body = response.json()
        assert body["error"]["message"], f"{case.method} {case.path}: an empty message"
        assert body["error"]["code"] == response.status_code


def test_no_request_makes_a_server_error(service):
    schema = schemathesis.openapi.from_wsgi("/v1/openapi.json", service)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case):
            case.call_and_validate(headers=CALLER,
                                   checks=[not_a_server_error, error_is_json_with_a_message])

        fuzz()


def body_routes(app):
    from site_recovery.webhook.openapi import document
    paths = document(app)["paths"]
    return [(path, method) for path, methods in paths.items()
            for method, operation in methods.items() if "requestBody" in operation]


def concrete(path: str) -> str:
    return (path.replace("{ref}", "web").replace("{name}", "site-a")
            .replace("{op_id}", "x").replace("{object_id}", "x")
            .replace("{mapping_id}", "x").replace("{server_id}", "x"))


def test_every_body_route_refuses_malformed_json_unknown_fields_and_oversize(service):
    client = service.test_client()
    routes = body_routes(service)
    assert len(routes) >= 15
    alert_auth = {"Authorization": "Bearer none"}
    for path, method in routes:
        url = concrete(path)
        headers = CALLER if "alerts" not in path else alert_auth
        malformed = client.open(url, method=method, data="{\"a\": ", headers=headers,
                                content_type="application/json")
        unknown = client.open(url, method=method, json={"no_such_field": 1}, headers=headers)
        oversize = client.open(url, method=method, data="x" * (2 << 20), headers=headers,
                               content_type="application/json")
        if "alerts" in path:                 # its secret is checked before the body
            assert (malformed.status_code, unknown.status_code) == (401, 401)
        else:
            assert malformed.status_code == 400, (method, url, malformed.json)
            assert "not valid JSON" in malformed.json["error"]["message"]
            assert unknown.status_code == 400, (method, url, unknown.json)
            assert "no_such_field" in unknown.json["error"]["message"]
        assert oversize.status_code == 413, (method, url)
        assert oversize.json["error"]["message"]


def test_the_document_describes_every_route(service):
    from site_recovery.webhook.openapi import document
    paths = document(service)["paths"]
    assert "/v1/protection-groups/{ref}/test-failover" in paths
    assert paths["/v1/protection-groups"]["post"]["requestBody"]["required"] is True
    assert service.test_client().get("/v1/openapi.json").status_code == 200
