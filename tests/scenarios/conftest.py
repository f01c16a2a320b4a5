"""One seeded two-site lab for the DR scenarios, and the public interfaces to drive it:
the protection service's API with real Keystone tokens, the real ``openstack`` CLI, and
openstacksdk as the tenant sees its clouds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import openstack
import pytest
import requests

from site_recovery.lab.seed import seed
from site_recovery.lab.services import keystone, mistral, postgres
from site_recovery.lab.supervisor import Lab, LabOptions
from tests.conftest import fresh_lab, redis_answers

# Another base lets a second run (another checkout, a helper) share the machine.
PORT_BASE = int(os.environ.get("SCENARIO_PORT_BASE", "30000"))


@pytest.fixture(scope="session")
def lab():
    if os.environ.get("SCENARIO_LAB") == "default":
        # Against the lab that ``site-recovery-lab up`` started, kept afterwards to look at.
        lab = Lab(LabOptions())
        lab.up(progress=lambda line: None)
        seed(lab, progress=lambda line: None)
        yield lab
        return
    yield from fresh_lab(PORT_BASE, "scenario", **LANES[scenario_lane()[0]])


# The scale-out lane is what production runs: Mistral over RabbitMQ with two executors, the
# protection service on PostgreSQL (two gunicorn workers, as every lane) and two engines
# agreeing through Redis, the product installed from its wheel as the deploy guide does.
# The embedded lane needs no server: Mistral in one process and SQLite, with two engines
# still (the story kills one mid-operation).
LANES = {"scale-out": {"mistral_mode": "rabbit", "mistral_executors": 2,
                       "protector_database": "postgresql", "engines": 2,
                       "coordination": "redis", "install": "wheel"},
         "embedded": {"engines": 2}}


def scenario_lane() -> tuple[str, str]:
    """The lane the scenarios run on, and why: ``$SCENARIO_LANE`` if set, else the
    scale-out lane where the machine runs its servers (CI does), else the embedded one."""
    missing = [*mistral.rabbit_missing(),
               *([] if redis_answers() else ["Redis at 127.0.0.1:6379"]),
               *([] if postgres.answers(postgres.POSTGRES_PORT)
                 else ["PostgreSQL at 127.0.0.1:5432"])]
    chosen = os.environ.get("SCENARIO_LANE")
    if chosen:
        if chosen not in LANES:
            raise pytest.UsageError(f"SCENARIO_LANE={chosen}: use one of {sorted(LANES)}")
        if chosen == "scale-out" and missing:
            raise pytest.UsageError(f"the scale-out lane needs {', '.join(missing)}")
        return chosen, "SCENARIO_LANE"
    if missing:
        return "embedded", f"the scale-out lane needs {', '.join(dict.fromkeys(missing))}"
    return "scale-out", "RabbitMQ, PostgreSQL and Redis answer"


def pytest_report_header(config):
    lane, why = scenario_lane()
    return f"scenario lane: {lane} ({why}): {LANES[lane]}"


class Api:
    """A site's protection service, as a lab account with a real token."""

    def __init__(self, lab: Lab):
        self.lab, self.tokens = lab, {}

    def __call__(self, site: str, method: str, path: str, user: str = "alice",
                 expect: int | None = None, **kwargs) -> dict:
        if (site, user) not in self.tokens:
            self.tokens[site, user] = keystone.token(self.lab.sites[site], user)
        reply = requests.request(method, self.lab.sites[site].url("webhook", f"/v1{path}"),
                                 headers={"X-Auth-Token": self.tokens[site, user]},
                                 timeout=60, verify=self.lab.ca_file(), **kwargs)
        if expect is not None:
            assert reply.status_code == expect, reply.text
        return reply.json() if reply.content else {}

    def wait_operation(self, site: str, op_id: str, user: str = "alice",
                       within: float = 600.0) -> dict:
        deadline = time.monotonic() + within
        while True:
            op = self(site, "GET", f"/operations/{op_id}", user=user)["operation"]
            if op["status"] in ("completed", "failed", "partially_failed"):
                return op
            assert time.monotonic() < deadline, f"operation still {op['status']}: {op}"
            time.sleep(1.0)


@pytest.fixture(scope="session")
def api(lab) -> Api:
    return Api(lab)


@pytest.fixture(scope="session")
def cli(lab):
    """``openstack`` from this environment (the protector plugin and mistralclient's
    ``workflow`` commands), on the lab's clouds.yaml."""
    executable = Path(sys.executable).with_name("openstack")
    env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(lab.clouds_yaml()),
           "PYTHONWARNINGS": "ignore"}

    def run(cloud: str, *args: str) -> dict | list | str:
        done = subprocess.run([str(executable), "--os-cloud", cloud, *args], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if "-f" in args and "json" in args else done.stdout

    return run


@pytest.fixture(scope="session")
def clouds(lab):
    """``clouds(site, user)``: openstacksdk as a lab account."""
    made = {}

    def connect(site: str, user: str = "alice"):
        if (site, user) not in made:
            made[site, user] = openstack.connect(**lab.sites[site].auth(user),
                                                 region_name="RegionOne", api_timeout=60)
        return made[site, user]

    return connect


def site_a_running(lab):
    """Bring site-a back if an earlier story left it down."""
    if "keystone" not in lab.state()["sites"].get("site-a", {}):
        lab.site_up("site-a", progress=lambda line: None)


def protected_group(lab, api, cli, *, name: str, prefix: str, servers: dict[str, str],
                    user: str = "bob", within: float = 600.0, **settings) -> dict:
    """An async group of ``servers`` (made by ``lab.fleet.seed_fleet`` with ``prefix``),
    mapped to the DR site's ``dr-<prefix>-net`` and ``dr.small``, protected by the tenant
    through site-a's protection service (``openstack protector protection-group protect``);
    ``settings``: more of the group's fields (``rpo_target_seconds``)."""
    group = api("site-a", "POST", "/protection-groups", user=user, expect=201, json={
        "name": name, "replication_type": "async", "primary_site": "site-a",
        "secondary_site": "site-b", "volume_type": "replicated-ssd", **settings})[
        "protection_group"]
    for server, server_id in servers.items():
        api("site-a", "POST", f"/protection-groups/{name}/members", user=user,
            expect=201, json={"server_id": server_id, "server_name": server})
    for kind, source, target in (("network", f"{prefix}-net", f"dr-{prefix}-net"),
                                 ("flavor", "m1.small", "dr.small")):
        api("site-a", "POST", "/resource-mappings", user=user, expect=201,
            json={"kind": kind, "source": source, "target": target,
                  "protection_group": name})
    started = cli(f"site-a-{user}", "protector", "protection-group", "protect", name,
                  "-f", "json")
    op = api.wait_operation("site-a", started["id"], user=user, within=within)
    assert op["status"] == "completed", op["results"]
    return group


def removed(api, name: str, user: str = "bob"):
    """Group ``name`` unprotected and deleted, as a story's end: later stories fail a
    whole site over, and count the groups they move or skip."""
    started = api("site-a", "POST", f"/protection-groups/{name}/unprotect", user=user,
                  expect=202, json={})
    assert api.wait_operation("site-a", started["operation"]["id"], user=user)[
        "status"] == "completed"
    api("site-a", "DELETE", f"/protection-groups/{name}", user=user, expect=204)


def wait_execution(cli, cloud: str, execution_id: str, within: float = 600.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        shown = cli(cloud, "workflow", "execution", "show", execution_id, "-f", "json")
        if shown["State"] not in ("RUNNING", "IDLE"):
            return shown
        if time.monotonic() > deadline:
            pytest.fail(f"execution {execution_id} still {shown['State']}")
        time.sleep(1.0)


def pytest_collection_modifyitems(items):
    """The secrets sweep (test_secrets.py) looks at what every other story left in the
    logs and in Mistral: it runs last."""
    items.sort(key=lambda item: item.path.name == "test_secrets.py")
