"""Protection groups and mappings stay identical on both sites, or a change is refused.

Two services run in one process, each with its own database; each one's link to its peer
calls the other app directly, as the peer's service account would (the real link, through
the peer's Keystone, is exercised on the lab by the functional tests).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from site_recovery.webhook import db
from site_recovery.webhook.models import ProtectionGroup, Site
from site_recovery.webhook.services import services
from tests.unit.webhook_sites import ADMIN, ALICE, BOB, RITA

WEB = {"name": "prod-ecommerce-web", "replication_type": "async", "primary_site": "site-a",
       "secondary_site": "site-b", "volume_type": "replicated-ssd"}


def racing(links, *requests_):
    """Send each ``(client, method, path, body)`` at once, both changes built on the same
    version before either reaches the peer (site-a coordinates); the replies in order."""
    both_built = threading.Barrier(len(requests_), timeout=10)
    links["site-a"].before_push = both_built.wait
    replies = [None] * len(requests_)

    def send(index, client, method, path, body):
        replies[index] = client.application.test_client().open(path, method=method,
                                                                json=body, headers=ALICE)

    threads = [threading.Thread(target=send, args=(i, *r)) for i, r in enumerate(requests_)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies


def groups(client, headers=ALICE) -> list[dict]:
    return client.get("/v1/protection-groups", headers=headers).json["protection_groups"]


def test_a_group_created_on_one_site_is_on_both_with_the_same_version(sites):
    clients, _ = sites
    reply = clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    assert reply.status_code == 201, reply.json
    created = reply.json["protection_group"]
    assert created["project_name"] == "ecommerce" and created["version"] == 1
    assert groups(clients["site-b"]) == groups(clients["site-a"]) == [created]


def test_a_change_sent_to_the_secondary_is_made_by_the_primary_and_lands_on_both(sites):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    reply = clients["site-b"].patch("/v1/protection-groups/prod-ecommerce-web",
                                    json={"description": "web tier", "version": 1},
                                    headers=ALICE)
    assert reply.status_code == 200, reply.json
    assert reply.json["protection_group"]["version"] == 2
    for client in clients.values():
        (group,) = groups(client)
        assert (group["description"], group["version"]) == ("web tier", 2)


def test_members_are_part_of_the_group_and_bump_its_version(sites):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    server = "6f1d2b9e-3c1a-4c55-9d0e-0f6a1b2c3d4e"
    added = clients["site-a"].post("/v1/protection-groups/prod-ecommerce-web/members",
                                   json={"server_id": server, "server_name": "web-1"},
                                   headers=ALICE)
    assert added.status_code == 201 and added.json["member"]["server_name"] == "web-1"
    listed = clients["site-b"].get("/v1/protection-groups/prod-ecommerce-web/members",
                                   headers=RITA).json["members"]
    assert [m["server_id"] for m in listed] == [server]
    assert listed[0]["id"] == added.json["member"]["id"]          # the same member
    again = clients["site-a"].post("/v1/protection-groups/prod-ecommerce-web/members",
                                   json={"server_id": server}, headers=ALICE)
    assert again.status_code == 409 and "already a member" in again.json["error"]["message"]
    gone = clients["site-b"].delete(
        f"/v1/protection-groups/prod-ecommerce-web/members/{server}", headers=ALICE)
    assert gone.status_code == 204
    assert [g["member_count"] for c in clients.values() for g in groups(c)] == [0, 0]
    assert {g["version"] for c in clients.values() for g in groups(c)} == {3}


def test_an_unreachable_peer_refuses_the_change_naming_it_and_since_when(sites):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    since = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    sessions = services(clients["site-a"].application).sessions
    with db.transaction(sessions) as session:
        peer = session.get(Site, "site-b")
        peer.reachable, peer.state_since = False, since
    reply = clients["site-a"].patch("/v1/protection-groups/prod-ecommerce-web",
                                    json={"description": "changed"}, headers=ALICE)
    assert reply.status_code == 503
    message = reply.json["error"]["message"]
    assert "site-b" in message and "2026-11-25T09:30:00" in message
    assert "Nothing was changed" in message
    assert all(g["description"] == "" and g["version"] == 1
               for c in clients.values() for g in groups(c))


def test_a_peer_that_stops_answering_mid_change_leaves_both_sites_unchanged(sites):
    clients, links = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    links["site-a"].down = True
    reply = clients["site-a"].delete("/v1/protection-groups/prod-ecommerce-web",
                                     headers=ALICE)
    assert reply.status_code == 503 and "site-b did not answer" in reply.json["error"][
        "message"]
    assert [len(groups(c)) for c in clients.values()] == [1, 1]
    links["site-a"].down = False
    assert clients["site-a"].delete("/v1/protection-groups/prod-ecommerce-web",
                                    headers=ALICE).status_code == 204
    assert [len(groups(c)) for c in clients.values()] == [0, 0]


def test_an_edit_against_an_old_version_is_a_conflict(sites):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    clients["site-a"].patch("/v1/protection-groups/prod-ecommerce-web",
                            json={"description": "first"}, headers=ALICE)
    stale = clients["site-a"].patch("/v1/protection-groups/prod-ecommerce-web",
                                    json={"description": "second", "version": 1},
                                    headers=ALICE)
    assert stale.status_code == 409 and stale.json["error"]["details"]["version"] == 2


def test_of_two_concurrent_edits_one_wins_and_the_other_gets_a_conflict(sites):
    clients, links = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    replies = racing(links, *((clients["site-a"], "PATCH",
                               "/v1/protection-groups/prod-ecommerce-web",
                               {"description": text}) for text in ("one", "two")))
    assert sorted(r.status_code for r in replies) == [200, 409]
    winner = next(r for r in replies if r.status_code == 200).json["protection_group"]
    assert [(g["description"], g["version"]) for c in clients.values() for g in groups(c)] \
        == [(winner["description"], 2)] * 2


def test_a_coordinator_behind_its_peer_repairs_itself_on_the_next_conflict(sites):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    # As if site-a crashed after pushing version 2 and before storing it.
    sessions_b = services(clients["site-b"].application).sessions
    with db.transaction(sessions_b) as session:
        group = session.query(ProtectionGroup).one()
        group.description, group.version = "pushed before the crash", 2
    reply = clients["site-a"].patch("/v1/protection-groups/prod-ecommerce-web",
                                    json={"description": "next"}, headers=ALICE)
    assert reply.status_code == 409
    (group,) = groups(clients["site-a"])
    assert (group["description"], group["version"]) == ("pushed before the crash", 2)


def test_another_projects_group_is_not_found_and_a_reader_cannot_change_it(sites):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    client = clients["site-a"]
    assert client.get("/v1/protection-groups/prod-ecommerce-web", headers=BOB).status_code \
        == 404
    assert client.delete("/v1/protection-groups/prod-ecommerce-web",
                         headers=BOB).status_code == 404
    assert groups(client, BOB) == []
    refused = client.patch("/v1/protection-groups/prod-ecommerce-web",
                           json={"description": "x"}, headers=RITA)
    assert refused.status_code == 403 and "rita" in refused.json["error"]["message"]
    # A member asking for every project sees the projects it can: its own.
    own = client.get("/v1/protection-groups?all_projects=true", headers=BOB)
    assert own.status_code == 200 and own.json["protection_groups"] == []
    everyone = client.get("/v1/protection-groups?all_projects=true", headers=ADMIN).json
    assert [g["project_name"] for g in everyone["protection_groups"]] == ["ecommerce"]


@pytest.mark.parametrize(("change", "status", "says"), [
    ({"colour": "blue"}, 400, "colour: Extra inputs are not permitted"),
    ({"replication_type": "semi"}, 400, "replication_type"),
    ({"name": "has space"}, 400, "name"),
    ({"primary_site": "site-z"}, 400, "primary_site 'site-z' is not a site of this pair"),
    ({"secondary_site": "site-a"}, 400, "must be different sites"),
    ({"rpo_target_seconds": "60"}, 400, "rpo_target_seconds"),
])
def test_a_bad_group_is_refused_by_field_and_nothing_is_created(sites, change, status, says):
    clients, _ = sites
    reply = clients["site-a"].post("/v1/protection-groups", json={**WEB, **change},
                                   headers=ALICE)
    assert reply.status_code == status and says in reply.json["error"]["message"]
    assert [groups(c) for c in clients.values()] == [[], []]


def test_malformed_json_and_duplicate_names_are_refused(sites):
    clients, _ = sites
    client = clients["site-a"]
    bad = client.post("/v1/protection-groups", data="{not json",
                      content_type="application/json", headers=ALICE)
    assert bad.status_code == 400 and "not valid JSON" in bad.json["error"]["message"]
    assert client.post("/v1/protection-groups", json=WEB, headers=ALICE).status_code == 201
    again = client.post("/v1/protection-groups", json=WEB, headers=ALICE)
    assert again.status_code == 409 and "already has a protection group" in again.json[
        "error"]["message"]


def test_mappings_sync_per_group_or_per_project_and_refuse_a_second_source(sites):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    project_wide = clients["site-b"].post("/v1/resource-mappings", json={
        "kind": "flavor", "source": "m1.small", "target": "m1.dr-small"}, headers=ALICE)
    assert project_wide.status_code == 201, project_wide.json
    per_group = clients["site-a"].post("/v1/resource-mappings", json={
        "kind": "network", "source": "prod-net", "target": "dr-net",
        "protection_group": "prod-ecommerce-web"}, headers=ALICE)
    assert per_group.status_code == 201
    mapping = per_group.json["resource_mapping"]
    changed = clients["site-b"].patch(f"/v1/resource-mappings/{mapping['id']}",
                                      json={"target": "dr-net-2"}, headers=ALICE)
    assert changed.json["resource_mapping"] == {**mapping, "target": "dr-net-2", "version": 2}
    for client in clients.values():
        listed = client.get("/v1/resource-mappings?protection_group=prod-ecommerce-web",
                            headers=RITA).json["resource_mappings"]
        assert sorted((m["kind"], m["target"], m["version"]) for m in listed) == [
            ("flavor", "m1.dr-small", 1), ("network", "dr-net-2", 2)]
    twice = clients["site-a"].post("/v1/resource-mappings", json={
        "kind": "flavor", "source": "m1.small", "target": "other"}, headers=ALICE)
    assert twice.status_code == 409
    assert clients["site-a"].get(f"/v1/resource-mappings/{mapping['id']}",
                                 headers=BOB).status_code == 404


def test_every_change_and_refusal_is_in_the_audit_log_of_its_project(sites):
    clients, links = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    links["site-a"].down = True
    clients["site-a"].patch("/v1/protection-groups/prod-ecommerce-web",
                            json={"description": "x"}, headers=ALICE)
    entries = clients["site-a"].get("/v1/audit-log", headers=RITA).json["entries"]
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("protection_group.update", "refused"), ("protection_group.create", "accepted")]
    assert entries[1]["actor"]["user"] == "alice"
    assert clients["site-a"].get("/v1/audit-log", headers=BOB).json["entries"] == []
    synced = clients["site-b"].get("/v1/audit-log", headers=RITA).json["entries"]
    assert [(e["action"], e["outcome"]) for e in synced] == [
        ("protection_group.sync", "accepted")]


def test_internal_endpoints_need_the_service_role(sites):
    clients, _ = sites
    reply = clients["site-b"].put("/v1/internal/protection-groups/x", json={
        "document": {}, "expected_version": 0}, headers=ADMIN | {"X-Roles": "member"})
    assert reply.status_code == 403


def test_a_create_whose_answer_was_lost_is_found_on_the_next_attempt(sites):
    clients, links = sites
    links["site-a"].lose_next_answer = True
    lost = clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    assert lost.status_code == 503
    assert "may have taken the change" in lost.json["error"]["message"]
    again = clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    assert again.status_code == 409 and "caught up" in again.json["error"]["message"]
    assert groups(clients["site-a"]) == groups(clients["site-b"])
    assert [g["name"] for g in groups(clients["site-a"])] == ["prod-ecommerce-web"]


def test_a_delete_whose_answer_was_lost_is_caught_up_and_the_name_is_free_again(sites):
    clients, links = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    links["site-a"].lose_next_answer = True
    assert clients["site-a"].delete("/v1/protection-groups/prod-ecommerce-web",
                                    headers=ALICE).status_code == 503
    assert groups(clients["site-b"]) == []            # the peer took it
    # The coordinator still holds the group: creating its name again clashes there only.
    created = clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    assert created.status_code == 201, created.json
    assert groups(clients["site-a"]) == groups(clients["site-b"])
    assert len(groups(clients["site-a"])) == 1


def test_two_sites_creating_one_name_at_once_end_with_one_group_on_both(sites):
    clients, links = sites
    replies = racing(links, *((clients[site], "POST", "/v1/protection-groups", WEB)
                              for site in ("site-a", "site-b")))
    assert sorted(r.status_code for r in replies) == [201, 409]
    assert groups(clients["site-a"]) == groups(clients["site-b"])
    assert len(groups(clients["site-a"])) == 1


def test_a_refused_connection_changes_nothing_and_says_so(sites):
    clients, links = sites
    links["site-a"].down = True
    refused = clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    assert refused.status_code == 503
    assert "nothing was changed" in refused.json["error"]["message"]
    assert refused.json["error"]["details"]["since"]


def test_two_concurrent_project_wide_mappings_of_one_source_make_one(sites):
    clients, links = sites
    replies = racing(links, *((clients["site-a"], "POST", "/v1/resource-mappings",
                               {"kind": "network", "source": "prod-net", "target": target})
                              for target in ("dr-1", "dr-2")))
    assert sorted(r.status_code for r in replies) == [201, 409]
    for client in clients.values():
        assert len(client.get("/v1/resource-mappings", headers=ALICE).json[
            "resource_mappings"]) == 1


@pytest.mark.parametrize("change", [{"name": None}, {"volume_type": None},
                                    {"description": None}])
def test_a_required_field_cannot_be_set_to_null(sites, change):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    reply = clients["site-a"].patch("/v1/protection-groups/prod-ecommerce-web", json=change,
                                    headers=ALICE)
    assert reply.status_code == 400 and "cannot be null" in reply.json["error"]["message"]


def test_a_member_is_removed_however_its_id_is_written(sites):
    clients, _ = sites
    clients["site-a"].post("/v1/protection-groups", json=WEB, headers=ALICE)
    server = "6f1d2b9e-3c1a-4c55-9d0e-0f6a1b2c3d4e"
    clients["site-a"].post("/v1/protection-groups/prod-ecommerce-web/members",
                           json={"server_id": server}, headers=ALICE)
    written = server.upper().replace("-", "")
    assert clients["site-a"].delete(f"/v1/protection-groups/prod-ecommerce-web/members/"
                                    f"{written}", headers=ALICE).status_code == 204
    assert clients["site-a"].delete("/v1/protection-groups/prod-ecommerce-web/members/"
                                    "not-a-server", headers=ALICE).status_code == 404


def test_a_query_number_in_another_script_is_a_400(sites):
    clients, _ = sites
    reply = clients["site-a"].get("/v1/audit-log?limit=\u00b2", headers=ALICE)
    assert reply.status_code == 400 and "limit" in reply.json["error"]["message"]
