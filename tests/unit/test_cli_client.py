"""The CLI's REST client against a scripted protection service over real HTTP: the catalog
lookup, what goes on the wire, and how the service's refusals read."""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from types import SimpleNamespace

import pytest
from keystoneauth1 import access, session
from keystoneauth1.identity.access import AccessInfoPlugin
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from site_recovery.cli import client as client_module
from site_recovery.cli import plugin
from site_recovery.cli.client import Client, ProtectorError, ServiceUnreachable


class FakeService:
    """Answers each ``(method, path)`` with scripted replies, in order (the last one
    repeats), and records every request it receives."""

    def __init__(self):
        self.replies: dict[tuple[str, str], list] = {}
        self.requests: list[dict] = []
        self.delay = 0.0
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,),
                                        daemon=True)
        self._thread.start()

    def reply(self, method: str, path: str, status: int = 200, body=None, *,
              raw: str | None = None, content_type: str = "application/json"):
        self.replies.setdefault((method, path), []).append((status, body, raw, content_type))

    def stop(self):
        self._server.shutdown()
        self._thread.join(5)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        self.requests.append({"method": request.method, "path": request.path,
                              "raw_path": environ["RAW_URI"].partition("?")[0],
                              "query": dict(request.args), "headers": dict(request.headers),
                              "json": request.get_json(silent=True)})
        time.sleep(self.delay)
        script = self.replies.get((request.method, request.path))
        if not script:
            status, body, raw, content_type = 404, {"error": {
                "code": 404, "message": f"no route {request.path}", "details": {}}}, None, \
                "application/json"
        else:
            status, body, raw, content_type = script.pop(0) if len(script) > 1 else script[0]
        text = raw if raw is not None else ("" if body is None else json.dumps(body))
        return Response(text, status=status, content_type=content_type)(environ, start_response)


def keystone_session(catalog: list[dict]) -> session.Session:
    """A session holding a project-scoped token with ``catalog``, as osc would have."""
    body = {"token": {
        "methods": ["password"], "expires_at": "2099-01-01T00:00:00.000000Z",
        "issued_at": "2024-01-01T00:00:00.000000Z",
        "user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"}},
        "project": {"id": "p1", "name": "ecommerce",
                    "domain": {"id": "default", "name": "Default"}},
        "catalog": catalog}}
    return session.Session(auth=AccessInfoPlugin(access.create(body=body,
                                                               auth_token="token-1")))


def protector_catalog(public_url: str, *, region: str = "site-b") -> list[dict]:
    return [{"type": "protector", "id": "s1", "name": "protector", "endpoints": [
        {"id": "e1", "interface": "public", "region": region, "region_id": region,
         "url": public_url},
        {"id": "e2", "interface": "internal", "region": region, "region_id": region,
         "url": "http://127.0.0.1:9/v1"}]}]


def client_for(service: FakeService, **options) -> Client:
    """The client as the plugin makes it for a cloud whose catalog lists ``service``."""
    return Client(keystone_session(protector_catalog(service.url + "/v1")),
                  interface="public", region_name="site-b", **options)


OPERATION = {"id": "op-1", "operation_type": "test_failover", "status": "pending",
             "total_protection_groups": 1, "completed_count": 0, "failed_count": 0,
             "progress": 0, "protection_group": "prod-ecommerce-db", "results": []}


def test_requests_go_to_the_catalog_endpoint_of_the_interface_and_region(client, service):
    service.reply("GET", "/v1/sites", body={"sites": [{"name": "site-b", "role": "local"}]})
    assert client.list_sites() == [{"name": "site-b", "role": "local"}]
    assert service.requests[0]["headers"]["X-Auth-Token"] == "token-1"


def test_a_catalog_naming_the_service_root_works_too(service):
    client = Client(keystone_session(protector_catalog(service.url + "/")),
                    interface="public", region_name="site-b")
    service.reply("GET", "/v1/sites", body={"sites": []})
    assert client.list_sites() == []


def test_no_endpoint_in_the_region_is_explained(service):
    client = Client(keystone_session(protector_catalog(service.url, region="site-a")),
                    interface="public", region_name="site-b")
    with pytest.raises(Exception, match=r"no 'protector' endpoint .*interface public, "
                                        r"region site-b"):
        client.list_sites()
    assert service.requests == []


def test_a_refusal_names_the_status_and_the_service_message(client, service):
    service.reply("GET", "/v1/protection-groups/nope", 404, {"error": {
        "code": 404, "message": "protection group 'nope' not found", "details": {}}})
    with pytest.raises(ProtectorError) as caught:
        client.get_group("nope")
    assert str(caught.value) == "protection group 'nope' not found (HTTP 404 Not Found)"
    assert caught.value.status == 404


def test_a_refusal_keeps_its_details(client, service):
    service.reply("POST", "/v1/protection-groups/db/failover", 409, {"error": {
        "code": 409, "message": "planned failover needs peer site site-a reachable",
        "details": {"peer": "site-a", "peer_reachable": False}}})
    with pytest.raises(ProtectorError, match=r"needs peer site site-a reachable \(HTTP 409") \
            as caught:
        client.failover("db", "planned")
    assert caught.value.details == {"peer": "site-a", "peer_reachable": False}


def test_a_proxy_error_page_still_reads(client, service):
    service.reply("GET", "/v1/sites", 502, raw="<html><body>\n Bad   gateway </body></html>",
                  content_type="text/html")
    with pytest.raises(ProtectorError, match=r"Bad gateway.*\(HTTP 502"):
        client.list_sites()


def test_a_service_that_is_down_is_named(monkeypatch):
    monkeypatch.setattr(client_module, "CONNECT_RETRIES", 0)
    down = Client(keystone_session(protector_catalog("http://127.0.0.1:9/v1")),
                  interface="public", region_name="site-b", timeout=2)
    with pytest.raises(ServiceUnreachable,
                       match=r"cannot reach the protection service at http://127\.0\.0\.1:9/v1"):
        down.list_sites()


def test_every_request_has_a_timeout(service, monkeypatch):
    monkeypatch.setattr(client_module, "CONNECT_RETRIES", 0)
    client = client_for(service, timeout=0.2)
    service.delay = 1.0
    service.reply("GET", "/v1/sites", body={"sites": []})
    started = time.monotonic()
    with pytest.raises(ServiceUnreachable):
        client.list_sites()
    assert time.monotonic() - started < 0.9


def test_a_group_name_is_one_path_segment(client, service):
    service.reply("GET", "/v1/protection-groups/web tier/a", body={"protection_group": {}})
    client.get_group("web tier/a")
    assert service.requests[0]["raw_path"] == "/v1/protection-groups/web%20tier%2Fa"


def test_all_projects_is_a_query_parameter_also_on_actions(client, service):
    service.reply("GET", "/v1/protection-groups", body={"protection_groups": []})
    service.reply("POST", "/v1/protection-groups/db/test-failover", 202,
                  {"operation": OPERATION})
    client.list_groups(all_projects=True)
    client.test_failover("db", all_projects=True)
    client.list_groups()
    assert [r["query"] for r in service.requests] == [
        {"all_projects": "true"}, {"all_projects": "true"}, {}]



def test_all_projects_reaches_mappings_operations_and_the_audit_log(client, service):
    service.reply("GET", "/v1/resource-mappings", body={"resource_mappings": []})
    service.reply("GET", "/v1/resource-mappings/map-1", body={"resource_mapping": {}})
    service.reply("PATCH", "/v1/resource-mappings/map-1", body={"resource_mapping": {}})
    service.reply("DELETE", "/v1/resource-mappings/map-1", 204)
    service.reply("GET", "/v1/operations/op-1", body={"operation": OPERATION})
    service.reply("POST", "/v1/operations/op-0/retry", 202, {"operation": OPERATION})
    service.reply("GET", "/v1/audit-log", body={"entries": []})
    client.list_mappings(group="db", all_projects=True)
    client.get_mapping("map-1", all_projects=True)
    client.update_mapping("map-1", "net-2", expected_version=3, all_projects=True)
    client.delete_mapping("map-1", all_projects=True)
    client.get_operation("op-1", all_projects=True)
    client.retry_operation("op-0", all_projects=True)
    client.list_audit(limit=5, all_projects=True)
    everyone = {"all_projects": "true"}
    assert [(r["method"], r["path"], r["query"]) for r in service.requests] == [
        ("GET", "/v1/resource-mappings", {**everyone, "protection_group": "db"}),
        ("GET", "/v1/resource-mappings/map-1", everyone),
        ("PATCH", "/v1/resource-mappings/map-1", everyone),
        ("DELETE", "/v1/resource-mappings/map-1", everyone),
        ("GET", "/v1/operations/op-1", everyone),
        ("POST", "/v1/operations/op-0/retry", everyone),
        ("GET", "/v1/audit-log", {**everyone, "limit": "5"})]
    assert service.requests[2]["json"] == {"target": "net-2", "version": 3}
    assert "Idempotency-Key" in service.requests[5]["headers"]


def test_without_all_projects_no_query_parameter_is_sent(client, service):
    service.reply("GET", "/v1/resource-mappings", body={"resource_mappings": []})
    service.reply("GET", "/v1/resource-mappings/map-1", body={"resource_mapping": {}})
    service.reply("PATCH", "/v1/resource-mappings/map-1", body={"resource_mapping": {}})
    service.reply("DELETE", "/v1/resource-mappings/map-1", 204)
    service.reply("GET", "/v1/operations/op-1", body={"operation": OPERATION})
    service.reply("POST", "/v1/operations/op-0/retry", 202, {"operation": OPERATION})
    service.reply("GET", "/v1/audit-log", body={"entries": []})
    client.list_mappings()
    client.get_mapping("map-1")
    client.update_mapping("map-1", "net-2")
    client.delete_mapping("map-1")
    client.get_operation("op-1")
    client.retry_operation("op-0")
    client.list_audit()
    assert [r["query"] for r in service.requests] == [{}] * 7

def test_operations_carry_an_idempotency_key_of_their_own(client, service):
    for path in ("/v1/protection-groups/db/protect", "/v1/protection-groups/db/test-failover",
                 "/v1/protection-groups/db/test-cleanup", "/v1/protection-groups/db/failover",
                 "/v1/protection-groups/db/failback", "/v1/sites/site-a/failover",
                 "/v1/operations/op-0/retry"):
        service.reply("POST", path, 202, {"operation": OPERATION})
    client.protect("db")
    client.test_failover("db")
    client.test_cleanup("db")
    client.failover("db", "unplanned", force=True)
    client.failback("db")
    client.site_failover("site-a", "unplanned", force=True)
    client.retry_operation("op-0", idempotency_key="mine-1")
    keys = [r["headers"].get("Idempotency-Key") for r in service.requests]
    assert keys[-1] == "mine-1"
    assert all(uuid.UUID(k).version == 4 for k in keys[:-1])
    assert len(set(keys)) == len(keys)


def test_action_bodies(client, service):
    service.reply("POST", "/v1/protection-groups/db/test-failover", 202,
                  {"operation": OPERATION})
    service.reply("POST", "/v1/protection-groups/db/test-cleanup", 202,
                  {"operation": OPERATION})
    service.reply("POST", "/v1/sites/site-a/failover", 202, {"operation": OPERATION})
    assert client.test_failover("db", network_mapping={"net-a": "net-b"},
                                recovery_point="rp-7") == OPERATION
    client.test_cleanup("db")
    client.site_failover("site-a", "unplanned", force=True)
    assert [r["json"] for r in service.requests] == [
        {"network_mapping": {"net-a": "net-b"}, "recovery_point": "rp-7"}, None,
        {"failover_type": "unplanned", "force": True}]


def test_a_start_that_timed_out_is_sent_again_with_the_same_key(service, monkeypatch):
    monkeypatch.setattr(client_module, "CONNECT_RETRIES", 1)
    client = client_for(service, timeout=0.3)
    service.delay = 0.5
    service.reply("POST", "/v1/protection-groups/db/failback", 202, {"operation": OPERATION})
    with pytest.raises(ServiceUnreachable):
        client.failback("db")
    keys = [r["headers"]["Idempotency-Key"] for r in service.requests]
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_change_that_timed_out_is_not_sent_again(service, monkeypatch):
    monkeypatch.setattr(client_module, "CONNECT_RETRIES", 1)
    client = client_for(service, timeout=0.3)
    service.delay = 0.5
    service.reply("DELETE", "/v1/protection-groups/db", 204)
    with pytest.raises(ServiceUnreachable):
        client.delete_group("db")
    assert len(service.requests) == 1


def test_an_endpoint_that_is_not_the_service_is_named(client, service):
    service.reply("GET", "/v1/sites", raw="<html>welcome</html>", content_type="text/html")
    with pytest.raises(Exception, match="answered 200 without JSON"):
        client.list_sites()


def test_the_plugin_makes_the_client_for_osc_s_cloud_and_region(service):
    instance = SimpleNamespace(
        session=keystone_session(protector_catalog(service.url + "/v1")),
        interface="public", region_name="site-b")
    service.reply("GET", "/v1/sites", body={"sites": []})
    assert plugin.make_client(instance).list_sites() == []


def test_the_plugin_s_api_version_option(monkeypatch):
    assert plugin.build_option_parser(argparse.ArgumentParser()).parse_args(
        []).os_protector_api_version == "1"
    monkeypatch.setenv("OS_PROTECTOR_API_VERSION", "1.0")
    assert plugin.build_option_parser(argparse.ArgumentParser()).parse_args(
        []).os_protector_api_version == "1.0"
