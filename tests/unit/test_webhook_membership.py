"""Members that follow replication, unprotect, and deleting a group that may replicate: the
service's side (two linked sites, Mistral recorded)."""

from __future__ import annotations

import uuid

from site_recovery.webhook import db
from site_recovery.webhook.models import Site
from site_recovery.webhook.services import services
from site_recovery.workbooks import workflow_name
from tests.unit.test_webhook_operations import DB, WEB, launcher, protected, setup_groups
from tests.unit.webhook_sites import ALICE, RITA, SERVICE

SERVER, OTHER = str(uuid.uuid4()), str(uuid.uuid4())


def members(client, group="web") -> list[str]:
    return [m["server_id"] for m in client.get(f"/v1/protection-groups/{group}/members",
                                               headers=ALICE).json["members"]]


def add(client, server=SERVER, group="web"):
    return client.post(f"/v1/protection-groups/{group}/members",
                       json={"server_id": server}, headers=ALICE)


def started(client) -> list[tuple[str, list[str]]]:
    return [(workflow, given["protection_group_ids"])
            for workflow, given in launcher(client).started]


def group_id(client, group="web") -> str:
    return client.get(f"/v1/protection-groups/{group}", headers=ALICE).json[
        "protection_group"]["id"]


def test_a_member_of_an_unprotected_group_is_only_recorded(sites):
    clients, _ = sites
    setup_groups(sites)
    reply = add(clients["site-a"])
    assert reply.status_code == 201, reply.json
    assert "operation" not in reply.json
    assert started(clients["site-a"]) == []
    assert clients["site-a"].delete(f"/v1/protection-groups/web/members/{SERVER}",
                                    headers=ALICE).status_code == 204


def test_a_member_added_to_a_protected_group_starts_its_protect(sites):
    clients, _ = sites
    setup_groups(sites)
    protected(sites, "web")
    reply = add(clients["site-a"])
    assert reply.status_code == 201, reply.json
    op = reply.json["operation"]
    assert (op["operation_type"], op["protection_group"], op["requested_by"]["user"]) == (
        "protect", "web", "alice")
    assert reply.json["member"]["server_id"] == SERVER
    assert started(clients["site-a"]) == [(workflow_name("protect"),
                                           [group_id(clients["site-a"])])]
    assert members(clients["site-b"]) == [SERVER]            # recorded on both sites


def test_volumes_that_do_not_replicate_the_groups_way_are_refused_and_nothing_changes(
        sites):
    clients, _ = sites
    setup_groups(sites)
    protected(sites, "web")
    why = (f"these volumes cannot join a group replicating async: vm-{SERVER[:8]}: volume "
           "scratch has volume type 'standard', which is not replication-enabled")
    services(clients["site-a"].application).references.unreplicated[SERVER] = why
    reply = add(clients["site-a"])
    assert (reply.status_code, reply.json["error"]["message"]) == (400, why)
    assert members(clients["site-a"]) == members(clients["site-b"]) == []
    assert started(clients["site-a"]) == []


def test_a_member_change_while_an_operation_holds_the_group_is_refused_first(sites):
    clients, _ = sites
    setup_groups(sites)
    protected(sites, "web")
    assert add(clients["site-a"]).status_code == 201        # its protect is under way
    protect = launcher(clients["site-a"]).started[0][1]["operation_id"]
    busy = add(clients["site-a"], OTHER)
    assert busy.status_code == 409
    assert busy.json["error"]["message"] == (
        f"operation {protect} (protect) is under way on protection group web; change its "
        "members once it has ended")
    removed = clients["site-a"].delete(f"/v1/protection-groups/web/members/{SERVER}",
                                       headers=ALICE)
    assert removed.status_code == 409
    assert members(clients["site-a"]) == [SERVER]


def test_an_operation_on_the_peer_site_holds_the_group_too(sites):
    clients, _ = sites
    setup_groups(sites)
    protected(sites, "web")
    drill = clients["site-b"].post("/v1/protection-groups/web/test-failover", json={},
                                   headers=ALICE).json["operation"]["id"]
    busy = add(clients["site-a"])
    assert busy.status_code == 409
    assert f"operation {drill} (test_failover) is under way" in busy.json["error"]["message"]
    assert members(clients["site-a"]) == []


def test_a_member_removed_from_a_protected_group_on_its_primary_starts_its_protect(sites):
    clients, _ = sites
    setup_groups(sites)
    assert add(clients["site-a"]).status_code == 201
    protected(sites, "web")
    elsewhere = clients["site-b"].delete(f"/v1/protection-groups/web/members/{SERVER}",
                                         headers=ALICE)
    assert elsewhere.status_code == 409
    assert elsewhere.json["error"]["message"] == (
        "protection group web replicates from site-a: remove its members there, where its "
        "replication follows them")
    reply = clients["site-a"].delete(f"/v1/protection-groups/web/members/{SERVER}",
                                     headers=ALICE)
    assert reply.status_code == 202, reply.json
    assert reply.json["operation"]["operation_type"] == "protect"
    assert members(clients["site-b"]) == []


def test_a_protect_that_cannot_start_leaves_the_member_recorded_and_says_so(sites):
    clients, _ = sites
    setup_groups(sites)
    protected(sites, "web")
    launcher(clients["site-a"]).down = True
    reply = add(clients["site-a"])
    assert reply.status_code == 201
    assert reply.json["operation"] is None
    assert reply.json["protect"].startswith("not started: Mistral is unreachable")
    assert reply.json["protect"].endswith(
        "openstack protector protection-group protect web")
    assert members(clients["site-a"]) == [SERVER]


def test_unprotect_runs_on_the_primary_for_a_writer_and_never_on_a_failed_over_group(sites):
    clients, _ = sites
    setup_groups(sites, WEB, DB)
    protected(sites, "web", "db")
    assert clients["site-a"].post("/v1/protection-groups/web/unprotect",
                                  headers=RITA).status_code == 403
    elsewhere = clients["site-b"].post("/v1/protection-groups/web/unprotect", headers=ALICE)
    assert (elsewhere.status_code, elsewhere.json["error"]["message"]) == (
        409, "protection group web runs on site-a: unprotect it there")
    away = clients["site-a"].post("/v1/protection-groups/web/unprotect", headers=ALICE)
    assert away.status_code == 409, "the DR array's replica is removed too: it needs site-b"
    assert "an unprotect needs peer site site-b" in away.json["error"]["message"]
    assert started(clients["site-a"]) == []
    with db.transaction(services(clients["site-a"].application).sessions) as session:
        session.get(Site, "site-b").reachable = True
    reply = clients["site-a"].post("/v1/protection-groups/web/unprotect", headers=ALICE)
    assert reply.status_code == 202, reply.json
    assert reply.json["operation"]["operation_type"] == "unprotect"
    assert started(clients["site-a"]) == [(workflow_name("unprotect"),
                                           [group_id(clients["site-a"])])]

    clients["site-a"].put(f"/v1/internal/protection-groups/{group_id(clients['site-a'], 'db')}"
                          "/state", json={"status": "failed_over"}, headers=SERVICE)
    refused = clients["site-a"].post("/v1/protection-groups/db/unprotect", headers=ALICE)
    assert refused.status_code == 409
    assert "fail it back first (openstack dr failback db)" in refused.json["error"]["message"]


def test_the_dr_site_takes_the_unprotect_peer_step(sites):
    clients, _ = sites
    setup_groups(sites)
    reply = clients["site-b"].post("/v1/internal/peer-steps", headers=SERVICE, json={
        "protection_group_id": group_id(clients["site-b"]), "step": "unprotect",
        "key": "task-1.0", "requested_by": {"site": "site-a"}})
    assert reply.status_code == 202, reply.json
    assert reply.json["operation"]["params"]["step"] == "unprotect"
    assert started(clients["site-b"])[0][0] == workflow_name("peer_step")


def test_a_group_that_may_replicate_is_deleted_only_unprotected_or_with_force(sites):
    clients, _ = sites
    setup_groups(sites, WEB, DB)
    protected(sites, "web")
    refused = clients["site-b"].delete("/v1/protection-groups/web", headers=ALICE)
    assert refused.status_code == 409
    assert refused.json["error"]["message"] == (
        "protection group web is protected: its replication (Cinder group, array pgroup or "
        "pod) is in place; unprotect it first: openstack protector protection-group "
        "unprotect web. Or delete it with --force (force=true), which leaves that "
        "replication in place")
    assert clients["site-a"].get("/v1/protection-groups/web", headers=ALICE).status_code == 200
    assert clients["site-a"].delete("/v1/protection-groups/db",
                                    headers=ALICE).status_code == 204   # unprotected

    assert clients["site-b"].delete("/v1/protection-groups/web?force=true",
                                    headers=ALICE).status_code == 204
    for site in ("site-a", "site-b"):
        assert clients[site].get("/v1/protection-groups/web", headers=ALICE).status_code == 404
    entries = clients["site-a"].get("/v1/audit-log", headers=ALICE).json["entries"]
    deleted = next(e for e in entries if e["action"] == "protection_group.delete"
                   and e["outcome"] == "accepted" and e["details"]["values"])
    assert deleted["details"]["values"] == {"force": True, "replication": "left in place"}
