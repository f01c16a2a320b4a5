"""Failover benchmark: one group of 10 VMs, then a site failover of N groups x M VMs.

Everything goes through the public interfaces of a fresh lab (the protection service's
API with real tokens; the real workbook in real Mistral; real Heat): VMs of one tenant
are seeded on site-a, grouped, protected, then failed over (unplanned, forced) to site-b.
Run twice: with zero injected latency, and with a latency profile on site-b (seconds per
array copy, per Cinder manage request, per server build). Reported per run: the single
group's failover time, the site failover's wall time, the slowest group's own time in it
and their ratio (how well the groups overlap; also against the single group's own
failover), Mistral task executions per group, and the CPU seconds each lab component
spent during the site failover (the machine's two cores bound the wall time from below
by their sum divided by two).

Prints one JSON line. Targets: 100 x 10 within 120 s at zero latency; ratio <= 1.3
under the latency profile.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime

from site_recovery.lab.fleet import seed_fleet
from site_recovery.lab.protector import Protector
from site_recovery.lab.seed import seed
from site_recovery.lab.stand_in import mistral
from site_recovery.lab.supervisor import Lab, LabOptions
from site_recovery.workbooks import workflow_name

TARGETS = {"site_failover_100x10_s": 120.0, "latency_ratio": 1.3}
SINGLE_VMS = 10
DEFAULT_CONCURRENCY = 20


def group_of(service: Protector, name: str, servers: dict[str, str]) -> str:
    group = service("site-a", "POST", "/protection-groups", "bob", json={
        "name": name, "replication_type": "async", "primary_site": "site-a",
        "secondary_site": "site-b", "volume_type": "replicated-ssd"})["protection_group"]
    for server, server_id in servers.items():
        service("site-a", "POST", f"/protection-groups/{name}/members", "bob",
                json={"server_id": server_id, "server_name": server})
    return group["id"]


def protect(lab: Lab, ids: list[str]):
    client = mistral(lab.sites["site-a"], timeout=120)
    execution = client.executions.create(workflow_name("protect"),
                                         workflow_input={"protection_group_ids": ids})
    deadline = time.monotonic() + 3600
    while (state := client.executions.get(execution.id).state) in ("RUNNING", "IDLE"):
        if time.monotonic() > deadline:
            raise RuntimeError("protect still running")
        time.sleep(1)
    if state != "SUCCESS":
        raise RuntimeError(f"protect ended {state}: "
                           f"{client.executions.get(execution.id).state_info}")


def tasks_of(lab: Lab, execution_id: str) -> int:
    client = mistral(lab.sites["site-b"], timeout=120)
    executions = [execution_id] + [e.id for e in client.executions.list(
        root_execution_id=execution_id, limit=1000) if e.id != execution_id]
    return sum(len(client.tasks.list(workflow_execution_id=e, limit=1000))
               for e in executions)


def seconds(start: str | None, end: str | None) -> float | None:
    if not (start and end):
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start))
                 .total_seconds(), 2)


def run(args, latency: bool) -> dict:
    mode = "latency" if latency else "zero"
    lab = Lab(LabOptions(port_base=args.port_base, horizon=False,
                         replication_check_interval=60.0, run_name=f"bench-failover-{mode}",
                         concurrency=args.concurrency))
    quiet = {"progress": lambda line: None}
    lab.purge(**quiet)
    figures: dict = {}
    try:
        lab.up(**quiet)
        seed(lab, **quiet)
        service = Protector(lab, timeout=120)
        started = time.perf_counter()
        fleet = seed_fleet(lab, user="bob", prefix="bf", count=args.groups * args.vms,
                           cidr="10.40.0.0/20")
        single = seed_fleet(lab, user="bob", prefix="bs", count=SINGLE_VMS,
                            cidr="10.50.0.0/24")
        figures["seed_s"] = round(time.perf_counter() - started, 1)
        for kind, source, target in (("network", "bf-net", "dr-bf-net"),
                                     ("network", "bs-net", "dr-bs-net"),
                                     ("flavor", "m1.small", "dr.small")):
            service("site-a", "POST", "/resource-mappings", "bob",
                    json={"kind": kind, "source": source, "target": target})
        names = sorted(fleet, key=lambda n: int(n.rsplit("-", 1)[1]))
        ids = [group_of(service, f"bf-group-{g + 1}",
                        {n: fleet[n] for n in names[g * args.vms:(g + 1) * args.vms]})
               for g in range(args.groups)]
        single_id = group_of(service, "bs-group", single)
        started = time.perf_counter()
        protect(lab, [*ids, single_id])
        figures["protect_s"] = round(time.perf_counter() - started, 1)
        if latency:
            lab.fabric.add_latency(lab.sites["site-b"].array_name, args.copy, "copy_volume")
            lab.cloud_fault("site-b", {"service": "volume", "method": "POST",
                                       "path": "/manageable_volumes$", "latency": args.manage})
            lab.cloud_fault("site-b", {"behaviour": "server_build_delay",
                                       "count": args.groups * args.vms + SINGLE_VMS,
                                       "seconds": args.build})

        started = time.perf_counter()
        op = service("site-b", "POST", "/protection-groups/bs-group/failover", "bob",
                     json={"failover_type": "unplanned", "force": True})["operation"]
        op = service.finished("site-b", op["id"], "bob")
        figures["single_group_s"] = round(time.perf_counter() - started, 2)
        figures["single_group_status"] = op["status"]
        figures["single_group_tasks"] = tasks_of(lab, op["mistral_execution_id"])

        cpu_before = lab.cpu_seconds()
        started = time.perf_counter()
        op = service("site-b", "POST", "/sites/site-a/failover", "dr-admin",
                     json={"failover_type": "unplanned", "force": True})["operation"]
        op = service.finished("site-b", op["id"], "dr-admin")
        wall = time.perf_counter() - started
        cpu = {name: round(seconds - cpu_before.get(name, 0.0), 1)
               for name, seconds in lab.cpu_seconds().items()}
        per_group = [seconds(r["started_at"], r["finished_at"]) for r in op["results"]]
        slowest = max(s for s in per_group if s is not None)
        figures.update({
            "site_failover_s": round(wall, 2), "site_failover_status": op["status"],
            "groups_completed": op["completed_count"], "groups_failed": op["failed_count"],
            "slowest_group_s": slowest, "ratio": round(wall / slowest, 2),
            "ratio_to_single_group": round(wall / figures["single_group_s"], 2),
            "tasks_per_group": round(tasks_of(lab, op["mistral_execution_id"])
                                     / max(1, op["total_protection_groups"]), 2),
            "failures": failures(op),
            "cpu_s": cpu, "cpu_s_total": round(sum(cpu.values()), 1),
            "heat_cpu_s_per_vm": round(cpu.get("site-b/heat", 0.0)
                                       / (args.groups * args.vms), 3),
        })
        return figures
    finally:
        if not args.keep:
            lab.purge(**quiet)


def failures(op: dict, shown: int = 5) -> dict:
    """How many groups failed at each step, and the first few causes as the operation
    records them: a figure without them cannot be acted on."""
    failed = [r for r in op["results"] if r["status"] == "failed"]
    by_step: dict[str, int] = {}
    for result in failed:
        by_step[result["step"]] = by_step.get(result["step"], 0) + 1
    return {"by_step": by_step,
            "first": [f"{r['protection_group']} at {r['step']}: {(r['reason'] or '')[:300]}"
                      for r in failed[:shown]]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=20, help="groups (N, up to 100)")
    parser.add_argument("--vms", type=int, default=5, help="VMs per group (M, up to 10)")
    parser.add_argument("--copy", type=float, default=1.0, help="seconds per array copy")
    parser.add_argument("--manage", type=float, default=2.0,
                        help="seconds per Cinder manage request")
    parser.add_argument("--build", type=float, default=5.0, help="seconds per server build")
    parser.add_argument("--concurrency", type=int,
                        help="groups a site failover runs at once (engine.concurrency; "
                             f"default: every group, up to {DEFAULT_CONCURRENCY}). The ratio "
                             "measures how well groups overlap, so it needs them all at "
                             "once; beyond about 20 they only queue for the two cores")
    parser.add_argument("--port-base", type=int, default=12000)
    parser.add_argument("--keep", action="store_true", help="leave the labs running")
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args(argv)
    if not (1 <= args.groups <= 100 and 1 <= args.vms <= 10):
        parser.error("--groups must be 1..100 and --vms 1..10")
    if args.concurrency is None:
        args.concurrency = min(args.groups, DEFAULT_CONCURRENCY)
    elif not 1 <= args.concurrency <= 100:
        parser.error("--concurrency must be 1..100 (engine.concurrency)")
    figures = {"bench": "failover", "groups": args.groups, "vms_per_group": args.vms,
               "concurrency": args.concurrency, "targets": TARGETS,
               "profile": {"copy_s": args.copy, "manage_s": args.manage,
                           "build_s": args.build},
               "zero_latency": run(args, latency=False)}
    if not args.skip_latency:
        figures["with_latency"] = run(args, latency=True)
        figures["latency_ratio_met"] = figures["with_latency"]["ratio"] <= TARGETS[
            "latency_ratio"]
    if (args.groups, args.vms) == (100, 10):
        figures["target_100x10_met"] = figures["zero_latency"]["site_failover_s"] <= TARGETS[
            "site_failover_100x10_s"]
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
