"""The concept document's story on the lab, step by step, through the public interfaces:
protect (started in Mistral directly), drill and cleanup, planned failover (through the
protection service's API). Each step checks the clouds and arrays, not only statuses.

The steps build on each other (one lab, one tenant), in file order.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import openstack
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from site_recovery.core.plan import array_group_name
from site_recovery.workbooks import workflow_name
from tests.scenarios.conftest import wait_execution

GROUPS = {   # name -> (replication type, members)
    "prod-ecommerce-web": ("async", ("web-1", "web-2")),
    "prod-ecommerce-db": ("sync", ("db-1",)),
}
MAPPINGS = [("network", "prod-net", "dr-prod-net"), ("network", "db-net", "dr-db-net"),
            ("flavor", "m1.small", "dr.small"), ("flavor", "m1.medium", "dr.medium"),
            ("flavor", "m1.large", "dr.large"), ("ip_rule", "10.0.1.0/24", "10.1.1.0/24")]
STATE: dict = {}
DECIDING = 20.0          # seconds between site-a's loss and the site failover
# Starts DR workflows in Mistral directly: the DR service account, whose project owns the
# (private) workbook.
SERVICE = "site-a-site-recovery"


def group_id(name: str) -> str:
    return STATE["groups"][name]


def inventory(lab, clouds) -> dict:
    """Everything both sites' clouds and both arrays hold, by name or id."""
    seen = {}
    for site in ("site-a", "site-b"):
        admin = clouds(site, "admin")
        seen[site] = {
            "servers": sorted((s.name, s.status) for s in
                              admin.compute.servers(all_projects=True)),
            "volumes": sorted((v.id, v.name, v.status) for v in
                              admin.block_storage.volumes(all_projects=True)),
            "ports": sorted(p.id for p in admin.network.ports()),
            # Neutron makes a project's "default" group on the project's first port: its own
            # doing, not the drill's.
            "security_groups": sorted(g.id for g in admin.network.security_groups()
                                      if g.name != "default"),
            "stacks": sorted(s.name for s in clouds(site).orchestration.stacks()),
        }
        seen[lab.sites[site].array_name] = {
            kind: names for kind, names in lab.fabric.inventory(
                lab.sites[site].array_name).items()
            if kind != "destroyed_volumes"}   # in the eradication window: see destroyed()
    return seen


def destroyed(lab, site: str) -> set[str]:
    """The volumes destroyed on ``site``'s array, waiting out its eradication window."""
    array = lab.sites[site].array_name
    return set(lab.fabric.inventory(array)["destroyed_volumes"])


def test_protect_started_in_mistral_replicates_and_captures_each_group(lab, api, cli, clouds):
    alice_a = clouds("site-a")
    servers = {s.name: s.id for s in alice_a.compute.servers()}
    STATE["groups"] = {}
    for name, (kind, members) in GROUPS.items():
        group = api("site-a", "POST", "/protection-groups", expect=201, json={
            "name": name, "replication_type": kind, "primary_site": "site-a",
            "secondary_site": "site-b",
            "volume_type": "replicated-sync" if kind == "sync" else "replicated-ssd"})
        STATE["groups"][name] = group["protection_group"]["id"]
        for member in members:
            api("site-a", "POST", f"/protection-groups/{name}/members", expect=201,
                json={"server_id": servers[member], "server_name": member})
    for kind, source, target in MAPPINGS:
        api("site-a", "POST", "/resource-mappings", expect=201,
            json={"kind": kind, "source": source, "target": target})

    started = cli(SERVICE, "workflow", "execution", "create", workflow_name("protect"),
                  json.dumps({"protection_group_ids": list(STATE["groups"].values())}),
                  "-f", "json")
    execution = wait_execution(cli, SERVICE, started["ID"])
    assert execution["State"] == "SUCCESS", execution["State info"]
    # Started behind the service's back, it is still recorded as an operation, once.
    (recorded,) = [o for o in api("site-a", "GET", "/operations")["operations"]
                   if o["mistral_execution_id"] == started["ID"]]
    assert (recorded["operation_type"], recorded["status"], recorded["completed_count"],
            recorded["requested_by"]["execution"]) == ("protect", "completed", 2,
                                                       started["ID"])

    web, db = group_id("prod-ecommerce-web"), group_id("prod-ecommerce-db")
    array_a = lab.fabric.array(lab.sites["site-a"].array_name)
    web_volumes = {v.id for s in ("web-1", "web-2")
                   for v in volumes_of(alice_a, servers[s])}
    assert set(array_a.get_pgroup(array_group_name(web))["volumes"]) == {
        f"volume-{v}-cinder" for v in web_volumes}
    pod = array_a.get_pod(array_group_name(db))
    assert {a["name"]: a["status"] for a in pod["arrays"]} == {
        "pure-site-a": "online", "pure-site-b": "online"}
    for site in ("site-a", "site-b"):          # captured, and the record reached both sites
        shown = api(site, "GET", "/protection-groups/prod-ecommerce-web")["protection_group"]
        assert shown["status"] == "protected"
        members = api(site, "GET", "/protection-groups/prod-ecommerce-web/members")
        assert all(m["captured_at"] for m in members["members"])


def test_the_periodic_capture_records_the_groups_again(api, cli):
    (trigger,) = [t for t in cli("site-a", "cron", "trigger", "list", "-f", "json")
                  if t["Name"] == "site_recovery.capture"]
    assert (trigger["Workflow"], trigger["Pattern"]) == (workflow_name("capture_site"),
                                                         "*/30 * * * *")
    before = api("site-b", "GET", "/protection-groups/prod-ecommerce-db/members")["members"]
    started = cli(SERVICE, "workflow", "execution", "create",
                  workflow_name("capture_site"), "-f", "json")   # what the trigger runs
    assert wait_execution(cli, SERVICE, started["ID"])["State"] == "SUCCESS"
    after = api("site-b", "GET", "/protection-groups/prod-ecommerce-db/members")["members"]
    assert after[0]["captured_at"] > before[0]["captured_at"]


def test_a_drill_rebuilds_the_db_group_on_the_isolated_network(lab, api, cli, clouds):
    STATE["before_drill"] = inventory(lab, clouds)
    STATE["destroyed_before_drill"] = destroyed(lab, "site-b")
    alice_b = clouds("site-b")
    test_net = alice_b.network.find_network("dr-test-net")
    prod_net = clouds("site-a").network.find_network("db-net")
    # The concept document's command verbatim, by alice, a member of her project.
    printed = cli("site-b-alice", "dr", "test", "failover", "prod-ecommerce-db",
                  "--network-mapping", f"{prod_net.id}={test_net.id}", "--all-projects")
    assert printed.splitlines() == ["Status: completed",
                                    "Test VMs created with prefix: test-",
                                    "Production replication: unaffected"]
    [op] = [o for o in api("site-b", "GET", "/operations?protection_group=prod-ecommerce-db")[
        "operations"] if o["operation_type"] == "test_failover"]
    assert op["status"] == "completed", op
    (result,) = op["results"]
    assert result["recovery_point"] and result["step"] == "done"
    timings = dict(result["timings"])
    total = timings.pop("total")                  # from the request to the group's end
    assert set(timings) == {"recovery_point", "import_volumes", "build_stack"}
    assert total >= sum(timings.values())

    stack = alice_b.orchestration.find_stack("test-prod-ecommerce-db")
    assert stack.status == "CREATE_COMPLETE", stack.status_reason
    server = alice_b.compute.find_server("test-db-1")
    assert server.status == "ACTIVE"
    assert server.flavor.original_name == "dr.large"
    (port,) = alice_b.network.ports(device_id=server.id)
    assert port.network_id == test_net.id
    assert port.fixed_ips[0]["ip_address"].startswith("10.99.0.")
    attached = [alice_b.block_storage.get_volume(a.volume_id)
                for a in alice_b.compute.volume_attachments(server)]
    assert sorted(v.name for v in attached) == ["test-db-1-boot", "test-db-1-data"]
    # the copies hold what the pod held: the production volumes' data generation
    alice_a = clouds("site-a")
    production = {v.name: v for v in volumes_of(alice_a, alice_a.compute.find_server("db-1").id)}
    pod = array_group_name(group_id("prod-ecommerce-db"))
    for copy in attached:
        source = production[copy.name.removeprefix("test-")]
        assert lab.fabric.generation("pure-site-b", f"volume-{copy.id}-cinder") == \
            lab.fabric.generation("pure-site-a", f"{pod}::volume-{source.id}-cinder")
    # production untouched: db-1 runs, the pod stays stretched and in sync
    assert alice_a.compute.find_server("db-1").status == "ACTIVE"
    pod = lab.fabric.array("pure-site-a").get_pod(array_group_name(group_id("prod-ecommerce-db")))
    assert {a["status"] for a in pod["arrays"]} == {"online"}


def test_cleanup_leaves_both_sites_and_arrays_exactly_as_before_the_drill(lab, api, clouds):
    started = api("site-b", "POST", "/protection-groups/prod-ecommerce-db/test-cleanup",
                  expect=202, json={})
    op = api.wait_operation("site-b", started["operation"]["id"])
    assert op["status"] == "completed", op
    assert inventory(lab, clouds) == STATE["before_drill"]
    # The drill's two copies are destroyed on the DR array, not eradicated: the array's
    # eradication window stays the last safety net.
    copies = destroyed(lab, "site-b") - STATE["destroyed_before_drill"]
    assert len(copies) == 2 and all(name.endswith("-cinder-unmanaged") for name in copies), \
        copies


def scraped(lab, site: str) -> dict[tuple[str, tuple], float]:
    """``site``'s /metrics (no token: Prometheus carries none), sample by sample."""
    reply = requests.get(lab.sites[site].url("webhook", "/metrics"), timeout=30,
                         verify=lab.ca_file())
    assert reply.status_code == 200
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(reply.text)
            for sample in family.samples}


def test_metrics_count_every_workers_requests_and_tell_the_drill(lab, api):
    """The API's two gunicorn workers count into one set of counters, which only grow
    however scrapes land on them; the drill just run shows as the db group's."""
    def served(figures) -> float:
        return sum(value for (name, _), value in figures.items()
                   if name == "protector_http_requests_total")

    counts = []
    for _ in range(12):
        api("site-b", "GET", "/sites")
        counts.append(served(scraped(lab, "site-b")))
    assert counts == sorted(counts) and counts[-1] >= counts[0] + 12, counts
    figures = scraped(lab, "site-b")
    db = (("group_id", group_id("prod-ecommerce-db")), ("primary_site", "site-a"),
          ("secondary_site", "site-b"))
    assert figures[("protector_group_last_drill_success", db)] == 1
    assert figures[("protector_group_last_drill_age_seconds", db)] < 600
    assert figures[("protector_peer_reachable", (("peer", "site-a"),))] == 1


def test_a_planned_failover_moves_the_web_group_to_site_b_with_no_data_lost(lab, api, clouds):
    started = api("site-b", "POST", "/protection-groups/prod-ecommerce-web/failover",
                  expect=202, json={"failover_type": "planned"})
    op = api.wait_operation("site-b", started["operation"]["id"])
    assert op["status"] == "completed", op
    (result,) = op["results"]
    assert result["rpo_achieved_seconds"] == 0
    alice_a, alice_b = clouds("site-a"), clouds("site-b")
    assert {alice_a.compute.find_server(n).status for n in ("web-1", "web-2")} == {"SHUTOFF"}
    prod_net = alice_b.network.find_network("dr-prod-net")
    for name, ip in (("web-1", "10.0.0.11"), ("web-2", "10.0.0.12")):
        server = alice_b.compute.find_server(name)
        assert server.status == "ACTIVE" and server.flavor.original_name == "dr.small"
        (port,) = alice_b.network.ports(device_id=server.id)
        assert (port.network_id, port.fixed_ips[0]["ip_address"]) == (prod_net.id, ip)
        rules = {(r["port_range_min"], r["remote_ip_prefix"]) for g in
                 port.security_group_ids for r in
                 alice_b.network.get_security_group(g).security_group_rules}
        assert {(80, "0.0.0.0/0"), (443, "0.0.0.0/0")} <= rules
    stack = alice_b.orchestration.find_stack("dr-prod-ecommerce-web")
    assert stack.status == "CREATE_COMPLETE"
    (servers,) = [o["output_value"] for o in alice_b.orchestration.get_stack(stack.id).outputs
                  if o["output_key"] == "servers"]
    assert sorted((s["name"], s["addresses"]["dr-prod-net"][0]["addr"]) for s in servers) == [
        ("web-1", "10.0.0.11"), ("web-2", "10.0.0.12")]
    assert {s["id"] for s in servers} == {alice_b.compute.find_server(n).id
                                          for n in ("web-1", "web-2")}
    for site in ("site-a", "site-b"):
        shown = api(site, "GET", "/protection-groups/prod-ecommerce-web")["protection_group"]
        assert (shown["primary_site"], shown["secondary_site"], shown["status"]) == (
            "site-b", "site-a", "failed_over")
    # site-b holds no key to site-a's cloud or array: site-a's own service stopped the
    # VMs and took the last snapshot.
    assert peer_steps(api, "site-a", op["id"]) == [("stop_servers", "completed"),
                                                   ("replicate", "completed")]


def peer_steps(api, site: str, asked_by: str) -> list[tuple[str, str]]:
    """The peer steps ``site`` ran for the peer's operation ``asked_by``, oldest first."""
    operations = api(site, "GET", "/operations?all_projects=true", user="admin")["operations"]
    return [(o["params"]["step"], o["status"])
            for o in sorted(operations, key=lambda o: o["created_at"])
            if o["operation_type"] == "peer_step"
            and o["params"]["requested_by"].get("operation") == asked_by]


def test_failback_brings_the_web_group_home_in_place_and_removes_the_dr_copy(
        lab, api, clouds):
    alice_a, alice_b = clouds("site-a"), clouds("site-b")
    originals = {n: alice_a.compute.find_server(n).id for n in ("web-1", "web-2")}
    copy_boot = alice_b.block_storage.find_volume("web-1-boot")
    lab.fabric.write("pure-site-b", f"volume-{copy_boot.id}-cinder")    # written at DR
    written = lab.fabric.generation("pure-site-b", f"volume-{copy_boot.id}-cinder")

    started = api("site-a", "POST", "/protection-groups/prod-ecommerce-web/failback",
                  expect=202, json={})
    op = api.wait_operation("site-a", started["operation"]["id"])
    assert op["status"] == "completed", op
    for name, server_id in originals.items():        # the same VMs, running again
        server = alice_a.compute.get_server(server_id)
        assert (server.name, server.status) == (name, "ACTIVE")
    home_boot = next(v for v in volumes_of(alice_a, originals["web-1"])
                     if v.name == "web-1-boot")
    assert lab.fabric.generation("pure-site-a", f"volume-{home_boot.id}-cinder") == written
    assert alice_b.orchestration.find_stack("dr-prod-ecommerce-web") is None
    assert not [v for v in alice_b.block_storage.volumes()
                if v.metadata.get("site_recovery_purpose") == "failover"]
    assert not [v["name"] for v in lab.fabric.array("pure-site-b").list_volumes()
                if v["name"].startswith("sr-failover-")]
    for site in ("site-a", "site-b"):
        shown = api(site, "GET", "/protection-groups/prod-ecommerce-web")["protection_group"]
        assert (shown["primary_site"], shown["status"]) == ("site-a", "protected")
    # What the failback needed of site-b's cloud and array, site-b's own service did.
    assert peer_steps(api, "site-b", op["id"]) == [
        ("stop_servers", "completed"), ("reverse_replication", "completed"),
        ("replicate", "completed"), ("remove_copy", "completed")]


def volumes_of(conn, server_id: str) -> list:
    return [conn.block_storage.get_volume(a.volume_id)
            for a in conn.compute.volume_attachments(server_id)]


WEB = ("web-1", "web-2")


def fenced(conn, names=WEB) -> dict[str, tuple]:
    """Each server's status, lock and the lock's reason, as its project sees them."""
    return {n: (s.status, s.is_locked, s.locked_reason)
            for n in names for s in [conn.compute.find_server(n)]}


def test_an_unplanned_failover_while_site_a_answers_needs_force_and_fences_it_first(
        lab, api, clouds):
    alice_a, alice_b = clouds("site-a"), clouds("site-b")
    refused = api("site-b", "POST", "/protection-groups/prod-ecommerce-web/failover",
                  expect=409, json={"failover_type": "unplanned"})
    assert "site-a still answers: use a planned failover, or --force" in \
        refused["error"]["message"]
    assert {status for status, *_ in fenced(alice_a).values()} == {"ACTIVE"}

    started = api("site-b", "POST", "/protection-groups/prod-ecommerce-web/failover",
                  expect=202, json={"failover_type": "unplanned", "force": True})
    op = api.wait_operation("site-b", started["operation"]["id"])
    assert op["status"] == "completed", op
    for name, (status, locked, reason) in fenced(alice_a).items():
        assert (status, locked) == ("SHUTOFF", True), name
        assert "prod-ecommerce-web runs on site-b since its failover" in reason
    with pytest.raises(openstack.exceptions.ConflictException, match="is locked"):
        alice_a.compute.start_server(alice_a.compute.find_server("web-1"))
    # site-a's own service fenced them, and before site-b's stack was begun.
    fence = [o for o in api("site-a", "GET", "/operations?all_projects=true",
                            user="admin")["operations"]
             if o["operation_type"] == "peer_step"
             and o["params"]["requested_by"].get("operation") == op["id"]]
    assert [(o["params"]["step"], o["status"]) for o in fence] == [("fence", "completed")]
    stack = alice_b.orchestration.find_stack("dr-prod-ecommerce-web")
    assert datetime.fromisoformat(fence[0]["finished_at"]) < \
        datetime.fromisoformat(stack.created_at).replace(tzinfo=UTC)
    for site in ("site-a", "site-b"):
        shown = api(site, "GET", "/protection-groups/prod-ecommerce-web")["protection_group"]
        assert (shown["status"], shown["fence"]["site"], shown["fence"]["state"]) == (
            "failed_over", "site-a", "fenced")


def test_failback_lifts_the_fence_and_the_originals_run_again(lab, api, clouds):
    started = api("site-a", "POST", "/protection-groups/prod-ecommerce-web/failback",
                  expect=202, json={})
    op = api.wait_operation("site-a", started["operation"]["id"])
    assert op["status"] == "completed", op
    assert fenced(clouds("site-a")) == {n: ("ACTIVE", False, None) for n in WEB}
    shown = api("site-b", "GET", "/protection-groups/prod-ecommerce-web")["protection_group"]
    assert (shown["primary_site"], shown["status"], shown["fence"]) == (
        "site-a", "protected", None)



def test_with_site_a_lost_a_dr_admin_fails_the_site_over_from_site_b(lab, api, clouds, cli):
    alice_a = clouds("site-a")
    db_volumes = {v.name: v.id for v in
                  volumes_of(alice_a, alice_a.compute.find_server("db-1").id)}
    pod_volume = f"{array_group_name(group_id('prod-ecommerce-db'))}::volume-{{}}-cinder"
    lab.fabric.write("pure-site-a", pod_volume.format(db_volumes["db-1-data"]))  # in sync
    written = lab.fabric.generation("pure-site-a", pod_volume.format(db_volumes["db-1-data"]))
    api("site-a", "POST", "/protection-groups", expect=201, json={     # never protected
        "name": "prod-ecommerce-staging", "replication_type": "async",
        "primary_site": "site-a", "secondary_site": "site-b",
        "volume_type": "replicated-ssd"})
    lab.site_down("site-a", progress=lambda line: None)
    deadline = time.monotonic() + 60
    while (seen := api("site-b", "GET", "/sites/site-a", user="dr-admin")["site"])[
            "state"] != "unreachable":
        assert time.monotonic() < deadline, "site-b never saw site-a go"
        time.sleep(0.5)
    time.sleep(DECIDING)           # people take a while to decide: that loses no data

    failing_over = ThreadPoolExecutor(1).submit(
        cli, "site-b-dr-admin", "dr", "site", "failover", "site-a", "--failover-type",
        "unplanned", "--force", "--wait", "-f", "json")
    time.sleep(2)
    leader, killed_at = kill_the_leading_engine(lab, "site-b")   # under way: one dies
    op = failing_over.result(timeout=900)
    assert op["status"] == "completed", op
    taken_over = took_the_duties(lab, "site-b", killed_at)
    assert taken_over and leader not in taken_over, "no other engine took the duties over"
    probed = datetime.fromisoformat(api("site-b", "GET", "/sites/site-a", user="dr-admin")[
        "site"]["last_probe_at"])
    assert probed.replace(tzinfo=probed.tzinfo or UTC) > killed_at, "nobody probes site-a"
    # One request id from the CLI's request to the operation's end: the API's log of its
    # start, its Mistral execution, and the engine's log of its end, which the engine
    # that took over wrote.
    site_b = lab.state()["sites"]["site-b"]
    request = logged_request(Path(site_b["webhook"]["log"]), f"operation {op['id']} ")
    assert request, "the API logged no start of the site failover"
    execution = cli("site-b-site-recovery", "workflow", "execution", "show",
                    op["mistral_execution_id"], "-f", "json")
    assert f"(request {request})" in execution["Description"]
    deadline = time.monotonic() + 60
    while logged_request(engine_logs(lab, "site-b")[taken_over[-1]][1],
                         f"operation {op['id']} (site_failover) ended completed") != request:
        assert time.monotonic() < deadline, "the engine never logged the operation's end"
        time.sleep(1)
    lost_at = datetime.fromisoformat(seen["last_seen_at"])
    assert op["params"]["peer_last_seen"] == seen["last_seen_at"]
    web = next(r for r in op["results"] if r["protection_group"] == "prod-ecommerce-web")
    point_created = datetime.fromisoformat(web["details"]["point_created"])
    assert web["rpo_achieved_seconds"] == pytest.approx(
        (lost_at - point_created).total_seconds(), abs=0.01), \
        "the data lost: written between the recovery point and the moment site-a was lost"
    assert (datetime.fromisoformat(web["started_at"]) - point_created).total_seconds() >= \
        web["rpo_achieved_seconds"] + DECIDING, "not the point's age when people decided"
    assert op["total_protection_groups"] == 2      # web is back home: both groups move
    assert {r["protection_group"] for r in op["results"]} == set(GROUPS)
    assert op["params"]["skipped"] == {"prod-ecommerce-staging": "not protected (status "
                                       "unprotected): it has no replica to recover"}
    alice_b = clouds("site-b")
    db_net = alice_b.network.find_network("dr-db-net")
    server = alice_b.compute.find_server("db-1")
    assert server.status == "ACTIVE" and server.flavor.original_name == "dr.large"
    (port,) = alice_b.network.ports(device_id=server.id)
    assert (port.network_id, port.fixed_ips[0]["ip_address"]) == (db_net.id, "10.1.1.31")
    data = next(alice_b.block_storage.get_volume(a.volume_id)
                for a in alice_b.compute.volume_attachments(server)
                if alice_b.block_storage.get_volume(a.volume_id).name == "db-1-data")
    assert lab.fabric.generation("pure-site-b", f"volume-{data.id}-cinder") == written
    shown = api("site-b", "GET", "/protection-groups/prod-ecommerce-db")["protection_group"]
    assert (shown["primary_site"], shown["status"]) == ("site-b", "failed_over")


def engine_logs(lab, site: str) -> dict[str, tuple[int, Path]]:
    """The site's engines: name -> (pid, log)."""
    return {name: (entry["pid"], Path(entry["log"]))
            for name, entry in lab.state()["sites"][site].items()
            if name.startswith("engine")}


def took_the_duties(lab, site: str, since: datetime) -> list[str]:
    """The engines of ``site`` that logged taking its duties after ``since``, oldest
    first (oslo.log's lines begin with their local time)."""
    taken = []
    for name, (_, log) in engine_logs(lab, site).items():
        for line in log.read_text(errors="replace").splitlines():
            if "takes the duties" in line:
                stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").astimezone(UTC)
                if stamp > since:
                    taken.append((stamp, name))
    return [name for _, name in sorted(taken)]


def logged_request(log: Path, text: str) -> str | None:
    """The request id of the first line of ``log`` that holds ``text`` (oslo.log writes
    ``[<global id> <request id> …]`` before the message)."""
    for line in log.read_text(errors="replace").splitlines():
        if text in line:
            found = re.search(r"\[\S+ (req-[0-9a-f-]{36}) ", line)
            return found and found.group(1)
    return None


def kill_the_leading_engine(lab, site: str) -> tuple[str, datetime]:
    """SIGKILL the engine that leads ``site`` (the last to take its duties): it leaves
    its lock behind, as a crashed host does."""
    (leader, *_) = reversed(took_the_duties(lab, site, datetime.min.replace(tzinfo=UTC)))
    os.kill(engine_logs(lab, site)[leader][0], signal.SIGKILL)
    return leader, datetime.now(UTC)


def test_site_a_back_learns_its_groups_failed_over_and_keeps_their_originals_down(
        lab, api, clouds):
    lab.site_up("site-a", progress=lambda line: None)
    deadline = time.monotonic() + 300
    while True:
        fences = {name: (api("site-a", "GET", f"/protection-groups/{name}")[
            "protection_group"]["fence"] or {}).get("state") for name in GROUPS}
        if set(fences.values()) == {"fenced"}:
            break
        assert time.monotonic() < deadline, f"site-a never fenced its originals: {fences}"
        time.sleep(2)
    alice_a = clouds("site-a")
    for name, (status, locked, reason) in fenced(alice_a, (*WEB, "db-1")).items():
        assert (status, locked) == ("SHUTOFF", True), name
        assert "runs on site-b since its failover" in reason and "failback" in reason
    with pytest.raises(openstack.exceptions.ConflictException, match="is locked"):
        alice_a.compute.start_server(alice_a.compute.find_server("db-1"))
    fences = [o for o in api("site-a", "GET", "/operations?all_projects=true",
                             user="admin")["operations"] if o["operation_type"] == "fence"]
    assert sorted((o["protection_group"], o["status"]) for o in fences) == [
        (name, "completed") for name in sorted(GROUPS)], [
        (o["protection_group"], o["status"], o["error"], o["results"][0]["reason"])
        for o in fences]
    shown = api("site-b", "GET", "/protection-groups/prod-ecommerce-db")["protection_group"]
    assert (shown["primary_site"], shown["fence"]["site"], shown["fence"]["state"]) == (
        "site-b", "site-a", "fenced"), "both sites know the originals are down"


def live_pgroups(lab, site: str) -> set[str]:
    return {p["name"] for p in lab.fabric.array(lab.sites[site].array_name).list_pgroups()}


def recovery_points_of(lab, site: str, pgroup: str) -> set[str]:
    array = lab.fabric.array(lab.sites[site].array_name)
    return {s["name"] for s in array.list_pgroups(snap=True)
            if s["name"].startswith(f"{pgroup}.")}


def test_reprotect_then_failback_bring_web_home_replicating_to_site_b_again(lab, api, clouds):
    name = array_group_name(group_id("prod-ecommerce-web"))
    array_a, array_b = (lab.sites[s].array_name for s in ("site-a", "site-b"))
    started = api("site-b", "POST", "/protection-groups/prod-ecommerce-web/reprotect",
                  expect=202, json={})
    op = api.wait_operation("site-b", started["operation"]["id"])
    assert op["status"] == "completed", op
    for site in ("site-a", "site-b"):
        shown = api(site, "GET", "/protection-groups/prod-ecommerce-web")["protection_group"]
        assert (shown["primary_site"], shown["status"]) == ("site-b", "reprotected")
    home_replica = f"{array_b}:{name}"            # the copies, replicating to site-a
    assert name in live_pgroups(lab, "site-b") and home_replica in live_pgroups(lab, "site-a")
    assert recovery_points_of(lab, "site-a", home_replica), "a first point reached site-a"
    assert {s for s, *_ in fenced(clouds("site-a")).values()} == {"SHUTOFF"}

    replica = f"{array_a}:{name}"
    before = recovery_points_of(lab, "site-b", replica)
    started = api("site-a", "POST", "/protection-groups/prod-ecommerce-web/failback",
                  expect=202, json={})
    op = api.wait_operation("site-a", started["operation"]["id"])
    assert op["status"] == "completed", op
    assert fenced(clouds("site-a")) == {n: ("ACTIVE", False, None) for n in WEB}
    # Home replicates to site-b again, from what it holds now; the way home is taken down.
    assert home_replica not in live_pgroups(lab, "site-a")
    assert name not in live_pgroups(lab, "site-b")
    assert name in live_pgroups(lab, "site-a") and replica in live_pgroups(lab, "site-b")
    assert recovery_points_of(lab, "site-b", replica) - before, \
        "a recovery point of home's data reached site-b as the failback ended"
