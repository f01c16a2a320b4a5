"""Scheduled drills: a group's drill schedule kept as a Mistral cron trigger on its DR
site; the trigger's run starts the group's drill through the same checks as a tenant's,
waits, keeps and checks its report, cleans up and records how it went; and nothing else
is heard on those routes."""

from __future__ import annotations

import pytest

from site_recovery import workbooks
from site_recovery.core import outcome
from site_recovery.core.schedule import cron_pattern
from site_recovery.webhook.launcher import Root
from site_recovery.webhook.services import services
from tests.unit.test_webhook_operations import WEB, launcher, protected, setup_groups
from tests.unit.test_webhook_report import reading_heat
from tests.unit.webhook_sites import ALICE, RITA, SERVICE, report

WORKFLOW = workbooks.workflow_name("scheduled_drill")
SCHEDULED = {**WEB, "drill_schedule": "0 3 * * 6"}


def engine_round(client) -> list[str]:
    return services(client.application).schedules.reconcile()


def triggers(client) -> dict:
    return launcher(client).triggers_held


def scheduled_run(client, group_id: str, execution_id: str = "run-1", *,
                  project: str = "svc", workflow: str = WORKFLOW) -> str:
    """A run of the cron trigger, as Mistral records it."""
    launcher(client).roots[execution_id] = Root(execution_id, project, workflow,
                                                {"group_id": group_id})
    return execution_id


def step(client, method: str, path: str, json=None, headers=SERVICE):
    return client.open(f"/v1/internal/scheduled-drills/{path}", method=method, json=json,
                       headers=headers)


@pytest.mark.parametrize("pattern, wrong", [
    ("0 3 * *", "five fields"), ("61 3 * * 6", "minute '61'"), ("0 3 * * 6-2", "backwards"),
    ("0 3 * * */0", "must not be 0"), ("0 3 L * *", "day of month 'l'")])
def test_a_bad_schedule_is_refused_naming_what_is_wrong(sites, pattern, wrong):
    clients, _ = sites
    dr = setup_groups(sites)
    reply = clients["site-a"].patch("/v1/protection-groups/web", headers=ALICE,
                                    json={"drill_schedule": pattern})
    assert reply.status_code == 400 and wrong in str(reply.json), reply.json
    assert dr.get("/v1/protection-groups/web", headers=ALICE).json[
        "protection_group"]["drill_schedule"] is None


def test_cron_patterns_people_write_are_taken():
    for pattern in ("0 3 * * 6", "*/15 * * * *", "30 2 1,15 * mon-fri", "0 0 * jan,jul sun"):
        assert cron_pattern(pattern) == pattern


def test_the_dr_site_keeps_a_trigger_while_the_group_is_scheduled_and_protected(sites):
    clients, _ = sites
    dr = setup_groups(sites, SCHEDULED)
    group_id = dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]["id"]
    assert engine_round(dr) == [] and triggers(dr) == {}           # not protected yet
    protected(sites, "web")
    name = f"site_recovery.drill.{group_id}"
    assert engine_round(dr) == [f"cron trigger {name} runs {WORKFLOW} on '0 3 * * 6'"]
    assert triggers(dr) == {name: ("0 3 * * 6", WORKFLOW, {"group_id": group_id})}
    assert engine_round(dr) == []                                   # nothing to change
    assert engine_round(clients["site-a"]) == [] and triggers(clients["site-a"]) == {}

    assert clients["site-a"].patch("/v1/protection-groups/web", headers=ALICE, json={
        "drill_schedule": "*/30 * * * *"}).status_code == 200      # changed on the peer
    engine_round(dr)
    assert triggers(dr)[name][0] == "*/30 * * * *"
    assert dr.patch("/v1/protection-groups/web", headers=ALICE,
                    json={"drill_schedule": None}).status_code == 200
    assert engine_round(dr) == [f"cron trigger {name} removed"] and triggers(dr) == {}


def test_a_run_drills_checks_cleans_up_and_records_it_passed(sites):
    dr = setup_groups(sites, {**SCHEDULED, "rto_target_seconds": 3600})
    heat = reading_heat(dr)
    protected(sites, "web")
    group_id = dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]["id"]
    run = scheduled_run(dr, group_id)

    started = step(dr, "POST", f"{run}/operations", {"kind": "test_failover"})
    assert started.status_code == 200, started.json
    drill = started.json["operation_id"]
    again = step(dr, "POST", f"{run}/operations", {"kind": "test_failover"})
    assert again.json["operation_id"] == drill                      # a retried step
    assert [w for w, _ in launcher(dr).started].count(workbooks.workflow_name(
        "test_failover")) == 1
    shown = dr.get(f"/v1/operations/{drill}", headers=RITA).json["operation"]
    assert shown["requested_by"]["user"] == "drill schedule"        # the project sees it
    assert step(dr, "GET", f"{run}/operations/{drill}").json == {"ended": False,
                                                                 "status": "pending"}
    assert report(dr, drill, protection_group_id=group_id, status="completed",
                  details={"production_replication": "unaffected"}).status_code == 200
    assert step(dr, "GET", f"{run}/operations/{drill}").json["ended"] is True

    heat.stacks["test-web"] = []                                    # no captured member
    verified = step(dr, "POST", f"{run}/operations/{drill}/verification").json
    assert verified == {"passed": True, "problems": []}
    kept = dr.get(f"/v1/operations/{drill}/report", headers=ALICE).json["report"]
    assert kept["scheduled"] is True and kept["requested_by"] == "drill schedule"

    cleanup = step(dr, "POST", f"{run}/operations", {"kind": "test_cleanup"}).json
    assert cleanup["operation_id"] and cleanup["skipped"] is None
    assert step(dr, "POST", f"{run}/outcome", {"problems": []}).json == {"result": "passed"}
    (entry,) = [e for e in dr.get(f"/v1/audit-log?target={group_id}", headers=RITA)
                .json["entries"] if e["action"] == "drill.scheduled"]
    assert entry["reason"] == "scheduled drill of web passed"
    assert entry["details"]["drill_operation_id"] == drill
    assert entry["details"]["cleanup_operation_id"] == cleanup["operation_id"]
    metrics = dr.get("/metrics").get_data(as_text=True)
    assert f'protector_group_last_scheduled_drill_passed{{group_id="{group_id}"' in metrics
    line = next(line for line in metrics.splitlines()
                if line.startswith("protector_group_last_scheduled_drill_passed{"))
    assert line.endswith(" 1.0")


def test_a_failed_drill_is_a_failed_run_in_the_audit_log_and_the_metric(sites):
    dr = setup_groups(sites, SCHEDULED)
    reading_heat(dr)
    protected(sites, "web")
    group_id = dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]["id"]
    run = scheduled_run(dr, group_id)
    drill = step(dr, "POST", f"{run}/operations", {"kind": "test_failover"}).json[
        "operation_id"]
    report(dr, drill, protection_group_id=group_id, status="failed", step="build_stack",
           reason="build_stack: no valid host")
    problems = step(dr, "POST", f"{run}/operations/{drill}/verification").json["problems"]
    assert problems == ["the drill failed at build_stack: build_stack: no valid host"]
    assert step(dr, "POST", f"{run}/outcome", {"problems": problems}).json == {
        "result": "failed"}
    (entry,) = [e for e in dr.get(f"/v1/audit-log?target={group_id}", headers=RITA)
                .json["entries"] if e["action"] == "drill.scheduled"]
    assert "failed: the drill failed at build_stack" in entry["reason"]
    line = next(line for line in dr.get("/metrics").get_data(as_text=True).splitlines()
                if line.startswith("protector_group_last_scheduled_drill_passed{"))
    assert line.endswith(" 0.0")


def test_a_busy_group_skips_its_run_and_starts_nothing(sites):
    dr = setup_groups(sites, SCHEDULED)
    protected(sites, "web")
    group_id = dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]["id"]
    by_hand = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json[
        "operation"]["id"]
    before = list(launcher(dr).started)
    skipped = step(dr, "POST", f"{scheduled_run(dr, group_id)}/operations",
                   {"kind": "test_failover"}).json
    assert skipped["operation_id"] is None and by_hand in skipped["skipped"]
    assert launcher(dr).started == before
    (entry,) = [e for e in dr.get(f"/v1/audit-log?target={group_id}", headers=RITA)
                .json["entries"] if e["action"] == "drill.scheduled"]
    assert entry["reason"].startswith("scheduled drill of web skipped: ")
    assert "protector_group_last_scheduled_drill_passed{" not in dr.get(
        "/metrics").get_data(as_text=True)


@pytest.mark.parametrize("root, why", [
    (dict(workflow=workbooks.workflow_name("test_failover")), "is not one of the DR service's"),
    (dict(project="id-ecommerce"), "is not one of the DR service's"),
    (None, "is not one of the DR service's")])
def test_only_the_services_own_runs_are_heard_and_nothing_starts(sites, root, why):
    dr = setup_groups(sites, SCHEDULED)
    protected(sites, "web")
    group_id = dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]["id"]
    run = scheduled_run(dr, group_id, **root) if root is not None else "made-up"
    refused = step(dr, "POST", f"{run}/operations", {"kind": "test_failover"})
    assert refused.status_code == 403 and why in refused.json["error"]["message"]
    assert launcher(dr).started == []
    assert dr.get("/v1/operations", headers=ALICE).json["operations"] == []


def test_a_tenant_cannot_call_the_steps_and_a_run_reaches_only_its_own_operations(sites):
    dr = setup_groups(sites, SCHEDULED)
    protected(sites, "web")
    group_id = dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]["id"]
    run = scheduled_run(dr, group_id)
    assert step(dr, "POST", f"{run}/operations", {"kind": "test_failover"},
                headers=ALICE).status_code == 403
    assert launcher(dr).started == []
    by_hand = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json[
        "operation"]["id"]
    assert step(dr, "GET", f"{run}/operations/{by_hand}").status_code == 403
    assert step(dr, "POST", f"{run}/operations", {"kind": "failover"}).status_code == 400


def test_a_runs_problems_come_from_its_steps():
    steps = [outcome.StepEnd("drill", True, {"operation_id": "op-1"}),
             outcome.StepEnd("verify", True, {"passed": False,
                                              "problems": ["server test-db-1 is CREATE_FAILED"]}),
             outcome.StepEnd("cleanup", True, {"operation_id": "op-2"}),
             outcome.StepEnd("wait_cleanup", True, {"ended": True, "status": "failed"})]
    assert outcome.scheduled_problems(steps) == [
        "server test-db-1 is CREATE_FAILED",
        "the cleanup failed: what the drill built may remain; run openstack dr test cleanup"]
    assert outcome.scheduled_problems([outcome.StepEnd(
        "drill", False, None, "start_scheduled: protection service refused")]) == [
        "drill: start_scheduled: protection service refused"]
