"""Storage benchmark: one protection group of N volumes through each driver.

Prints one JSON line with seconds for protect, replicate-now, materialise (drill) and
cleanup, for an async and a sync group, on the mock driver (in process) and on the two
FlashArray backends over HTTPS to the lab's simulator: REST 2.x (real ``py-pure-client``)
and REST 1.x (real ``purestorage`` SDK).
Replication transfer time is simulated (``transfer_seconds``) and included as is.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from site_recovery.lab.flasharray_sim import SimulatorServer
from site_recovery.storage.base import ArrayEndpoint, ProtectionSpec, Purpose
from site_recovery.storage.fabric import Fabric
from site_recovery.storage.flasharray import flasharray_driver
from site_recovery.storage.flasharray_rest2 import flasharray_rest2_driver
from site_recovery.storage.mock import mock_driver

TARGET_MATERIALISE_SECONDS = 2.0
BACKENDS = {"flasharray_rest2": flasharray_rest2_driver, "flasharray": flasharray_driver}


def timed(results: dict, key: str, call):
    started = time.perf_counter()
    value = call()
    results[key] = round(time.perf_counter() - started, 3)
    return value


def run_group(driver, fabric: Fabric, kind: str, volumes: int) -> dict:
    names = [f"{kind}-vol-{i:03d}" for i in range(volumes)]
    source = fabric.array("fa-a")
    for name in names:
        source.create_volume(name, "10G")
    spec = ProtectionSpec(f"bench-{kind}", kind, "fa-a", "fa-b", replicate_interval=3600)
    results: dict = {}
    timed(results, "protect_s", lambda: driver.protect(spec, names))
    point = timed(results, "replicate_now_s", lambda: driver.replicate_now(spec, timeout=60))
    copies = timed(results, "materialise_s",
                   lambda: driver.materialise(spec, point, Purpose.DRILL))
    removed = timed(results, "cleanup_s", lambda: driver.cleanup(spec, Purpose.DRILL))
    assert len(copies) == len(removed) == volumes
    return results


def run_driver(name: str, volumes: int, transfer_seconds: float, workdir: Path) -> dict:
    fabric = Fabric(workdir / f"{name}.db", transfer_seconds=transfer_seconds)
    for array in ("fa-a", "fa-b"):
        fabric.add_array(array)
    fabric.connect("fa-a", "fa-b")
    with ExitStack() as stack:
        if name == "mock":
            driver = mock_driver(fabric, poll_interval=0.02)
        else:
            servers = [stack.enter_context(SimulatorServer(fabric, a)) for a in ("fa-a", "fa-b")]
            driver = BACKENDS[name](
                [ArrayEndpoint(s.array, s.address, fabric.api_token(s.array), s.cert_file)
                 for s in servers], poll_interval=0.02)
        return {kind: run_group(driver, fabric, kind, volumes) for kind in ("async", "sync")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=100)
    parser.add_argument("--transfer-seconds", type=float, default=0.05,
                        help="simulated duration of one replication transfer")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        figures = {d: run_driver(d, args.volumes, args.transfer_seconds, Path(workdir))
                   for d in ("mock", *BACKENDS)}
    print(json.dumps({
        "bench": "storage", "volumes_per_group": args.volumes,
        "transfer_seconds": args.transfer_seconds, "machine": platform.machine(),
        **figures,
        "target_materialise_via_simulator_s": TARGET_MATERIALISE_SECONDS,
        "materialise_target_met": {
            backend: figures[backend]["async"]["materialise_s"] <= TARGET_MATERIALISE_SECONDS
            for backend in BACKENDS},
    }))


if __name__ == "__main__":
    main()
