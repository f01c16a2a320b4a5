"""Capture benchmark: one protection group of N VMs (the lab's fleet), at N = 100 and 500.

On a fresh lab, through the public interfaces (the protection service's API with real
Keystone tokens; the real workbook in real Mistral), for each N: a fleet of N VMs of its
own (prefix, networks, CIDR) is seeded on site-a for the tenant, and then measured:

- ``add_members_s``: adding the N members to a new async group, one POST each, as the
  tenant (each a change pushed to the peer site);
- ``protect_s``: the protect operation end to end, started and awaited as the tenant
  (array protection, then the first capture of every member, recorded on both sites);
- ``group_document_bytes``: the group's document with its captured specs, as a workflow
  reads it (``GET /v1/internal/protection-groups/{id}`` as the DR service account), on
  each site;
- ``unchanged_captures``: the pack's ``capture`` workflow on the group, started in site-a's
  Mistral as the DR service account (what the cron trigger's ``capture_site`` runs for
  each group), right after the protect, so it finds nothing new: its wall time, and how
  much each site's audit log grew (bytes of the new entries' details and reason, read
  through ``GET /v1/audit-log?all_projects=true`` as an admin) and its database (bytes
  in use).

The services run as shipped (no latency or fault injected). Prints one JSON line.
Target (issue 15): the audit log grows by less than 10 KB per unchanged capture.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

from site_recovery.lab.fleet import seed_fleet
from site_recovery.lab.layout import lab_home
from site_recovery.lab.protector import Protector
from site_recovery.lab.seed import seed
from site_recovery.lab.stand_in import mistral
from site_recovery.lab.supervisor import Lab, LabOptions
from site_recovery.workbooks import workflow_name

TARGETS = {"audit_bytes_per_unchanged_capture": 10 * 1024}
SITES = ("site-a", "site-b")
# N -> (prefix, CIDR): each fleet on networks of its own, room for N + 10 addresses.
FLEETS = {100: ("cap100", "10.60.0.0/23"), 500: ("cap500", "10.64.0.0/22")}


def audit_top(service: Protector, site: str) -> int:
    entries = service(site, "GET", "/audit-log?all_projects=true&limit=1", "admin")["entries"]
    return entries[0]["id"] if entries else 0


def audit_since(service: Protector, site: str, after: int) -> list[dict]:
    """Every audit entry of ``site`` newer than id ``after``, oldest first."""
    found, marker = [], None
    while True:
        page = f"/audit-log?all_projects=true&limit=1000{f'&marker={marker}' if marker else ''}"
        entries = service(site, "GET", page, "admin")["entries"]
        newer = [e for e in entries if e["id"] > after]
        found += newer
        if len(newer) < len(entries) or not entries:
            return found[::-1]
        marker = entries[-1]["id"]


def entry_bytes(entry: dict) -> int:
    return len(json.dumps(entry["details"])) + len(entry["reason"] or "")


def database_bytes(lab: Lab, site: str) -> int:
    """Bytes in use in the site's protection-service SQLite database (its pages less its
    free list, read through SQLite, so what the WAL holds counts and reused space not)."""
    path = lab.sites[site].service_dir("webhook") / "protector.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        pages, free, size = (db.execute(f"PRAGMA {name}").fetchone()[0]
                             for name in ("page_count", "freelist_count", "page_size"))
    return (pages - free) * size


def run_workflow(lab: Lab, name: str, workflow_input: dict, within: float = 3600
                 ) -> tuple[float, str, list]:
    """``name`` in site-a's Mistral as the DR service account, awaited: wall seconds, end
    state and its tasks' results."""
    client = mistral(lab.sites["site-a"], timeout=120)
    started = time.perf_counter()
    execution = client.executions.create(workflow_name(name), workflow_input=workflow_input)
    deadline = time.monotonic() + within
    while (state := client.executions.get(execution.id).state) in ("RUNNING", "IDLE"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} still running after {within:.0f} s")
        time.sleep(0.25)
    wall = time.perf_counter() - started
    if state != "SUCCESS":
        raise RuntimeError(f"{name} ended {state}: "
                           f"{client.executions.get(execution.id).state_info}")
    tasks = client.tasks.list(workflow_execution_id=execution.id)
    results = []
    for task in tasks:
        for action in client.action_executions.list(task_execution_id=task.id):
            output = json.loads(client.action_executions.get(action.id).output or "{}")
            results.append(output.get("result"))
    return round(wall, 2), state, results


def unchanged_capture(lab: Lab, service: Protector, group_id: str) -> dict:
    tops = {site: audit_top(service, site) for site in SITES}
    sizes = {site: database_bytes(lab, site) for site in SITES}
    cpu = lab.cpu_seconds()
    wall, _, results = run_workflow(lab, "capture", {"protection_group_ids": [group_id]})
    figures: dict = {"wall_s": wall, "cpu_s": cpu_since(lab, cpu), "action_results": results}
    for site in SITES:
        entries = audit_since(service, site, tops[site])
        figures[site] = {
            "audit_entries": len(entries),
            "audit_bytes": sum(entry_bytes(e) for e in entries),
            "audit_entry_json_bytes": sum(len(json.dumps(e)) for e in entries),
            "audit_actions": sorted({e["action"] for e in entries}),
            "changed_reported": [len(e["details"].get("changed", []))
                                 for e in entries if isinstance(e["details"], dict)
                                 and "changed" in e["details"]],
            "database_growth_bytes": database_bytes(lab, site) - sizes[site]}
    return figures


def cpu_since(lab: Lab, before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each lab component spent since ``before``; those above 0.5 s."""
    spent = {name: round(seconds - before.get(name, 0.0), 1)
             for name, seconds in lab.cpu_seconds().items()}
    return {name: seconds for name, seconds in sorted(spent.items()) if seconds >= 0.5}


def measure(lab: Lab, service: Protector, user: str, size: int, captures: int) -> dict:
    prefix, cidr = FLEETS.get(size, (f"cap{size}", f"10.{68 + size % 100}.0.0/22"))
    figures: dict = {"vms": size, "tenant": user, "prefix": prefix, "cidr": cidr}
    started = time.perf_counter()
    servers = seed_fleet(lab, user=user, prefix=prefix, count=size, cidr=cidr)
    figures["seed_fleet_s"] = round(time.perf_counter() - started, 1)

    name = f"{prefix}-group"
    group = service("site-a", "POST", "/protection-groups", user, json={
        "name": name, "replication_type": "async", "primary_site": "site-a",
        "secondary_site": "site-b", "volume_type": "replicated-ssd"})["protection_group"]
    cpu, started, each = lab.cpu_seconds(), time.perf_counter(), []
    for server, server_id in sorted(servers.items(), key=lambda s: int(s[0].rsplit("-")[-1])):
        sent = time.perf_counter()
        service("site-a", "POST", f"/protection-groups/{name}/members", user,
                json={"server_id": server_id, "server_name": server})
        each.append(time.perf_counter() - sent)
    figures["add_members_s"] = round(time.perf_counter() - started, 2)
    tenth = max(1, size // 10)
    figures["add_member_ms"] = {     # does one more member cost more in a larger group?
        "first_tenth_mean": round(1000 * sum(each[:tenth]) / tenth, 1),
        "last_tenth_mean": round(1000 * sum(each[-tenth:]) / tenth, 1)}
    figures["add_members_cpu_s"] = cpu_since(lab, cpu)
    for kind, source, target in (("network", f"{prefix}-net", f"dr-{prefix}-net"),
                                 ("flavor", "m1.small", "dr.small")):
        service("site-a", "POST", "/resource-mappings", user, json={
            "kind": kind, "source": source, "target": target, "protection_group": name})

    cpu, started = lab.cpu_seconds(), time.perf_counter()
    op = service("site-a", "POST", f"/protection-groups/{name}/protect", user,
                 json={})["operation"]
    op = service.finished("site-a", op["id"], user)
    figures["protect_s"] = round(time.perf_counter() - started, 2)
    figures["protect_cpu_s"] = cpu_since(lab, cpu)
    figures["protect_status"] = op["status"]
    figures["protect_timings"] = [r.get("timings") for r in op.get("results", [])]
    if op["status"] != "completed":
        figures["protect_failure"] = [(r.get("step"), (r.get("reason") or "")[:500])
                                      for r in op.get("results", [])]
        return figures

    figures["group_document_bytes"] = {}
    for site in SITES:
        reply = service.request(site, "GET", f"/internal/protection-groups/{group['id']}",
                                "site-recovery")
        document = reply.json()["document"]
        figures["group_document_bytes"][site] = len(reply.content)
        if site == "site-a":
            figures["group_version"] = document.get("version")
    figures["unchanged_captures"] = [unchanged_capture(lab, service, group["id"])
                                     for _ in range(captures)]
    worst = max(c[site]["audit_bytes"] for c in figures["unchanged_captures"] for site in SITES)
    figures["audit_bytes_per_unchanged_capture_max"] = worst
    return figures


def lab_home_of_its_own(root: Path) -> Path:
    """A lab home under ``root`` whose venvs are the default home's (shared by every lab
    instance), so the run's state is its own without building the service venvs again."""
    home = root / "home"
    home.mkdir(parents=True)
    shared = lab_home() / "venvs"
    shared.mkdir(parents=True, exist_ok=True)
    (home / "venvs").symlink_to(shared, target_is_directory=True)
    return home


def revision() -> dict:
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True,
                              text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no"))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500", help="VMs per group, comma separated")
    parser.add_argument("--user", default="bob", help="the tenant (a lab account)")
    parser.add_argument("--captures", type=int, default=2,
                        help="unchanged captures measured per group")
    parser.add_argument("--port-base", type=int, default=33000)
    parser.add_argument("--keep", action="store_true", help="leave the lab running")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    figures: dict = {
        "bench": "capture", "targets": TARGETS,
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "services": "unpatched: as in the working tree, no latency or fault injected; "
                    "protection service under gunicorn (the lab's), SQLite; "
                    "Mistral allinone",
        "revision": revision(), "runs": {}}
    quiet = {"progress": lambda line: None}
    root = Path(tempfile.mkdtemp(prefix="sr-bench-capture-"))
    lab = Lab(LabOptions(port_base=args.port_base, horizon=False,
                         replication_check_interval=60.0, home=lab_home_of_its_own(root),
                         run_name="bench-capture"))
    began = time.perf_counter()
    try:
        started = time.perf_counter()
        lab.up(**quiet)
        seed(lab, **quiet)
        figures["lab_up_and_seed_s"] = round(time.perf_counter() - started, 1)
        service = Protector(lab)
        for size in sizes:
            figures["runs"][str(size)] = measure(lab, service, args.user, size, args.captures)
    finally:
        if not args.keep:
            lab.purge(**quiet)
            (root / "home" / "venvs").unlink(missing_ok=True)
            shutil.rmtree(root, ignore_errors=True)
    figures["bench_s"] = round(time.perf_counter() - began, 1)
    worst = [run.get("audit_bytes_per_unchanged_capture_max") for run in figures["runs"].values()]
    figures["target_met"] = all(w is not None and w < TARGETS[
        "audit_bytes_per_unchanged_capture"] for w in worst)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
