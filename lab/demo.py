"""The main job: the concept document's DR story on the embedded two-site lab, end to end,
through the public interfaces, printed as a report.

Both sites come up (real Keystone, Heat and Mistral; simulated Nova, Neutron, Cinder,
Glance and FlashArrays), the e-commerce tenant is seeded on site-a, and then, as its
users would type them: protection groups for web and app (async) and db (sync) with
their mappings; protect, through site-a's protection service; a drill of the db group on the
isolated test network, and its cleanup; a planned failover of web and its failback; then
site-a goes down and a DR administrator fails the whole site over from site-b, with live
progress. The operation records (RPO achieved, per-phase timings) and Heat's view of
what was recovered close the report.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from .seed import seed
from .supervisor import Lab, LabOptions

PORT_BASE = 17000
GROUPS = (("prod-ecommerce-web", "async", "replicated-ssd", ("web-1", "web-2")),
          ("prod-ecommerce-app", "async", "replicated-ssd", ("app-1",)),
          ("prod-ecommerce-db", "sync", "replicated-sync", ("db-1",)))
MAPPINGS = (("network", "prod-net", "dr-prod-net"), ("network", "db-net", "dr-db-net"),
            ("flavor", "m1.small", "dr.small"), ("flavor", "m1.medium", "dr.medium"),
            ("flavor", "m1.large", "dr.large"), ("ip_rule", "10.0.1.0/24", "10.1.1.0/24"))


class Story:
    def __init__(self, lab: Lab, out=sys.stdout):
        self.lab, self.out = lab, out
        self.started = time.monotonic()
        self.env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(lab.clouds_yaml()),
                    "PYTHONWARNINGS": "ignore"}
        self.openstack = str(Path(sys.executable).with_name("openstack"))

    def section(self, title: str):
        print(f"\n== {title} ".ljust(92, "="), file=self.out, flush=True)

    def say(self, text: str = ""):
        print(f"  {text}", file=self.out, flush=True)

    def run(self, cloud: str, *args: str, show: bool = True, live: bool = False) -> str:
        """``openstack --os-cloud <cloud> ...``, echoed as a user would type it."""
        print(f"\n$ openstack --os-cloud {cloud} {shlex.join(args)}", file=self.out, flush=True)
        command = [self.openstack, "--os-cloud", cloud, *args]
        if live:                        # --wait prints one line per change: let it through
            done = subprocess.run(command, env=self.env, text=True, timeout=1800,
                                  stdout=subprocess.PIPE)
            output = done.stdout
        else:
            done = subprocess.run(command, env=self.env, capture_output=True, text=True,
                                  timeout=1800)
            output = done.stdout
        if show or done.returncode:
            print(output.rstrip() or "", file=self.out, flush=True)
        if done.returncode:
            raise RuntimeError(f"the command failed: {done.stderr.strip()[-2000:]}")
        return output

    def json(self, cloud: str, *args: str) -> dict | list:
        return json.loads(self.run(cloud, *args, "-f", "json", show=False))


def tell(story: Story):
    lab = story.lab
    story.section("1. Protection groups for the e-commerce tenant (alice, on site-a)")
    servers = {s["Name"]: s["ID"] for s in story.json("site-a-alice", "server", "list")}
    for name, kind, volume_type, members in GROUPS:
        story.run("site-a-alice", "protector", "protection-group", "create", "--name", name,
                  "--replication-type", kind, "--primary-site", "site-a",
                  "--secondary-site", "site-b", "--volume-type", volume_type, show=False)
        for member in members:
            story.run("site-a-alice", "protector", "member", "add", name, servers[member],
                      "--server-name", member, show=False)
    for kind, source, target in MAPPINGS:
        story.run("site-a-alice", "protector", "mapping", "create", "--kind", kind,
                  "--source", source, "--target", target, show=False)
    story.run("site-b-alice", "protector", "protection-group", "list")

    story.section("2. Protect: replication on the arrays, and capture (site-a's service)")
    for name, *_ in GROUPS:
        story.run("site-a-alice", "protector", "protection-group", "protect", name, "--wait",
                  live=True)
    story.run("site-b-alice", "protector", "protection-group", "list")

    story.section("3. DR drill of the database tier on the isolated test network (site-b)")
    db_net = story.json("site-a-alice", "network", "show", "db-net")["id"]
    test_net = story.json("site-b-alice", "network", "show", "dr-test-net")["id"]
    story.run("site-b-alice", "dr", "test", "failover", "prod-ecommerce-db",
              "--network-mapping", f"{db_net}={test_net}", "--wait", live=True)
    story.run("site-b-alice", "server", "list")
    story.run("site-b-alice", "stack", "list")
    story.run("site-b-alice", "dr", "test", "failover", "cleanup", "prod-ecommerce-db",
              "--wait", live=True)
    story.run("site-b-alice", "server", "list")

    story.section("4. Planned failover of the web tier to site-b, then failback")
    story.run("site-b-alice", "dr", "failover", "prod-ecommerce-web", "--failover-type",
              "planned", "--wait", live=True)
    story.run("site-b-alice", "server", "list")
    story.run("site-a-alice", "server", "list")
    story.run("site-a-alice", "dr", "failback", "prod-ecommerce-web", "--wait", live=True)
    story.run("site-a-alice", "server", "list")

    story.section("5. Site-a is lost; a DR administrator fails the whole site over")
    lab.site_down("site-a", progress=story.say)
    deadline = time.monotonic() + 60
    while story.json("site-b-dr-admin", "protector", "site", "show", "site-a")["state"] != \
            "unreachable" and time.monotonic() < deadline:
        time.sleep(1)
    story.run("site-b-dr-admin", "dr", "site", "failover", "site-a", "--failover-type",
              "unplanned", "--force", "--wait", live=True)
    ops = story.json("site-b-dr-admin", "dr", "operation", "list", "--all-projects")
    site_op = next(o for o in ops if o["Type"] == "site_failover")
    record = story.json("site-b-dr-admin", "dr", "operation", "show", site_op["ID"])
    story.say("per group: recovery point, RPO achieved, phase timings (s)")
    for result in record["results"]:
        timings = ", ".join(f"{k} {v:.1f}" for k, v in result["timings"].items())
        story.say(f"{result['protection_group']:<20} {result['status']:<10} "
                  f"{(result['recovery_point'] or '-')[-40:]:<40} "
                  f"RPO {result['rpo_achieved_seconds'] or 0:.1f} s  [{timings}]")

    story.section("6. What Heat recovered on site-b (alice's own view)")
    story.run("site-b-alice", "stack", "list")
    story.run("site-b-alice", "stack", "show", "dr-prod-ecommerce-db", "-c", "stack_name",
              "-c", "stack_status", "-c", "outputs")
    story.run("site-b-alice", "stack", "resource", "list", "dr-prod-ecommerce-db")
    story.run("site-b-alice", "server", "list")
    story.section("Done")
    story.say(f"the story took {time.monotonic() - story.started:.0f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="site-recovery-demo",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true",
                        help="leave the lab running afterwards (site-a stays down)")
    args = parser.parse_args(argv)
    lab = Lab(LabOptions(port_base=PORT_BASE, run_name="demo"))
    print("Site Recovery for OpenStack: the DR story on the embedded two-site lab", flush=True)
    lab.purge(progress=lambda line: None)              # every run tells the story afresh
    try:
        print("\n== The lab: two sites (the first run builds the service venvs) ".ljust(92, "="))
        lab.up(progress=lambda line: print(f"  {line}", flush=True))
        for name, site in lab.status()["sites"].items():
            if site["horizon_url"]:
                print(f"  {name} Horizon: {site['horizon_url']} (alice / alice-pass, "
                      "domain Default; with --keep it stays up)", flush=True)
        seed(lab, progress=lambda line: print(f"  {line}", flush=True))
        tell(Story(lab))
    finally:
        if not args.keep:
            lab.purge(progress=lambda line: None)


if __name__ == "__main__":
    main()
