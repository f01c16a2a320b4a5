"""A dry run, before the disaster: ``--dry-run`` on a drill, a failover and a site
failover prints the plan and changes nothing on either cloud or array; the failover that
follows builds what the plan said (the recovery point, the copies, the stack's resources,
each server's addresses and the boot order), measures its RTO and says it is over the
group's target, and the group fails back."""

from __future__ import annotations

import pytest

from site_recovery.lab.fleet import seed_fleet
from tests.scenarios.conftest import protected_group, removed, site_a_running
from tests.scenarios.test_dr_story import inventory

GROUP = "payments-plan"
FAILOVER = ("dr", "failover", GROUP, "--failover-type", "unplanned", "--force")


@pytest.fixture(scope="module")
def payments(lab, api, cli, clouds):
    """Two VMs of bob's on site-a (10.29.0.11-12), each with a data volume, plan-1 a
    database (it boots first), protected async (hourly: no newer point arrives while the
    module runs), with an RTO target no recovery meets (1 s); removed afterwards."""
    site_a_running(lab)
    servers = seed_fleet(lab, user="bob", prefix="plan", count=2, cidr="10.29.0.0/24",
                         data_gb=1)
    clouds("site-a", "bob").compute.set_server_metadata(servers["plan-1"], tier="db")
    group = protected_group(lab, api, cli, name=GROUP, prefix="plan", servers=servers,
                            rto_target_seconds=1)
    yield {"group": group, "servers": servers}
    removed(api, GROUP)


def everything(lab, api, clouds) -> dict:
    """Both clouds and arrays, bob's stacks on both sites, and what site-b's service
    recorded for bob: its operations and audit entries."""
    return {"clouds_and_arrays": inventory(lab, clouds),
            "stacks": {site: sorted(s.name for s in clouds(site, "bob").orchestration.stacks())
                       for site in ("site-a", "site-b")},
            "operations": [op["id"] for op in api("site-b", "GET", "/operations",
                                                  user="bob")["operations"]],
            "audit": [e["id"] for e in api("site-b", "GET", "/audit-log",
                                           user="bob")["entries"]]}


def test_dry_runs_change_nothing_anywhere(lab, payments, api, cli, clouds):
    before = everything(lab, api, clouds)
    drill = cli("site-b-bob", "dr", "test", "failover", GROUP, "--dry-run", "-f", "json")
    failover = cli("site-b-bob", *FAILOVER, "--dry-run", "-f", "json")
    site = api("site-b", "POST", "/sites/site-a/failover", user="dr-admin", json={
        "failover_type": "unplanned", "force": True, "dry_run": True})["plan"]
    assert everything(lab, api, clouds) == before

    (planned,) = drill["protection_groups"]
    assert planned["stack"]["name"] == f"test-{GROUP}"
    assert sorted(s["name"] for s in planned["servers"]) == ["test-plan-1", "test-plan-2"]
    assert drill["ready"] and failover["ready"], (drill, failover)
    (group,) = failover["protection_groups"]
    assert group["problems"] == []
    assert group["boot_order"] == [{"boot_order": 0, "servers": ["plan-1"], "gates": {}},
                                   {"boot_order": 1, "servers": ["plan-2"], "gates": {}}]
    assert {(p["source_ip"], p["ip_address"], p["address"]) for s in group["servers"]
            for p in s["ports"]} == {("10.29.0.11", "10.29.0.11", "kept"),
                                     ("10.29.0.12", "10.29.0.12", "kept")}
    assert sorted(v["copy_name"] for v in group["volumes"]) == [
        "plan-1-boot", "plan-1-data", "plan-2-boot", "plan-2-data"]
    assert GROUP in [g["protection_group"] for g in site["protection_groups"]]
    ours = next(g for g in site["protection_groups"] if g["protection_group"] == GROUP)
    assert ours["stack"] == group["stack"] and ours["servers"] == group["servers"]
    payments["plan"] = group


def test_the_failover_that_follows_builds_what_the_plan_said(lab, payments, api, cli, clouds):
    plan = payments.get("plan")
    assert plan, "the dry run above did not complete"
    started = cli("site-b-bob", *FAILOVER, "-f", "json")
    op = api.wait_operation("site-b", started["id"], user="bob")
    assert op["status"] == "completed", op["results"]
    (result,) = op["results"]
    assert result["recovery_point"] == plan["recovery_point"]["name"]
    # Its wall time, by phase and in total, and over the target: it says so.
    assert result["timings"]["total"] > max(v for k, v in result["timings"].items()
                                            if k != "total")
    assert result["details"]["rto"] == (f"recovered in {result['timings']['total']:.0f} s, "
                                        "over its 1 s RTO target")
    assert [e["reason"] for e in api("site-b", "GET", f"/audit-log?target="
                                     f"{payments['group']['id']}", user="bob")["entries"]
            if e["action"] == "operation.rto_exceeded"] == [
        f"protection group {GROUP} {result['details']['rto']}"]

    bob_b = clouds("site-b", "bob")
    stack = bob_b.orchestration.find_stack(plan["stack"]["name"])
    assert stack is not None and stack.status == "CREATE_COMPLETE"
    built = sorted((r.name, r.resource_type)
                   for r in bob_b.orchestration.resources(stack))
    assert built == sorted((r["name"], r["type"]) for r in plan["stack"]["resources"])
    template = bob_b.orchestration.get_stack_template(stack)["resources"]
    assert {name: sorted([r["depends_on"]] if isinstance(r.get("depends_on"), str)
                         else r.get("depends_on") or [])
            for name, r in template.items()} == {
        r["name"]: r["depends_on"] for r in plan["stack"]["resources"]}
    servers = {s.name: s for s in bob_b.compute.servers() if s.name.startswith("plan-")}
    assert sorted(servers) == sorted(s["name"] for s in plan["servers"])
    for planned in plan["servers"]:
        addresses = {(network, a["addr"]) for network, held in
                     servers[planned["name"]].addresses.items() for a in held}
        assert addresses == {(p["network_name"], p["ip_address"]) for p in planned["ports"]}
    copies = {v.name for v in bob_b.block_storage.volumes()
              if (v.metadata or {}).get("site_recovery_group") == payments["group"]["id"]}
    assert copies == {v["copy_name"] for v in plan["volumes"]}

    back = api("site-a", "POST", f"/protection-groups/{GROUP}/failback", user="bob",
               expect=202, json={})
    assert api.wait_operation("site-a", back["operation"]["id"], user="bob")[
        "status"] == "completed"
