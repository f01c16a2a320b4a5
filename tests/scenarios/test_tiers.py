"""Boot order with health gates: the tenant puts its database in the first tier with a
gate (a line its console must show); a recovery whose gate is never passed stops before
the next tier, naming the server, and the app server is never created; once the gate
names what the database prints, the retry passes it and boots the app tier."""

from __future__ import annotations

import pytest

from site_recovery.lab.fleet import seed_fleet
from tests.scenarios.conftest import protected_group, removed, site_a_running

GROUP = "orders-gated"
READY = "postgres: database system is ready to accept connections"


@pytest.fixture(scope="module")
def orders(lab, api, cli, clouds):
    """gate-1 (a database whose guest prints READY on boot) and gate-2 (an app server),
    bob's on site-a (10.30.0.11-12), protected async; gate-1 in boot tier 0 behind a gate
    its console never shows, gate-2 in tier 1; removed afterwards."""
    site_a_running(lab)
    servers = seed_fleet(lab, user="bob", prefix="gate", count=2, cidr="10.30.0.0/24")
    clouds("site-a", "bob").compute.set_server_metadata(servers["gate-1"], lab_console=READY)
    group = protected_group(lab, api, cli, name=GROUP, prefix="gate", servers=servers)
    cli("site-a-bob", "protector", "member", "set", GROUP, servers["gate-1"],
        "--boot-tier", "0", "--gate-console-marker", "replication caught up",
        "--gate-timeout", "5")
    cli("site-b-bob", "protector", "member", "set", GROUP, servers["gate-2"],
        "--boot-tier", "1")
    yield {"group": group, "servers": servers}
    removed(api, GROUP)


def test_the_plan_shows_the_tiers_and_the_gate(orders, api):
    plan = api("site-b", "POST", f"/protection-groups/{GROUP}/test-failover", user="bob",
               json={"dry_run": True})["plan"]
    (group,) = plan["protection_groups"]
    assert group["boot_order"] == [
        {"boot_order": 0, "servers": ["test-gate-1"],
         "gates": {"test-gate-1": {"console_marker": "replication caught up",
                                   "timeout_seconds": 5}}},
        {"boot_order": 1, "servers": ["test-gate-2"], "gates": {}}]


def test_a_gate_never_passed_stops_the_next_tier_and_names_the_server(orders, api, clouds):
    started = api("site-b", "POST", f"/protection-groups/{GROUP}/test-failover", user="bob",
                  expect=202, json={})["operation"]
    op = api.wait_operation("site-b", started["id"], user="bob")
    (result,) = op["results"]
    assert (op["status"], result["step"]) == ("failed", "build_stack"), result
    assert "server test-gate-1 did not pass its gate: 'replication caught up' not in its " \
           "console log within 5 s; not started: test-gate-2" in result["reason"], result
    bob_b = clouds("site-b", "bob")
    assert sorted((s.name, s.status) for s in bob_b.compute.servers()
                  if s.name.startswith("test-gate-")) == [("test-gate-1", "ACTIVE")]
    stack = bob_b.orchestration.find_stack(f"test-{GROUP}")
    assert sorted(r.name for r in bob_b.orchestration.resources(stack)
                  if r.resource_type == "OS::Nova::Server") == ["server_0"]
    orders["failed"] = op["id"]


def test_with_a_gate_the_database_passes_the_retry_boots_the_next_tier(orders, api, cli,
                                                                       clouds):
    assert orders.get("failed"), "the drill above did not fail at its gate"
    cli("site-b-bob", "protector", "member", "set", GROUP, orders["servers"]["gate-1"],
        "--gate-console-marker", "ready to accept connections", "--gate-timeout", "60")
    retried = api("site-b", "POST", f"/operations/{orders['failed']}/retry", user="bob",
                  expect=202, json={})["operation"]
    op = api.wait_operation("site-b", retried["id"], user="bob")
    assert op["status"] == "completed", op["results"]
    bob_b = clouds("site-b", "bob")
    recovered = {s.name: s for s in bob_b.compute.servers() if s.name.startswith("test-gate-")}
    assert sorted(recovered) == ["test-gate-1", "test-gate-2"]
    # The database was up before the app server was asked for.
    assert recovered["test-gate-1"].created_at < recovered["test-gate-2"].created_at
    cleanup = api("site-b", "POST", f"/protection-groups/{GROUP}/test-cleanup", user="bob",
                  expect=202, json={})["operation"]
    assert api.wait_operation("site-b", cleanup["id"], user="bob")["status"] == "completed"
    assert not [s for s in bob_b.compute.servers() if s.name.startswith("test-gate-")]
