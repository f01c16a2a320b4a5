"""What the DR workflows write through ``/v1/internal``: captures and a group's state,
on both sites like any change; a failover's outcome even when the peer is gone."""

from __future__ import annotations

from site_recovery.webhook import db
from site_recovery.webhook.models import Site
from tests.unit.webhook_sites import ALICE, RITA, SERVICE

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
    sessions = clients["site-b"].application.extensions["sessions"]
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


def test_a_state_with_one_site_only_is_refused(sites):
    clients, _ = sites
    group = a_group_with_a_member(clients)
    reply = clients["site-a"].put(f"/v1/internal/protection-groups/{group}/state",
                                  json={"status": "failed_over", "primary_site": "site-b"},
                                  headers=SERVICE)
    assert reply.status_code == 400
    assert "primary_site and secondary_site together" in reply.json["error"]["message"]
