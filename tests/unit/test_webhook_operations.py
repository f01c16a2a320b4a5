"""Operations: checked, recorded, launched once, followed through workflow reports."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from site_recovery.webhook import db
from site_recovery.webhook.models import Site
from site_recovery.webhook.services import services
from site_recovery.workbooks import workflow_name
from tests.unit.webhook_sites import (
    ADMIN,
    ALICE,
    BOB,
    RITA,
    SERVICE,
    execution_of,
    held,
    planned_execution,
    report,
    user,
)

WEB = {"name": "web", "replication_type": "async", "primary_site": "site-a",
       "secondary_site": "site-b", "volume_type": "replicated-ssd"}
DB = {**WEB, "name": "db", "replication_type": "sync"}
DR_ADMIN = user("dr-admin", "admin", "admin", "dr_site_admin")


def peer_is(client, reachable):
    with db.transaction(services(client.application).sessions) as session:
        session.get(Site, "site-a").reachable = reachable


def launcher(client):
    return services(client.application).launcher


def setup_groups(sites, *bodies):
    clients, _ = sites
    for spec in bodies or (WEB,):
        assert clients["site-a"].post("/v1/protection-groups", json=spec,
                                      headers=ALICE).status_code == 201
    return clients["site-b"]


def protected(sites, *names):
    """The groups replicating, as their protect's workflow records it."""
    clients, _ = sites
    for name in names:
        group = clients["site-a"].get(f"/v1/protection-groups/{name}",
                                      headers=ALICE).json["protection_group"]
        assert clients["site-a"].put(f"/v1/internal/protection-groups/{group['id']}/state",
                                     json={"status": "protected"},
                                     headers=SERVICE).status_code == 200


def test_a_drill_runs_on_the_dr_site_starting_one_workflow(sites):
    dr = setup_groups(sites)
    reply = dr.post("/v1/protection-groups/web/test-failover",
                    json={"network_mapping": {"prod-net": "dr-test-net"}}, headers=ALICE)
    assert reply.status_code == 202, reply.json
    op = reply.json["operation"]
    assert (op["operation_type"], op["status"], op["total_protection_groups"],
            op["completed_count"], op["progress"]) == ("test_failover", "pending", 1, 0, 0)
    # in the answer when Mistral answers within start_wait; recorded just after otherwise
    started = shown(dr, op["id"], until=lambda o: o["mistral_execution_id"])
    assert started["mistral_execution_id"] == planned_execution(dr, op["id"])
    assert op["requested_by"]["user"] == "alice"
    ((workflow, given),) = launcher(dr).started
    assert workflow == workflow_name("test_failover")
    assert given["operation_id"] == op["id"]
    assert given["params"]["network_mapping"] == {"prod-net": "dr-test-net"}
    assert given["concurrency"] == 10          # engine.concurrency: groups run at once


def test_the_primary_site_points_to_the_site_that_recovers(sites):
    clients, _ = sites
    setup_groups(sites)
    reply = clients["site-a"].post("/v1/protection-groups/web/test-failover", headers=ALICE)
    assert reply.status_code == 409 and "recovers on site-b" in reply.json["error"]["message"]
    assert launcher(clients["site-a"]).started == []


def assert_one_operation_per_key(client, path: str, key: str):
    """The same key twice starts one operation and answers it twice; the same key for
    another kind of operation is refused."""
    headers = {**ALICE, "Idempotency-Key": key}
    first = client.post(path, headers=headers)
    again = client.post(path, headers=headers)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["operation"]["id"] == first.json["operation"]["id"]
    assert len(launcher(client).started) == 1
    other_kind = client.post("/v1/protection-groups/web/test-cleanup", headers=headers)
    assert other_kind.status_code == 409 and "use a new key" in other_kind.json["error"][
        "message"]


def test_the_same_idempotency_key_returns_the_same_operation_and_starts_nothing(sites):
    dr = setup_groups(sites)
    assert_one_operation_per_key(dr, "/v1/protection-groups/web/test-failover",
                                 "drill-2026-11-25")
    # Another project's identical key is another key.
    bob = dr.post("/v1/protection-groups/web/test-failover",
                  headers={**BOB, "Idempotency-Key": "drill-2026-11-25"})
    assert bob.status_code == 404


def test_an_unreachable_mistral_fails_the_request_and_records_it_never_started(sites):
    dr = setup_groups(sites)
    launcher(dr).down = True
    reply = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE)
    assert reply.status_code == 503 and "Mistral is unreachable" in reply.json["error"][
        "message"]
    (op,) = dr.get("/v1/operations", headers=RITA).json["operations"]
    assert op["status"] == "failed" and op["error"].startswith("never started")
    assert op["results"][0]["reason"] == "the workflow never started"


def test_planned_failover_needs_the_peer_and_unplanned_needs_force(sites):
    dr = setup_groups(sites)
    peer_is(dr, False)
    planned = dr.post("/v1/protection-groups/web/failover",
                      json={"failover_type": "planned"}, headers=ALICE)
    assert planned.status_code == 409 and "unreachable" in planned.json["error"]["message"]
    unforced = dr.post("/v1/protection-groups/web/failover",
                       json={"failover_type": "unplanned"}, headers=ALICE)
    assert unforced.status_code == 409 and "needs force" in unforced.json["error"]["message"]
    assert launcher(dr).started == []
    forced = dr.post("/v1/protection-groups/web/failover",
                     json={"failover_type": "unplanned", "force": True}, headers=ALICE)
    assert forced.status_code == 202
    op = forced.json["operation"]
    assert (op["force"], op["peer_reachable"], op["failover_type"]) == (True, False,
                                                                        "unplanned")
    refusals = [e for e in dr.get("/v1/audit-log", headers=RITA).json["entries"]
                if e["outcome"] == "refused"]
    assert [e["action"] for e in refusals] == ["operation.failover"] * 2


def test_roles_decide_who_may_start_what(sites):
    dr = setup_groups(sites)
    reader = dr.post("/v1/protection-groups/web/test-failover", headers=RITA)
    assert reader.status_code == 403
    member_site = dr.post("/v1/sites/site-a/failover",
                          json={"failover_type": "unplanned", "force": True}, headers=ALICE)
    assert member_site.status_code == 403
    admin_site = dr.post("/v1/sites/site-a/failover",
                         json={"failover_type": "unplanned", "force": True}, headers=ADMIN)
    assert admin_site.status_code == 403
    assert launcher(dr).started == []


def test_a_site_failover_fans_out_to_every_group_of_the_failed_site(sites):
    dr = setup_groups(sites, WEB, DB)
    protected(sites, "web", "db")
    peer_is(dr, False)
    reply = dr.post("/v1/sites/site-a/failover",
                    json={"failover_type": "unplanned", "force": True}, headers=DR_ADMIN)
    assert reply.status_code == 202, reply.json
    op = reply.json["operation"]
    assert (op["operation_type"], op["scope"], op["site"], op["total_protection_groups"]) \
        == ("site_failover", "site", "site-a", 2)
    (( _, given),) = launcher(dr).started
    assert len(given["protection_group_ids"]) == 2
    itself = dr.post("/v1/sites/site-b/failover",
                     json={"failover_type": "unplanned", "force": True}, headers=DR_ADMIN)
    assert itself.status_code == 409 and "fail it over from its peer" in itself.json[
        "error"]["message"]
    shown = dr.get(f"/v1/operations/{op['id']}", headers=DR_ADMIN)
    assert shown.status_code == 200
    # The groups' project sees what happened to them; another project does not.
    assert dr.get(f"/v1/operations/{op['id']}", headers=RITA).status_code == 200
    assert dr.get(f"/v1/operations/{op['id']}", headers=BOB).status_code == 404


def test_operations_and_audit_entries_are_listed_by_scope_and_by_target(sites):
    dr = setup_groups(sites, WEB, DB)
    protected(sites, "web", "db")
    drill = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json[
        "operation"]
    peer_is(dr, False)
    site_op = dr.post("/v1/sites/site-a/failover", json={
        "failover_type": "unplanned", "force": True}, headers=DR_ADMIN).json["operation"]

    def listed(query: str) -> list[str]:
        reply = dr.get(f"/v1/operations?all_projects=true&{query}", headers=DR_ADMIN)
        assert reply.status_code == 200, reply.json
        return [op["id"] for op in reply.json["operations"]]

    assert listed("scope=site") == [site_op["id"]]
    assert listed("scope=protection_group") == [drill["id"]]
    wrong = dr.get("/v1/operations?scope=everything", headers=DR_ADMIN)
    assert wrong.status_code == 400 and "scope must be one of protection_group, site" in \
        wrong.json["error"]["message"]
    entries = dr.get(f"/v1/audit-log?target={drill['id']}", headers=ALICE).json["entries"]
    assert entries and {e["target"] for e in entries} == {drill["id"]}
    everything = dr.get("/v1/audit-log", headers=ALICE).json["entries"]
    assert len(everything) > len(entries)


def test_a_site_failover_takes_protected_groups_only_and_says_why_it_skipped_the_rest(
        sites):
    dr = setup_groups(sites, WEB, DB)
    peer_is(dr, False)
    nothing = dr.post("/v1/sites/site-a/failover", headers=DR_ADMIN,
                      json={"failover_type": "unplanned", "force": True})
    assert nothing.status_code == 409, nothing.json
    assert "not protected (status unprotected)" in nothing.json["error"]["message"]
    assert launcher(dr).started == []
    protected(sites, "db")
    op = dr.post("/v1/sites/site-a/failover", headers=DR_ADMIN,
                 json={"failover_type": "unplanned", "force": True}).json["operation"]
    assert [r["protection_group"] for r in op["results"]] == ["db"]
    assert op["params"]["skipped"] == {
        "web": "not protected (status unprotected): it has no replica to recover"}
    (( _, given),) = launcher(dr).started
    assert given["params"]["skipped"] == op["params"]["skipped"]


def test_workflow_reports_make_the_progress_users_see_and_a_retry_takes_the_failures(sites):
    dr = setup_groups(sites, WEB, DB)
    protected(sites, "web", "db")
    peer_is(dr, False)
    op = dr.post("/v1/sites/site-a/failover", json={"failover_type": "unplanned",
                                                    "force": True},
                 headers=DR_ADMIN).json["operation"]
    web, db_ = (r["protection_group_id"] for r in op["results"])
    assert report(dr, op["id"], status="running").json == {"operation_id": op["id"]}
    assert held(dr, op["id"])["status"] == "running"
    report(dr, op["id"], protection_group_id=web, status="completed",
           step="stack_created", recovery_point="pg-web.1234",
           rpo_achieved_seconds=42.0, timings={"heat": 12.5})
    half = held(dr, op["id"])
    assert (half["status"], half["completed_count"], half["progress"]) == ("running", 1, 50)
    report(dr, op["id"], protection_group_id=db_, status="failed",
           step="manage_volumes", reason="volume type replicated-ssd unknown")
    done = held(dr, op["id"])
    assert (done["status"], done["completed_count"], done["failed_count"],
            done["progress"]) == ("partially_failed", 1, 1, 100)
    failed = next(r for r in done["results"] if r["status"] == "failed")
    assert (failed["step"], failed["reason"]) == ("manage_volumes",
                                                  "volume type replicated-ssd unknown")
    assert done["rpo_achieved_seconds"] == 42.0
    late = report(dr, op["id"], status="running")
    assert late.status_code == 409
    # The DR admin acts on another project's groups only when asking for all projects.
    refused = dr.post(f"/v1/operations/{op['id']}/retry", headers=DR_ADMIN)
    assert refused.status_code == 409 and "another project" in refused.json["error"][
        "message"]
    retried = dr.post(f"/v1/operations/{op['id']}/retry?all_projects=true", headers=DR_ADMIN)
    assert retried.status_code == 202
    again = retried.json["operation"]
    assert again["total_protection_groups"] == 1
    assert again["results"][0]["protection_group_id"] == db_
    assert again["params"]["retry_of"] == op["id"]
    assert dr.post(f"/v1/operations/{again['id']}/retry?all_projects=true",
                   headers=DR_ADMIN).status_code == 409


def test_progress_reports_need_the_service_role_and_a_known_group(sites):
    dr = setup_groups(sites)
    op = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json["operation"]
    execution = execution_of(dr, op["id"])
    assert dr.post(f"/v1/internal/executions/{execution}/progress", json={
        "status": "running"}, headers=ALICE).status_code == 403
    unknown = report(dr, op["id"], protection_group_id="nope", status="completed")
    assert unknown.status_code == 404
    assert report(dr, "no-such-op", status="running").status_code == 403


def shown(dr, op_id, within=5.0, until=lambda op: True):
    deadline = time.monotonic() + within
    while True:
        op = dr.get(f"/v1/operations/{op_id}", headers=RITA).json["operation"]
        if until(op) or time.monotonic() > deadline:
            return op
        time.sleep(0.05)


def test_a_slow_mistral_gets_a_202_at_once_and_the_execution_is_recorded_later(sites):
    dr = setup_groups(sites)
    launcher(dr).gate = threading.Event()
    began = time.monotonic()
    reply = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE)
    # answered after start_wait (1 s), not after Mistral (the gate holds it 10 s)
    assert reply.status_code == 202 and time.monotonic() - began < 5
    op = reply.json["operation"]
    assert (op["status"], op["mistral_execution_id"]) == ("pending", None)
    launcher(dr).gate.set()
    later = shown(dr, op["id"], until=lambda o: o["mistral_execution_id"])
    assert later["mistral_execution_id"] == planned_execution(dr, op["id"])
    assert later["status"] == "pending"


def test_a_start_that_fails_after_the_answer_marks_the_operation_never_started(sites):
    dr = setup_groups(sites)
    launcher(dr).gate, launcher(dr).down = threading.Event(), True
    op = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json["operation"]
    launcher(dr).gate.set()
    failed = shown(dr, op["id"], until=lambda o: o["status"] == "failed")
    assert failed["status"] == "failed" and "Mistral is unreachable" in failed["error"]


def test_a_start_lost_with_its_worker_is_marked_never_started(sites):
    dr = setup_groups(sites)
    launcher(dr).gate = threading.Event()          # never answers within the test
    op = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json["operation"]
    operations = services(dr.application).operations
    assert operations.settle_starts(300) == 0            # not old enough yet
    later = datetime.now(UTC) + timedelta(seconds=120)
    assert operations.settle_starts(300, now=later) == 0, "Mistral has none: wait"
    assert operations.settle_starts(60, now=later) == 1
    lost = shown(dr, op["id"])
    assert lost["status"] == "failed" and "start it again" in lost["error"]
    launcher(dr).gate.set()
    services(dr.application).operations.close()
    # The start that was still waiting asked Mistral, and cancelled what it started.
    assert launcher(dr).states == {planned_execution(dr, op["id"]): (
        "CANCELLED", "cancelled by the service", None)}


def test_a_workflow_that_mistral_ended_in_error_fails_its_operation(sites):
    dr = setup_groups(sites)
    op = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json["operation"]
    operations = services(dr.application).operations
    assert operations.follow_executions() == 0
    launcher(dr).states[planned_execution(dr, op["id"])] = (
        "ERROR", "Failed to run action std.noop", None)
    assert operations.follow_executions() == 1
    failed = shown(dr, op["id"])
    assert failed["status"] == "failed" and "ended ERROR" in failed["error"]
    assert "std.noop" in failed["results"][0]["reason"]
    # The group is free for the next drill.
    assert dr.post("/v1/protection-groups/web/test-failover",
                   headers=ALICE).status_code == 202


def test_a_start_whose_answer_is_lost_is_found_never_doubled(sites):
    """Mistral took the start but its answer timed out: the operation stays pending and
    keeps its key (the same request finds it; nothing more starts), and the housekeeper
    records the execution Mistral has under the operation's planned id."""
    dr = setup_groups(sites)
    launcher(dr).lose_answer = "after"
    key = {**ALICE, "Idempotency-Key": "drill-1"}
    op = dr.post("/v1/protection-groups/web/test-failover", headers=key).json["operation"]
    assert (op["status"], op["mistral_execution_id"]) == ("pending", None)
    again = dr.post("/v1/protection-groups/web/test-failover", headers=key)
    assert again.status_code == 200 and again.json["operation"]["id"] == op["id"]
    operations = services(dr.application).operations
    later = datetime.now(UTC) + timedelta(seconds=120)
    assert operations.settle_starts(300, now=later) == 1
    found = held(dr, op["id"])
    assert found["mistral_execution_id"] == planned_execution(dr, op["id"])
    assert found["status"] == "pending" and len(launcher(dr).started) == 1
    # Its actions are admitted as the operation's own.
    assert report(dr, op["id"], status="running").status_code == 200


def test_a_start_that_mistral_never_took_is_given_up_once_mistral_says_so(sites):
    dr = setup_groups(sites)
    launcher(dr).lose_answer = "before"
    op = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json["operation"]
    operations = services(dr.application).operations
    launcher(dr).down = True
    later = datetime.now(UTC) + timedelta(seconds=600)
    assert operations.settle_starts(300, now=later) == 0, "Mistral away: nothing decided"
    launcher(dr).down = False
    assert operations.settle_starts(300, now=later) == 1
    lost = held(dr, op["id"])
    assert lost["status"] == "failed" and "start it again" in lost["error"]
    assert launcher(dr).started == []


def test_an_idempotency_key_answers_only_the_request_it_came_with(sites):
    dr = setup_groups(sites, WEB, DB)
    key = {**ALICE, "Idempotency-Key": "drill-web"}
    first = dr.post("/v1/protection-groups/web/test-failover", headers=key)
    assert dr.post("/v1/protection-groups/web/test-failover", headers=key).json[
        "operation"]["id"] == first.json["operation"]["id"]
    for path, body in (("/v1/protection-groups/db/test-failover", None),
                       ("/v1/protection-groups/web/test-failover",
                        {"network_mapping": {"prod-net": "other-net"}})):
        other = dr.post(path, json=body, headers=key)
        assert other.status_code == 422, other.json
        assert "for another request" in other.json["error"]["message"]
    assert len(launcher(dr).started) == 1


def test_an_operation_whose_workflow_will_report_no_more_ends_naming_why(sites):
    """Deleted in Mistral, or ended SUCCESS without reporting its groups' end (once it
    had a minute to): each ends failed, saying so, and frees its group."""
    dr = setup_groups(sites, WEB, DB)
    deleted = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json[
        "operation"]
    silent = dr.post("/v1/protection-groups/db/test-failover", headers=ALICE).json[
        "operation"]
    operations, mistral = services(dr.application).operations, launcher(dr)
    del mistral.roots[planned_execution(dr, deleted["id"])]
    now = datetime.now(UTC)
    mistral.states[planned_execution(dr, silent["id"])] = ("SUCCESS", None, now)
    assert operations.follow_executions(now=now) == 1, "SUCCESS a moment ago: not yet"
    assert operations.follow_executions(now=now + timedelta(seconds=120)) == 1
    gone, quiet = held(dr, deleted["id"]), held(dr, silent["id"])
    assert gone["status"] == "failed" and "no longer exists (deleted)" in gone["error"]
    assert quiet["status"] == "failed" and "without reporting" in quiet["error"]
    assert dr.post("/v1/protection-groups/web/test-failover",
                   headers=ALICE).status_code == 202


def test_a_cancelled_operation_ends_its_execution_and_frees_its_group(sites):
    dr = setup_groups(sites)
    op = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json["operation"]
    path = f"/v1/operations/{op['id']}/cancel"
    assert dr.post(path, headers=RITA).status_code == 403, "a reader may not"
    assert dr.post(path, headers=BOB).status_code == 404, "another project's"
    assert held(dr, op["id"])["status"] == "pending"
    cancelled = dr.post(path, headers=ALICE)
    assert cancelled.status_code == 200
    ended = cancelled.json["operation"]
    assert ended["status"] == "failed" and ended["error"].startswith("cancelled by alice")
    assert ended["results"][0]["reason"].startswith("cancelled by alice")
    execution = planned_execution(dr, op["id"])
    assert launcher(dr).states[execution][0] == "CANCELLED"
    # Its actions, asking to act, are told it is over; a second cancel has nothing to do.
    assert report(dr, op["id"], status="running").status_code == 409
    assert dr.post(path, headers=ALICE).status_code == 409
    assert dr.post("/v1/protection-groups/web/test-failover",
                   headers=ALICE).status_code == 202


def test_a_group_under_an_operation_refuses_a_second_one_but_not_a_recovery(sites):
    dr = setup_groups(sites, WEB, DB)
    protected(sites, "web", "db")
    drill = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json[
        "operation"]
    second = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE)
    assert second.status_code == 409 and drill["id"] in second.json["error"]["message"]
    peer_is(dr, False)
    # A drill never holds back a failover of the same group.
    failover = dr.post("/v1/protection-groups/web/failover",
                       json={"failover_type": "unplanned", "force": True}, headers=ALICE)
    assert failover.status_code == 202
    site = dr.post("/v1/sites/site-a/failover", json={"failover_type": "unplanned",
                                                      "force": True}, headers=DR_ADMIN)
    assert site.status_code == 202
    op = site.json["operation"]
    assert [r["protection_group"] for r in op["results"]] == ["db"]
    assert list(op["params"]["skipped"]) == ["web"]    # already failing over
    assert "under way" in op["params"]["skipped"]["web"]
    clients, _ = sites
    # Not even with force, which only leaves its replication in place.
    busy = clients["site-a"].delete("/v1/protection-groups/web?force=true", headers=ALICE)
    assert busy.status_code == 409 and "under way" in busy.json["error"]["message"]


def test_a_retry_acts_only_on_groups_the_caller_may_act_on(sites):
    dr = setup_groups(sites)
    peer_is(dr, False)
    op = dr.post("/v1/protection-groups/web/failover?all_projects=true",
                 json={"failover_type": "unplanned", "force": True},
                 headers=ADMIN).json["operation"]
    report(dr, op["id"], protection_group_id=op["results"][0]["protection_group_id"],
           status="failed", reason="boom")
    # Another member of the admin's project sees the operation it asked for...
    colleague = user("carol", "admin", "member")
    assert dr.get(f"/v1/operations/{op['id']}", headers=colleague).status_code == 200
    # ...but cannot act on ecommerce's group through it.
    refused = dr.post(f"/v1/operations/{op['id']}/retry", headers=colleague)
    assert refused.status_code == 409
    assert len(launcher(dr).started) == 1


def test_a_key_whose_operation_never_started_starts_it_when_repeated(sites):
    dr = setup_groups(sites)
    headers = {**ALICE, "Idempotency-Key": "drill-once"}
    launcher(dr).down = True
    assert dr.post("/v1/protection-groups/web/test-failover",
                   headers=headers).status_code == 503
    launcher(dr).down = False
    again = dr.post("/v1/protection-groups/web/test-failover", headers=headers)
    assert again.status_code == 202 and len(launcher(dr).started) == 1
    repeated = dr.post("/v1/protection-groups/web/test-failover", headers=headers)
    assert repeated.status_code == 200
    assert repeated.json["operation"]["id"] == again.json["operation"]["id"]


# -- protect: on the group's primary site ------------------------------------------------------

def swap_sites(clients, group_id):
    """The group's sites swapped, as a failover's workflow records it."""
    reply = clients["site-b"].put(f"/v1/internal/protection-groups/{group_id}/state", json={
        "status": "failed_over", "primary_site": "site-b", "secondary_site": "site-a"},
        headers=SERVICE)
    assert reply.status_code == 200, reply.json


def test_protect_runs_on_the_primary_site_starting_the_protect_workflow(sites):
    clients, _ = sites
    setup_groups(sites, WEB, DB)
    primary = clients["site-a"]
    reply = primary.post("/v1/protection-groups/web/protect", headers=ALICE)
    assert reply.status_code == 202, reply.json
    op = reply.json["operation"]
    assert (op["operation_type"], op["scope"], op["status"], op["protection_group"],
            op["total_protection_groups"]) == ("protect", "protection_group", "pending",
                                               "web", 1)
    assert shown(primary, op["id"], until=lambda o: o["mistral_execution_id"])[
        "mistral_execution_id"] == planned_execution(primary, op["id"])
    ((workflow, given),) = launcher(primary).started
    assert workflow == workflow_name("protect")
    assert given == {"operation_id": op["id"], "operation_type": "protect",
                     "protection_group_ids": [op["protection_group_id"]],
                     "source_site": "site-a", "target_site": "site-b", "params": {},
                     "concurrency": 10}
    # An empty JSON body is as good as none; a protect takes no options.
    unknown = primary.post("/v1/protection-groups/db/protect", json={"force": True},
                           headers=ALICE)
    assert unknown.status_code == 400
    empty = primary.post("/v1/protection-groups/db/protect", json={}, headers=ALICE)
    assert empty.status_code == 202, empty.json


def test_the_dr_site_points_to_the_primary_for_a_protect(sites):
    dr = setup_groups(sites)
    reply = dr.post("/v1/protection-groups/web/protect", headers=ALICE)
    assert reply.status_code == 409
    assert reply.json["error"]["message"] == "protection group web runs on site-a: protect it " \
        "there"
    assert reply.json["error"]["details"]["site"] == "site-a"
    assert launcher(dr).started == []


def test_a_reader_may_not_protect(sites):
    clients, _ = sites
    setup_groups(sites)
    reply = clients["site-a"].post("/v1/protection-groups/web/protect", headers=RITA)
    assert reply.status_code == 403 and reply.json["error"]["details"]["rule"] == \
        "protector:write"
    assert launcher(clients["site-a"]).started == []


def test_a_protect_with_the_same_idempotency_key_returns_the_same_operation(sites):
    clients, _ = sites
    setup_groups(sites)
    assert_one_operation_per_key(clients["site-a"], "/v1/protection-groups/web/protect",
                                 "protect-web-1")


def test_a_protect_and_any_other_operation_of_the_group_wait_for_each_other(sites):
    clients, _ = sites
    setup_groups(sites)
    site_a, site_b = clients["site-a"], clients["site-b"]
    protect = site_a.post("/v1/protection-groups/web/protect", headers=ALICE).json[
        "operation"]
    assert protect["operation_type"] == "protect"
    # One operation at a time per group on the pair: the drill on the DR site waits for
    # the protect under way on the primary.
    refused = site_b.post("/v1/protection-groups/web/test-failover", headers=ALICE)
    assert refused.status_code == 409, refused.json
    message = refused.json["error"]["message"]
    assert protect["id"] in message and "on peer site site-a" in message
    assert [o["operation_type"] for o in site_b.get("/v1/operations", headers=ALICE).json[
        "operations"]] == []
    report(site_a, protect["id"], protection_group_id=protect["protection_group_id"],
           status="completed")
    drill = site_b.post("/v1/protection-groups/web/test-failover", headers=ALICE).json[
        "operation"]
    # And the other way round: no protect on the primary while the drill runs.
    refused_protect = site_a.post("/v1/protection-groups/web/protect", headers=ALICE)
    assert refused_protect.status_code == 409
    assert drill["id"] in refused_protect.json["error"]["message"]
    # Each site also holds its own operations: with the sites swapped, site-b would
    # reprotect the group, and waits for the drill it has under way.
    swap_sites(clients, protect["protection_group_id"])
    peer_is(site_b, True)
    refused_here = site_b.post("/v1/protection-groups/web/reprotect", headers=ALICE)
    assert refused_here.status_code == 409
    assert drill["id"] in refused_here.json["error"]["message"]


def test_two_sites_admitting_one_group_at_the_same_moment_never_both_run(sites):
    clients, _ = sites
    setup_groups(sites)
    site_a, site_b = clients["site-a"], clients["site-b"]
    lifecycle = services(site_b.application).operations
    record, meanwhile = lifecycle._record, {}

    def record_then_the_peer_admits_its_own(*args):
        recorded = record(*args)      # the drill is recorded; site-a's protect comes now
        meanwhile["protect"] = site_a.post("/v1/protection-groups/web/protect",
                                           headers=ALICE)
        return recorded

    lifecycle._record = record_then_the_peer_admits_its_own
    drill = site_b.post("/v1/protection-groups/web/test-failover", headers=ALICE)
    lifecycle._record = record
    # site-a asked after site-b had recorded its drill: it steps back, and nothing of its
    # protect is listed; site-b then asks and finds nothing held: one of the two runs.
    refused = meanwhile["protect"]
    assert refused.status_code == 409, refused.json
    assert drill.json["operation"]["id"] in refused.json["error"]["message"]
    assert "on peer site site-b" in refused.json["error"]["message"]
    assert site_a.get("/v1/operations", headers=ALICE).json["operations"] == []
    assert drill.status_code == 202, drill.json
    assert held(site_b, drill.json["operation"]["id"])["status"] == "pending"
    refusals = [e for e in site_a.get("/v1/audit-log", headers=RITA).json["entries"]
                if e["outcome"] == "refused"]
    assert [e["action"] for e in refusals] == ["operation.protect"]
    assert drill.json["operation"]["id"] in refusals[0]["reason"]


def test_the_peer_is_asked_only_by_its_peer_which_groups_are_busy(sites):
    clients, _ = sites
    setup_groups(sites)
    reply = clients["site-a"].post("/v1/internal/busy", headers=ALICE, json={
        "operation_type": "failover", "groups": ["x"]})
    assert reply.status_code == 403


def test_a_retry_of_a_failed_protect_protects_the_failed_group_again_on_the_primary(sites):
    clients, _ = sites
    setup_groups(sites)
    primary = clients["site-a"]
    op = primary.post("/v1/protection-groups/web/protect", headers=ALICE).json["operation"]
    web = op["protection_group_id"]
    report(primary, op["id"], protection_group_id=web, status="failed",
           step="protect", reason="volume type not replicated")
    assert held(primary, op["id"])["status"] == "failed"
    retried = primary.post(f"/v1/operations/{op['id']}/retry", headers=ALICE)
    assert retried.status_code == 202, retried.json
    again = retried.json["operation"]
    assert (again["operation_type"], again["params"]["retry_of"]) == ("protect", op["id"])
    assert [r["protection_group_id"] for r in again["results"]] == [web]
    shown(primary, again["id"], until=lambda o: o["mistral_execution_id"])
    assert [(workflow, given["operation_id"], given["protection_group_ids"],
             given["source_site"], given["target_site"])
            for workflow, given in launcher(primary).started] == [
        (workflow_name("protect"), op["id"], [web], "site-a", "site-b"),
        (workflow_name("protect"), again["id"], [web], "site-a", "site-b")]
    # With the sites swapped, the group no longer runs here: nothing to retry.
    report(primary, again["id"], protection_group_id=web, status="failed", reason="boom")
    swap_sites(clients, web)
    elsewhere = primary.post(f"/v1/operations/{again['id']}/retry", headers=ALICE)
    assert elsewhere.status_code == 409 and "run elsewhere" in elsewhere.json["error"][
        "message"]


def test_a_key_repeated_while_its_operation_is_taken_back_is_told_to_try_again(sites):
    """The first request recorded the operation and is asking the peer, which holds the
    group; the same key comes again, and the operation is withdrawn meanwhile."""
    dr = setup_groups(sites)
    lifecycle = services(dr.application).operations
    lifecycle.existing = lambda *args: "withdrawn-operation-id"
    again = dr.post("/v1/protection-groups/web/test-failover", headers={
        **ALICE, "Idempotency-Key": "drill-web-1"})
    assert again.status_code == 409, again.json
    assert "taken back" in again.json["error"]["message"]
    assert "try again" in again.json["error"]["message"]
    assert dr.get("/v1/operations", headers=ALICE).json["operations"] == []
