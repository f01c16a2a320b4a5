"""What the DR workflows write through ``/v1/internal``: captures and a group's state,
on both sites like any change; a failover's outcome even when the peer is gone; what a
drill's steps found, kept with the group's result."""

from __future__ import annotations

from site_recovery.webhook import db
from site_recovery.webhook.models import Site
from site_recovery.webhook.services import services
from tests.unit.webhook_sites import ALICE, RITA, SERVICE, execution_of

WEB = {"name": "prod-ecommerce-web", "replication_type": "async", "primary_site": "site-a",
       "secondary_site": "site-b", "volume_type": "replicated-ssd"}
SERVER = "6f1d2b9e-3c1a-4c55-9d0e-0f6a1b2c3d4e"


def a_group_with_a_member(clients) -> str:
    group = clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    clients["site-a"].post("/v1/protection-groups/prod-ecommerce-web/members",
                           json={"server_id": SERVER, "server_name": "web-1"}, headers=ALICE)
    return group.json["protection_group"]["id"]


def test_a_capture_sent_to_either_site_is_stored_on_both(sites):
    clients, _ = sites
    group = a_group_with_a_member(clients)
    spec = {"version": 1, "server": {"id": SERVER, "name": "web-1"}}
    reply = clients["site-b"].put(f"/v1/internal/protection-groups/{group}/capture",
                                  json={"specs": {SERVER: spec}}, headers=SERVICE)
    assert reply.status_code == 200, reply.json
    for client in clients.values():
        document = client.get(f"/v1/internal/protection-groups/{group}",
                              headers=SERVICE).json["document"]
        (member,) = document["members"]
        assert member["spec"] == spec and member["captured_at"]
        shown = client.get("/v1/protection-groups/prod-ecommerce-web/members",
                           headers=RITA).json["members"]
        assert shown[0]["captured_at"] == member["captured_at"]


def test_a_capture_of_a_server_outside_the_group_is_refused_and_changes_nothing(sites):
    clients, _ = sites
    group = a_group_with_a_member(clients)
    stranger = "00000000-0000-4000-8000-000000000001"
    reply = clients["site-a"].put(f"/v1/internal/protection-groups/{group}/capture",
                                  json={"specs": {stranger: {}}}, headers=SERVICE)
    assert reply.status_code == 400 and stranger in reply.json["error"]["message"]
    document = clients["site-b"].get(f"/v1/internal/protection-groups/{group}",
                                     headers=SERVICE).json["document"]
    assert document["members"][0]["spec"] is None and document["version"] == 2


def test_tenants_cannot_reach_the_workflow_endpoints(sites):
    clients, _ = sites
    group = a_group_with_a_member(clients)
    assert clients["site-a"].get(f"/v1/internal/protection-groups/{group}",
                                 headers=ALICE).status_code == 403
    assert clients["site-a"].put(f"/v1/internal/protection-groups/{group}/state",
                                 json={"status": "protected"}, headers=ALICE).status_code == 403


def test_a_failover_swaps_the_sites_on_both(sites):
    clients, _ = sites
    group = a_group_with_a_member(clients)
    reply = clients["site-b"].put(f"/v1/internal/protection-groups/{group}/state", json={
        "status": "failed_over", "primary_site": "site-b", "secondary_site": "site-a"},
        headers=SERVICE)
    assert reply.status_code == 200, reply.json
    for client in clients.values():
        shown = client.get("/v1/protection-groups/prod-ecommerce-web",
                           headers=ALICE).json["protection_group"]
        assert (shown["primary_site"], shown["secondary_site"], shown["status"]) == (
            "site-b", "site-a", "failed_over")


def test_a_failover_is_recorded_on_the_recovering_site_while_the_peer_is_gone(sites):
    clients, _ = sites
    group = a_group_with_a_member(clients)
    sessions = services(clients["site-b"].application).sessions
    with db.transaction(sessions) as session:
        session.get(Site, "site-a").reachable = False
    reply = clients["site-b"].put(f"/v1/internal/protection-groups/{group}/state", json={
        "status": "failed_over", "primary_site": "site-b", "secondary_site": "site-a"},
        headers=SERVICE)
    assert reply.status_code == 200, reply.json
    here = clients["site-b"].get("/v1/protection-groups/prod-ecommerce-web",
                                 headers=ALICE).json["protection_group"]
    there = clients["site-a"].get("/v1/protection-groups/prod-ecommerce-web",
                                  headers=ALICE).json["protection_group"]
    assert (here["primary_site"], here["version"]) == ("site-b", 3)
    assert (there["primary_site"], there["version"]) == ("site-a", 2)
    audit = clients["site-b"].get("/v1/audit-log", headers=ALICE).json["entries"]
    assert any("on this site only" in (e["reason"] or "") for e in audit)


def test_the_lost_site_adopts_the_failover_when_it_is_back_and_keeps_what_it_holds_newer(
        sites):
    clients, _ = sites
    group = a_group_with_a_member(clients)
    with db.transaction(services(clients["site-b"].application).sessions) as session:
        session.get(Site, "site-a").reachable = False
    clients["site-b"].put(f"/v1/internal/protection-groups/{group}/state", json={
        "status": "failed_over", "primary_site": "site-b", "secondary_site": "site-a"},
        headers=SERVICE)
    site_a = services(clients["site-a"].application).registry
    assert site_a.sync() == 1
    shown = clients["site-a"].get("/v1/protection-groups/prod-ecommerce-web",
                                  headers=ALICE).json["protection_group"]
    assert (shown["primary_site"], shown["status"], shown["version"]) == (
        "site-b", "failed_over", 3)
    audit = clients["site-a"].get("/v1/audit-log", headers=ALICE).json["entries"]
    assert audit[0]["action"] == "protection_group.catch_up" and "site-b" in audit[0]["reason"]
    # Nothing newer there: a second catch-up changes nothing, and site-b adopts nothing.
    assert site_a.sync() == 0
    assert services(clients["site-b"].application).registry.sync() == 0


def test_a_catch_up_with_a_peer_that_does_not_answer_changes_nothing(sites):
    clients, links = sites
    a_group_with_a_member(clients)
    links["site-a"].down = True
    assert services(clients["site-a"].application).registry.sync() is None


def test_a_state_with_one_site_only_is_refused(sites):
    clients, _ = sites
    group = a_group_with_a_member(clients)
    reply = clients["site-a"].put(f"/v1/internal/protection-groups/{group}/state",
                                  json={"status": "failed_over", "primary_site": "site-b"},
                                  headers=SERVICE)
    assert reply.status_code == 400
    assert "primary_site and secondary_site together" in reply.json["error"]["message"]


def a_drill(clients) -> tuple[str, str]:
    a_group_with_a_member(clients)
    op = clients["site-b"].post("/v1/protection-groups/prod-ecommerce-web/test-failover",
                                headers=ALICE).json["operation"]
    return op["id"], op["results"][0]["protection_group_id"]


def test_a_drills_findings_are_kept_with_its_result_and_shown(sites):
    clients, _ = sites
    op_id, group = a_drill(clients)
    dr = clients["site-b"]
    progress = f"/v1/internal/executions/{execution_of(dr, op_id)}/progress"
    assert dr.post(progress, json={"protection_group_id": group, "status": "running",
                                   "step": "production_check"},
                   headers=SERVICE).status_code == 200
    reply = dr.post(progress, json={
        "protection_group_id": group, "status": "completed", "step": "done",
        "details": {"test_prefix": "test-", "production_replication": "unaffected"}},
        headers=SERVICE)
    assert reply.status_code == 200, reply.json
    shown = dr.get(f"/v1/operations/{op_id}", headers=RITA).json["operation"]
    assert shown["status"] == "completed"
    assert shown["results"][0]["details"] == {"test_prefix": "test-",
                                              "production_replication": "unaffected"}
    listed = dr.get("/v1/operations", headers=RITA).json["operations"]
    assert listed[0]["results"][0]["details"]["production_replication"] == "unaffected"


def test_findings_too_long_or_too_many_are_refused_and_change_nothing(sites):
    clients, _ = sites
    op_id, group = a_drill(clients)
    dr = clients["site-b"]
    progress = f"/v1/internal/executions/{execution_of(dr, op_id)}/progress"
    for details in ({"production_replication": "x" * 256}, {"k" * 65: "unaffected"},
                    {f"finding-{i}": "ok" for i in range(11)}, {"test_prefix": 5}):
        reply = dr.post(progress, json={"protection_group_id": group, "status": "completed",
                                        "details": details}, headers=SERVICE)
        assert reply.status_code == 400, details
        assert "details" in reply.json["error"]["message"]
    (result,) = dr.get(f"/v1/operations/{op_id}", headers=RITA).json["operation"]["results"]
    assert (result["status"], result["details"]) == ("pending", {})


def test_a_failed_over_group_keeps_its_shape_until_its_failback(sites):
    """Its name, volume type and members are what its failback returns: changing them is
    refused on either site, saying when they may change; its description may."""
    clients, _ = sites
    group = a_group_with_a_member(clients)
    clients["site-b"].put(f"/v1/internal/protection-groups/{group}/state", json={
        "status": "failed_over", "primary_site": "site-b", "secondary_site": "site-a"},
        headers=SERVICE)
    path = "/v1/protection-groups/prod-ecommerce-web"
    before = clients["site-a"].get(path, headers=RITA).json["protection_group"]
    for site, client in clients.items():
        for method, where, body in (
                ("PATCH", path, {"name": "renamed"}),
                ("PATCH", path, {"volume_type": "other-ssd"}),
                ("POST", f"{path}/members",
                 {"server_id": "0b3c5d7e-9f11-4a2b-8c3d-4e5f6a7b8c9d"}),
                ("DELETE", f"{path}/members/{SERVER}", None)):
            reply = client.open(where, method=method, json=body, headers=ALICE)
            assert reply.status_code == 409, (site, method, where, reply.json)
            message = reply.json["error"]["message"]
            if (site, method) == ("site-a", "POST"):       # asked where it no longer runs
                assert "runs on site-b" in message
            else:
                assert "is failed over" in message and "after that" in message
    assert clients["site-a"].get(path, headers=RITA).json["protection_group"] == before
    described = clients["site-b"].patch(path, json={"description": "running at DR"},
                                        headers=ALICE)
    assert described.status_code == 200, described.json
    assert clients["site-a"].get(f"{path}/members", headers=RITA).json["members"][0][
        "server_id"] == SERVER
