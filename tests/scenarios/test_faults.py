"""Faults during DR operations, on a group of its own (the ``analytics`` tenant): each run
ends cleanly failed with the group, the step and the cause named; the retry completes with
no duplicate volume or server, and cleanup leaves nothing behind."""

from __future__ import annotations

import time

import pytest

from site_recovery.lab.fleet import seed_fleet
from tests.scenarios.conftest import protected_group, site_a_running
from tests.scenarios.test_dr_story import inventory

GROUP = "analytics-etl"


@pytest.fixture(scope="module")
def etl(lab, api, cli):
    """Two VMs of bob's on site-a (10.20.0.11 and .12), their own networks on both sites,
    protected async."""
    site_a_running(lab)
    servers = seed_fleet(lab, user="bob", prefix="etl", count=2, cidr="10.20.0.0/24")
    return protected_group(lab, api, cli, name=GROUP, prefix="etl", servers=servers)


def drill(api, *, retry_of: str | None = None) -> dict:
    path = f"/operations/{retry_of}/retry" if retry_of else \
        f"/protection-groups/{GROUP}/test-failover"
    started = api("site-b", "POST", path, user="bob", expect=202, json={})
    return api.wait_operation("site-b", started["operation"]["id"], user="bob")


def cleanup(api):
    started = api("site-b", "POST", f"/protection-groups/{GROUP}/test-cleanup", user="bob",
                  expect=202, json={})
    op = api.wait_operation("site-b", started["operation"]["id"], user="bob")
    assert op["status"] == "completed", op


def failed_result(op: dict) -> dict:
    assert op["status"] == "failed", op
    (result,) = op["results"]
    assert result["protection_group"] == GROUP and result["status"] == "failed"
    return {**result, "operation_id": op["id"]}


def drill_copies(clouds) -> tuple[list, list]:
    bob_b = clouds("site-b", "bob")
    volumes = [v for v in bob_b.block_storage.volumes()
               if v.metadata.get("site_recovery_purpose") == "drill"]
    servers = [s for s in bob_b.compute.servers() if s.name.startswith("test-etl-")]
    return volumes, servers


def test_a_volume_cinder_cannot_manage_fails_the_drill_and_the_retry_leaves_no_duplicate(
        lab, etl, api, clouds):
    before = inventory(lab, clouds)
    lab.cloud_fault("site-b", {"behaviour": "manage_error", "count": 1,
                               "message": "the backend refused"})
    result = failed_result(drill(api))
    assert result["step"] == "import_volumes"
    assert "could not manage" in result["reason"] and "etl-" in result["reason"]

    op = drill(api, retry_of=result["operation_id"])
    assert op["status"] == "completed", op
    volumes, servers = drill_copies(clouds)
    assert sorted(v.name for v in volumes) == ["test-etl-1-boot", "test-etl-2-boot"]
    assert sorted((s.name, s.status) for s in servers) == [("test-etl-1", "ACTIVE"),
                                                          ("test-etl-2", "ACTIVE")]
    cleanup(api)
    assert inventory(lab, clouds) == before


def test_a_server_that_fails_to_build_fails_the_drill_and_the_retry_finishes_the_stack(
        lab, etl, api, clouds):
    before = inventory(lab, clouds)
    # Heat itself retries a server that went to ERROR (action_retry_limit, 5 by default):
    # a build that keeps failing is what fails the stack.
    lab.cloud_fault("site-b", {"behaviour": "server_build_error", "count": 20})
    try:
        result = failed_result(drill(api))
    finally:
        lab.clear_faults()
    assert result["step"] == "build_stack"
    assert "test-analytics-etl" in result["reason"] and "FAILED" in result["reason"]

    op = drill(api, retry_of=result["operation_id"])
    assert op["status"] == "completed", op
    volumes, servers = drill_copies(clouds)
    assert len(volumes) == 2
    assert sorted((s.name, s.status) for s in servers) == [("test-etl-1", "ACTIVE"),
                                                          ("test-etl-2", "ACTIVE")]
    cleanup(api)
    assert inventory(lab, clouds) == before


def test_the_dr_array_unreachable_fails_the_drill_naming_it_until_it_is_back(
        lab, etl, api, clouds):
    before = inventory(lab, clouds)
    lab.fabric.set_array_up("pure-site-b", False)
    try:
        result = failed_result(drill(api))
    finally:
        lab.fabric.set_array_up("pure-site-b", True)
    assert result["step"] == "recovery_point" and "pure-site-b" in result["reason"]
    op = drill(api, retry_of=result["operation_id"])
    assert op["status"] == "completed", op
    cleanup(api)
    assert inventory(lab, clouds) == before


def test_with_the_replication_link_down_a_drill_says_so_and_a_planned_failover_stops_nothing(
        lab, etl, api, clouds):
    before = inventory(lab, clouds)
    lab.set_link(up=False)
    try:
        op = drill(api)
        assert op["status"] == "completed", op
        (result,) = op["results"]
        assert result["details"]["test_prefix"] == "test-"
        assert result["details"]["production_replication"].startswith(
            "affected: replication link pure-site-a -> pure-site-b is down"), result
        cleanup(api)

        started = api("site-b", "POST", f"/protection-groups/{GROUP}/failover", user="bob",
                      expect=202, json={"failover_type": "planned"})
        result = failed_result(api.wait_operation("site-b", started["operation"]["id"],
                                                  user="bob"))
        assert result["step"] == "stop_primary", result
        assert "nothing was stopped" in result["reason"] and "pure-site-a" in result["reason"]
        assert {s.status for s in clouds("site-a", "bob").compute.servers()} == {"ACTIVE"}
        assert api("site-a", "GET", f"/protection-groups/{GROUP}", user="bob")[
            "protection_group"]["primary_site"] == "site-a"
    finally:
        lab.set_link(up=True)
    assert inventory(lab, clouds) == before
    op = drill(api)
    assert op["results"][0]["details"]["production_replication"] == "unaffected"
    cleanup(api)


def test_a_planned_failover_is_refused_while_the_primary_sites_service_is_down(
        lab, etl, api):
    def failovers() -> list[str]:
        return [o["id"] for o in api("site-b", "GET", "/operations", user="bob")["operations"]
                if o["operation_type"] == "failover"]

    before = failovers()
    lab.service_down("site-a", "webhook", progress=lambda line: None)
    try:
        deadline = time.monotonic() + 60
        while api("site-b", "GET", "/sites/site-a", user="bob")["site"]["state"] != \
                "unreachable":
            assert time.monotonic() < deadline
            time.sleep(0.5)
        refused = api("site-b", "POST", f"/protection-groups/{GROUP}/failover", user="bob",
                      expect=409, json={"failover_type": "planned"})
        assert "needs peer site site-a" in refused["error"]["message"]
        assert failovers() == before
    finally:
        lab.site_up("site-a", progress=lambda line: None)


def test_mistral_killed_mid_failover_then_the_retry_completes_with_no_duplicates(
        lab, etl, api, clouds):
    lab.cloud_fault("site-b", {"behaviour": "server_build_delay", "count": 2, "seconds": 20})
    started = api("site-b", "POST", f"/protection-groups/{GROUP}/failover", user="bob",
                  expect=202, json={"failover_type": "planned"})
    op_id = started["operation"]["id"]
    deadline = time.monotonic() + 300
    while api("site-b", "GET", f"/operations/{op_id}", user="bob")["operation"]["results"][0][
            "step"] != "build_stack":
        assert time.monotonic() < deadline, "the failover never reached its stack"
        time.sleep(0.5)
    lab.service_down("site-b", "mistral", progress=lambda line: None)
    lab.site_up("site-b", progress=lambda line: None)            # Mistral starts again

    result = failed_result(api.wait_operation("site-b", op_id, user="bob"))
    assert result["step"] == "build_stack"
    op = api.wait_operation("site-b", api(
        "site-b", "POST", f"/operations/{op_id}/retry", user="bob", expect=202,
        json={})["operation"]["id"], user="bob")
    assert op["status"] == "completed", op
    bob_b = clouds("site-b", "bob")
    servers = list(bob_b.compute.servers())
    assert sorted((s.name, s.status) for s in servers) == [("etl-1", "ACTIVE"),
                                                          ("etl-2", "ACTIVE")]
    assert sorted(v.name for v in bob_b.block_storage.volumes()) == ["etl-1-boot",
                                                                     "etl-2-boot"]
    assert [s.name for s in bob_b.orchestration.stacks()] == ["dr-analytics-etl"]
    assert sorted(p.fixed_ips[0]["ip_address"] for p in bob_b.network.ports()
                  if p.device_id in {s.id for s in servers}) == ["10.20.0.11", "10.20.0.12"]


def test_protect_refuses_a_volume_that_does_not_replicate_naming_it_and_changes_nothing(
        lab, api, cli, clouds):
    """Through the CLI, as the tenant: the operation fails at the protect step naming the
    VM and its volume; no Cinder group, no array group, and the group stays unprotected."""
    site_a_running(lab)
    admin = clouds("site-a", "admin")
    if admin.block_storage.find_type("plain-ssd", ignore_missing=True) is None:
        admin.block_storage.create_type(name="plain-ssd",
                                        extra_specs={"volume_backend_name": "pure"})
    servers = seed_fleet(lab, user="bob", prefix="plain", count=1, cidr="10.21.0.0/24",
                         volume_type="plain-ssd")
    group = api("site-a", "POST", "/protection-groups", user="bob", expect=201, json={
        "name": "plain-group", "replication_type": "async", "primary_site": "site-a",
        "secondary_site": "site-b", "volume_type": "replicated-ssd"})["protection_group"]
    api("site-a", "POST", "/protection-groups/plain-group/members", user="bob", expect=201,
        json={"server_id": servers["plain-1"], "server_name": "plain-1"})
    arrays = [lab.sites[site].array_name for site in ("site-a", "site-b")]
    arrays_before = {name: lab.fabric.inventory(name) for name in arrays}

    started = cli("site-a-bob", "protector", "protection-group", "protect", "plain-group",
                  "-f", "json")
    op = api.wait_operation("site-a", started["id"], user="bob")

    assert op["status"] == "failed", op
    (result,) = op["results"]
    assert (result["protection_group"], result["step"]) == ("plain-group", "protect")
    assert "plain-1: volume plain-1-boot has volume type 'plain-ssd'" in result["reason"]
    shown = api("site-a", "GET", "/protection-groups/plain-group", user="bob")
    assert shown["protection_group"]["status"] != "protected"
    assert not [g for g in clouds("site-a", "bob").block_storage.groups()
                if group["id"] in (g.description or "")]
    assert {name: lab.fabric.inventory(name) for name in arrays} == arrays_before
    wrong_site = api("site-b", "POST", "/protection-groups/plain-group/protect", user="bob",
                     expect=409)
    assert "runs on site-a: protect it there" in wrong_site["error"]["message"]
