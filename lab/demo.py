"""The main job: the DR story told on the embedded lab, printed as a report.

Today the story is the storage layer's, on two simulated FlashArrays joined by a
replication link: protect an async and a sync group, write data, replicate, list recovery
points with their RPO, run a drill and clean it up, then lose site A's array and
materialise both groups for failover on site B. The FlashArray driver talks to the
simulators through the real ``purestorage`` SDK over HTTPS, as it would to real arrays.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from site_recovery.lab.flasharray_sim import SimulatorServer
from site_recovery.storage import ProtectionSpec, Purpose, StorageDriver
from site_recovery.storage.fabric import Fabric
from site_recovery.storage.flasharray import ArrayEndpoint, flasharray_driver

PRIMARY, DR = "pure-site-a", "pure-site-b"
WEB = ProtectionSpec("prod-ecommerce-web", "async", PRIMARY, DR, replicate_interval=60)
DB = ProtectionSpec("prod-ecommerce-db", "sync", PRIMARY, DR)


class Report:
    def __init__(self, out=sys.stdout):
        self.out = out
        self.started = time.monotonic()

    def section(self, title: str):
        print(f"\n== {title} ".ljust(92, "="), file=self.out)

    def line(self, text: str = ""):
        print(f"  {text}", file=self.out)

    def table(self, headers: list[str], rows: list[list]):
        cells = [[str(c) for c in row] for row in rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        fmt = "  " + "  ".join(f"{{:<{w}}}" for w in widths)
        print(fmt.format(*headers), file=self.out)
        print(fmt.format(*("-" * w for w in widths)), file=self.out)
        for row in cells:
            print(fmt.format(*row), file=self.out)


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S") if moment else "-"


def story(fabric: Fabric, storage: StorageDriver, addresses: dict[str, str], report: Report):
    report.section("Lab: two sites, two FlashArrays, one replication link")
    for array in (PRIMARY, DR):
        health = storage.health(array)
        link = health.connection_to(DR if array == PRIMARY else PRIMARY)
        report.line(f"{array:<12} https://{addresses[array]:<22} Purity {health.version}  "
                    f"link: {link.status} ({', '.join(link.types)})")

    site_a = fabric.array(PRIMARY)
    web_volumes = [f"web-{i}-disk" for i in range(1, 4)]
    db_volumes = ["db-1-data", "db-1-log"]
    for name in web_volumes + db_volumes:
        site_a.create_volume(name, "20G")

    report.section("1. Protect: web tier async, database tier sync")
    web_members = storage.protect(WEB, web_volumes)
    db_members = storage.protect(DB, db_volumes)
    pod = fabric.array(DR).get_pod(DB.name)
    report.table(["group", "type", "direction", "members", "replication"], [
        [WEB.name, "async", f"{PRIMARY} -> {DR}", len(web_members),
         f"pgroup, every {WEB.replicate_interval} s"],
        [DB.name, "sync", f"{PRIMARY} -> {DR}", len(db_members),
         "pod stretched: " + ", ".join(f"{a['name']} {a['status']}" for a in pod["arrays"])],
    ])

    report.section("2. The application writes on site A")
    for volume in ("web-1-disk", "web-1-disk", "web-2-disk"):
        fabric.write(PRIMARY, volume)
    for volume in db_members:
        fabric.write(PRIMARY, volume)
    report.table(["volume", "data generation"],
                 [[v, fabric.generation(PRIMARY, v)] for v in web_volumes + db_members])

    report.section("3. Replicate the web tier now; recovery points on site B")
    point = storage.replicate_now(WEB, timeout=30)
    fabric.write(PRIMARY, "web-1-disk")          # a write the recovery point does not hold
    rows = [[p.name, when(p.created), when(p.completed), f"{p.progress:.0%}",
             "yes" if p.fully_transferred else "no"] for p in storage.recovery_points(WEB)]
    report.table(["recovery point", "created", "completed", "progress", "usable"], rows)
    report.line(f"RPO now: {WEB.name} {storage.rpo_seconds(WEB):.1f} s, "
                f"{DB.name} {storage.rpo_seconds(DB):.1f} s (stretched pod in sync)")

    report.section("4. DR drill of the web tier on site B (production untouched)")
    before = {a: fabric.inventory(a) for a in (PRIMARY, DR)}
    drill = storage.materialise(WEB, point, Purpose.DRILL)
    report.table(["drill volume", "from", "generation", "site A now"], [
        [m.name, m.source, fabric.generation(DR, m.name), fabric.generation(PRIMARY, m.source)]
        for m in drill])
    report.line("The drill volumes hold the recovery point's data, not site A's later writes.")

    report.section("5. Clean the drill up")
    removed = storage.cleanup(WEB, Purpose.DRILL)
    same = before == {a: fabric.inventory(a) for a in (PRIMARY, DR)}
    report.line(f"destroyed and eradicated {len(removed)} volumes; both arrays exactly as "
                f"before the drill: {'yes' if same else 'NO'}")

    report.section(f"6. Site A is lost: {PRIMARY} stops answering")
    fabric.write(PRIMARY, db_members[0])         # in sync: reaches site B before the loss
    db_expected = {m: fabric.generation(PRIMARY, m) for m in db_members}
    fabric.set_array_up(PRIMARY, False)
    down = storage.health(PRIMARY)
    report.line(f"{PRIMARY}: reachable={down.reachable} ({down.detail})")
    rows = []
    for spec, expected in ((WEB, None), (DB, db_expected)):
        used = storage.newest_recovery_point(spec)
        rpo = used.age_seconds(datetime.now(UTC))
        copies = storage.materialise(spec, used, Purpose.FAILOVER)
        for m in copies:
            held = fabric.generation(DR, m.name)
            rows.append([spec.name, used.name, f"{rpo:.1f} s", m.name, held,
                         "" if expected is None else ("ok" if held == expected[m.source]
                                                      else "LOST")])
    report.table(["group", "recovery point used", "RPO achieved", "failover volume",
                  "generation", "sync check"], rows)
    report.line("Failover volumes sit at site B's array root, ready for Cinder to manage.")
    report.section("Done")
    report.line(f"storage story completed in {time.monotonic() - report.started:.1f} s")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="site-recovery-demo", description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, help="keep the lab's files here")
    args = parser.parse_args(argv)
    report = Report()
    print("Site Recovery for OpenStack: the DR story on the embedded lab")
    with ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        workdir.mkdir(parents=True, exist_ok=True)
        for stale in workdir.glob("fabric.db*"):      # every run tells the story afresh
            stale.unlink()
        fabric = Fabric(workdir / "fabric.db", transfer_seconds=0.5)
        for array in (PRIMARY, DR):
            fabric.add_array(array)
        fabric.connect(PRIMARY, DR)
        servers = {a: stack.enter_context(SimulatorServer(fabric, a, cert_dir=workdir / "tls"))
                   for a in (PRIMARY, DR)}
        storage = flasharray_driver(
            [ArrayEndpoint(a, s.address, fabric.api_token(a), s.cert_file)
             for a, s in servers.items()],
            connect_timeout=3.0, read_timeout=10.0)
        story(fabric, storage, {a: s.address for a, s in servers.items()}, report)


if __name__ == "__main__":
    main()
