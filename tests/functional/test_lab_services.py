"""The lab's real OpenStack services, driven the way a user drives them.

One lab site (Keystone, Heat, Mistral) starts once for this module, on ports from 27000 so
it never meets a user's lab (15000+), under a run name of its own, with the venvs of the
lab home (``SITE_RECOVERY_LAB_HOME`` or the default), so only the first run ever builds
them (minutes). Users talk to it with the real clients and their own Keystone tokens:
python-heatclient and python-mistralclient on keystoneauth sessions.

The RabbitMQ mode needs RabbitMQ on 127.0.0.1:5672 and PostgreSQL on 127.0.0.1:5432 (CI
has both) and is skipped, with the reason, where they do not answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from heatclient import client as heat_client
from heatclient import exc as heat_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from mistralclient.api import client as mistral_client

from site_recovery.lab.layout import SiteLayout, lab_home
from site_recovery.lab.services import base, heat, keystone, mistral, venvs
from site_recovery.webhook.launcher import Launcher

# A cold lab home builds three venvs before the first test can run.
pytestmark = pytest.mark.timeout(900)

PORT_BASE = 27000
RUN_NAME = f"test-services-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
SERVICES = ("keystone", "heat", "heat_cfn", "mistral")
DEADLINE = 60.0                          # any single operation below, after warm-up
POLL = 0.1

STACK_TEMPLATE = """\
heat_template_version: 2021-04-16
description: a stack that needs no cloud, only Heat's own resources
parameters:
  length:
    type: number
    default: 8
resources:
  secret:
    type: OS::Heat::RandomString
    properties:
      length: {get_param: length}
      character_classes: [{class: lowercase}]
  label:
    type: OS::Heat::Value
    properties:
      type: string
      value:
        list_join: ['-', ['dr', {get_attr: [secret, value]}]]
outputs:
  label:
    description: the label made from the random string
    value: {get_attr: [label, value]}
"""

WORKBOOK = """\
---
version: '2.0'
name: lab_check
workflows:
  health:
    description: our own action, then a standard one
    input:
      - echo
    output:
      health: <% $.health %>
      echoed: <% $.echoed %>
    tasks:
      check:
        action: site_recovery.health echo=<% $.echo %>
        publish:
          health: <% task().result %>
        on-success:
          - say
      say:
        action: std.echo output=<% $.echo %>
        publish:
          echoed: <% task().result %>
  broken:
    description: calls an action nobody registered
    tasks:
      missing:
        action: site_recovery.no_such_action
"""


# -- the lab ---------------------------------------------------------------------------------
class Lab:
    """One site's services, started in order and stopped in reverse."""

    def __init__(self, site: SiteLayout):
        self.site = site
        self.running: dict[str, tuple[base.ServiceSpec, object]] = {}
        self.mistral_mode: str | None = None

    def start(self, spec: base.ServiceSpec):
        self.running[spec.name] = (spec, base.start_and_wait(spec, timeout=180))

    def stop(self, name: str):
        spec, process = self.running.pop(name)
        base.stop_group(process.pid, spec.stop_timeout)

    def stop_all(self):
        for name in reversed(list(self.running)):
            self.stop(name)

    def pid(self, name: str) -> int:
        return self.running[name][1].pid

    def use_mistral(self, mode: str):
        """Mistral in ``mode``; the other mode's processes are stopped first (same port)."""
        if self.mistral_mode == mode:
            return
        for name in [n for n in self.running if n.startswith("mistral")]:
            self.stop(name)
        self.mistral_mode = None
        for spec in mistral.prepare(self.site, mode):
            self.start(spec)
        if mode == "rabbit":
            mistral.wait_workers(self.site, timeout=DEADLINE)
        self.mistral_mode = mode

    def session(self, user: str) -> ks_session.Session:
        return ks_session.Session(auth=v3.Password(**self.site.auth(user)))

    def heat(self, user: str):
        return heat_client.Client("1", session=self.session(user))

    def mistral(self, user: str):
        session = self.session(user)
        url = session.get_endpoint(service_type="workflowv2", interface="public")
        return mistral_client.client(session=session, mistral_url=url)


def _answers(port: int) -> bool:
    return heat.answers(port, timeout=0.2)


def _processes_of(run_dir: Path) -> list[str]:
    """Live processes whose command line, working directory or environment names ``run_dir``."""
    marker = str(run_dir)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
            cwd = os.readlink(entry / "cwd")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:                  # gone meanwhile, or not ours to read
            continue
        if marker in cmdline or cwd.startswith(marker) or marker in environ:
            found.append(f"{entry.name}: {cmdline.strip()[:160]}")
    return found


@pytest.fixture(scope="module")
def lab(request):
    site = SiteLayout.for_site("site-a", port_base=PORT_BASE, home=lab_home(),
                               run_name=RUN_NAME)
    busy = [f"{s} {site.port(s)}" for s in SERVICES if _answers(site.port(s))]
    if busy:
        pytest.fail(f"ports of the test lab are taken (a stale lab?): {', '.join(busy)}")
    # Only a cold lab home builds venvs; build the three at once.
    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(venvs.ensure, site.venvs, "keystone"),
                       pool.submit(venvs.ensure, site.venvs, "heat"),
                       pool.submit(venvs.ensure, site.venvs, "mistral", with_project=True)]:
            future.result()
    failed_before = request.session.testsfailed
    lab = Lab(site)
    try:
        lab.start(keystone.prepare(site))
        keystone.provision(site)
        lab.start(heat.prepare(site))
        lab.use_mistral("allinone")
        yield lab
    finally:
        lab.stop_all()
        heat.cleanup(site)
        mistral.cleanup(site)
    left = _processes_of(site.run_dir)
    assert not left, f"processes of run {RUN_NAME} left behind:\n" + "\n".join(left)
    still_open = [f"{s} {site.port(s)}" for s in SERVICES if _answers(site.port(s))]
    assert not still_open, f"ports still answering after stop: {', '.join(still_open)}"
    if request.session.testsfailed == failed_before:
        shutil.rmtree(site.run_dir.parent, ignore_errors=True)   # keep the logs of failures


def _wait(what: str, probe, done, timeout: float = DEADLINE):
    """Call ``probe`` every POLL seconds until ``done(result)``; the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {result!r} after {timeout:g} s")
        time.sleep(POLL)


# -- Heat ------------------------------------------------------------------------------------
def _stack_settled(heat_api, stack_id: str):
    def status():
        try:
            stack = heat_api.stacks.get(stack_id)
        except heat_exc.HTTPNotFound:
            return "DELETE_COMPLETE", ""
        return stack.stack_status, stack.stack_status_reason

    return _wait(f"stack {stack_id}", status, lambda s: not s[0].endswith("_IN_PROGRESS"))


def _output(heat_api, stack_id: str, key: str):
    return heat_api.stacks.output_show(stack_id, key)["output"]["output_value"]


def test_heat_stack_create_update_delete_as_alice(lab):
    heat_api = lab.heat("alice")
    name = f"labcheck-{uuid.uuid4().hex[:8]}"
    stack_id = heat_api.stacks.create(stack_name=name, template=STACK_TEMPLATE)["stack"]["id"]

    assert _stack_settled(heat_api, stack_id) == ("CREATE_COMPLETE",
                                                  "Stack CREATE completed successfully")
    first = _output(heat_api, stack_id, "label")
    assert first.startswith("dr-") and len(first) == len("dr-") + 8
    assert first[3:].islower()
    assert name in [s.stack_name for s in heat_api.stacks.list()]
    assert name not in [s.stack_name for s in lab.heat("bob").stacks.list()], \
        "another project's user sees alice's stack"

    heat_api.stacks.update(stack_id, template=STACK_TEMPLATE, parameters={"length": 12})
    assert _stack_settled(heat_api, stack_id)[0] == "UPDATE_COMPLETE"
    second = _output(heat_api, stack_id, "label")
    assert second.startswith("dr-") and len(second) == len("dr-") + 12

    heat_api.stacks.delete(stack_id)
    assert _stack_settled(heat_api, stack_id)[0] == "DELETE_COMPLETE"
    # The engine marks the row deleted a moment after it reports DELETE_COMPLETE.
    _wait("stack list", lambda: [s.stack_name for s in heat_api.stacks.list()],
          lambda names: name not in names, timeout=10)


def test_heat_refuses_a_request_without_a_token(lab):
    reply = requests.get(lab.site.url("heat", "/v1/any-project/stacks"), timeout=10)
    assert reply.status_code == 401


def test_heat_cfn_api_answers_on_its_own_port(lab):
    reply = requests.get(lab.site.url("heat_cfn", "/"), timeout=10)
    assert reply.status_code == 300
    links = [link["href"] for v in reply.json()["versions"] for link in v["links"]]
    assert links == [lab.site.url("heat_cfn", "/v1/")]


# -- Mistral ---------------------------------------------------------------------------------
def _workbook(api):
    with contextlib.suppress(Exception):
        return api.workbooks.get("lab_check")
    return api.workbooks.create(WORKBOOK)


def _run(api, workflow: str, **workflow_input):
    execution = api.executions.create(workflow, workflow_input=workflow_input)
    return _wait(f"execution of {workflow}", lambda: api.executions.get(execution.id),
                 lambda e: e.state in ("SUCCESS", "ERROR", "CANCELLED"))


@pytest.fixture
def mistral_allinone(lab):
    lab.use_mistral("allinone")
    api = lab.mistral("alice")
    _workbook(api)
    return api


def _assert_health_success(api):
    echo = f"hello from {uuid.uuid4().hex[:6]}"
    execution = _run(api, "lab_check.health", echo=echo)
    assert execution.state == "SUCCESS", execution.state_info
    output = json.loads(execution.output)
    assert output["health"]["package"] == "site-recovery"
    assert output["health"]["echo"] == echo
    assert output["echoed"] == echo
    return execution


def test_mistral_runs_our_action_and_a_standard_one(mistral_allinone, lab):
    execution = _assert_health_success(mistral_allinone)
    assert execution.id not in [e.id for e in lab.mistral("bob").executions.list()], \
        "another project's user sees alice's execution"


def test_mistral_reports_an_unknown_action_readably(mistral_allinone):
    execution = _run(mistral_allinone, "lab_check.broken")
    assert execution.state == "ERROR"
    headline = execution.state_info.splitlines()[0]
    assert "Failed to find action" in headline
    assert "site_recovery.no_such_action" in headline
    assert "task=missing" in headline


def test_a_start_repeated_under_its_planned_id_is_one_execution(mistral_allinone, lab):
    """What keeps a start whose answer was lost from doubling, on the real Mistral: a
    create of an id it has answers with that execution; ``find`` sees it and nothing
    of an id it never had; ``since`` lists it with its state."""
    session = ks_session.Session(auth=v3.Password(**lab.site.auth("alice")), timeout=30)
    launcher = Launcher(session, lab.site.url("mistral", "/v2"))
    planned, began = str(uuid.uuid4()), datetime.now(UTC) - timedelta(seconds=5)
    given, description = {"echo": "once"}, f"once {planned}"
    first = launcher.start("lab_check.health", given, description=description,
                           execution_id=planned)
    again = launcher.start("lab_check.health", given, description=description,
                           execution_id=planned)
    assert first.id == again.id == planned
    assert [e.id for e in mistral_allinone.executions.list(description=description)] == [
        planned]
    assert launcher.find(planned).id == planned
    assert launcher.find(str(uuid.uuid4())) is None
    done = _wait("the planned execution", lambda: {e.id: e for e in launcher.since(began)},
                 lambda seen: seen.get(planned) and seen[planned].state == "SUCCESS")
    assert done[planned].updated_at >= began


def test_mistral_refuses_a_request_without_a_token(mistral_allinone, lab):
    reply = requests.get(lab.site.url("mistral", "/v2/workbooks"), timeout=10)
    assert reply.status_code == 401


# -- Mistral over RabbitMQ and PostgreSQL ------------------------------------------------------
def test_mistral_rabbit_mode_runs_the_same_workflow_in_separate_processes(lab):
    missing = mistral.rabbit_missing()
    if missing:
        pytest.skip(f"Mistral rabbit mode needs {' and '.join(missing)}")
    lab.use_mistral("rabbit")
    pids = {name: lab.pid(name) for name in lab.running if name.startswith("mistral-")}
    assert sorted(pids) == ["mistral-api", "mistral-engine", "mistral-executor",
                            "mistral-notifier", "mistral-periodic"]
    assert len(set(pids.values())) == 5
    for name, pid in pids.items():
        # cotyledon retitles the master: "mistral-server: master process [<argv>]"
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert f"--server {name.split('-', 1)[1]} " in title, title

    api = lab.mistral("alice")
    _workbook(api)
    _assert_health_success(api)
