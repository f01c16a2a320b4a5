"""What an operation needs of the peer site, and how group results add up."""

from __future__ import annotations

import pytest

from site_recovery.core.operations import (
    KINDS,
    Refused,
    Request,
    conflicting,
    precheck,
    rollup,
)


@pytest.mark.parametrize("reachable", [True, False, None])
@pytest.mark.parametrize("operation", ["test_failover", "test_cleanup", "protect"])
def test_drills_and_protect_never_need_the_peer(operation, reachable):
    precheck(Request(operation), "site-a", reachable)


@pytest.mark.parametrize(("request_", "reachable", "says"), [
    (Request("failover", "planned"), False, "needs peer site site-a, which is unreachable"),
    (Request("failover", "planned"), None, "unknown .not probed yet"),
    (Request("failback"), False, "planned failback needs peer site site-a"),
    (Request("failover", "unplanned"), False, "needs force: peer site site-a does not answer"),
    (Request("failover", "unplanned"), True, "needs force: peer site site-a still answers"),
    (Request("site_failover", "unplanned"), False, "unplanned site failover needs force"),
])
def test_refusals_say_what_is_missing(request_, reachable, says):
    with pytest.raises(Refused, match=says):
        precheck(request_, "site-a", reachable)


@pytest.mark.parametrize(("request_", "reachable"), [
    (Request("failover", "planned"), True), (Request("failback"), True),
    (Request("failover", "unplanned", force=True), False),
    (Request("site_failover", "unplanned", force=True), True)])
def test_what_is_allowed_starts(request_, reachable):
    precheck(request_, "site-a", reachable)


@pytest.mark.parametrize(("statuses", "started", "expected"), [
    ([], False, ("pending", 0, 0)),
    (["pending", "pending"], False, ("pending", 0, 0)),
    (["running", "pending"], True, ("running", 0, 0)),
    (["completed", "running"], True, ("running", 1, 0)),
    (["completed", "completed"], True, ("completed", 2, 0)),
    (["completed", "failed"], True, ("partially_failed", 1, 1)),
    (["failed", "failed"], True, ("failed", 0, 2)),
])
def test_group_results_add_up_to_the_operation_status(statuses, started, expected):
    summary = rollup(statuses, started=started)
    assert (summary.status, summary.completed, summary.failed) == expected


@pytest.mark.parametrize(("running", "starting", "blocks"), [
    ("test_failover", "test_failover", True), ("test_failover", "test_cleanup", True),
    ("failover", "test_failover", True), ("test_failover", "failover", False),
    ("test_cleanup", "site_failover", False), ("failover", "site_failover", True),
    ("site_failover", "failback", True),
])
def test_a_drill_waits_for_anything_but_never_holds_back_a_recovery(running, starting,
                                                                   blocks):
    assert (running in conflicting(starting)) is blocks


@pytest.mark.parametrize("other", [k for k in KINDS if k != "peer_step"])
def test_a_protect_waits_for_anything_and_holds_everything_back(other):
    assert other in conflicting("protect")
    assert "protect" in conflicting(other)


def test_a_peer_step_waits_for_nothing_here_its_operation_holds_the_group_on_the_peer():
    """It is one step of an operation the peer site runs (a planned failover's stop of
    the VMs here, say), which already holds the group there."""
    assert conflicting("peer_step") == ()


def test_every_kind_is_known():
    assert set(KINDS) == {"protect", "test_failover", "test_cleanup", "failover", "failback",
                          "site_failover", "peer_step"}
