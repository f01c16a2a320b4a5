"""Lab benchmark: cold and warm ``up``, ``seed``, ``down``, and the whole lab's memory.

Cold ``up`` uses an empty lab home, so it includes creating every service's venv; warm
``up`` reuses them (a second lab instance with fresh databases). RSS is summed over every
process of the lab (each service's process group) while it is up and seeded.

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from site_recovery.lab.seed import seed
from site_recovery.lab.supervisor import Lab, LabOptions

TARGETS = {"warm_up_s": 30.0, "rss_mb": 3072.0}


def group_rss_mb(pgids: set[int]) -> float:
    total_kb = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) not in pgids:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return round(total_kb / 1024, 1)


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return round(time.perf_counter() - started, 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port-base", type=int, default=23000)
    parser.add_argument("--skip-cold", action="store_true",
                        help="measure only the warm path (venvs of the default lab home)")
    args = parser.parse_args(argv)
    quiet = {"progress": lambda line: None}
    figures: dict = {"bench": "lab"}
    if not args.skip_cold:
        with tempfile.TemporaryDirectory() as home:
            cold = Lab(LabOptions(port_base=args.port_base, horizon=False,
                                  replication_check_interval=60.0, home=Path(home),
                                  run_name="cold"))
            try:
                figures["cold_up_s"] = timed(lambda: cold.up(**quiet))
            finally:
                cold.purge(**quiet)
    warm = Lab(LabOptions(port_base=args.port_base, horizon=False,
                          replication_check_interval=60.0, run_name=f"bench-{os.getpid()}"))
    try:
        figures["warm_up_s"] = timed(lambda: warm.up(**quiet))
        figures["seed_s"] = timed(lambda: seed(warm, **quiet))
        pids = {e["pid"] for site in warm.state()["sites"].values() for e in site.values()}
        figures["rss_mb"] = group_rss_mb(pids)
        figures["processes"] = len(pids)
    finally:
        figures["down_s"] = timed(lambda: warm.down(**quiet))
        warm.purge(**quiet)
    figures["targets"] = TARGETS
    figures["targets_met"] = {k: figures[k] <= v for k, v in TARGETS.items() if k in figures}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
