"""Protection service benchmark: operation-status reads and operation triggers.

On the lab (the service under gunicorn with the lab's 2 workers x 16 threads, real
Keystone tokens validated by keystonemiddleware, the DR site's real Mistral behind a
stand-in workbook), 50 concurrent clients, each a process with its own keep-alive connection:

- ``status_polling``: each client polls one operation's status every 0.5 s, as
  ``--wait`` does, each from its own moment (about 100 requests/s);
- ``status_saturated``: each client reads back to back (the service's ceiling);
- ``trigger_burst``: each client starts one drill, all at once (each on a group of its
  own, as a group runs one drill at a time, and with its own Idempotency-Key, so each is
  recorded and starts a real Mistral execution);
- ``trigger_sustained``: each client starts drills back to back (Mistral, on the same
  cores, runs every execution meanwhile);
- ``trigger_one_client`` and ``mistral_create_one_client``: one client alone, through the
  service and straight to Mistral, to tell the service's share of a trigger from
  Mistral's.

The targets apply to the polling and to the burst. The saturated and sustained runs send
requests back to back, so their latency is the clients' count over the throughput: they
measure the ceiling, and the CPU seconds each service spent during each run say where it
went.

Prints one JSON line: p50/p99 in milliseconds, throughput, and errors, with the targets;
for each run the CPU seconds of each lab component and of the clients, and the wall time
that CPU needs on this machine's cores (``cpu_floor_ms``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import statistics
import time
import uuid

import requests

from site_recovery.lab import stand_in
from site_recovery.lab.services import keystone
from site_recovery.lab.services.postgres import POSTGRES_PORT, answers
from site_recovery.lab.supervisor import Lab, LabOptions
from site_recovery.workbooks import workflow_name

CLIENTS = 50
TARGETS_MS = {"status_p99": 50.0, "trigger_p99": 200.0}


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 1)


def run_clients(work, *, seconds: float | None = None, each: int | None = None,
                pause: float = 0.0, clients: int = CLIENTS) -> dict:
    """``work(session)`` by every client for ``seconds`` or ``each`` times, ``pause``
    seconds apart; the latencies of ``work`` alone, and the CPU seconds the clients spent
    meanwhile (on this machine they share the services' cores: a client's first request
    opens its TLS connection, about 8 ms of its CPU).

    Each client is a process of its own (forked, so ``work`` may be a closure), as real
    clients are: 50 threads in one interpreter would queue for its lock and add that
    wait to every latency.
    """
    context = multiprocessing.get_context("fork")
    results, start = context.Queue(), context.Barrier(clients)

    def client():
        session = requests.Session()
        start.wait()
        spent = _cpu_seconds()
        time.sleep(random.uniform(0, pause))     # independent pollers, not one burst
        latencies, errors, done = [], [], 0
        began = time.monotonic()
        deadline = began + (seconds or 0)
        while (each is None or done < each) and (seconds is None
                                                 or time.monotonic() < deadline):
            sent = time.perf_counter()
            status = work(session)
            (latencies if status < 400 else errors).append(
                (time.perf_counter() - sent) * 1000)
            done += 1
            time.sleep(pause)
        results.put((latencies, errors, began, time.monotonic(), _cpu_seconds() - spent))

    processes = [context.Process(target=client) for _ in range(clients)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    latencies = [ms for report in reports for ms in report[0]]
    errors = sum(len(report[1]) for report in reports)
    wall = max(r[3] for r in reports) - min(r[2] for r in reports)
    return {"requests": len(latencies) + errors, "errors": errors,
            "p50_ms": percentile(latencies, 0.50), "p99_ms": percentile(latencies, 0.99),
            "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
            "per_second": round((len(latencies) + errors) / wall, 1),
            "clients_cpu_s": round(sum(report[4] for report in reports), 2)}


def _cpu_seconds() -> float:
    used = resource.getrusage(resource.RUSAGE_SELF)
    return used.ru_utime + used.ru_stime


def _within(figures: dict, target_ms: float) -> bool:
    return not figures["errors"] and figures["p99_ms"] is not None and \
        figures["p99_ms"] <= target_ms


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-base", type=int, default=25000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--triggers-per-client", type=int, default=4)
    parser.add_argument("--database", choices=("sqlite", "postgresql"),
                        default="postgresql" if answers(POSTGRES_PORT) else "sqlite",
                        help="the services' database (default: PostgreSQL if it answers)")
    args = parser.parse_args(argv)
    lab = Lab(LabOptions(port_base=args.port_base, horizon=False, replication_check_interval=60.0,
                         run_name=f"bench-{uuid.uuid4().hex[:6]}",
                         protector_database=args.database))
    figures: dict = {"bench": "webhook", "clients": CLIENTS, "targets_ms": TARGETS_MS,
                     "service": f"gunicorn, 2 workers x 16 threads, {args.database}; "
                                "start_wait 0.05 s, 2 starts at once; Mistral allinone (as "
                                f"shipped); {os.cpu_count()} CPUs for everything"}
    try:
        lab.up(progress=lambda line: None)
        os.environ["REQUESTS_CA_BUNDLE"] = str(lab.ca_file())   # the services' TLS
        dr = lab.sites["site-b"]
        stand_in.install(dr)
        token = {"X-Auth-Token": keystone.token(lab.sites["site-a"], "alice")}
        base_a = lab.sites["site-a"].url("webhook", "/v1")
        # A group may run one drill at a time: every trigger drills a group of its own.
        triggers = 1 + 20 + CLIENTS * (1 + args.triggers_per_client)
        groups = [requests.post(f"{base_a}/protection-groups", headers=token, timeout=30,
                                json={"name": f"bench-{n}", "replication_type": "async",
                                      "primary_site": "site-a", "secondary_site": "site-b",
                                      "volume_type": "replicated-ssd"}).json()[
            "protection_group"]["id"] for n in range(triggers)]
        taken = multiprocessing.get_context("fork").Value("i", 0)
        dr_token = {"X-Auth-Token": keystone.token(dr, "alice")}
        base = dr.url("webhook", "/v1")

        def next_group() -> str:
            with taken.get_lock():
                taken.value += 1
                return groups[taken.value - 1]

        op = requests.post(f"{base}/protection-groups/{next_group()}/test-failover",
                           headers=dr_token, timeout=30).json()["operation"]
        status_url = f"{base}/operations/{op['id']}"

        def read(session):
            return session.get(status_url, headers=dr_token, timeout=30).status_code

        def trigger(session):
            key = {"Idempotency-Key": uuid.uuid4().hex}
            return session.post(f"{base}/protection-groups/{next_group()}/test-failover",
                                headers={**dr_token, **key}, timeout=60).status_code

        def measure(name: str, work, **how):
            """One run's figures, and the CPU seconds each lab process spent during it."""
            before = lab.cpu_seconds()
            figures[name] = run_clients(work, **how)
            spent = {component: seconds - before.get(component, 0.0)
                     for component, seconds in lab.cpu_seconds().items()}
            figures[name]["cpu_s"] = {component: round(seconds, 2)
                                      for component, seconds in sorted(spent.items())
                                      if seconds >= 0.05}
            # The wall time the run's CPU needs on this machine's cores: a burst's last
            # answer cannot come sooner.
            figures[name]["cpu_floor_ms"] = round(1000 * (
                sum(spent.values()) + figures[name]["clients_cpu_s"]) / os.cpu_count())

        for _ in range(CLIENTS):                   # every worker's token cache is warm
            read(requests)
        measure("status_polling", read, seconds=args.seconds, pause=0.5)
        measure("status_saturated", read, seconds=args.seconds)
        measure("trigger_burst", trigger, each=1)
        time.sleep(10)                             # Mistral runs the burst's executions
        measure("trigger_one_client", trigger, each=20, clients=1)
        mistral = stand_in.mistral(dr)

        def create_execution(_session):
            mistral.executions.create(workflow_name("test_failover"), workflow_input={
                "operation_id": "bench", "operation_type": "test_failover",
                "protection_group_ids": [], "source_site": "site-a",
                "target_site": "site-b", "params": {}, "concurrency": 10})
            return 201

        measure("mistral_create_one_client", create_execution, each=20, clients=1)
        time.sleep(5)
        measure("trigger_sustained", trigger, each=args.triggers_per_client)
        figures["met"] = {
            "status_p99": _within(figures["status_polling"], TARGETS_MS["status_p99"]),
            "trigger_p99": _within(figures["trigger_burst"], TARGETS_MS["trigger_p99"])}
    finally:
        lab.purge(progress=lambda line: None)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
