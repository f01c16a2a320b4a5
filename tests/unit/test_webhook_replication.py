"""The engine's replication watch on the DR site: the lag of each group's newest recovery
point on the DR array against its RPO target, in the database, the audit log and
/metrics, over the simulated arrays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from site_recovery.core.config import ArrayConfig
from site_recovery.core.plan import array_group_name
from site_recovery.core.rpo import assess
from site_recovery.storage.base import ProtectionSpec
from site_recovery.webhook.models import ProtectionGroup, ReplicationState
from site_recovery.webhook.replication import ReplicationWatch
from site_recovery.webhook.services import services
from tests.unit.test_webhook_group_recovery_point import SITES, drill
from tests.unit.test_webhook_metrics import protected_group
from tests.unit.test_webhook_operations import DB, WEB, protected, setup_groups
from tests.unit.webhook_sites import ALICE, BOB, RITA

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_the_lag_is_the_newest_points_age_judged_against_the_target():
    within = assess(NOW - timedelta(seconds=50), NOW, 60)
    assert (within.lag_seconds, within.violated) == (50.0, False)
    over = assess(NOW - timedelta(seconds=61), NOW, 60)
    assert over.violated and over.reason == "the newest recovery point is 61 s old"
    assert assess(None, NOW, 60).violated                        # nothing to recover from
    assert assess(NOW - timedelta(hours=5), NOW, None).violated is None     # no target
    unknown = assess(None, NOW, 60, error="fa-b does not answer")
    assert unknown.violated is None and "fa-b does not answer" in unknown.reason


@pytest.fixture
def watched(sites, fabric, mock):
    """site-b, the DR site of web (RPO target 60 s) and db (none), both protected on the
    simulated arrays; its watch with a clock the test moves."""
    dr = setup_groups(sites, {**WEB, "rpo_target_seconds": 60}, DB)
    protected(sites, "web", "db")
    app = dr.application
    config = services(app).config.model_copy(update={"arrays": [
        ArrayConfig(name="fa-a", site="site-a", address="fa-a", cinder_host="a@pure#fa-a"),
        ArrayConfig(name="fa-b", site="site-b", address="fa-b", cinder_host="b@pure#fa-b")]})
    groups = {g["name"]: g for g in dr.get("/v1/protection-groups",
                                           headers=ALICE).json["protection_groups"]}
    specs = {}
    for name, group in groups.items():
        specs[name] = ProtectionSpec(array_group_name(group["id"]), "async", "fa-a", "fa-b")
        fabric.array("fa-a").create_volume(f"{name}-vol", 1 << 30)
        mock.protect(specs[name], [f"{name}-vol"])
    clock = {"now": datetime.now(UTC)}
    watch = ReplicationWatch(services(app).sessions, config, lambda: mock,
                             clock=lambda: clock["now"])
    return dr, watch, clock, specs, groups


def states(dr) -> dict[str, ReplicationState]:
    with services(dr.application).sessions() as session:
        return {s.group_id: s for s in session.query(ReplicationState)}


def audit_of(dr, group_id: str) -> list[str]:
    return [e["action"] for e in dr.get(f"/v1/audit-log?target={group_id}",
                                        headers=ALICE).json["entries"]
            if e["action"].startswith("replication.")]


def test_a_group_over_its_target_is_flagged_audited_and_cleared_when_a_point_arrives(
        watched, mock):
    dr, watch, clock, specs, groups = watched
    web, db = groups["web"]["id"], groups["db"]["id"]
    assert watch.check_once() == 2
    before = states(dr)
    assert before[web].recovery_point_at is None and before[web].violated   # none yet
    assert before[db].violated is None                                      # no target

    point = mock.replicate_now(specs["web"])
    clock["now"] = point.created + timedelta(seconds=30)
    watch.check_once()
    assert (states(dr)[web].lag_seconds, states(dr)[web].violated) == (30.0, False)
    assert audit_of(dr, web) == ["replication.rpo_met", "replication.rpo_violated"]

    clock["now"] = point.created + timedelta(seconds=90)     # no newer point arrived
    watch.check_once()
    assert states(dr)[web].violated and states(dr)[web].lag_seconds == 90.0
    entry = dr.get(f"/v1/audit-log?target={web}", headers=ALICE).json["entries"][0]
    assert entry["action"] == "replication.rpo_violated"
    assert "90 s old, over its 60 s RPO target" in entry["reason"]
    watch.check_once()                                       # still over: told once
    assert audit_of(dr, web).count("replication.rpo_violated") == 2

    metrics = dr.get("/metrics").get_data(as_text=True)
    assert f'protector_group_rpo_violated{{group_id="{web}"' in metrics
    assert f'protector_group_replication_lag_seconds{{group_id="{web}"' in metrics


def test_an_unreadable_array_gives_no_verdict_and_a_group_no_longer_replicating_is_dropped(
        watched, fabric):
    dr, watch, _clock, _specs, groups = watched
    fabric.set_array_up("fa-b", False)
    watch.check_once()
    web = states(dr)[groups["web"]["id"]]
    assert web.violated is None and "fa-b" in web.error
    fabric.set_array_up("fa-b", True)
    with services(dr.application).sessions() as session:       # as a failover records it
        session.get(ProtectionGroup, groups["db"]["id"]).status = "failed_over"
        session.commit()
    watch.check_once()
    assert set(states(dr)) == {groups["web"]["id"]}


# -- readiness, as the service keeps and shows it ----------------------------------------------

def test_readiness_is_checked_on_the_dr_site_kept_and_shown_to_the_groups_project(watched):
    dr, watch, _clock, _specs, _groups = watched
    watch.check_once()
    checked = dr.post("/v1/protection-groups/web/readiness", headers=ALICE)
    assert checked.status_code == 200, checked.json
    shown = checked.json["readiness"]
    findings = {f["check"]: f for f in shown["findings"]}
    # Members never captured: nothing else of the cloud can be checked; and no drill yet.
    assert not shown["ready"] and not findings["captured"]["ok"]
    assert findings["captured"]["detail"] == "the group has no member"
    assert findings["replication"]["detail"] == "the DR array holds no usable recovery point"
    assert (findings["drill"]["detail"], findings["drill"]["severity"]) == (
        "never drilled", "warning")
    assert dr.get("/v1/protection-groups/web/readiness", headers=RITA).json[
        "readiness"] == shown
    group = dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]
    listed = dr.get("/v1/protection-groups", headers=ALICE).json["protection_groups"]
    assert group["ready"] is False and {g["name"]: g["ready"] for g in listed} == {
        "web": False, "db": None}                  # db was never checked
    web = group["id"]
    (line,) = [line for line in dr.get("/metrics").get_data(as_text=True).splitlines()
               if line.startswith(f'protector_group_ready{{group_id="{web}"')]
    assert line.endswith(" 0.0")                               # not ready
    for method in (dr.get, dr.post):          # another project's group: not found
        assert method("/v1/protection-groups/web/readiness", headers=BOB).status_code == 404
    assert dr.get("/v1/protection-groups/web/readiness", headers=ALICE).json[
        "readiness"]["checked_at"] == shown["checked_at"]          # bob checked nothing


def test_readiness_is_refused_off_the_dr_site_and_for_a_group_not_replicating(sites):
    clients, _ = sites
    setup_groups(sites, WEB)
    elsewhere = clients["site-a"].get("/v1/protection-groups/web/readiness", headers=ALICE)
    assert elsewhere.status_code == 409 and "recovers on site-b" in elsewhere.json[
        "error"]["message"]
    unprotected = clients["site-b"].post("/v1/protection-groups/web/readiness",
                                         headers=ALICE)
    assert unprotected.status_code == 409 and "protect it first" in unprotected.json[
        "error"]["message"]
    assert clients["site-b"].get("/v1/protection-groups/web/readiness",
                                 headers=ALICE).json == {"readiness": None}


def test_readiness_names_the_last_drill_that_ended_completed_or_failed(sites):
    clients, _ = sites
    dr = clients["site-b"]
    web = protected_group(clients, {"name": "web", **SITES})
    db = protected_group(clients, {"name": "db", **SITES})
    failed = drill(dr, "web", web, status="failed", step="create_stack",
                   reason="quota exceeded")
    passed = drill(dr, "db", db, status="completed")

    def found(name: str) -> dict:
        reply = dr.post(f"/v1/protection-groups/{name}/readiness", headers=ALICE)
        assert reply.status_code == 200, reply.json
        return {f["check"]: f for f in reply.json["readiness"]["findings"]}["drill"]

    assert (found("web")["detail"], found("web")["severity"]) == (
        f"the last drill ({failed}) failed at create_stack", "warning")
    assert found("db")["ok"] and found("db")["detail"] == (
        f"the last drill ({passed}) completed 0 min ago")
