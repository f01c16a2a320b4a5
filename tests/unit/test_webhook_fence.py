"""The split-brain guard at the service: an unplanned failover while the peer answers,
the moment the primary was lost, and a returning site that fences what failed over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from site_recovery.core.model import ProgressReport
from site_recovery.webhook import db
from site_recovery.webhook.models import Site
from site_recovery.webhook.services import services
from tests.unit.test_webhook_operations import (
    ALICE,
    RITA,
    SERVICE,
    launcher,
    peer_is,
    protected,
    setup_groups,
)
from tests.unit.webhook_sites import ADMIN, held

UNPLANNED = {"failover_type": "unplanned"}


def peer_answers(client, answers: bool):
    """What the live probe before a move finds (the unit sites' peer URL answers never)."""
    services(client.application).operations._peer_answers = lambda: answers


def test_an_unplanned_failover_while_the_peer_answers_needs_force_and_then_fences(sites):
    dr = setup_groups(sites)
    protected(sites, "web")
    peer_answers(dr, True)
    refused = dr.post("/v1/protection-groups/web/failover", json=UNPLANNED, headers=ALICE)
    assert refused.status_code == 409
    assert "peer site site-a still answers: use a planned failover, or --force" in \
        refused.json["error"]["message"]
    assert launcher(dr).started == []

    forced = dr.post("/v1/protection-groups/web/failover", json={**UNPLANNED, "force": True},
                     headers=ALICE)
    assert forced.status_code == 202, forced.json
    op = forced.json["operation"]
    assert (op["peer_reachable"], op["params"]["peer_last_seen"]) == (True, None), \
        "while it answers, the loss ends when the old primary is fenced"
    [(workflow, given)] = launcher(dr).started
    assert workflow.endswith(".failover") and given["params"]["failover_type"] == "unplanned"


def test_with_the_peer_gone_the_loss_ends_when_this_site_last_saw_it(sites):
    dr = setup_groups(sites)
    protected(sites, "web")
    seen = datetime(2026, 12, 7, 3, 0, 30, tzinfo=UTC)
    with db.transaction(services(dr.application).sessions) as session:
        session.get(Site, "site-a").last_seen_at = seen
    peer_is(dr, False)
    op = dr.post("/v1/protection-groups/web/failover", json={**UNPLANNED, "force": True},
                 headers=ALICE).json["operation"]
    assert op["params"]["peer_last_seen"] == seen.isoformat()
    [(_, given)] = launcher(dr).started
    assert given["params"]["peer_last_seen"] == seen.isoformat()
    shown = dr.get("/v1/sites/site-a", headers=RITA).json["site"]
    assert shown["last_seen_at"] == seen.isoformat()


def web_protected(sites):
    """site-b (web's DR site), site-a, and web's id, web protected."""
    clients, _ = sites
    dr, home = setup_groups(sites), clients["site-a"]
    protected(sites, "web")
    group_id = home.get("/v1/protection-groups/web", headers=ALICE).json[
        "protection_group"]["id"]
    return dr, home, group_id


def take_over_alone(dr, group_id: str, fence_state: str) -> dict:
    """What site-b's failover records of web: it runs there, its originals' fence."""
    reply = dr.put(f"/v1/internal/protection-groups/{group_id}/state", headers=SERVICE, json={
        "status": "failed_over", "primary_site": "site-b", "secondary_site": "site-a",
        "fence": {"site": "site-a", "state": fence_state, "since": "2026-12-07T03:01:00+00:00",
                  "reason": "Site Recovery: protection group web runs on site-b"}})
    assert reply.status_code == 200, reply.json
    return reply.json["document"]


def test_a_site_that_learns_its_group_failed_over_fences_the_originals_once(sites):
    dr, home, group_id = web_protected(sites)
    take_over_alone(dr, group_id, "pending")
    shown = home.get("/v1/protection-groups/web", headers=RITA).json["protection_group"]
    assert (shown["status"], shown["fence"]["site"], shown["fence"]["state"]) == \
        ("failed_over", "site-a", "pending")

    lifecycle = services(home.application).operations
    launcher(home).down = True                     # site-a's Mistral not up yet
    assert lifecycle.fence_returned() == []
    assert home.get("/v1/operations?all_projects=true", headers=ADMIN).json[
        "operations"] == [], "nothing recorded that could not start"
    launcher(home).down = False
    [op_id] = lifecycle.fence_returned()
    [(workflow, given)] = launcher(home).started
    assert workflow.endswith(".fence") and given["protection_group_ids"] == [group_id]
    op = held(home, op_id)
    assert (op["operation_type"], op["protection_group"]) == ("fence", "web")
    assert lifecycle.fence_returned() == [], "one fence at a time"
    assert launcher(dr).started == [], "the site that runs the group fences nothing"
    for verb in ("cancel", "retry"):
        refused = home.post(f"/v1/operations/{op_id}/{verb}?all_projects=true",
                            headers=ADMIN)
        assert refused.status_code == 409 and "service's own fence" in \
            refused.json["error"]["message"]
    assert held(home, op_id)["status"] == "pending"
    peer_answers(home, True)
    busy = home.post("/v1/protection-groups/web/failback", json={}, headers=ALICE)
    assert busy.status_code == 409 and op_id in busy.json["error"]["message"], \
        "a failback never runs beside the fence"

    # Its workflow fails (Nova away, say): tried again after a while, not at once.
    lifecycle.record(op_id, ProgressReport(protection_group_id=group_id, status="failed",
                                        step="fence", reason="Nova answered 503"))
    assert lifecycle.fence_returned() == []
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert len(lifecycle.fence_returned(now=later)) == 1


def test_a_fenced_group_and_one_that_runs_here_start_no_fence(sites):
    dr, home, group_id = web_protected(sites)
    assert services(home.application).operations.fence_returned() == []
    take_over_alone(dr, group_id, "fenced")
    assert services(home.application).operations.fence_returned() == []
    assert services(dr.application).operations.fence_returned() == []
    kept = dr.delete("/v1/protection-groups/web?force=true", headers=ALICE)
    assert kept.status_code == 409, "its originals would stay locked, its copies orphaned"
    assert "fail it back first (openstack dr failback web)" in kept.json["error"]["message"]
    lifted = dr.put(f"/v1/internal/protection-groups/{group_id}/state", headers=SERVICE,
                    json={"fence": None})
    assert lifted.status_code == 200 and lifted.json["document"]["fence"] is None
    assert lifted.json["document"]["status"] == "failed_over", "only what is given changes"


def test_reprotect_runs_where_the_group_failed_over_to_and_only_then(sites):
    clients, _ = sites
    dr, home = setup_groups(sites), clients["site-a"]
    protected(sites, "web")
    not_yet = dr.post("/v1/protection-groups/web/reprotect", json={}, headers=ALICE)
    assert not_yet.status_code == 409, not_yet.json
    group_id = home.get("/v1/protection-groups/web", headers=ALICE).json[
        "protection_group"]["id"]
    take_over_alone(dr, group_id, "fenced")
    elsewhere = home.post("/v1/protection-groups/web/reprotect", json={}, headers=ALICE)
    assert elsewhere.status_code == 409
    assert "runs on site-b: reprotect it there" in elsewhere.json["error"]["message"]
    assert dr.post("/v1/protection-groups/web/reprotect", json={},
                   headers=RITA).status_code == 403

    with db.transaction(services(dr.application).sessions) as session:
        session.get(Site, "site-a").reachable = True
    started = dr.post("/v1/protection-groups/web/reprotect", json={}, headers=ALICE)
    assert started.status_code == 202, started.json
    [(workflow, given)] = launcher(dr).started
    assert workflow.endswith(".reprotect") and given["protection_group_ids"] == [group_id]
    again = home.post("/v1/protection-groups/web/failover", headers=ALICE,
                      json={"failover_type": "planned"})
    assert again.status_code == 409
    assert "it already runs on its DR site; bring it home with openstack dr failback web" \
        in again.json["error"]["message"]


def test_reprotect_needs_the_peer(sites):
    dr, _, group_id = web_protected(sites)
    take_over_alone(dr, group_id, "pending")
    peer_is(dr, False)
    refused = dr.post("/v1/protection-groups/web/reprotect", json={}, headers=ALICE)
    assert refused.status_code == 409
    assert "a reprotect needs peer site site-a" in refused.json["error"]["message"]
    assert launcher(dr).started == []
