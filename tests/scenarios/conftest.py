"""One seeded two-site lab for the DR scenarios, and the public interfaces to drive it:
the protection service's API with real Keystone tokens, the real ``openstack`` CLI, and
openstacksdk as the tenant sees its clouds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import openstack
import pytest
import requests

from site_recovery.lab.seed import seed
from site_recovery.lab.services import keystone
from site_recovery.lab.supervisor import Lab, LabOptions

PORT_BASE = 30000


@pytest.fixture(scope="session")
def lab():
    if os.environ.get("SCENARIO_LAB") == "default":
        # Against the lab that ``site-recovery-lab up`` started, kept afterwards to look at.
        lab = Lab(LabOptions())
        lab.up(progress=lambda line: None)
        seed(lab, progress=lambda line: None)
        yield lab
        return
    lab = Lab(LabOptions(port_base=PORT_BASE, run_name=f"scenario-{uuid.uuid4().hex[:8]}"))
    try:
        lab.up(progress=lambda line: None)
        seed(lab, progress=lambda line: None)
        yield lab
    finally:
        lab.purge(progress=lambda line: None)


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
                                 timeout=60, **kwargs)
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
