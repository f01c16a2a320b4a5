"""A partition with something recorded on each side (issue 15): while one site's protection
service is away, the other records alone what its workflows report (as a failover's
outcome is recorded); when both answer again, the copies written apart are kept side by
side, the group shows ``conflict`` on both sites and refuses every change, and the
operator keeps one with the CLI. Nothing is overwritten silently.

The group is carol's (project ``operations``) and has no VMs: only its record matters."""

from __future__ import annotations

import time

from tests.scenarios.conftest import site_a_running

GROUP = "ops-ledger-record"
QUIET = {"progress": lambda line: None}


def shown(api, site: str) -> dict:
    return api(site, "GET", f"/protection-groups/{GROUP}", user="carol",
               expect=200)["protection_group"]


def record_alone(api, site: str, group_id: str, status: str) -> dict:
    """What a workflow of ``site`` reports, as the DR service account does."""
    return api(site, "PUT", f"/internal/protection-groups/{group_id}/state",
               user="site-recovery", expect=200, json={"status": status})["document"]


def until_both(api, predicate, within: float = 90.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        groups = {site: shown(api, site) for site in ("site-a", "site-b")}
        if all(predicate(g) for g in groups.values()):
            return groups
        assert time.monotonic() < deadline, f"both sites never agreed: {groups}"
        time.sleep(1.0)


def test_a_partition_with_records_on_both_sides_ends_in_conflict_and_is_resolved(
        lab, api, cli):
    site_a_running(lab)
    group = api("site-a", "POST", "/protection-groups", user="carol", expect=201, json={
        "name": GROUP, "replication_type": "async", "primary_site": "site-a",
        "secondary_site": "site-b", "volume_type": "replicated-ssd"})["protection_group"]
    version = group["version"]

    lab.service_down("site-a", "webhook", **QUIET)
    there = record_alone(api, "site-b", group["id"], "error")
    lab.service_down("site-b", "webhook", **QUIET)
    lab.site_up("site-a", **QUIET)
    here = record_alone(api, "site-a", group["id"], "protected")
    assert here["version"] == there["version"] == version + 1
    lab.site_up("site-b", **QUIET)

    groups = until_both(api, lambda g: g["status"] == "conflict")
    for site, group_now in groups.items():
        copies = {c["site"]: (c["status"], c["version"])
                  for c in group_now["conflict"]["copies"]}
        assert copies == {"site-a": ("protected", version + 1),
                          "site-b": ("error", version + 1)}, site
    refused = api("site-b", "PATCH", f"/protection-groups/{GROUP}", user="carol",
                  expect=409, json={"description": "meanwhile"})
    assert "diverged" in refused["error"]["message"]
    assert until_both(api, lambda g: g["status"] == "conflict")["site-a"][
        "description"] == ""

    kept = cli("site-a-carol", "protector", "protection-group", "resolve", GROUP,
               "--keep", "site-b", "-f", "json")
    assert kept["status"] == "error" and kept["version"] == version + 2
    groups = until_both(api, lambda g: g["status"] == "error")
    assert {g["version"] for g in groups.values()} == {version + 2}
    assert all(g["conflict"] is None for g in groups.values())
    audit = api("site-a", "GET", "/audit-log", user="carol")["entries"]
    actions = [e["action"] for e in audit if e["target"] == group["id"]]
    assert "protection_group.diverged" in actions and "protection_group.resolve" in actions

    # The kept copy says error: its replication may be in place, so only force deletes it.
    refused = api("site-a", "DELETE", f"/protection-groups/{GROUP}", user="carol", expect=409)
    assert "unprotect it first" in refused["error"]["message"]
    api("site-a", "DELETE", f"/protection-groups/{GROUP}?force=true", user="carol",
        expect=204)
