"""A group's RTO: each recovery measures it from the request to the group's end, one over
the group's target says so (its result, the audit log), and the last completed drill is
the estimate the group, readiness and /metrics show."""

from __future__ import annotations

from datetime import timedelta

from site_recovery.webhook import db
from site_recovery.webhook.models import Operation, ProtectionGroup
from site_recovery.webhook.readiness import _rto
from site_recovery.webhook.services import services
from tests.unit.test_webhook_group_recovery_point import SITES, drill, listed
from tests.unit.test_webhook_metrics import protected_group
from tests.unit.webhook_sites import ALICE, RITA, report


def requested_ago(dr, op_id: str, seconds: float):
    """As if operation ``op_id`` had been asked for ``seconds`` ago."""
    with db.transaction(services(dr.application).sessions) as session:
        op = session.get(Operation, op_id)
        op.created_at -= timedelta(seconds=seconds)


def test_a_drill_over_the_rto_target_says_so_and_becomes_the_groups_estimate(sites):
    clients, _ = sites
    dr = clients["site-b"]
    group_id = protected_group(clients, {"name": "web", **SITES, "rto_target_seconds": 60})
    assert listed(dr)["web"]["rto_estimate_seconds"] is None            # never drilled

    started = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE)
    op_id = started.json["operation"]["id"]
    requested_ago(dr, op_id, 95)
    assert report(dr, op_id, protection_group_id=group_id, status="completed",
                  timings={"import_volumes": 40.0}).status_code == 200
    (result,) = dr.get(f"/v1/operations/{op_id}", headers=RITA).json["operation"]["results"]
    assert result["timings"]["import_volumes"] == 40.0
    assert 95 <= result["timings"]["total"] < 105
    assert result["details"]["rto"] == (f"recovered in {result['timings']['total']:.0f} s, "
                                        "over its 60 s RTO target")
    (entry,) = [e for e in dr.get(f"/v1/audit-log?target={group_id}", headers=RITA)
                .json["entries"] if e["action"] == "operation.rto_exceeded"]
    assert "over its 60 s RTO target" in entry["reason"]
    assert entry["details"]["operation_id"] == op_id

    shown = dr.get("/v1/protection-groups/web", headers=RITA).json["protection_group"]
    assert shown["rto_target_seconds"] == 60
    assert shown["rto_estimate_seconds"] == result["timings"]["total"]
    assert listed(dr)["web"]["rto_estimate_seconds"] == result["timings"]["total"]
    metrics = dr.get("/metrics").get_data(as_text=True)
    assert f'protector_group_rto_target_seconds{{group_id="{group_id}"' in metrics
    assert f'protector_group_last_drill_rto_seconds{{group_id="{group_id}"' in metrics

    with services(dr.application).sessions() as session:
        (finding,) = _rto(session, group_id, 60)
        assert not finding.ok and finding.severity == "warning"
        assert f"openstack dr operation show {op_id}" in finding.remedy
        (fast_enough,) = _rto(session, group_id, 600)
        assert fast_enough.ok and "within its 600 s RTO target" in fast_enough.detail


def test_a_recovery_within_the_target_says_so_a_failed_one_is_timed_but_no_estimate(sites):
    clients, _ = sites
    dr = clients["site-b"]
    group_id = protected_group(clients, {"name": "web", **SITES, "rto_target_seconds": 600})
    drill(dr, "web", group_id, status="failed", step="import_volumes", reason="the array")
    assert listed(dr)["web"]["rto_estimate_seconds"] is None     # a failed drill: none
    with services(dr.application).sessions() as session:
        (finding,) = _rto(session, group_id, 600)
        assert not finding.ok and "no completed drill" in finding.detail
    op_id = drill(dr, "web", group_id, status="completed")
    (result,) = dr.get(f"/v1/operations/{op_id}", headers=RITA).json["operation"]["results"]
    assert result["details"]["rto"].endswith("within its 600 s RTO target")
    assert not [e for e in dr.get(f"/v1/audit-log?target={group_id}", headers=RITA)
                .json["entries"] if e["action"] == "operation.rto_exceeded"]
    # Without a target, the time is still measured; nothing is judged.
    with db.transaction(services(dr.application).sessions) as session:
        session.get(ProtectionGroup, group_id).rto_target_seconds = None
    again = drill(dr, "web", group_id, status="completed")
    (result,) = dr.get(f"/v1/operations/{again}", headers=RITA).json["operation"]["results"]
    assert "total" in result["timings"] and "rto" not in result["details"]


def test_an_rto_target_is_set_on_both_sites_and_a_bad_one_is_refused(sites):
    clients, _ = sites
    protected_group(clients, {"name": "web", **SITES})
    changed = clients["site-a"].patch("/v1/protection-groups/web", headers=ALICE,
                                      json={"rto_target_seconds": 900})
    assert changed.status_code == 200, changed.json
    for client in clients.values():
        assert client.get("/v1/protection-groups/web", headers=ALICE).json[
            "protection_group"]["rto_target_seconds"] == 900
    wrong = clients["site-a"].patch("/v1/protection-groups/web", headers=ALICE,
                                    json={"rto_target_seconds": 0})
    assert wrong.status_code == 400 and "rto_target_seconds" in wrong.json["error"]["message"]
    assert clients["site-b"].get("/v1/protection-groups/web", headers=ALICE).json[
        "protection_group"]["rto_target_seconds"] == 900
