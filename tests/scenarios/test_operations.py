"""Operations that never lie, on the lab (issue 15's acceptance), through the public
interfaces: the protection service's API with real tokens, the ``openstack`` CLI (the
plugin's ``dr`` commands and mistralclient's ``workflow`` ones) and openstacksdk; the
assertions look at the clouds and the arrays.

Two tenants of their own. Bob's ``analytics-ledger`` (10.24.0.0/24): two VMs, each with a
boot and a data volume, like a database whose data and log volumes must come back from one
moment. Its drills run first (an execution deleted under one, a cancel stopping another);
then a failover that fails mid-import and is retried after a newer point replicated; then
edits refused while it is failed over, and the failback. Carol's ``operations`` project
(10.25.0.0/24): five one-VM groups that one ``DrillRequested`` alert covers (the lab's
rule: a drill of each group of the alert's ``project`` that recovers on the site).

The steps of the ledger group build on each other, in file order.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from site_recovery.core.plan import array_group_name
from site_recovery.lab.fleet import seed_fleet
from tests.scenarios.conftest import protected_group, site_a_running
from tests.scenarios.test_dr_story import inventory

GROUP = "analytics-ledger"
NIGHTLY = [f"ops-night-{n}" for n in range(1, 6)]
BUSY = "ops-night-3"
STATE: dict = {}


@pytest.fixture(scope="module")
def ledger(lab, api, cli):
    """Bob's two VMs on site-a (10.24.0.11 and .12), a boot and a data volume each,
    protected async."""
    site_a_running(lab)
    servers = seed_fleet(lab, user="bob", prefix="ledger", count=2, cidr="10.24.0.0/24",
                         data_gb=1)
    group = protected_group(lab, api, cli, name=GROUP, prefix="ledger", servers=servers)
    return {"group": group, "servers": servers}


# -- helpers ---------------------------------------------------------------------------------

def start(api, site: str, path: str, user: str = "bob", **body) -> str:
    return api(site, "POST", path, user=user, expect=202, json=body)["operation"]["id"]


def wait_step(api, op_id: str, step: str, user: str = "bob", within: float = 300.0):
    """Until the operation's (one) group reports ``step``."""
    deadline = time.monotonic() + within
    while True:
        op = api("site-b", "GET", f"/operations/{op_id}", user=user)["operation"]
        assert op["status"] in ("pending", "running"), op
        if op["results"][0]["step"] == step:
            return op
        assert time.monotonic() < deadline, f"operation {op_id} never reached {step}: {op}"
        time.sleep(0.5)


def wait_for(what: str, probe, within: float = 120.0):
    deadline = time.monotonic() + within
    while not (found := probe()):
        assert time.monotonic() < deadline, f"no {what} within {within:g} s"
        time.sleep(0.5)
    return found


def failed_result(op: dict, group: str = GROUP) -> dict:
    assert op["status"] == "failed", op
    (result,) = op["results"]
    assert result["protection_group"] == group and result["status"] == "failed", op
    return result


def drill_copies(clouds, user: str = "bob", prefix: str = "ledger") -> tuple[list, list]:
    conn = clouds("site-b", user)
    volumes = sorted(v.name for v in conn.block_storage.volumes()
                     if v.metadata.get("site_recovery_purpose") == "drill"
                     and v.name.startswith(f"test-{prefix}-"))
    servers = sorted((s.name, s.status) for s in conn.compute.servers()
                     if s.name.startswith(f"test-{prefix}-"))
    return volumes, servers


def everything(lab, clouds) -> dict:
    """Both sites' clouds and arrays, and the stacks of this module's tenants."""
    return {"inventory": inventory(lab, clouds),
            "stacks": {(site, user): sorted(s.name for s in
                                            clouds(site, user).orchestration.stacks())
                       for site in ("site-a", "site-b") for user in ("bob", "carol")}}


def cleanup(api, group: str = GROUP, user: str = "bob"):
    op = api.wait_operation("site-b", start(api, "site-b", f"/protection-groups/{group}/"
                                            "test-cleanup", user=user), user=user)
    assert op["status"] == "completed", op


def execution_state(cli, execution_id: str) -> str:
    return cli("site-b-dr-admin", "workflow", "execution", "show", execution_id,
               "-f", "json")["State"]


def slow_drill(lab, api, clouds, group: str = GROUP, user: str = "bob",
               servers: tuple[str, ...] = ("ledger-1", "ledger-2")) -> str:
    """A drill of ``group`` held in its stack: each server's build takes a while. Returns
    once Heat builds the drill's servers, so what the drill builds is in place."""
    lab.cloud_fault("site-b", {"behaviour": "server_build_delay", "count": len(servers),
                               "seconds": 30})
    op_id = start(api, "site-b", f"/protection-groups/{group}/test-failover", user=user)
    wait_step(api, op_id, "build_stack", user=user)
    conn = clouds("site-b", user)
    wanted = {f"test-{name}" for name in servers}
    wait_for("drill servers building",
             lambda: wanted <= {s.name for s in conn.compute.servers()})
    return op_id


# -- an execution deleted, a drill cancelled -------------------------------------------------

def test_a_drill_whose_execution_is_deleted_ends_failed_naming_it_and_its_retry_completes(
        lab, ledger, api, cli, clouds):
    before = everything(lab, clouds)
    try:
        op_id = slow_drill(lab, api, clouds)
        execution = api("site-b", "GET", f"/operations/{op_id}", user="bob")["operation"][
            "mistral_execution_id"]
        assert execution
        # The DR admin deletes it in Mistral, behind the protection service's back.
        cli("site-b-dr-admin", "workflow", "execution", "delete", "--force", execution)
        op = api.wait_operation("site-b", op_id, user="bob", within=60)
    finally:
        lab.clear_faults()
    result = failed_result(op)
    assert result["step"] == "build_stack", result
    assert f"Mistral execution {execution} no longer exists (deleted)" in result["reason"]

    retried = api.wait_operation("site-b", start(api, "site-b", f"/operations/{op_id}/retry"),
                                 user="bob")
    assert retried["status"] == "completed", retried
    assert drill_copies(clouds) == (
        ["test-ledger-1-boot", "test-ledger-1-data", "test-ledger-2-boot",
         "test-ledger-2-data"], [("test-ledger-1", "ACTIVE"), ("test-ledger-2", "ACTIVE")])
    cleanup(api)
    assert everything(lab, clouds) == before


def test_cancel_stops_a_running_drill_and_cleanup_leaves_both_sites_as_before(
        lab, ledger, api, cli, clouds):
    before = everything(lab, clouds)
    try:
        op_id = slow_drill(lab, api, clouds)
        cli("site-b-bob", "dr", "operation", "cancel", op_id, "-f", "json")
        op = api("site-b", "GET", f"/operations/{op_id}", user="bob")["operation"]
    finally:
        lab.clear_faults()
    result = failed_result(op)
    assert result["step"] == "build_stack" and "cancelled by bob" in result["reason"], result
    assert wait_for("execution cancelled in Mistral", lambda: execution_state(
        cli, op["mistral_execution_id"]) == "CANCELLED", within=60)
    with pytest.raises(AssertionError, match="has finished"):     # nothing left to cancel
        cli("site-b-bob", "dr", "operation", "cancel", op_id)

    cleanup(api)
    assert everything(lab, clouds) == before
    assert drill_copies(clouds) == ([], [])


def test_a_drill_whose_start_mistral_leaves_unanswered_runs_once(lab, ledger, api, cli,
                                                                  clouds):
    """Site-b's Mistral stops answering (frozen) while the drill is started: the service's
    creates time out and are repeated under the one execution id the operation recorded;
    once Mistral answers again the operation finds its execution and completes, and
    Mistral holds exactly one execution of it."""
    before = everything(lab, clouds)
    site_b = lab.state()["sites"]["site-b"]
    # the API that takes the creates: the one process, or over RabbitMQ mistral-api
    mistral = (site_b.get("mistral") or site_b["mistral-api"])["pid"]
    os.killpg(mistral, signal.SIGSTOP)
    try:
        op_id = start(api, "site-b", f"/protection-groups/{GROUP}/test-failover")
        time.sleep(3 * 10 + 5)        # three creates, each waiting mistral.timeout (10 s)
        waiting = api("site-b", "GET", f"/operations/{op_id}", user="bob")["operation"]
        assert (waiting["status"], waiting["mistral_execution_id"]) == ("pending", None)
    finally:
        os.killpg(mistral, signal.SIGCONT)
    done = api.wait_operation("site-b", op_id, user="bob")
    assert done["status"] == "completed", done
    executions = cli("site-b-site-recovery", "workflow", "execution", "list", "--rootsonly",
                     "--limit", "1000", "-f", "json")
    mine = [e["ID"] for e in executions if op_id in (e["Description"] or "")]
    assert mine == [done["mistral_execution_id"]]
    cleanup(api)
    assert everything(lab, clouds) == before


# -- one recovery point per group ------------------------------------------------------------
# -- one recovery point per group ------------------------------------------------------------

def source_volumes(clouds) -> dict[str, str]:
    """Bob's ledger volumes on site-a: name -> id."""
    return {v.name: v.id for v in clouds("site-a", "bob").block_storage.volumes()
            if v.name.startswith("ledger-")}


def on_array(volume_id: str) -> str:
    return f"volume-{volume_id}-cinder"


def ledger_volumes(clouds, site: str) -> list:
    """The ledger's volumes on ``site``, in every project (the DR account's too)."""
    return [v for v in clouds(site, "admin").block_storage.volumes(all_projects=True)
            if (v.name or "").startswith("ledger-")]


def replicate(lab, group_id: str) -> str:
    """The source array ships a new snapshot of the group (as its schedule would); the
    recovery point's name once it has fully landed on the DR array."""
    array = lab.fabric.array("pure-site-a")
    pgroup = array_group_name(group_id)
    taken = array.create_pgroup_snapshot(pgroup, replicate_now=True, apply_retention=True)

    def landed() -> bool:
        views = array.get_pgroup(pgroup, snap=True, transfer=True)
        return any(v["name"] == taken["name"] and v["progress"] == 1.0 for v in views)

    wait_for(f"{taken['name']} replicated", landed, within=60)
    return f"pure-site-a:{taken['name']}"


def test_a_failover_failing_mid_import_is_retried_from_its_own_point_after_a_newer_one(
        lab, ledger, api, clouds):
    sources = source_volumes(clouds)
    assert sorted(sources) == ["ledger-1-boot", "ledger-1-data", "ledger-2-boot",
                               "ledger-2-data"]
    # Data and log volumes are written together: every volume at one generation.
    level = max(lab.fabric.generation("pure-site-a", on_array(v)) for v in sources.values()) + 1
    for volume_id in sources.values():
        while lab.fabric.generation("pure-site-a", on_array(volume_id)) < level:
            lab.fabric.write("pure-site-a", on_array(volume_id))

    lab.cloud_fault("site-b", {"behaviour": "manage_error", "count": 1,
                               "message": "the backend refused"})
    try:
        first = api.wait_operation("site-b", start(
            api, "site-b", f"/protection-groups/{GROUP}/failover", failover_type="planned"),
            user="bob")
    finally:
        lab.clear_faults()
    result = failed_result(first)
    assert result["step"] == "import_volumes", result
    assert "could not manage" in result["reason"] and "ledger-" in result["reason"], result
    point = result["recovery_point"]
    assert point, result

    # Meanwhile the primary's volumes are written again, and a newer point replicates.
    for volume_id in sources.values():
        lab.fabric.write("pure-site-a", on_array(volume_id))
    newer = replicate(lab, ledger["group"]["id"])
    assert {lab.fabric.generation("pure-site-b", f"{newer}.{on_array(v)}")
            for v in sources.values()} == {level + 1}

    retried = api.wait_operation("site-b", start(
        api, "site-b", f"/operations/{first['id']}/retry"), user="bob")
    assert retried["status"] == "completed", retried
    assert retried["results"][0]["recovery_point"] == point

    bob_b = clouds("site-b", "bob")
    recovered = {}
    for server in bob_b.compute.servers():
        if not server.name.startswith("ledger-"):
            continue                                    # another story's group
        assert server.status == "ACTIVE", server
        for attachment in bob_b.compute.volume_attachments(server):
            volume = bob_b.block_storage.get_volume(attachment.volume_id)
            recovered[volume.name] = lab.fabric.generation("pure-site-b", on_array(volume.id))
    # Every volume of the group from the one point: none older, none from the newer point.
    assert recovered == dict.fromkeys(sorted(sources), level)
    # The copy Cinder failed to manage was replaced, not left beside it: one copy each.
    assert sorted((v.name, v.status) for v in ledger_volumes(clouds, "site-b")) == [
        (name, "in-use") for name in sorted(sources)]
    STATE["failed_over"] = True


# -- a failed-over group keeps its shape -----------------------------------------------------

def members(api, site: str) -> set[str]:
    return {m["server_id"] for m in
            api(site, "GET", f"/protection-groups/{GROUP}/members", user="bob")["members"]}


def test_a_failed_over_group_refuses_a_rename_or_member_change_and_fails_back_as_it_left(
        lab, ledger, api, clouds):
    assert STATE.get("failed_over"), "the failover above did not complete"
    original = set(ledger["servers"].values())
    bob_a, bob_b = clouds("site-a", "bob"), clouds("site-b", "bob")
    refusals = [
        api("site-b", "PATCH", f"/protection-groups/{GROUP}", user="bob", expect=409,
            json={"name": "analytics-ledger-dr"}),
        api("site-a", "DELETE", f"/protection-groups/{GROUP}/members/"
            f"{ledger['servers']['ledger-2']}", user="bob", expect=409),
        # the copy running on site-b, as a new member
        api("site-b", "POST", f"/protection-groups/{GROUP}/members", user="bob", expect=409,
            json={"server_id": bob_b.compute.find_server("ledger-1").id}),
    ]
    for refused in refusals:
        message = refused["error"]["message"]
        assert f"protection group {GROUP} is failed over" in message, message
        assert "failback" in message, message
    for site in ("site-a", "site-b"):
        shown = api(site, "GET", f"/protection-groups/{GROUP}", user="bob")[
            "protection_group"]
        assert (shown["name"], shown["status"], shown["primary_site"]) == (
            GROUP, "failed_over", "site-b")
        assert members(api, site) == original

    op = api.wait_operation("site-a", start(api, "site-a",
                                            f"/protection-groups/{GROUP}/failback"),
                            user="bob")
    assert op["status"] == "completed", op
    assert sorted((s.id, s.name, s.status) for s in bob_a.compute.servers()
                  if s.name.startswith("ledger-")) == sorted(
        (server_id, name, "ACTIVE") for name, server_id in ledger["servers"].items())
    assert [s.name for s in bob_b.compute.servers() if s.name.startswith("ledger-")] == []
    assert ledger_volumes(clouds, "site-b") == []                  # the DR copy is gone
    for site in ("site-a", "site-b"):
        shown = api(site, "GET", f"/protection-groups/{GROUP}", user="bob")[
            "protection_group"]
        assert (shown["status"], shown["primary_site"]) == ("protected", "site-a")
        assert members(api, site) == original


# -- an alert covering five groups, one busy -------------------------------------------------

@pytest.fixture(scope="module")
def nightly(lab, api, cli):
    """Five groups of carol's, one VM each (10.25.0.11-15), protected async."""
    site_a_running(lab)
    servers = seed_fleet(lab, user="carol", prefix="night", count=5, cidr="10.25.0.0/24")
    return {name: protected_group(lab, api, cli, name=name, prefix="night",
                                  servers={f"night-{n}": servers[f"night-{n}"]},
                                  user="carol")
            for n, name in enumerate(NIGHTLY, start=1)}


def deliver(lab, fingerprint: str, began: datetime) -> dict:
    """Alertmanager's delivery of one firing ``DrillRequested`` alert for carol's project
    to site-b's receiver, with the site's real secret."""
    site = lab.sites["site-b"]
    secret = (site.service_dir("webhook") / "alert.secret").read_text().strip()
    reply = requests.post(site.url("webhook", "/v1/alerts/alertmanager"), json={
        "version": "4", "status": "firing", "receiver": "site-recovery",
        "alerts": [{"status": "firing", "fingerprint": fingerprint,
                    "labels": {"alertname": "DrillRequested", "project": "operations"},
                    "startsAt": began.isoformat()}]},
        headers={"Authorization": f"Bearer {secret}"}, timeout=60, verify=lab.ca_file())
    assert reply.status_code == 200, reply.text
    (decision,) = reply.json()["decisions"]
    return decision


def test_an_alert_over_five_groups_one_busy_starts_four_and_its_redelivery_the_fifth(
        lab, nightly, api, clouds):
    before = everything(lab, clouds)
    try:
        busy = slow_drill(lab, api, clouds, group=BUSY, user="carol", servers=("night-3",))
        fingerprint, began = uuid.uuid4().hex[:16], datetime.now(UTC) - timedelta(minutes=1)
        first = deliver(lab, fingerprint, began)
        assert (first["action"], first["busy"]) == ("execute", [BUSY]), first
        assert f"busy, taken up when the alert is delivered again: {BUSY}" in \
            first["reason"], first
        started = {api("site-b", "GET", f"/operations/{op_id}", user="carol")["operation"][
            "protection_group"]: op_id for op_id in first["operation_ids"]}
        assert sorted(started) == sorted(set(NIGHTLY) - {BUSY})
        for op_id in [*started.values(), busy]:
            op = api.wait_operation("site-b", op_id, user="carol")
            assert op["status"] == "completed", op
    finally:
        lab.clear_faults()

    again = deliver(lab, fingerprint, began)
    assert (again["action"], again["busy"]) == ("execute", []), again
    (fifth,) = set(again["operation_ids"]) - set(first["operation_ids"])
    assert set(again["operation_ids"]) - {fifth} == set(first["operation_ids"])
    op = api.wait_operation("site-b", fifth, user="carol")
    assert (op["protection_group"], op["operation_type"], op["status"]) == (
        BUSY, "test_failover", "completed"), op
    assert op["requested_by"]["user"] == "alertmanager (drill requested)"
    assert deliver(lab, fingerprint, began)["action"] == "duplicate"     # decided now
    assert drill_copies(clouds, "carol", "night") == (
        [f"test-night-{n}-boot" for n in range(1, 6)],
        [(f"test-night-{n}", "ACTIVE") for n in range(1, 6)])

    for group in NIGHTLY:
        cleanup(api, group, user="carol")
    assert everything(lab, clouds) == before
