"""Readiness, before the disaster: the DR site says whether a group would recover, and
why not. Each broken condition it checks is flagged and clears once mended: a missing
network mapping, a kept IP no DR subnet holds, a DR quota too small for the group, and
replication stopped until the newest recovery point is older than the RPO target (the
engine's replication watch, also in ``/metrics`` and the audit log)."""

from __future__ import annotations

import time

import pytest
import requests

from site_recovery.lab.fleet import seed_fleet
from tests.scenarios.conftest import protected_group, removed, site_a_running

GROUP = "payments-rpo"
TARGET = 20               # seconds: the array replicates the group this often


@pytest.fixture(scope="module")
def payments(lab, api, cli):
    """One VM of bob's on site-a (10.28.0.11), protected async with a 20 s RPO target;
    unprotected and deleted afterwards, so its array snapshots every 20 s end with the
    module."""
    site_a_running(lab)
    servers = seed_fleet(lab, user="bob", prefix="rpo", count=1, cidr="10.28.0.0/24")
    yield protected_group(lab, api, cli, name=GROUP, prefix="rpo", servers=servers,
                          rpo_target_seconds=TARGET)
    removed(api, GROUP)


def readiness(cli) -> dict[str, dict]:
    """``openstack protector protection-group readiness --refresh`` on the DR site: each
    check's row by name."""
    rows = cli("site-b-bob", "protector", "protection-group", "readiness", GROUP,
               "--refresh", "-f", "json")
    return {row["Check"]: row for row in rows}


def failing(cli) -> dict[str, str]:
    return {name: row["Detail"] for name, row in readiness(cli).items()
            if row["Result"] != "ok"}


def violated(lab, group_id: str) -> float | None:
    """site-b's ``protector_group_rpo_violated`` for the group (None: not reported)."""
    text = requests.get(lab.sites["site-b"].url("webhook", "/metrics"), timeout=30,
                        verify=lab.ca_file()).text
    for line in text.splitlines():
        if line.startswith("protector_group_rpo_violated{") and \
                f'group_id="{group_id}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_for(lab, group_id: str, value: float, within: float = 120.0):
    deadline = time.monotonic() + within
    while (seen := violated(lab, group_id)) != value:
        assert time.monotonic() < deadline, f"rpo_violated still {seen}, waited for {value}"
        time.sleep(1.0)


def watch_entries(api, group_id: str) -> list[dict]:
    return [e for e in api("site-b", "GET", f"/audit-log?target={group_id}", user="bob")[
        "entries"] if e["action"].startswith("replication.")]


def network_mapping(api) -> dict:
    (found,) = [m for m in api("site-a", "GET", "/resource-mappings", user="bob")[
        "resource_mappings"] if (m["kind"], m["source"]) == ("network", "rpo-net")]
    return found


def test_a_protected_group_with_its_mappings_in_place_is_ready_but_not_yet_drilled(
        lab, payments, cli):
    wait_for(lab, payments["id"], 0.0)              # protect replicated a first point
    assert failing(cli) == {"drill": "never drilled"}          # a warning: still ready
    listed = cli("site-b-bob", "protector", "protection-group", "list", "-f", "json")
    assert {row["Name"]: row["Ready"] for row in listed}[GROUP] is True


def test_a_missing_network_mapping_is_flagged_and_clears_once_mapped_again(
        payments, api, cli):
    mapping = network_mapping(api)
    api("site-a", "DELETE", f"/resource-mappings/{mapping['id']}", user="bob", expect=204)
    try:
        assert "no mapping to a DR network for rpo-net (of rpo-1)" in failing(cli)[
            "mappings"]
        assert api("site-b", "GET", f"/protection-groups/{GROUP}", user="bob")[
            "protection_group"]["ready"] is False
    finally:
        api("site-a", "POST", "/resource-mappings", user="bob", expect=201, json={
            "kind": "network", "source": "rpo-net", "target": "dr-rpo-net",
            "protection_group": GROUP})
    assert "mappings" not in failing(cli)


def test_a_kept_ip_no_dr_subnet_holds_is_flagged_and_clears_once_mapped_back(
        payments, api, cli, clouds):
    bob_b = clouds("site-b", "bob")
    other = bob_b.network.create_network(name="rpo-elsewhere-net")
    bob_b.network.create_subnet(network_id=other.id, cidr="10.99.0.0/24", ip_version=4)
    mapping = network_mapping(api)
    api("site-a", "PATCH", f"/resource-mappings/{mapping['id']}", user="bob", expect=200,
        json={"target": "rpo-elsewhere-net"})
    try:
        assert "rpo-1 10.28.0.11: they would come back with other addresses" in failing(
            cli)["addresses"]
    finally:
        api("site-a", "PATCH", f"/resource-mappings/{mapping['id']}", user="bob",
            expect=200, json={"target": "dr-rpo-net"})
    assert "addresses" not in failing(cli)


def test_a_dr_quota_too_small_for_the_group_is_flagged_and_clears_once_raised(
        payments, cli, clouds):
    bob_b, admin_b = clouds("site-b", "bob"), clouds("site-b", "admin")
    quota = f"/os-quota-sets/{bob_b.current_project_id}"
    before = admin_b.compute.get(quota).json()["quota_set"]["instances"]
    used = bob_b.compute.get_limits().absolute.instances_used
    assert admin_b.compute.put(quota, json={"quota_set": {"instances": used}}).ok
    try:
        assert "instances: 1 needed, 0 free" in failing(cli)["quota"]
    finally:
        admin_b.compute.put(quota, json={"quota_set": {"instances": before}})
    assert "quota" not in failing(cli)


def test_replication_stopped_past_the_rpo_target_is_flagged_and_clears_after(
        lab, payments, api, cli):
    group_id = payments["id"]
    wait_for(lab, group_id, 0.0)
    assert watch_entries(api, group_id) == []
    lab.set_link(up=False)
    try:
        wait_for(lab, group_id, 1.0)
        assert f"over the {TARGET} s RPO target" in failing(cli)["replication"]
    finally:
        lab.set_link(up=True)
    (flagged,) = watch_entries(api, group_id)
    assert flagged["action"] == "replication.rpo_violated", flagged
    assert f"over its {TARGET} s RPO target" in flagged["reason"]
    assert flagged["details"]["lag_seconds"] > TARGET
    wait_for(lab, group_id, 0.0)                    # the next scheduled point arrived
    cleared, _ = watch_entries(api, group_id)
    assert cleared["action"] == "replication.rpo_met"
    assert cleared["details"]["lag_seconds"] <= TARGET
    assert "replication" not in failing(cli)
