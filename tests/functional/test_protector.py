"""The protection service on the two-site lab: real Keystone tokens, the real peer service,
the sites' real Mistral, a real Alertmanager.

One lab for the module (its own ports and run name). The DR engine's workbooks are not
part of this service: a stand-in workbook with the same workflow names records what the
service starts.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

from site_recovery.lab import stand_in as stand_in_workbook
from site_recovery.lab.services import alertmanager, keystone
from site_recovery.workbooks import workflow_name
from tests.conftest import fresh_lab

PORT_BASE = 23000
ALERTMANAGER_PORT = 28010

@pytest.fixture(scope="module")
def lab():
    yield from fresh_lab(PORT_BASE, "test", seeded=False)


TOKENS: dict[tuple[str, str], str] = {}


def call(lab, site: str, method: str, path: str, user: str | None = "alice",
         **kwargs) -> requests.Response:
    """A call to a site's protection service with a real token of that site's Keystone."""
    headers = kwargs.pop("headers", {})
    if user:
        if (site, user) not in TOKENS:
            TOKENS[site, user] = keystone.token(lab.sites[site], user)
        headers["X-Auth-Token"] = TOKENS[site, user]
    return requests.request(method, lab.sites[site].url("webhook", f"/v1{path}"),
                            headers=headers, timeout=30, verify=lab.ca_file(), **kwargs)


def group_spec(name: str) -> dict:
    return {"name": name, "replication_type": "async", "primary_site": "site-a",
            "secondary_site": "site-b", "volume_type": "replicated-ssd"}


def peer_state_becomes(lab, site: str, state: str, within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while True:
        shown = call(lab, site, "GET", f"/sites/{lab.sites[site].peer}").json()["site"]
        if shown["state"] == state or time.monotonic() > deadline:
            return shown["state"]
        time.sleep(0.3)


@pytest.fixture(scope="module")
def stand_in(lab):
    """The stand-in workbook on the DR site (site-b)'s Mistral."""
    stand_in_workbook.install(lab.sites["site-b"])


def operation_once_started(lab, operation_id: str, within: float = 30.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        op = call(lab, "site-b", "GET", f"/operations/{operation_id}").json()["operation"]
        if op["mistral_execution_id"] or time.monotonic() > deadline:
            return op
        time.sleep(0.2)


def executions_of(lab, operation_id: str) -> list:
    return [e for e in stand_in_workbook.mistral(lab.sites["site-b"]).executions.list(
            limit=1000)
            if f" {operation_id}" in e.description]


# -- metadata sync ---------------------------------------------------------------------------

def test_a_group_created_on_site_a_is_on_site_b_with_the_same_version(lab):
    created = call(lab, "site-a", "POST", "/protection-groups", json=group_spec("sync-web"))
    assert created.status_code == 201, created.text
    group = created.json()["protection_group"]
    deadline = time.monotonic() + 5
    while True:
        there = call(lab, "site-b", "GET", f"/protection-groups/{group['id']}")
        if there.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert there.status_code == 200
    assert there.json()["protection_group"] == group


def _stored_on_site_b(lab, group_id: str) -> tuple:
    """site-b's own database, read directly (its service is stopped)."""
    path = lab.sites["site-b"].service_dir("webhook") / "protector.db"
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT description, version FROM protection_groups "
                                  "WHERE id = ?", (group_id,)).fetchone()


def test_with_the_peer_service_stopped_edits_are_refused_and_change_nothing(lab):
    group = call(lab, "site-a", "POST", "/protection-groups",
                 json=group_spec("sync-db")).json()["protection_group"]
    lab.service_down("site-b", "webhook", progress=lambda line: None)
    try:
        first = call(lab, "site-a", "PATCH", f"/protection-groups/{group['id']}",
                     json={"description": "while site-b is away"})
        assert first.status_code == 503 and "site-b" in first.json()["error"]["message"]
        assert peer_state_becomes(lab, "site-a", "unreachable") == "unreachable"
        refused = call(lab, "site-a", "PATCH", f"/protection-groups/{group['id']}",
                       json={"description": "while site-b is away"})
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert "peer site site-b has been unreachable since" in error["message"]
        assert error["details"]["peer"] == "site-b" and error["details"]["since"]
        here = call(lab, "site-a", "GET", f"/protection-groups/{group['id']}").json()
        assert (here["protection_group"]["description"],
                here["protection_group"]["version"]) == ("", 1)
        assert _stored_on_site_b(lab, group["id"]) == ("", 1)
    finally:
        lab.site_up("site-b", progress=lambda line: None)
    assert peer_state_becomes(lab, "site-a", "reachable") == "reachable"
    changed = call(lab, "site-a", "PATCH", f"/protection-groups/{group['id']}",
                   json={"description": "site-b is back", "version": 1})
    assert changed.status_code == 200, changed.text
    versions = {site: call(lab, site, "GET", f"/protection-groups/{group['id']}").json()[
        "protection_group"]["version"] for site in ("site-a", "site-b")}
    assert versions == {"site-a": 2, "site-b": 2}


def test_an_edit_sent_to_site_b_is_made_on_both_sites(lab):
    group = call(lab, "site-a", "POST", "/protection-groups",
                 json=group_spec("sync-forward")).json()["protection_group"]
    changed = call(lab, "site-b", "PATCH", f"/protection-groups/{group['id']}",
                   json={"rpo_target_seconds": 300})
    assert changed.status_code == 200, changed.text
    for site in ("site-a", "site-b"):
        shown = call(lab, site, "GET", f"/protection-groups/{group['id']}").json()[
            "protection_group"]
        assert (shown["rpo_target_seconds"], shown["version"]) == (300, 2)
    # site-a's log names the request that caused the forward: site-b's, as its answer did
    request = changed.headers["x-openstack-request-id"]
    forwarded = [line for line in (lab.sites["site-a"].service_dir("webhook") /
                                   "webhook.log").read_text().splitlines()
                 if f"global={request}" in line]
    assert forwarded and all("/v1/internal/" in line for line in forwarded), forwarded


# -- launching -------------------------------------------------------------------------------

def test_a_failover_starts_exactly_one_execution_and_a_repeated_key_none(lab, stand_in):
    group = call(lab, "site-a", "POST", "/protection-groups",
                 json=group_spec("launch-app")).json()["protection_group"]
    key = {"Idempotency-Key": f"failover-{uuid.uuid4().hex}"}
    first = call(lab, "site-b", "POST", f"/protection-groups/{group['id']}/failover",
                 json={"failover_type": "planned"}, headers=dict(key))
    assert first.status_code == 202, first.text
    op = first.json()["operation"]
    op = operation_once_started(lab, op["id"])      # the 202 may come before Mistral's answer
    (execution,) = executions_of(lab, op["id"])
    assert execution.id == op["mistral_execution_id"]
    assert execution.workflow_name == workflow_name("failover")
    again = call(lab, "site-b", "POST", f"/protection-groups/{group['id']}/failover",
                 json={"failover_type": "planned"}, headers=dict(key))
    assert again.status_code == 200 and again.json()["operation"]["id"] == op["id"]
    assert len(executions_of(lab, op["id"])) == 1


# -- installing the runbooks ----------------------------------------------------------------

def a_workbook(name: str) -> str:
    """A workbook of the pack's family under ``name``, with the capture workflow a cron
    trigger can hold on to."""
    return (f"---\nversion: '2.0'\nname: {name}\nworkflows:\n  capture_site:\n"
            "    input:\n      - concurrency: 10\n"
            "    tasks:\n      noted:\n        action: std.noop\n")


def test_install_replaces_an_older_version_moves_the_trigger_and_leaves_a_newer_one(lab):
    """An upgrade from the unversioned runbooks, on site-a's real Mistral: the install
    command moves the capture trigger to this version, then removes the older workbook;
    a newer one stays; run again, it changes nothing."""
    mistral = stand_in_workbook.mistral(lab.sites["site-a"])
    mistral.cron_triggers.delete("site_recovery.capture")
    mistral.workbooks.create(a_workbook("site_recovery.dr"))
    mistral.workbooks.create(a_workbook("site_recovery.dr.v9"))
    mistral.cron_triggers.create("site_recovery.capture", "site_recovery.dr.capture_site",
                                 {}, pattern="0 3 * * *")
    try:
        said: list[str] = []
        lab.install_workbooks("site-a", progress=said.append)
        names = {w.name for w in mistral.workbooks.list()}
        assert "site_recovery.dr" not in names
        assert {"site_recovery.dr.v1", "site_recovery.dr.v9"} <= names
        workflows = {w.name for w in mistral.workflows.list()}
        assert "site_recovery.dr.capture_site" not in workflows      # went with its workbook
        assert {workflow_name("capture_site"), "site_recovery.dr.v9.capture_site"} <= \
            workflows
        trigger = mistral.cron_triggers.get("site_recovery.capture")
        assert (trigger.workflow_name, trigger.pattern) == (workflow_name("capture_site"),
                                                            "*/30 * * * *")
        assert "workbook site_recovery.dr removed: site_recovery.dr.v1 replaces it" in said[0]
        assert "site_recovery.dr.v9 left in place: it is newer" in said[0]
        again: list[str] = []
        lab.install_workbooks("site-a", progress=again.append)
        assert "removed" not in again[0]
        assert {w.name for w in mistral.workbooks.list()} == names
        assert mistral.cron_triggers.get("site_recovery.capture").created_at == \
            trigger.created_at
    finally:
        mistral.workbooks.delete("site_recovery.dr.v9")


# -- roles -----------------------------------------------------------------------------------

# heat: another service's account (admin and service in the service project); the DR
# service account (site-recovery) also holds site_recovery_service. On the public routes
# both are admins like any other. site-recovery-peer: the account the peer site signs in
# with, which holds site_recovery_service alone: the peer's routes, nothing else. mallory:
# a member of a project named like alice's (ecommerce) in another domain, a stranger like
# bob.
USERS = ("anonymous", "alice", "rita", "bob", "mallory", "admin", "dr-admin", "heat",
         "site-recovery", "site-recovery-peer")


def matrix_rows(group_id: str) -> list[tuple[str, str, str, dict | None, dict]]:
    """(site, method, path, body, {user: status}) — who may do what, tenancy included."""
    group = f"/protection-groups/{group_id}"
    everyone = "?all_projects=true"
    internal = f"/internal/protection-groups/{group_id}"
    refused = dict(anonymous=401, alice=403, rita=403, bob=403, mallory=403, admin=403,
                   heat=403, **{"dr-admin": 403})
    rows = [
        ("site-a", "GET", "/sites", None,
         dict(anonymous=401, alice=200, rita=200, bob=200, admin=200, **{"dr-admin": 200})),
        ("site-a", "GET", group, None,
         dict(anonymous=401, alice=200, rita=200, bob=404, admin=404, **{"dr-admin": 404})),
        # Every project for an admin; from anyone else, the projects they can see.
        ("site-a", "GET", group + everyone, None,
         dict(anonymous=401, alice=200, rita=200, bob=404, admin=200, **{"dr-admin": 200})),
        ("site-a", "GET", "/protection-groups" + everyone, None,
         dict(anonymous=401, alice=200, rita=200, bob=200, admin=200, **{"dr-admin": 200})),
        ("site-a", "PATCH", group, {"description": "matrix"},
         dict(anonymous=401, alice=200, rita=403, bob=404, admin=404, **{"dr-admin": 404})),
        # A made-up server: alice may add members, but Nova shows her no such server.
        ("site-a", "POST", f"{group}/members", {"server_id": str(uuid.uuid4())},
         dict(anonymous=401, alice=400, rita=403, bob=404, admin=404, **{"dr-admin": 404})),
        ("site-b", "POST", f"{group}/test-failover", {},
         dict(anonymous=401, alice=202, rita=403, bob=404, admin=404, **{"dr-admin": 404})),
        ("site-b", "POST", f"{group}/test-failover{everyone}", {},
         dict(anonymous=401, alice=202, rita=403, bob=404, admin=202, **{"dr-admin": 202})),
        ("site-b", "POST", "/sites/site-a/failover",
         {"failover_type": "unplanned", "force": True},
         dict(anonymous=401, alice=403, rita=403, bob=403, admin=403, **{"dr-admin": 202})),
        ("site-a", "GET", "/audit-log", None,
         dict(anonymous=401, alice=200, rita=200, bob=200, admin=200, **{"dr-admin": 200})),
        # Readiness, on the group's DR site: its project checks and reads it, nobody else.
        ("site-b", "POST", f"{group}/readiness", None,
         dict(anonymous=401, alice=200, rita=200, bob=404, admin=404, **{"dr-admin": 404})),
        ("site-b", "GET", f"{group}/readiness", None,
         dict(anonymous=401, alice=200, rita=200, bob=404, admin=404, **{"dr-admin": 404})),
        # The DR service's own doors: the workflows' and the peer's only. A made-up
        # execution is no workflow of the service's, whoever reports it.
        ("site-b", "POST", "/internal/executions/none/progress", {"status": "running"},
         {**refused, "site-recovery": 403, "site-recovery-peer": 403}),
        ("site-b", "GET", internal, None,
         {**refused, "site-recovery": 200, "site-recovery-peer": 403}),
        ("site-b", "POST", "/internal/forward", {"change": {}, "actor": {}},
         {**refused, "site-recovery": 403, "site-recovery-peer": 400}),
        ("site-b", "DELETE", f"{internal}?version=99", None,
         {**refused, "site-recovery": 403, "site-recovery-peer": 409}),
        ("site-b", "POST", "/internal/peer-steps", {"protection_group_id": group_id,
                                                    "step": "stop_servers", "key": "matrix"},
         {**refused, "site-recovery": 403, "site-recovery-peer": 202}),
        # Replicating, it is deleted only with force (which leaves replication in place).
        ("site-a", "DELETE", f"{group}?force=true", None,
         dict(anonymous=401, alice=204, rita=403, bob=404, admin=404, **{"dr-admin": 404})),
    ]
    for *_, expected in rows:
        for account in ("heat", "site-recovery"):
            expected.setdefault(account, expected["admin"])
        expected.setdefault("site-recovery-peer", 403)   # no reader role: no public route
        expected.setdefault("mallory", expected["bob"])
    return rows


def execution_of(lab, site: str, operation: dict, within: float = 30.0) -> str:
    """The Mistral execution the service started for ``operation``."""
    deadline = time.monotonic() + within
    while not operation["mistral_execution_id"] and time.monotonic() < deadline:
        time.sleep(0.2)
        operation = call(lab, site, "GET", f"/operations/{operation['id']}?all_projects=true",
                         user="admin").json()["operation"]
    assert operation["mistral_execution_id"], operation
    return operation["mistral_execution_id"]


def report(lab, site: str, operation: dict, progress: dict) -> requests.Response:
    """A report for ``operation`` as its workflow's actions send it: as the DR service
    account, from inside the operation's execution in the site's Mistral."""
    return call(lab, site, "POST",
                f"/internal/executions/{execution_of(lab, site, operation)}/progress",
                user="site-recovery", json={"operation_id": operation["id"], **progress})


def finish(lab, operation: dict):
    """Report every group of ``operation`` completed, as the DR engine's workflow does."""
    for result in operation["results"]:
        reply = report(lab, "site-b", operation, {
            "protection_group_id": result["protection_group_id"], "status": "completed"})
        assert reply.status_code == 200, reply.text


def test_the_role_matrix_holds_in_full_with_real_tokens(lab, stand_in):
    group = call(lab, "site-a", "POST", "/protection-groups",
                 json=group_spec("matrix")).json()["protection_group"]
    # Replicating, as its protect records it: a site failover takes protected groups.
    assert call(lab, "site-a", "PUT", f"/internal/protection-groups/{group['id']}/state",
                user="site-recovery", json={"status": "protected"}).status_code == 200
    seen, wanted = {}, {}
    for site, method, path, body, expected in matrix_rows(group["id"]):
        # Refusals first, so that a row's allowed change comes after them.
        for user_name in sorted(USERS, key=lambda u: expected[u] < 300):
            reply = call(lab, site, method, path, user=None if user_name == "anonymous"
                         else user_name, json=body)
            seen[(method, path, user_name)] = reply.status_code
            wanted[(method, path, user_name)] = expected[user_name]
            if reply.status_code == 202:       # the workflow's part: the group is free again
                finish(lab, reply.json()["operation"])
            assert reply.headers["Content-Type"].startswith("application/json") or \
                reply.status_code == 204
    assert seen == wanted


# -- monitoring ------------------------------------------------------------------------------

def decisions(lab) -> list[dict]:
    entries = call(lab, "site-b", "GET", "/audit-log?all_projects=true",
                   user="admin").json()["entries"]
    return [e for e in entries if e["action"].startswith("alert.")]


def test_a_real_alertmanager_delivers_one_decision_and_a_redelivery_is_no_second(lab,
                                                                                 tmp_path):
    try:
        executable = alertmanager.ensure_installed()
    except alertmanager.Unavailable as exc:
        pytest.skip(f"no Alertmanager on this machine: {exc}")
    receiver = lab.sites["site-b"].url("webhook", "/v1/alerts/alertmanager")
    secret = lab.sites["site-b"].service_dir("webhook") / "alert.secret"
    wrong = requests.post(receiver, json={"version": "4", "status": "firing", "alerts": []},
                          headers={"Authorization": "Bearer not-the-secret"}, timeout=10,
                          verify=lab.ca_file())
    assert wrong.status_code == 401
    spec = alertmanager.prepare(tmp_path / "alertmanager", ALERTMANAGER_PORT, receiver,
                                secret, ca_file=lab.ca_file(), executable=executable,
                                repeat_interval="2s")
    run = uuid.uuid4().hex
    with alertmanager.running(spec) as url:
        alertmanager.post_alerts(url, [alertmanager.alert(
            {"alertname": "SiteDown", "site": "site-a", "run": run},
            {"summary": "site-a does not answer"})])
        deadline = time.monotonic() + 30
        mine = []
        while time.monotonic() < deadline:
            mine = [d for d in decisions(lab) if d["actor"].get("labels", {}).get("run") == run]
            if any(d["action"] == "alert.duplicate" for d in mine):
                break
            time.sleep(0.5)
    assert any(d["action"] == "alert.duplicate" for d in mine), mine   # it was redelivered
    (decided,) = [d for d in mine if d["action"] != "alert.duplicate"]
    assert decided["action"] == "alert.record"
    assert "rule 'site-a down' recorded site_failover" in decided["reason"]


# -- the CLI plugin, through the real openstack command --------------------------------------

@pytest.fixture(scope="module")
def openstack_cli(lab):
    """``openstack`` from this environment (python-openstackclient with this package's
    plugin), on the lab's clouds.yaml; the endpoint comes from each site's catalog."""
    executable = Path(sys.executable).with_name("openstack")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(lab.clouds_yaml()),
           "PYTHONWARNINGS": "ignore"}

    def run(cloud: str, *args: str, check=True, **kwargs):
        return subprocess.run([str(executable), "--os-cloud", cloud, *args], env=env,
                              capture_output=True, text=True, timeout=180, check=check,
                              **kwargs)

    run.command = lambda cloud, *args: [str(executable), "--os-cloud", cloud, *args]
    run.env = env
    return run


def test_the_concept_documents_commands_work_verbatim(lab, stand_in, openstack_cli):
    created = json.loads(openstack_cli(
        "site-a-alice", "protector", "protection-group", "create",
        "--name", "prod-ecommerce-db", "--replication-type", "sync",
        "--primary-site", "site-a", "--secondary-site", "site-b",
        "--volume-type", "replicated-ssd", "-f", "json").stdout)
    assert (created["name"], created["replication_type"], created["version"]) == (
        "prod-ecommerce-db", "sync", 1)
    listed = json.loads(openstack_cli("site-b-alice", "protector", "protection-group",
                                      "list", "-f", "json").stdout)
    assert "prod-ecommerce-db" in [g["Name"] if "Name" in g else g["name"] for g in listed]
    drill = json.loads(openstack_cli(
        "site-b-alice", "dr", "test", "failover", "prod-ecommerce-db",
        "--network-mapping", "prod-net=dr-test-net", "--no-wait", "-f", "json").stdout)
    assert (drill["operation_type"], drill["status"], drill["total_protection_groups"],
            drill["completed_count"]) == ("test_failover", "pending", 1, 0)
    operation_once_started(lab, drill["id"])
    (execution,) = executions_of(lab, drill["id"])
    assert execution.workflow_name == workflow_name("test_failover")
    # A site failover takes protected groups: this one is, as its protect records it.
    assert call(lab, "site-a", "PUT", f"/internal/protection-groups/{created['id']}/state",
                user="site-recovery", json={"status": "protected"}).status_code == 200
    site = openstack_cli("site-b-dr-admin", "dr", "site", "failover", "site-a",
                         "--failover-type", "unplanned", "--force").stdout
    for field, value in (("operation_type", "site_failover"), ("status", "pending"),
                         ("completed_count", "0"), ("progress", "0%")):
        assert any(line.split("|")[1:3] and line.split("|")[1].strip() == field
                   and line.split("|")[2].strip() == value for line in site.splitlines()), \
            (field, site)
    refused = openstack_cli("site-b-rita", "dr", "test", "failover", "prod-ecommerce-db",
                            check=False)
    assert refused.returncode == 1 and "HTTP 403" in refused.stderr


def test_wait_follows_the_operation_to_its_end(lab, stand_in, openstack_cli):
    call(lab, "site-a", "POST", "/protection-groups", json=group_spec("wait-web"))
    waiting = subprocess.Popen(openstack_cli.command(
        "site-b-alice", "dr", "test", "failover", "wait-web", "--wait", "-f", "json"),
        env=openstack_cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        ops = []
        while not ops and time.monotonic() < deadline:
            ops = [o for o in call(lab, "site-b", "GET", "/operations").json()["operations"]
                   if o["results"][0]["protection_group"] == "wait-web"]
            time.sleep(0.3)
        (op,) = ops
        group_id = op["results"][0]["protection_group_id"]
        # What the DR engine's workflow will report, as the DR service account.
        for progress in ({"status": "running"},
                         {"protection_group_id": group_id, "status": "completed",
                          "step": "stack_created", "rpo_achieved_seconds": 12.0}):
            reply = report(lab, "site-b", op, progress)
            assert reply.status_code == 200, reply.text
            time.sleep(1.5)
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 0, err
    final = json.loads(out)
    assert (final["status"], final["completed_count"], final["progress"]) == (
        "completed", 1, 100)
    assert "wait-web: completed" in err


# -- protector-api under another WSGI server ---------------------------------------------------

def test_waitress_serves_the_api_module_while_the_engine_keeps_probing(lab, tmp_path):
    """protector-api is a WSGI module any server can serve: waitress here, beside the
    lab's gunicorn, on site-a's configuration and database; the peer's probing is the
    engine's, which goes on whatever serves the API."""
    site = lab.sites["site-a"]
    port = PORT_BASE + 900
    env = {**os.environ, "SITE_RECOVERY_CONFIG": str(site.service_dir("webhook") /
                                                     "protector.yaml"),
           "PYTHONWARNINGS": "ignore"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(tmp_path / "waitress.log", "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "waitress", "--host", "127.0.0.1",
                                   f"--port={port}", "--threads=4",
                                   "site_recovery.webhook.wsgi:application"],
                                  env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                versions = requests.get(f"{url}/", timeout=5)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, \
                    (tmp_path / "waitress.log").read_text()[-2000:]
                time.sleep(0.3)
        assert versions.status_code == 200 and versions.headers[
            "x-openstack-request-id"].startswith("req-")
        assert versions.json()["versions"][0]["links"][0]["href"] == f"{url}/v1/"
        token = keystone.token(site, "alice")
        first = requests.get(f"{url}/v1/sites/site-b", headers={"X-Auth-Token": token},
                             timeout=30).json()["site"]
        assert first["state"] == "reachable"
        time.sleep(3 * 1.0)                       # the lab probes every second
        later = requests.get(f"{url}/v1/sites/site-b", headers={"X-Auth-Token": token},
                             timeout=30).json()["site"]
        assert later["last_probe_at"] > first["last_probe_at"], "nobody probes site-b"
        assert requests.get(f"{url}/v1/sites", timeout=30).status_code == 401
    finally:
        server.terminate()
        server.wait(30)
