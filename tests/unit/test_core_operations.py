"""What an operation needs of the peer site, and how group results add up."""

from __future__ import annotations

import pytest

from site_recovery.core.model import GroupStatus, OperationKind
from site_recovery.core.operations import (
    KINDS,
    Refused,
    Request,
    check_group,
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
    (Request("failover", "unplanned"), True,
     "peer site site-a still answers: use a planned failover, or --force"),
    (Request("site_failover", "unplanned"), False, "unplanned site failover needs force"),
    (Request("site_failover", "unplanned", force=True, automatic=True), True,
     "an alert never starts an unplanned site failover while peer site site-a answers"),
])
def test_refusals_say_what_is_missing(request_, reachable, says):
    with pytest.raises(Refused, match=says):
        precheck(request_, "site-a", reachable)


@pytest.mark.parametrize(("request_", "reachable"), [
    (Request("failover", "planned"), True), (Request("failback"), True),
    (Request("failover", "unplanned", force=True), False),
    (Request("site_failover", "unplanned", force=True), True),
    (Request("site_failover", "unplanned", force=True, automatic=True), False)])
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


@pytest.mark.parametrize("other", [k for k in KINDS if k not in ("peer_step", "fence")])
def test_a_protect_waits_for_anything_and_holds_everything_back(other):
    assert other in conflicting("protect")
    assert "protect" in conflicting(other)


def test_a_peer_step_waits_for_nothing_here_its_operation_holds_the_group_on_the_peer():
    """It is one step of an operation the peer site runs (a planned failover's stop of
    the VMs here, say), which already holds the group there."""
    assert conflicting("peer_step") == ()


def test_a_fence_and_a_move_of_the_group_wait_for_each_other():
    """A fence left over from the site's return never locks what a failback brings home."""
    assert set(conflicting("fence")) == {"failover", "failback", "site_failover"}
    for move in ("failover", "failback", "site_failover", "protect", "reprotect"):
        assert "fence" in conflicting(move), move
    assert "fence" not in conflicting("test_failover")


def test_every_kind_is_known():
    assert set(KINDS) == {"protect", "unprotect", "test_failover", "test_cleanup", "failover",
                          "failback", "site_failover", "peer_step", "fence", "reprotect"}


def test_unprotect_runs_alone_on_the_primary_and_never_on_a_failed_over_group():
    """Taking replication down waits for every operation of the group, and every one for
    it, as a protect; a failed-over group's failback needs its replication."""
    assert OperationKind.UNPROTECT.runs_on_primary
    assert set(conflicting("unprotect")) == set(KINDS)
    assert all("unprotect" in conflicting(kind) for kind in KINDS
               if kind not in ("peer_step", "fence"))
    for away in ("failed_over", "reprotected"):
        with pytest.raises(Refused, match=r"runs on its DR site.*openstack dr failback web"):
            check_group("unprotect", "web", GroupStatus(away))
    for status in ("protected", "unprotected", "error"):
        check_group("unprotect", "web", GroupStatus(status))


@pytest.mark.parametrize("reachable", [False, None])
def test_a_reprotect_and_an_unprotect_need_the_peer_whose_array_holds_the_replica(
        reachable):
    with pytest.raises(Refused, match="a reprotect needs peer site site-a"):
        precheck(Request("reprotect"), "site-a", reachable)
    with pytest.raises(Refused, match="an unprotect needs peer site site-a"):
        precheck(Request("unprotect"), "site-a", reachable)
    precheck(Request("reprotect"), "site-a", True)
    precheck(Request("unprotect"), "site-a", True)


@pytest.mark.parametrize(("operation", "status", "says"), [
    ("reprotect", "protected", "web is protected: only a group that failed over is "
                               "reprotected"),
    ("failback", "unprotected", "only a group that failed over is failed back"),
    ("failover", "failed_over", "already runs on its DR site; bring it home with "
                                "openstack dr failback web"),
    ("failover", "reprotected", "web is reprotected: it already runs on its DR site"),
    ("protect", "failed_over", "protect it there with openstack dr reprotect web")])
def test_what_a_groups_state_does_not_allow_is_refused_naming_what_does(operation, status,
                                                                         says):
    with pytest.raises(Refused, match=says):
        check_group(operation, "web", status)


@pytest.mark.parametrize(("operation", "status"), [
    ("reprotect", "failed_over"), ("reprotect", "reprotected"), ("failback", "failed_over"),
    ("failback", "reprotected"), ("failover", "protected")])
def test_what_a_groups_state_allows_goes_on(operation, status):
    check_group(operation, "web", status)
