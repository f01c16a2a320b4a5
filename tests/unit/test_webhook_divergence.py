"""A partition with something recorded on both sides is detected, never silent: copies
written apart are kept side by side, the group shows ``conflict`` and refuses changes and
operations until one copy is kept; the copy that records a failover's takeover wins by
itself; the next unrelated edit never overwrites the takeover record."""

from __future__ import annotations

import pytest

from site_recovery.core import lineage
from site_recovery.webhook import db
from site_recovery.webhook.models import Site
from site_recovery.webhook.services import services
from tests.unit.test_webhook_workflow_endpoints import a_group_with_a_member
from tests.unit.webhook_sites import ALICE, SERVICE

GROUP = "/v1/protection-groups/prod-ecommerce-web"
TAKEOVER = {"status": "failed_over", "primary_site": "site-b", "secondary_site": "site-a"}


def partitioned(clients, links, down: bool = True):
    """Each site judges the other unreachable (or reachable again) and its link fails."""
    for site, peer in (("site-a", "site-b"), ("site-b", "site-a")):
        with db.transaction(services(clients[site].application).sessions) as session:
            session.get(Site, peer).reachable = not down
        links[site].down = down


def record_alone(clients, site: str, group: str, state: dict):
    reply = clients[site].put(f"/v1/internal/protection-groups/{group}/state", json=state,
                              headers=SERVICE)
    assert reply.status_code == 200, reply.json
    return reply.json["document"]


def shown(client) -> dict:
    return client.get(GROUP, headers=ALICE).json["protection_group"]


def sync(clients, site: str):
    return services(clients[site].application).registry.sync()


def audit(client) -> list[dict]:
    return client.get("/v1/audit-log", headers=ALICE).json["entries"]


def test_a_clock_tells_newer_older_and_written_apart():
    assert lineage.compare({"a": 2}, 2, {"a": 1}, 1, False) is lineage.Order.AHEAD
    assert lineage.compare({"a": 1}, 1, {"a": 1, "b": 1}, 2, False) is lineage.Order.BEHIND
    assert lineage.compare({"a": 2}, 2, {"a": 1, "b": 1}, 2, False) is lineage.Order.DIVERGED
    assert lineage.compare({"a": 2}, 2, {"a": 2}, 2, True) is lineage.Order.SAME
    # Copies from before clocks were kept: the version decides, one version twice diverged.
    assert lineage.compare({}, 3, {}, 2, False) is lineage.Order.AHEAD
    assert lineage.compare({}, 2, {}, 2, False) is lineage.Order.DIVERGED
    assert lineage.merge({"a": 3, "b": 1}, {"a": 2, "b": 4}) == {"a": 3, "b": 4}
    assert lineage.takeover_winner("site-b", None) == "ours"
    assert lineage.takeover_winner(None, "site-b") == "theirs"
    assert lineage.takeover_winner("site-a", "site-b") is None
    assert lineage.takeover_winner(None, None) is None


def test_every_change_counts_for_the_site_that_wrote_it(sites):
    clients, links = sites
    group = a_group_with_a_member(clients)
    assert shown(clients["site-a"])["version"] == 2
    doc = clients["site-b"].get(f"/v1/internal/protection-groups/{group}",
                                headers=SERVICE).json["document"]
    assert doc["clock"] == {"site-a": 2} and doc["taken_over_by"] is None
    partitioned(clients, links)
    alone = record_alone(clients, "site-b", group, TAKEOVER)
    assert alone["clock"] == {"site-a": 2, "site-b": 1} and alone["taken_over_by"] == "site-b"


def test_the_takeover_wins_a_divergence_and_both_copies_are_kept(sites):
    clients, links = sites
    group = a_group_with_a_member(clients)
    partitioned(clients, links)
    record_alone(clients, "site-a", group, {"status": "protected"})    # a re-protect there
    record_alone(clients, "site-b", group, TAKEOVER)                    # a failover here
    partitioned(clients, links, down=False)
    assert sync(clients, "site-b") == 0          # the coordinator decides, not site-b
    sync(clients, "site-a")
    for client in clients.values():
        group_now = shown(client)
        assert (group_now["status"], group_now["primary_site"], group_now["version"]) == (
            "failed_over", "site-b", 4)
        assert group_now["conflict"] is None
        entries = audit(client)
        assert any(e["action"] == "protection_group.diverged" for e in entries)
    resolved = next(e for e in audit(clients["site-a"])
                    if e["action"] == "protection_group.resolve")
    assert "site-b" in resolved["reason"] and "wins" in resolved["reason"]
    # Both copies stay on record where the divergence was found.
    with services(clients["site-a"].application).sessions() as session:
        from site_recovery.webhook.models import Divergence
        (found,) = session.query(Divergence).all()
        assert (found.ours["status"], found.theirs["status"]) == ("protected", "failed_over")
        assert found.resolved_at is not None


def test_the_next_edit_after_a_partition_never_overwrites_the_takeover(sites):
    """The bug this replaces: one version on each side, the coordinator's next edit was
    taken by the peer over its takeover record."""
    clients, links = sites
    group = a_group_with_a_member(clients)
    partitioned(clients, links)
    record_alone(clients, "site-a", group, {"status": "protected"})
    record_alone(clients, "site-b", group, TAKEOVER)
    partitioned(clients, links, down=False)
    edit = clients["site-a"].patch(GROUP, json={"description": "unrelated"}, headers=ALICE)
    assert edit.status_code == 409, edit.json
    for client in clients.values():
        assert (shown(client)["primary_site"], shown(client)["status"]) == (
            "site-b", "failed_over")
    again = clients["site-a"].patch(GROUP, json={"description": "unrelated"}, headers=ALICE)
    assert again.status_code == 200, again.json
    assert shown(clients["site-b"])["primary_site"] == "site-b"


@pytest.fixture
def diverged(sites):
    """Neither copy records a takeover: the group waits for people."""
    clients, links = sites
    group = a_group_with_a_member(clients)
    partitioned(clients, links)
    record_alone(clients, "site-a", group, {"status": "protected"})
    record_alone(clients, "site-b", group, {"status": "error"})
    partitioned(clients, links, down=False)
    sync(clients, "site-a")
    return clients, group


def test_a_divergence_without_a_takeover_shows_conflict_with_both_copies(diverged):
    clients, _ = diverged
    for client in clients.values():
        group = shown(client)
        assert group["status"] == "conflict"
        copies = {c["site"]: c["status"] for c in group["conflict"]["copies"]}
        assert copies == {"site-a": "protected", "site-b": "error"}
    metrics = clients["site-b"].get("/metrics").text
    assert "protector_diverged_objects 1.0" in metrics


def test_a_diverged_group_refuses_changes_and_operations_and_changes_nothing(diverged):
    clients, group = diverged
    before = {site: shown(c) for site, c in clients.items()}
    edit = clients["site-b"].patch(GROUP, json={"description": "x"}, headers=ALICE)
    assert edit.status_code == 409 and "diverged" in edit.json["error"]["message"]
    assert "resolve" in edit.json["error"]["message"]
    drill = clients["site-b"].post(f"{GROUP}/test-failover", headers=ALICE)
    assert drill.status_code == 409 and "diverged" in drill.json["error"]["message"]
    state = clients["site-b"].put(f"/v1/internal/protection-groups/{group}/state",
                                  json={"status": "protected"}, headers=SERVICE)
    assert state.status_code == 409
    assert {site: shown(c) for site, c in clients.items()} == before


def test_people_keep_one_copy_on_both_sites(diverged):
    clients, _ = diverged
    nobody = clients["site-b"].post(f"{GROUP}/resolve", json={"keep": "site-c"},
                                    headers=ALICE)
    assert nobody.status_code == 400 and "site-c" in nobody.json["error"]["message"]
    kept = clients["site-b"].post(f"{GROUP}/resolve", json={"keep": "site-b"}, headers=ALICE)
    assert kept.status_code == 200, kept.json
    for client in clients.values():
        group = shown(client)
        assert (group["status"], group["version"], group["conflict"]) == ("error", 4, None)
    assert "alice" in next(e for e in audit(clients["site-a"])
                           if e["action"] == "protection_group.resolve")["reason"]
    twice = clients["site-a"].post(f"{GROUP}/resolve", json={"keep": "site-a"},
                                   headers=ALICE)
    assert twice.status_code == 409 and "nothing to resolve" in twice.json["error"]["message"]
    assert clients["site-a"].patch(GROUP, json={"description": "x"},
                                   headers=ALICE).status_code == 200


def test_only_the_peer_service_may_report_a_divergence(diverged):
    clients, group = diverged
    reply = clients["site-b"].post("/v1/internal/divergences", json={
        "kind": "protection_group", "object_id": group, "ours": {}, "theirs": {}},
        headers=ALICE)
    assert reply.status_code == 403
