"""Fencing: a group's original VMs stay down while it runs on its DR site, against the
simulated Nova through openstacksdk (an admin's lock their project can neither lift nor
start through); and an unplanned failover's data loss ends when the primary was lost."""
# ruff: noqa: F811 (the tests take test_core_recovery's ``lab`` fixture by its name)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from site_recovery.core import recovery
from site_recovery.core.clouds import Clouds
from site_recovery.core.config import parse
from site_recovery.core.model import FenceState, GroupStatus
from site_recovery.core.peer import PeerUnreachable
from tests.unit.test_core_config import minimal
from tests.unit.test_core_recovery import GROUP_ID, Service, lab  # noqa: F401

SERVERS = "/compute/v2.1/servers"
LOCKS = {"OpenStack-API-Version": "compute 2.73"}


def shown(client, server_id: str) -> dict:
    status, body = client.get(f"{SERVERS}/{server_id}", headers=LOCKS)
    assert status == 200, body
    return body["server"]


def members(lab) -> list[str]:
    return [m["server_id"] for m in lab.service.document["members"]]


def test_fenced_originals_are_stopped_and_locked_and_their_project_cannot_start_them(lab):
    result = recovery.fence(lab.engine, GROUP_ID)
    assert (result["fenced"], result["servers"], result["stopped"]) == (True, 2, 2)
    for server_id in members(lab):
        server = shown(lab.alice, server_id)
        assert (server["status"], server["locked"]) == ("SHUTOFF", True)
        assert "protection group prod-web runs on site-b" in server["locked_reason"]
        status, refused = lab.alice.post(f"{SERVERS}/{server_id}/action", {"os-start": None})
        assert status == 409 and "is locked" in refused["conflictingRequest"]["message"]
        assert lab.alice.post(f"{SERVERS}/{server_id}/action", {"unlock": None})[0] == 403
        assert shown(lab.alice, server_id)["status"] == "SHUTOFF"

    again = recovery.fence(lab.engine, GROUP_ID)
    assert (again["servers"], again["stopped"]) == (2, 0), "a rerun changes nothing"


def test_a_fence_that_waited_for_this_site_is_recorded_as_done(lab):
    """The site was away when its group failed over to site-b: back, it fences here."""
    fence = recovery.Fence(site="site-a", state=FenceState.PENDING, since=datetime.now(UTC),
                           reason=recovery.fence_reason("prod-web", "site-b"))
    lab.service.document.update(primary_site="site-b", secondary_site="site-a",
                                status="failed_over", fence=fence.model_dump(mode="json"))
    recovery.fence(lab.engine, GROUP_ID)
    [state] = lab.service.states
    assert (state["fence"].site, state["fence"].state) == ("site-a", FenceState.FENCED)
    assert {shown(lab.alice, s)["status"] for s in members(lab)} == {"SHUTOFF"}


def test_failback_lifts_the_fence_it_finds_and_no_other_lock(lab):
    recovery.fence(lab.engine, GROUP_ID)
    first, second = members(lab)
    lab.admin.post(f"{SERVERS}/{second}/action", {"unlock": None})
    lab.admin.post(f"{SERVERS}/{second}/action",
                   {"lock": {"locked_reason": "maintenance by the operator"}},
                   headers=LOCKS)
    with pytest.raises(recovery.StepFailed, match=r"locked by someone else on site-a: "
                                                  r"web-2 \(maintenance by the operator\)"):
        recovery.start_servers(lab.engine, GROUP_ID)
    assert [(shown(lab.alice, s)["status"], shown(lab.alice, s)["locked"])
            for s in (first, second)] == [("SHUTOFF", True)] * 2, "nothing was lifted"

    lab.admin.post(f"{SERVERS}/{second}/action", {"unlock": None})
    assert recovery.start_servers(lab.engine, GROUP_ID) == {"started": 2, "servers": 2}
    assert [(shown(lab.alice, s)["status"], shown(lab.alice, s)["locked"])
            for s in (first, second)] == [("ACTIVE", False)] * 2


class Peer:
    def __init__(self, answer):
        self.answer, self.asked = answer, []

    def run_step(self, request, timeout):
        self.asked.append(request.step.value)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def dr_site_engine(tmp_path, peer) -> tuple[recovery.Engine, Service]:
    config = parse(minimal(tmp_path, site="site-b",
                           peer={"name": "site-a", "url": "http://127.0.0.1:15010"},
                           clouds={"file": str(tmp_path / "clouds.yaml"), "local": "site-b",
                                   "peer": "site-a"}))
    service = Service({"id": GROUP_ID, "name": "prod-web", "project_name": "ecommerce",
                       "primary_site": "site-a", "secondary_site": "site-b",
                       "replication_type": "async", "members": []})
    clouds = Clouds(config)
    return recovery.Engine(config, SimpleNamespace(connect=clouds.connect), service,
                           peer=peer, step_key="task-3.0"), service


def test_an_unplanned_failover_has_the_old_primary_fence_its_vms_when_it_answers(tmp_path):
    peer = Peer({"details": {"fence": "2 servers stopped and locked on site-a"}})
    engine, _ = dr_site_engine(tmp_path, peer)
    assert recovery.fence(engine, GROUP_ID) == {
        "fenced": True, "fence": "2 servers stopped and locked on site-a"}
    assert peer.asked == ["fence"]


def test_a_primary_that_does_not_answer_is_recorded_to_fence_itself_once_back(tmp_path):
    engine, service = dr_site_engine(tmp_path, Peer(PeerUnreachable(
        "peer site site-a did not answer (ConnectFailure)")))
    result = recovery.fence(engine, GROUP_ID)
    assert result["fenced"] is False
    assert "did not answer" in result["fence"] and "once it is back" in result["fence"]

    recovery.take_over(engine, GROUP_ID, "site-b", fenced=result["fenced"])
    [state] = service.states
    assert (state["status"], state["primary_site"]) == (GroupStatus.FAILED_OVER, "site-b")
    assert (state["fence"].site, state["fence"].state) == ("site-a", FenceState.PENDING)
    assert "runs on site-b" in state["fence"].reason

    service.document.update(primary_site="site-b", secondary_site="site-a",
                            status="failed_over")
    recovery.take_over(engine, GROUP_ID, "site-a", status=GroupStatus.PROTECTED)
    assert service.states[-1]["fence"] is None, "home again: the fence is lifted"


def test_a_peer_that_answers_but_cannot_fence_fails_the_step(tmp_path):
    engine, _ = dr_site_engine(tmp_path, Peer(recovery.PeerStepFailed(
        "peer site site-a could not fence: Nova answered 500")))
    with pytest.raises(recovery.StepFailed, match="could not fence"):
        recovery.fence(engine, GROUP_ID)


def test_the_data_lost_ends_when_the_primary_was_lost_not_when_people_decided(lab):
    recovery.protect(lab.engine, GROUP_ID)
    point = recovery.recovery_point(lab.engine, GROUP_ID)
    created = datetime.fromisoformat(point["point_created"])
    lost = created + timedelta(seconds=30)
    later = recovery.recovery_point(lab.engine, GROUP_ID, lost_at=lost.isoformat())
    assert later["name"] == point["name"]
    assert later["rpo_seconds"] == 30.0
    assert later["primary_lost_at"] == lost.isoformat()
    before = recovery.recovery_point(lab.engine, GROUP_ID,
                                     lost_at=(created - timedelta(seconds=5)).isoformat())
    assert before["rpo_seconds"] == 0.0, "a point newer than the loss lost nothing"


def test_a_failover_begun_with_the_peer_gone_does_not_wait_to_ask_it(tmp_path):
    peer = Peer({"details": {}})
    engine, _ = dr_site_engine(tmp_path, peer)
    result = recovery.fence(engine, GROUP_ID, ask_peer=False)
    assert result["fenced"] is False and "once it is back" in result["fence"]
    assert peer.asked == []


def test_a_fence_that_waited_while_the_group_came_home_does_nothing(lab):
    """Its fence operation ran late: the group is protected at home again, running."""
    result = recovery.fence(lab.engine, GROUP_ID, returned=True)
    assert result["fenced"] is False and "prod-web is protected" in result["fence"]
    assert {(shown(lab.alice, s)["status"], shown(lab.alice, s)["locked"])
            for s in members(lab)} == {("ACTIVE", False)}
    assert lab.service.states == []
