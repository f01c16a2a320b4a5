"""A SQLite model of FlashArrays and the replication between them.

This is the world behind the mock storage driver and the lab's FlashArray REST simulator:
several arrays share one database file (the "fabric"), so replication really moves data
from one array's records to another's. Each :class:`FabricArray` offers the REST 1.x
operations of one array under the ``purestorage`` SDK's method names, returns the
array's JSON objects, and fails with :class:`PurityError` carrying Purity's own message
texts. Several processes may open the same fabric (WAL, one writer at a time).

Modelled: volumes with a content *generation* (so a test can prove which data a copy
holds), volume and pgroup snapshots, pgroup targets and ``allowed``, replication
transfers whose progress grows 0 -> 1 over ``transfer_seconds`` while the link is up,
replication schedules and retention, ActiveCluster pods stretched over two arrays that
mirror writes and freeze the losing side when the link fails, hosts and connections,
the 24 h destroyed-then-eradicated lifecycle, and faults on demand (array down, link
down, latency, an error on the Nth call of an operation). Time is the wall clock plus
an offset that tests may advance.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from .sqlite import ThreadConnections

ERADICATION_DELAY = 24 * 3600
PURITY_VERSION = "6.1.0"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS arrays (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, api_token TEXT NOT NULL,
    up INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS links (
    a TEXT NOT NULL, b TEXT NOT NULL, types TEXT NOT NULL, up INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (a, b));
CREATE TABLE IF NOT EXISTS volumes (
    array TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, serial TEXT NOT NULL,
    created REAL NOT NULL, source TEXT, generation INTEGER NOT NULL DEFAULT 0,
    destroyed REAL, PRIMARY KEY (array, name));
CREATE TABLE IF NOT EXISTS snapshots (
    array TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL, size INTEGER NOT NULL,
    serial TEXT NOT NULL, created REAL NOT NULL, generation INTEGER NOT NULL,
    pgsnap TEXT, destroyed REAL, PRIMARY KEY (array, name));
CREATE TABLE IF NOT EXISTS pgroups (
    array TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL,
    replica INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,
    replicate_enabled INTEGER NOT NULL DEFAULT 0,
    replicate_frequency INTEGER NOT NULL DEFAULT 14400,
    snap_enabled INTEGER NOT NULL DEFAULT 0, snap_frequency INTEGER NOT NULL DEFAULT 3600,
    all_for INTEGER NOT NULL DEFAULT 86400, per_day INTEGER NOT NULL DEFAULT 4,
    days INTEGER NOT NULL DEFAULT 7, target_all_for INTEGER NOT NULL DEFAULT 86400,
    target_per_day INTEGER NOT NULL DEFAULT 4, target_days INTEGER NOT NULL DEFAULT 7,
    last_schedule REAL, next_suffix INTEGER NOT NULL DEFAULT 1, destroyed REAL,
    PRIMARY KEY (array, name));
CREATE TABLE IF NOT EXISTS pgroup_volumes (
    array TEXT NOT NULL, pgroup TEXT NOT NULL, volume TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (array, pgroup, volume));
CREATE TABLE IF NOT EXISTS pgroup_targets (
    array TEXT NOT NULL, pgroup TEXT NOT NULL, target TEXT NOT NULL,
    allowed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (array, pgroup, target));
CREATE TABLE IF NOT EXISTS pgroup_snapshots (
    array TEXT NOT NULL, name TEXT NOT NULL, source TEXT NOT NULL, created REAL NOT NULL,
    seq INTEGER NOT NULL, replica INTEGER NOT NULL DEFAULT 0, origin TEXT,
    scheduled INTEGER NOT NULL DEFAULT 0, started REAL, completed REAL, progress REAL,
    last_tick REAL, destroyed REAL, PRIMARY KEY (array, name));
CREATE INDEX IF NOT EXISTS pgsnap_transfers ON pgroup_snapshots (replica, progress);
CREATE TABLE IF NOT EXISTS pods (
    name TEXT PRIMARY KEY, source TEXT NOT NULL, created REAL NOT NULL,
    failover_preference TEXT NOT NULL DEFAULT '[]', destroyed REAL);
CREATE TABLE IF NOT EXISTS pod_arrays (
    pod TEXT NOT NULL, array TEXT NOT NULL, status TEXT NOT NULL, frozen_at REAL,
    seq INTEGER NOT NULL, PRIMARY KEY (pod, array));
CREATE TABLE IF NOT EXISTS hosts (array TEXT NOT NULL, name TEXT NOT NULL,
    PRIMARY KEY (array, name));
CREATE TABLE IF NOT EXISTS host_volumes (
    array TEXT NOT NULL, host TEXT NOT NULL, volume TEXT NOT NULL, lun INTEGER NOT NULL,
    PRIMARY KEY (array, host, volume));
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, array TEXT NOT NULL, kind TEXT NOT NULL,
    operation TEXT NOT NULL DEFAULT '*', seconds REAL NOT NULL DEFAULT 0,
    nth INTEGER NOT NULL DEFAULT 0, message TEXT, calls INTEGER NOT NULL DEFAULT 0);
"""

_SIZE = re.compile(r"^(\d+)([KMGTP]?)$")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


class PurityError(Exception):
    """An error the array itself reports (REST: HTTP 400, ``[{"msg", "ctx"}]``)."""

    def __init__(self, ctx: str, msg: str):
        super().__init__(f"{ctx}: {msg}")
        self.ctx = ctx
        self.msg = msg


class ArrayDown(Exception):
    """The array does not answer at all (powered off, site lost, port closed)."""

    def __init__(self, array: str, detail: str = "array does not answer"):
        super().__init__(f"{array}: {detail}")
        self.array = array
        self.detail = detail


class ArrayTimeout(ArrayDown):
    """The array answered more slowly than the caller was willing to wait."""


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size_bytes(size: Any) -> int:
    if isinstance(size, int) and size > 0:
        return size
    match = _SIZE.match(str(size).upper())
    if not match or int(match.group(1)) == 0:
        raise PurityError(str(size), "Invalid volume size.")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _serial() -> str:
    return uuid.uuid4().hex[:24].upper()


def _pod_of(name: str) -> str | None:
    return name.split("::", 1)[0] if "::" in name else None


def _bare(volume: str) -> str:
    """Member part of a snapshot name: Purity drops the ``pod::`` prefix there."""
    return volume.split("::", 1)[1] if "::" in volume else volume


class Fabric:
    """The shared database of a set of simulated arrays, plus the lab's admin controls."""

    def __init__(self, path: str, *, transfer_seconds: float | None = None):
        self.path = str(path)
        self._connections = ThreadConnections(self.path, row_factory=sqlite3.Row)
        db = self._db()
        db.executescript(_SCHEMA)
        if transfer_seconds is not None:
            self.set_transfer_seconds(transfer_seconds)

    # -- connections and transactions ----------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        return self._connections.get()

    @contextlib.contextmanager
    def transaction(self):
        """One writer at a time across every process sharing the fabric."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def release(self):
        """A request's end: its thread's connection goes to the next request."""
        self._connections.release()

    def close(self):
        self._connections.close()

    # -- settings and clock --------------------------------------------------------------
    def _setting(self, db, key: str, default: str) -> str:
        row = db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row["value"] if row else default

    def _put_setting(self, db, key: str, value: Any):
        db.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
                   "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, str(value)))

    def now(self, db=None) -> float:
        db = db or self._db()
        return time.time() + float(self._setting(db, "clock_offset", "0"))

    def advance(self, seconds: float):
        """Move the fabric's clock forward (replication, retention, eradication follow)."""
        with self.transaction() as db:
            offset = float(self._setting(db, "clock_offset", "0")) + seconds
            self._put_setting(db, "clock_offset", offset)

    def set_transfer_seconds(self, seconds: float):
        """How long one replication transfer takes while the link is up."""
        with self.transaction() as db:
            self._put_setting(db, "transfer_seconds", max(float(seconds), 0.001))

    # -- topology ------------------------------------------------------------------------
    def add_array(self, name: str, api_token: str | None = None) -> str:
        """Create an array (idempotent); returns its API token."""
        with self.transaction() as db:
            row = db.execute("SELECT api_token FROM arrays WHERE name=?", (name,)).fetchone()
            if row:
                return row["api_token"]
            token = api_token or str(uuid.uuid4())
            db.execute("INSERT INTO arrays(name, id, api_token) VALUES (?, ?, ?)",
                       (name, str(uuid.uuid4()), token))
            return token

    def arrays(self) -> list[str]:
        return [r["name"] for r in self._db().execute("SELECT name FROM arrays ORDER BY name")]

    def api_token(self, array: str) -> str:
        row = self._db().execute("SELECT api_token FROM arrays WHERE name=?", (array,)).fetchone()
        if row is None:
            raise KeyError(array)
        return row["api_token"]

    def connect(self, a: str, b: str, types=("async-replication", "sync-replication")):
        """Join two arrays for replication (idempotent)."""
        a, b = sorted((a, b))
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO links(a, b, types) VALUES (?, ?, ?)",
                       (a, b, json.dumps(list(types))))

    def array(self, name: str, *, timeout: float | None = None) -> FabricArray:
        if not self._db().execute("SELECT 1 FROM arrays WHERE name=?", (name,)).fetchone():
            raise KeyError(f"no array {name} in fabric {self.path}")
        return FabricArray(self, name, timeout)

    # -- data ----------------------------------------------------------------------------
    def write(self, array: str, volume: str) -> int:
        """A host writes to the volume: its content generation goes up by one.

        A write to a stretched pod's volume reaches every array where the pod is online.
        """
        with self.transaction() as db:
            self._check_up(db, array)
            row = self._live_volume(db, array, volume)
            pod = _pod_of(volume)
            if pod and self._pod_status(db, pod, array) != "online":
                raise PurityError(volume, "Pod is offline; I/O is suspended.")
            generation = row["generation"] + 1
            for target in [array, *self._mirrors(db, array, volume)]:
                db.execute("UPDATE volumes SET generation=? WHERE array=? AND name=?",
                           (generation, target, volume))
            return generation

    def generation(self, array: str, name: str) -> int:
        """Content generation of a volume or a snapshot (live or destroyed)."""
        db = self._db()
        for table in ("volumes", "snapshots"):
            row = db.execute(f"SELECT generation FROM {table} WHERE array=? AND name=?",
                             (array, name)).fetchone()
            if row:
                return row["generation"]
        raise KeyError(f"{array}: no volume or snapshot {name}")

    def inventory(self, array: str) -> dict[str, list[str]]:
        """Every object on one array, destroyed ones included: for leak checks."""
        db = self._db()

        def names(sql):
            return sorted(r[0] for r in db.execute(sql, (array,)))

        return {
            "volumes": names("SELECT name FROM volumes WHERE array=?"),
            "snapshots": names("SELECT name FROM snapshots WHERE array=?"),
            "pgroups": names("SELECT name FROM pgroups WHERE array=?"),
            "pgroup_snapshots": names("SELECT name FROM pgroup_snapshots WHERE array=?"),
            "pods": names("SELECT pod FROM pod_arrays WHERE array=?"),
            "hosts": names("SELECT name FROM hosts WHERE array=?"),
        }

    # -- faults --------------------------------------------------------------------------
    def set_array_up(self, array: str, up: bool):
        """Power an array off or on. Stretched pods keep running on the survivor."""
        with self.transaction() as db:
            db.execute("UPDATE arrays SET up=? WHERE name=?", (int(up), array))
            self._settle_pods(db)

    def set_link(self, a: str, b: str, up: bool):
        """Cut or restore the replication link between two arrays."""
        a, b = sorted((a, b))
        with self.transaction() as db:
            self._tick(db, self.now(db))
            db.execute("UPDATE links SET up=? WHERE a=? AND b=?", (int(up), a, b))
            self._settle_pods(db)

    def add_latency(self, array: str, seconds: float, operation: str = "*"):
        with self.transaction() as db:
            db.execute("INSERT INTO faults(array, kind, operation, seconds) "
                       "VALUES (?, 'latency', ?, ?)", (array, operation, seconds))

    def fail_call(self, array: str, operation: str, message: str, nth: int = 1):
        """Make the Nth next call of ``operation`` on ``array`` fail with ``message``."""
        with self.transaction() as db:
            db.execute("INSERT INTO faults(array, kind, operation, nth, message) "
                       "VALUES (?, 'error', ?, ?, ?)", (array, operation, nth, message))

    def clear_faults(self):
        with self.transaction() as db:
            db.execute("DELETE FROM faults")
            db.execute("UPDATE arrays SET up=1")
            db.execute("UPDATE links SET up=1")
            self._settle_pods(db)

    def is_up(self, array: str) -> bool:
        row = self._db().execute("SELECT up FROM arrays WHERE name=?", (array,)).fetchone()
        return bool(row and row["up"])

    def _check_up(self, db, array: str):
        row = db.execute("SELECT up FROM arrays WHERE name=?", (array,)).fetchone()
        if row is None or not row["up"]:
            raise ArrayDown(array)

    def enter(self, array: str, operation: str, timeout: float | None = None):
        """Apply the faults standing for one call (before its transaction starts)."""
        db = self._db()
        self._check_up(db, array)
        rows = db.execute("SELECT * FROM faults WHERE array=? AND operation IN (?, '*')",
                          (array, operation)).fetchall()
        delay = sum(r["seconds"] for r in rows if r["kind"] == "latency")
        if delay:
            if timeout is not None and delay > timeout:
                time.sleep(timeout)
                raise ArrayTimeout(array, f"no answer within {timeout:g} s")
            time.sleep(delay)
        if not any(r["kind"] == "error" for r in rows):
            return
        due = None
        with self.transaction() as tx:          # count the call even though it fails
            for fault in tx.execute("SELECT * FROM faults WHERE array=? AND kind='error' AND "
                                    "operation IN (?, '*')", (array, operation)).fetchall():
                calls = fault["calls"] + 1
                tx.execute("UPDATE faults SET calls=? WHERE id=?", (calls, fault["id"]))
                if calls == fault["nth"]:
                    tx.execute("DELETE FROM faults WHERE id=?", (fault["id"],))
                    due = due or fault["message"]
        if due:
            raise PurityError(operation, due)

    # -- shared lookups ------------------------------------------------------------------
    def _live_volume(self, db, array: str, name: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM volumes WHERE array=? AND name=? AND destroyed IS NULL",
                         (array, name)).fetchone()
        if row is None:
            raise PurityError(name, "Volume does not exist.")
        return row

    def _link(self, db, a: str, b: str) -> sqlite3.Row | None:
        a, b = sorted((a, b))
        return db.execute("SELECT * FROM links WHERE a=? AND b=?", (a, b)).fetchone()

    def _link_ok(self, db, a: str, b: str) -> bool:
        link = self._link(db, a, b)
        if link is None or not link["up"]:
            return False
        ups = db.execute("SELECT COUNT(*) FROM arrays WHERE name IN (?, ?) AND up=1",
                         (a, b)).fetchone()[0]
        return ups == 2

    def _pod_status(self, db, pod: str, array: str) -> str | None:
        row = db.execute("SELECT status FROM pod_arrays WHERE pod=? AND array=?",
                         (pod, array)).fetchone()
        return row["status"] if row else None

    def _mirrors(self, db, array: str, name: str) -> list[str]:
        """Other arrays that receive a write to pod object ``name`` made on ``array``."""
        pod = _pod_of(name)
        if not pod or self._pod_status(db, pod, array) != "online":
            return []
        return [r["array"] for r in db.execute(
            "SELECT array FROM pod_arrays WHERE pod=? AND array<>? AND status='online'",
            (pod, array))]

    # -- pods across the fabric ----------------------------------------------------------
    def _settle_pods(self, db):
        """Re-evaluate every stretched pod after a link or array state change.

        A mediator is assumed reachable: when the arrays of a pod lose each other, the
        preferred array (failover preference, else the pod's source) keeps the pod online
        and the other freezes; a powered-off array always loses. When they see each other
        again, the frozen side resyncs from the online side.
        """
        now = self.now(db)
        for pod in db.execute("SELECT * FROM pods WHERE destroyed IS NULL").fetchall():
            members = db.execute("SELECT * FROM pod_arrays WHERE pod=? ORDER BY seq",
                                 (pod["name"],)).fetchall()
            if len(members) < 2:
                continue
            names = [m["array"] for m in members]
            up = {n for n in names if db.execute(
                "SELECT up FROM arrays WHERE name=?", (n,)).fetchone()["up"]}
            linked = len(names) == 2 and self._link_ok(db, *names)
            if linked:
                online = [m for m in members if m["status"] == "online"]
                for m in members:
                    if m["status"] != "online" and online:
                        self._resync_pod(db, pod["name"], online[0]["array"], m["array"])
                db.execute("UPDATE pod_arrays SET status='online', frozen_at=NULL WHERE pod=?",
                           (pod["name"],))
                continue
            preference = json.loads(pod["failover_preference"]) or [pod["source"]]
            candidates = [n for n in preference if n in up and n in names] + \
                [n for n in names if n in up and n not in preference]
            winner = candidates[0] if candidates else None
            for m in members:
                if m["array"] == winner:
                    continue
                if m["status"] == "online":
                    db.execute("UPDATE pod_arrays SET status='offline', frozen_at=? "
                               "WHERE pod=? AND array=?", (now, pod["name"], m["array"]))

    def _resync_pod(self, db, pod: str, source: str, target: str):
        for vol in db.execute("SELECT * FROM volumes WHERE array=? AND name LIKE ? "
                              "AND destroyed IS NULL", (source, f"{pod}::%")).fetchall():
            db.execute("UPDATE volumes SET generation=? WHERE array=? AND name=?",
                       (vol["generation"], target, vol["name"]))

    # -- replication engine --------------------------------------------------------------
    def _tick(self, db, now: float):
        """Advance schedules, transfers, retention and eradication to ``now``."""
        transfer_seconds = float(self._setting(db, "transfer_seconds", "1.0"))
        for pg in db.execute(
                "SELECT p.* FROM pgroups p JOIN arrays a ON a.name=p.array WHERE a.up=1 "
                "AND p.replica=0 AND p.destroyed IS NULL AND p.replicate_enabled=1").fetchall():
            last = pg["last_schedule"] or pg["created"]
            frequency = pg["replicate_frequency"]
            if now - last >= frequency:
                due = last + ((now - last) // frequency) * frequency
                FabricArray(self, pg["array"], None)._snapshot_pgroup(
                    db, pg["name"], str(pg["next_suffix"]), due, replicate=True, scheduled=True)
                db.execute("UPDATE pgroups SET last_schedule=?, next_suffix=next_suffix+1 "
                           "WHERE array=? AND name=?", (due, pg["array"], pg["name"]))
        for snap in db.execute(
                "SELECT * FROM pgroup_snapshots WHERE replica=1 AND progress<1 "
                "AND destroyed IS NULL").fetchall():
            if not self._link_ok(db, snap["origin"], snap["array"]):
                db.execute("UPDATE pgroup_snapshots SET last_tick=? WHERE array=? AND name=?",
                           (now, snap["array"], snap["name"]))
                continue
            progress = snap["progress"] + (now - snap["last_tick"]) / transfer_seconds
            completed = None
            if progress >= 1.0:
                completed = now - (progress - 1.0) * transfer_seconds
                progress = 1.0
                self._land_transfer(db, snap, completed)
            db.execute("UPDATE pgroup_snapshots SET progress=?, completed=?, last_tick=? "
                       "WHERE array=? AND name=?",
                       (progress, completed, now, snap["array"], snap["name"]))
        self._apply_retention(db, now)
        cutoff = now - ERADICATION_DELAY
        for table in ("volumes", "snapshots", "pgroups", "pgroup_snapshots", "pods"):
            db.execute(f"DELETE FROM {table} WHERE destroyed IS NOT NULL AND destroyed < ?",
                       (cutoff,))

    def _land_transfer(self, db, snap: sqlite3.Row, completed: float):
        """The transfer finished: the replica's volume snapshots now exist on the target."""
        origin, local_name = snap["origin"], snap["name"].split(":", 1)[1]
        for member in db.execute("SELECT * FROM snapshots WHERE array=? AND pgsnap=?",
                                 (origin, local_name)).fetchall():
            db.execute(
                "INSERT OR REPLACE INTO snapshots(array, name, source, size, serial, created, "
                "generation, pgsnap) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (snap["array"], f"{origin}:{member['name']}", f"{origin}:{member['source']}",
                 member["size"], _serial(), completed, member["generation"], snap["name"]))

    def _apply_retention(self, db, now: float):
        """Scheduled snapshots older than the retention go; the newest usable one stays."""
        for pg in db.execute("SELECT * FROM pgroups WHERE destroyed IS NULL").fetchall():
            keep_for = pg["all_for"]
            if pg["replica"]:           # the source's policy decides what its targets keep
                origin = db.execute("SELECT target_all_for FROM pgroups WHERE array=? AND name=?",
                                    (pg["source"], pg["name"].split(":", 1)[1])).fetchone()
                keep_for = origin["target_all_for"] if origin else pg["target_all_for"]
            rows = db.execute(
                "SELECT name, created, progress FROM pgroup_snapshots WHERE array=? AND "
                "source=? AND scheduled=1 AND destroyed IS NULL ORDER BY created DESC, seq DESC",
                (pg["array"], pg["name"])).fetchall()
            newest_usable = next((r["name"] for r in rows
                                  if r["progress"] is None or r["progress"] >= 1), None)
            for row in rows:
                if row["created"] < now - keep_for and row["name"] != newest_usable:
                    FabricArray._destroy_pgroup_snapshot(db, pg["array"], row["name"], now)


def _flags(given: dict, allowed: set[str]) -> dict:
    unknown = set(given) - allowed
    if unknown:
        raise PurityError(", ".join(sorted(unknown)), "Invalid parameter.")
    return given


class FabricArray:
    """One simulated array: REST 1.x operations under the ``purestorage`` SDK's names."""

    def __init__(self, fabric: Fabric, name: str, timeout: float | None):
        self.fabric = fabric
        self.name = name
        self.timeout = timeout

    @contextlib.contextmanager
    def _op(self, operation: str):
        self.fabric.enter(self.name, operation, self.timeout)
        with self.fabric.transaction() as db:
            self.fabric._check_up(db, self.name)
            now = self.fabric.now(db)
            self.fabric._tick(db, now)
            yield db, now

    def _row_id(self, db) -> sqlite3.Row:
        return db.execute("SELECT * FROM arrays WHERE name=?", (self.name,)).fetchone()

    # -- array ---------------------------------------------------------------------------
    def get(self, **flags) -> dict:
        _flags(flags, set())
        with self._op("get") as (db, _):
            row = self._row_id(db)
            return {"array_name": self.name, "id": row["id"], "version": PURITY_VERSION,
                    "revision": "201911220159+b9d8405"}

    def list_array_connections(self, **flags) -> list[dict]:
        _flags(flags, set())
        with self._op("list_array_connections") as (db, _):
            out = []
            for link in db.execute("SELECT * FROM links WHERE a=? OR b=? ORDER BY a, b",
                                   (self.name, self.name)).fetchall():
                peer = link["b"] if link["a"] == self.name else link["a"]
                peer_row = db.execute("SELECT * FROM arrays WHERE name=?", (peer,)).fetchone()
                status = "connected" if self.fabric._link_ok(db, self.name, peer) else "connecting"
                types = json.loads(link["types"])
                # REST >= 1.17 reports one row per peer; sync connections also carry async.
                kind = "sync-replication" if "sync-replication" in types else "async-replication"
                out.append({"array_name": peer, "id": peer_row["id"],
                            "version": PURITY_VERSION, "management_address": peer,
                            "replication_address": peer, "status": status,
                            "type": kind, "throttled": False})
            return out

    # -- volumes -------------------------------------------------------------------------
    @staticmethod
    def _volume_view(row, now: float | None = None) -> dict:
        view = {"name": row["name"], "size": row["size"], "serial": row["serial"],
                "created": iso(row["created"]), "source": row["source"]}
        if now is not None:         # listings that may include destroyed objects
            view["time_remaining"] = None if row["destroyed"] is None else \
                max(0, int(row["destroyed"] + ERADICATION_DELAY - now))
        return view

    def list_volumes(self, **flags) -> list[dict]:
        flags = _flags(flags, {"snap", "pending", "pending_only", "names", "pgrouplist"})
        table = "snapshots" if flags.get("snap") else "volumes"
        with self._op("list_volumes") as (db, now):
            if flags.get("pending_only"):
                where = "destroyed IS NOT NULL"
            elif flags.get("pending"):
                where = "1=1"
            else:
                where = "destroyed IS NULL"
            rows = db.execute(f"SELECT * FROM {table} WHERE array=? AND {where} "
                              "ORDER BY created, name", (self.name,)).fetchall()
            if flags.get("pgrouplist"):
                wanted = set(flags["pgrouplist"])
                rows = [r for r in rows if table == "snapshots" and r["pgsnap"] in wanted]
            if flags.get("names"):
                rows = [r for r in rows if r["name"] in set(flags["names"])]
            return [self._volume_view(r, now) for r in rows]

    def get_volume(self, name: str, **flags) -> Any:
        flags = _flags(flags, {"snap", "pgroup", "pending"})
        with self._op("get_volume") as (db, now):
            if flags.get("snap") and flags.get("pgroup"):
                rows = db.execute("SELECT * FROM snapshots WHERE array=? AND pgsnap=? AND "
                                  "destroyed IS NULL ORDER BY name", (self.name, name)).fetchall()
                if not rows and not self._pgsnap(db, name):
                    raise PurityError(name, "Snapshot does not exist.")
                return [self._volume_view(r, now) for r in rows]
            if flags.get("snap"):
                rows = db.execute("SELECT * FROM snapshots WHERE array=? AND source=? AND "
                                  "destroyed IS NULL ORDER BY created",
                                  (self.name, name)).fetchall()
                return [self._volume_view(r, now) for r in rows]
            row = db.execute("SELECT * FROM volumes WHERE array=? AND name=?",
                             (self.name, name)).fetchone()
            if row is None or (row["destroyed"] is not None and not flags.get("pending")):
                raise PurityError(name, "Volume does not exist.")
            return self._volume_view(row, now)

    def _check_new_volume(self, db, name: str):
        row = db.execute("SELECT destroyed FROM volumes WHERE array=? AND name=?",
                         (self.name, name)).fetchone()
        if row is not None:
            if row["destroyed"] is not None:
                raise PurityError(name, "Volume has been destroyed.")
            raise PurityError(name, "Volume already exists.")
        pod = _pod_of(name)
        if pod and self.fabric._pod_status(db, pod, self.name) is None:
            raise PurityError(pod, "Pod does not exist.")
        if len(_bare(name)) > 63:
            raise PurityError(name, "Volume name is too long.")

    def _insert_volume(self, db, name, size, created, source, generation, serial=None):
        serial = serial or _serial()
        for target in [self.name, *self.fabric._mirrors(db, self.name, name)]:
            db.execute("INSERT OR REPLACE INTO volumes(array, name, size, serial, created, "
                       "source, generation) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (target, name, size, serial, created, source, generation))
        return db.execute("SELECT * FROM volumes WHERE array=? AND name=?",
                          (self.name, name)).fetchone()

    def create_volume(self, volume: str, size: Any, **flags) -> dict:
        _flags(flags, set())
        with self._op("create_volume") as (db, now):
            self._check_new_volume(db, volume)
            row = self._insert_volume(db, volume, _size_bytes(size), now, None, 0)
            return self._volume_view(row)

    def _content_source(self, db, source: str) -> tuple[sqlite3.Row, str]:
        """The volume or snapshot to copy from, and the volume its data came from."""
        for table in ("volumes", "snapshots"):
            row = db.execute(f"SELECT * FROM {table} WHERE array=? AND name=? "
                             "AND destroyed IS NULL", (self.name, source)).fetchone()
            if row is not None:
                return row, row["name"] if table == "volumes" else row["source"]
        raise PurityError(source, "Volume does not exist.")

    def copy_volume(self, source: str, dest: str, **flags) -> dict:
        flags = _flags(flags, {"overwrite"})
        with self._op("copy_volume") as (db, now):
            src, origin = self._content_source(db, source)
            existing = db.execute("SELECT * FROM volumes WHERE array=? AND name=?",
                                  (self.name, dest)).fetchone()
            if existing is not None and existing["destroyed"] is None and flags.get("overwrite"):
                for target in [self.name, *self.fabric._mirrors(db, self.name, dest)]:
                    db.execute("UPDATE volumes SET generation=?, size=?, source=? "
                               "WHERE array=? AND name=?",
                               (src["generation"], src["size"], origin, target, dest))
                row = self.fabric._live_volume(db, self.name, dest)
            else:
                self._check_new_volume(db, dest)
                row = self._insert_volume(db, dest, src["size"], now, origin, src["generation"])
            return self._volume_view(row)

    def create_snapshots(self, volumes: list[str], **flags) -> list[dict]:
        flags = _flags(flags, {"suffix"})
        with self._op("create_snapshots") as (db, now):
            out = []
            for vol in volumes:
                row = self.fabric._live_volume(db, self.name, vol)
                name = f"{vol}.{flags.get('suffix') or int(now * 1000)}"
                if db.execute("SELECT 1 FROM snapshots WHERE array=? AND name=?",
                              (self.name, name)).fetchone():
                    raise PurityError(name, "Snapshot already exists.")
                db.execute("INSERT INTO snapshots(array, name, source, size, serial, created, "
                           "generation) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (self.name, name, vol, row["size"], _serial(), now, row["generation"]))
                out.append({"name": name, "source": vol, "size": row["size"],
                            "serial": _serial(), "created": iso(now)})
            return out

    def rename_volume(self, volume: str, name: str) -> dict:
        with self._op("rename_volume") as (db, _):
            self.fabric._live_volume(db, self.name, volume)
            if _pod_of(volume) != _pod_of(name):
                raise PurityError(name, "Rename cannot change the volume's container.")
            self._check_new_volume(db, name)
            for target in [self.name, *self.fabric._mirrors(db, self.name, volume)]:
                db.execute("UPDATE volumes SET name=? WHERE array=? AND name=?",
                           (name, target, volume))
                db.execute("UPDATE pgroup_volumes SET volume=? WHERE array=? AND volume=?",
                           (name, target, volume))
                db.execute("UPDATE host_volumes SET volume=? WHERE array=? AND volume=?",
                           (name, target, volume))
            return {"name": name}

    def move_volume(self, volume: str, container: str) -> dict:
        """Move between the array root ("") and pods.

        As on Purity, a volume enters a stretched pod only from a pod stretched over the
        same arrays; leaving a stretched pod keeps the local copy.
        """
        with self._op("move_volume") as (db, _):
            row = self.fabric._live_volume(db, self.name, volume)
            source_pod = _pod_of(volume)
            target_pod = container or None
            new_name = f"{target_pod}::{_bare(volume)}" if target_pod else _bare(volume)
            if source_pod == target_pod:
                return {"name": volume}
            if db.execute("SELECT 1 FROM pgroup_volumes WHERE array=? AND volume=?",
                          (self.name, volume)).fetchone():
                raise PurityError(volume, "Volume belongs to a protection group; "
                                          "remove it first.")
            if db.execute("SELECT 1 FROM host_volumes WHERE array=? AND volume=?",
                          (self.name, volume)).fetchone():
                raise PurityError(volume, "Volume has host connections.")

            def members(pod):
                return sorted(r["array"] for r in db.execute(
                    "SELECT array FROM pod_arrays WHERE pod=?", (pod,))) if pod else [self.name]

            if target_pod and self.fabric._pod_status(db, target_pod, self.name) is None:
                raise PurityError(target_pod, "Pod does not exist.")
            if target_pod and len(members(target_pod)) > 1 and \
                    members(target_pod) != members(source_pod):
                raise PurityError(volume, "Cannot move a volume into a stretched pod from a "
                                          "container that is not stretched to the same arrays.")
            self._check_new_volume(db, new_name)
            source_arrays = members(source_pod)
            for target in members(target_pod):
                if target == self.name or target in source_arrays:
                    self._insert_volume_at(db, target, new_name, row)
            for old in source_arrays:
                db.execute("DELETE FROM volumes WHERE array=? AND name=?", (old, volume))
            return {"name": new_name}

    @staticmethod
    def _insert_volume_at(db, array, name, row):
        db.execute("INSERT OR REPLACE INTO volumes(array, name, size, serial, created, source, "
                   "generation) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (array, name, row["size"], row["serial"], row["created"], row["source"],
                    row["generation"]))

    def destroy_volume(self, volume: str) -> dict:
        with self._op("destroy_volume") as (db, now):
            self.fabric._live_volume(db, self.name, volume)
            if db.execute("SELECT 1 FROM host_volumes WHERE array=? AND volume=?",
                          (self.name, volume)).fetchone():
                raise PurityError(volume, "Volume cannot be destroyed due to existing "
                                          "host connections.")
            for target in [self.name, *self.fabric._mirrors(db, self.name, volume)]:
                db.execute("UPDATE volumes SET destroyed=? WHERE array=? AND name=?",
                           (now, target, volume))
                db.execute("DELETE FROM pgroup_volumes WHERE array=? AND volume=?",
                           (target, volume))
            return {"name": volume}

    def eradicate_volume(self, volume: str) -> dict:
        with self._op("eradicate_volume") as (db, _):
            row = db.execute("SELECT destroyed FROM volumes WHERE array=? AND name=?",
                             (self.name, volume)).fetchone()
            if row is None:
                raise PurityError(volume, "Volume does not exist.")
            if row["destroyed"] is None:
                raise PurityError(volume, "Volume must be destroyed before it is eradicated.")
            for target in [self.name, *self.fabric._mirrors(db, self.name, volume)]:
                db.execute("DELETE FROM volumes WHERE array=? AND name=?", (target, volume))
            return {"name": volume}

    def recover_volume(self, volume: str) -> dict:
        with self._op("recover_volume") as (db, _):
            row = db.execute("SELECT destroyed FROM volumes WHERE array=? AND name=?",
                             (self.name, volume)).fetchone()
            if row is None or row["destroyed"] is None:
                raise PurityError(volume, "Volume does not exist.")
            db.execute("UPDATE volumes SET destroyed=NULL WHERE array=? AND name=?",
                       (self.name, volume))
            return {"name": volume}

    def list_volume_private_connections(self, volume: str, **flags) -> list[dict]:
        with self._op("list_volume_private_connections") as (db, _):
            row = self.fabric._live_volume(db, self.name, volume)
            return [{"host": r["host"], "lun": r["lun"], "name": volume, "size": row["size"]}
                    for r in db.execute("SELECT * FROM host_volumes WHERE array=? AND volume=?",
                                        (self.name, volume))]

    def add_volume(self, volume: str, pgroup: str) -> dict:
        self.set_pgroup(pgroup, addvollist=[volume])
        return {"name": volume, "protection_group": pgroup}

    def remove_volume(self, volume: str, pgroup: str) -> dict:
        self.set_pgroup(pgroup, remvollist=[volume])
        return {"name": volume, "protection_group": pgroup}

    # -- protection groups ---------------------------------------------------------------
    def _pgroup(self, db, name: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM pgroups WHERE array=? AND name=? AND destroyed IS NULL",
                         (self.name, name)).fetchone()
        if row is None:
            raise PurityError(name, "Protection group does not exist.")
        return row

    def _pgsnap(self, db, name: str) -> sqlite3.Row | None:
        return db.execute("SELECT * FROM pgroup_snapshots WHERE array=? AND name=? "
                          "AND destroyed IS NULL", (self.name, name)).fetchone()

    def _pgroup_view(self, db, pg: sqlite3.Row) -> dict:
        if pg["replica"]:
            origin, local = pg["name"].split(":", 1)
            volumes = [f"{origin}:{r['volume']}" for r in db.execute(
                "SELECT volume FROM pgroup_volumes WHERE array=? AND pgroup=? ORDER BY seq",
                (origin, local))]
            target = db.execute("SELECT allowed FROM pgroup_targets WHERE array=? AND "
                                "pgroup=? AND target=?", (origin, local, self.name)).fetchone()
            targets = [{"name": self.name, "allowed": bool(target and target["allowed"])}]
        else:
            volumes = [r["volume"] for r in db.execute(
                "SELECT volume FROM pgroup_volumes WHERE array=? AND pgroup=? ORDER BY seq",
                (self.name, pg["name"]))]
            targets = [{"name": r["target"], "allowed": bool(r["allowed"])} for r in db.execute(
                "SELECT * FROM pgroup_targets WHERE array=? AND pgroup=? ORDER BY target",
                (self.name, pg["name"]))] or None
        return {"name": pg["name"], "source": pg["source"], "volumes": volumes,
                "hosts": [], "hgroups": [], "targets": targets}

    @staticmethod
    def _schedule_view(pg) -> dict:
        return {"name": pg["name"], "snap_enabled": bool(pg["snap_enabled"]),
                "snap_frequency": pg["snap_frequency"], "snap_at": None,
                "replicate_enabled": bool(pg["replicate_enabled"]),
                "replicate_frequency": pg["replicate_frequency"], "replicate_at": None,
                "replicate_blackout": None}

    @staticmethod
    def _retention_view(pg) -> dict:
        return {"name": pg["name"], "all_for": pg["all_for"], "per_day": pg["per_day"],
                "days": pg["days"], "target_all_for": pg["target_all_for"],
                "target_per_day": pg["target_per_day"], "target_days": pg["target_days"]}

    def _snapshot_views(self, db, pg_name: str, transfer: bool, now: float) -> list[dict]:
        rows = db.execute("SELECT * FROM pgroup_snapshots WHERE array=? AND source=? AND "
                          "destroyed IS NULL ORDER BY created, seq",
                          (self.name, pg_name)).fetchall()
        out = []
        for r in rows:
            view = {"name": r["name"], "source": r["source"], "created": iso(r["created"])}
            if transfer:
                progress, started, completed = self._transfer_state(db, r)
                view.update(started=iso(started), completed=iso(completed), progress=progress,
                            data_transferred=0 if progress is None else int(progress * (1 << 20)),
                            physical_bytes_written=0)
            out.append(view)
        return out

    def _transfer_state(self, db, snap: sqlite3.Row):
        if snap["replica"]:
            return snap["progress"], snap["started"], snap["completed"]
        replicas = db.execute("SELECT progress, started, completed FROM pgroup_snapshots WHERE "
                              "origin=? AND name=? AND destroyed IS NULL",
                              (self.name, f"{self.name}:{snap['name']}")).fetchall()
        if not replicas:
            return None, None, None
        progress = min(r["progress"] for r in replicas)
        done = [r["completed"] for r in replicas if r["completed"] is not None]
        completed = max(done) if len(done) == len(replicas) else None
        return progress, min(r["started"] for r in replicas), completed

    def create_pgroup(self, pgroup: str, **flags) -> dict:
        flags = _flags(flags, {"vollist", "targetlist"})
        with self._op("create_pgroup") as (db, now):
            row = db.execute("SELECT destroyed FROM pgroups WHERE array=? AND name=?",
                             (self.name, pgroup)).fetchone()
            if row is not None:
                raise PurityError(pgroup, "Protection group has been destroyed."
                                  if row["destroyed"] is not None
                                  else "Protection group already exists.")
            pod = _pod_of(pgroup)
            if ":" in pgroup.replace("::", "") or len(_bare(pgroup)) > 63:
                raise PurityError(pgroup, "Invalid protection group name.")
            arrays = [self.name]
            if pod:
                if self.fabric._pod_status(db, pod, self.name) is None:
                    raise PurityError(pod, "Pod does not exist.")
                arrays += self.fabric._mirrors(db, self.name, pgroup)
            for target in arrays:
                db.execute("INSERT INTO pgroups(array, name, source, created) VALUES (?, ?, ?, ?)",
                           (target, pgroup, pod or self.name, now))
        if flags.get("vollist") or flags.get("targetlist"):
            self.set_pgroup(pgroup, addvollist=flags.get("vollist") or [],
                            addtargetlist=flags.get("targetlist") or [])
        return self.get_pgroup(pgroup)

    def get_pgroup(self, pgroup: str, **flags) -> Any:
        flags = _flags(flags, {"snap", "transfer", "schedule", "retention", "pending"})
        with self._op("get_pgroup") as (db, now):
            if flags.get("snap"):
                self._pgroup(db, pgroup)
                return self._snapshot_views(db, pgroup, bool(flags.get("transfer")), now)
            snap = self._pgsnap(db, pgroup) if "." in pgroup else None
            if snap is not None:
                return {"name": snap["name"], "source": snap["source"],
                        "created": iso(snap["created"])}
            pg = self._pgroup(db, pgroup)
            if flags.get("schedule"):
                return self._schedule_view(pg)
            if flags.get("retention"):
                return self._retention_view(pg)
            return self._pgroup_view(db, pg)

    def list_pgroups(self, **flags) -> list[dict]:
        flags = _flags(flags, {"snap", "transfer", "schedule", "retention", "pending"})
        with self._op("list_pgroups") as (db, now):
            groups = db.execute("SELECT * FROM pgroups WHERE array=? AND destroyed IS NULL "
                                "ORDER BY name", (self.name,)).fetchall()
            if flags.get("snap"):
                return [v for pg in groups
                        for v in self._snapshot_views(db, pg["name"],
                                                      bool(flags.get("transfer")), now)]
            if flags.get("schedule"):
                return [self._schedule_view(pg) for pg in groups]
            if flags.get("retention"):
                return [self._retention_view(pg) for pg in groups]
            return [self._pgroup_view(db, pg) for pg in groups]

    _SETTABLE = {"addvollist", "remvollist", "addtargetlist", "remtargetlist", "allowed",
                 "replicate_enabled", "replicate_frequency", "snap_enabled", "snap_frequency",
                 "all_for", "per_day", "days", "target_all_for", "target_per_day",
                 "target_days"}

    def set_pgroup(self, pgroup: str, **changes) -> dict:
        changes = _flags(changes, self._SETTABLE)
        with self._op("set_pgroup") as (db, now):
            pg = self._pgroup(db, pgroup)
            if "allowed" in changes:
                self._set_allowed(db, pg, bool(changes.pop("allowed")))
            if pg["replica"] and changes:
                raise PurityError(pgroup, "Cannot modify a replicated protection group.")
            for vol in changes.pop("addvollist", []):
                self._add_member(db, pg, vol)
            for vol in changes.pop("remvollist", []):
                if not db.execute("DELETE FROM pgroup_volumes WHERE array=? AND pgroup=? "
                                  "AND volume=?", (self.name, pgroup, vol)).rowcount:
                    raise PurityError(vol, f"Volume does not belong to protection group "
                                           f"{pgroup}.")
            for target in changes.pop("addtargetlist", []):
                self._add_target(db, pg, target)
            for target in changes.pop("remtargetlist", []):
                db.execute("DELETE FROM pgroup_targets WHERE array=? AND pgroup=? AND target=?",
                           (self.name, pgroup, target))
            for key, value in changes.items():
                if key == "replicate_enabled" and value and not pg["replicate_enabled"]:
                    db.execute("UPDATE pgroups SET last_schedule=? WHERE array=? AND name=?",
                               (now, self.name, pgroup))
                value = int(value) if isinstance(value, bool) else value
                if not isinstance(value, int) or value < 0:
                    raise PurityError(key, "Invalid value.")
                db.execute(f"UPDATE pgroups SET {key}=? WHERE array=? AND name=?",
                           (value, self.name, pgroup))
            pg = self._pgroup(db, pgroup)
            return self._pgroup_view(db, pg)

    def _add_member(self, db, pg, vol: str):
        self.fabric._live_volume(db, self.name, vol)
        if _pod_of(vol) != _pod_of(pg["name"]):
            raise PurityError(vol, "Volume and protection group must be in the same pod.")
        if db.execute("SELECT 1 FROM pgroup_volumes WHERE array=? AND pgroup=? AND volume=?",
                      (self.name, pg["name"], vol)).fetchone():
            raise PurityError(vol, f"Volume already belongs to protection group {pg['name']}.")
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM pgroup_volumes").fetchone()[0]
        for target in [self.name, *self.fabric._mirrors(db, self.name, pg["name"])]:
            db.execute("INSERT INTO pgroup_volumes(array, pgroup, volume, seq) "
                       "VALUES (?, ?, ?, ?)", (target, pg["name"], vol, seq))

    def _add_target(self, db, pg, target: str):
        if _pod_of(pg["name"]):
            raise PurityError(pg["name"], "Replication targets for pgroups in pods are "
                                          "not supported by this simulator.")
        if self.fabric._link(db, self.name, target) is None:
            raise PurityError(target, f"Array {target} is not connected.")
        if db.execute("SELECT 1 FROM pgroup_targets WHERE array=? AND pgroup=? AND target=?",
                      (self.name, pg["name"], target)).fetchone():
            raise PurityError(target, f"Protection group already includes {target}.")
        db.execute("INSERT INTO pgroup_targets(array, pgroup, target) VALUES (?, ?, ?)",
                   (self.name, pg["name"], target))
        db.execute("INSERT OR IGNORE INTO pgroups(array, name, source, replica, created) "
                   "VALUES (?, ?, ?, 1, ?)",
                   (target, f"{self.name}:{pg['name']}", self.name, self.fabric.now(db)))

    def _set_allowed(self, db, pg, allowed: bool):
        if not pg["replica"]:
            raise PurityError(pg["name"], "Only a replicated protection group can be allowed.")
        origin, local = pg["name"].split(":", 1)
        row = db.execute("SELECT allowed FROM pgroup_targets WHERE array=? AND pgroup=? AND "
                         "target=?", (origin, local, self.name)).fetchone()
        if row is None:
            raise PurityError(pg["name"], "Protection group does not exist.")
        if allowed and row["allowed"]:
            raise PurityError(pg["name"], f"Protection group already allowed on {self.name}.")
        db.execute("UPDATE pgroup_targets SET allowed=? WHERE array=? AND pgroup=? AND target=?",
                   (int(allowed), origin, local, self.name))

    def create_pgroup_snapshots(self, sources: list[str], **flags) -> list[dict]:
        flags = _flags(flags, {"snap", "suffix", "replicate_now", "replicate", "apply_retention"})
        with self._op("create_pgroup_snapshots") as (db, now):
            return [self._snapshot_pgroup(
                db, source, str(flags["suffix"]) if flags.get("suffix") else None, now,
                replicate=bool(flags.get("replicate_now") or flags.get("replicate")),
                scheduled=bool(flags.get("apply_retention")))
                for source in sources]

    def create_pgroup_snapshot(self, source: str, **flags) -> dict:
        return self.create_pgroup_snapshots([source], **flags)[0]

    def _snapshot_pgroup(self, db, pgroup: str, suffix: str | None, created: float, *,
                         replicate: bool, scheduled: bool) -> dict:
        pg = self._pgroup(db, pgroup)
        if pg["replica"]:
            raise PurityError(pgroup, "Cannot snapshot a replicated protection group.")
        if suffix is None:
            suffix = str(pg["next_suffix"])
            db.execute("UPDATE pgroups SET next_suffix=next_suffix+1 WHERE array=? AND name=?",
                       (self.name, pgroup))
        elif not re.match(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$", suffix):
            raise PurityError(suffix, "Invalid suffix.")
        name = f"{pgroup}.{suffix}"
        existing = db.execute("SELECT destroyed FROM pgroup_snapshots WHERE array=? AND name=?",
                              (self.name, name)).fetchone()
        if existing is not None:
            raise PurityError(name, "Protection group snapshot has been destroyed."
                              if existing["destroyed"] is not None
                              else "Protection group snapshot already exists.")
        pod = _pod_of(pgroup)
        arrays = [self.name, *(self.fabric._mirrors(db, self.name, pgroup) if pod else [])]
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM pgroup_snapshots").fetchone()[0]
        members = db.execute("SELECT volume FROM pgroup_volumes WHERE array=? AND pgroup=? "
                             "ORDER BY seq", (self.name, pgroup)).fetchall()
        for target in arrays:
            db.execute("INSERT INTO pgroup_snapshots(array, name, source, created, seq, scheduled) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (target, name, pgroup, created, seq, int(scheduled)))
            for member in members:
                vol = self.fabric._live_volume(db, target, member["volume"])
                db.execute("INSERT INTO snapshots(array, name, source, size, serial, created, "
                           "generation, pgsnap) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           (target, f"{name}.{_bare(member['volume'])}", member["volume"],
                            vol["size"], _serial(), created, vol["generation"], name))
        if replicate:
            for target in db.execute("SELECT target FROM pgroup_targets WHERE array=? AND "
                                     "pgroup=? AND allowed=1", (self.name, pgroup)).fetchall():
                db.execute(
                    "INSERT INTO pgroup_snapshots(array, name, source, created, seq, replica, "
                    "origin, scheduled, started, progress, last_tick) "
                    "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, 0, ?)",
                    (target["target"], f"{self.name}:{name}", f"{self.name}:{pgroup}", created,
                     seq, self.name, int(scheduled), created, created))
        return {"name": name, "source": pgroup, "created": iso(created)}

    @staticmethod
    def _destroy_pgroup_snapshot(db, array: str, name: str, now: float):
        db.execute("UPDATE pgroup_snapshots SET destroyed=? WHERE array=? AND name=?",
                   (now, array, name))
        db.execute("UPDATE snapshots SET destroyed=? WHERE array=? AND pgsnap=?",
                   (now, array, name))

    def destroy_pgroup(self, pgroup: str, **flags) -> dict:
        _flags(flags, set())
        with self._op("destroy_pgroup") as (db, now):
            if "." in pgroup:
                if self._pgsnap(db, pgroup) is None:
                    raise PurityError(pgroup, "Protection group snapshot does not exist.")
                for target in [self.name, *self.fabric._mirrors(db, self.name, pgroup)]:
                    self._destroy_pgroup_snapshot(db, target, pgroup, now)
                return {"name": pgroup}
            self._pgroup(db, pgroup)
            for target in [self.name, *self.fabric._mirrors(db, self.name, pgroup)]:
                db.execute("UPDATE pgroups SET destroyed=? WHERE array=? AND name=?",
                           (now, target, pgroup))
                for snap in db.execute("SELECT name FROM pgroup_snapshots WHERE array=? AND "
                                       "source=? AND destroyed IS NULL",
                                       (target, pgroup)).fetchall():
                    self._destroy_pgroup_snapshot(db, target, snap["name"], now)
            return {"name": pgroup}

    def eradicate_pgroup(self, pgroup: str, **flags) -> dict:
        _flags(flags, {"eradicate"})
        with self._op("eradicate_pgroup") as (db, _):
            table = "pgroup_snapshots" if "." in pgroup else "pgroups"
            row = db.execute(f"SELECT destroyed FROM {table} WHERE array=? AND name=?",
                             (self.name, pgroup)).fetchone()
            if row is None:
                raise PurityError(pgroup, "Protection group does not exist.")
            if row["destroyed"] is None:
                raise PurityError(pgroup, "Protection group must be destroyed before it is "
                                          "eradicated.")
            for target in [self.name, *self.fabric._mirrors(db, self.name, pgroup)]:
                if table == "pgroup_snapshots":
                    names = [pgroup]
                else:
                    names = [r["name"] for r in db.execute(
                        "SELECT name FROM pgroup_snapshots WHERE array=? AND source=?",
                        (target, pgroup))]
                    db.execute("DELETE FROM pgroups WHERE array=? AND name=?", (target, pgroup))
                    db.execute("DELETE FROM pgroup_volumes WHERE array=? AND pgroup=?",
                               (target, pgroup))
                    db.execute("DELETE FROM pgroup_targets WHERE array=? AND pgroup=?",
                               (target, pgroup))
                for name in names:
                    db.execute("DELETE FROM pgroup_snapshots WHERE array=? AND name=?",
                               (target, name))
                    db.execute("DELETE FROM snapshots WHERE array=? AND pgsnap=?", (target, name))
            return {"name": pgroup}

    # -- pods ----------------------------------------------------------------------------
    def _pod_view(self, db, pod: sqlite3.Row) -> dict:
        members = db.execute("SELECT * FROM pod_arrays WHERE pod=? ORDER BY seq",
                             (pod["name"],)).fetchall()
        mine = next((m for m in members if m["array"] == self.name), None)
        arrays = []
        for m in members:
            status = m["status"]
            if mine is not None and mine["status"] == "offline" and m["array"] != self.name:
                status = "unknown"      # an offline array cannot tell how its peer is
            array_id = db.execute("SELECT id FROM arrays WHERE name=?",
                                  (m["array"],)).fetchone()["id"]
            arrays.append({"name": m["array"], "array_id": array_id, "status": status,
                           "mediator_status": "online", "frozen_at": iso(m["frozen_at"])})
        return {"name": pod["name"], "source": pod["source"], "arrays": arrays,
                "failover_preference": json.loads(pod["failover_preference"]),
                "promotion_status": "promoted", "requested_promotion_state": "promoted",
                "link_source_count": 0, "link_target_count": 0}

    def _pod(self, db, name: str) -> sqlite3.Row:
        pod = db.execute("SELECT * FROM pods WHERE name=? AND destroyed IS NULL",
                         (name,)).fetchone()
        if pod is None or self.fabric._pod_status(db, name, self.name) is None:
            raise PurityError(name, "Pod does not exist.")
        return pod

    def create_pod(self, pod: str, **flags) -> dict:
        flags = _flags(flags, {"failover_list"})
        with self._op("create_pod") as (db, now):
            row = db.execute("SELECT destroyed FROM pods WHERE name=?", (pod,)).fetchone()
            if row is not None:
                raise PurityError(pod, "Pod has been destroyed." if row["destroyed"] is not None
                                  else "Pod already exists.")
            db.execute("INSERT INTO pods(name, source, created) VALUES (?, ?, ?)",
                       (pod, self.name, now))
            db.execute("INSERT INTO pod_arrays(pod, array, status, seq) VALUES (?, ?, 'online', 1)",
                       (pod, self.name))
            return self._pod_view(db, self._pod(db, pod))

    def get_pod(self, pod: str, **flags) -> dict:
        _flags(flags, {"mediator", "failover_preference", "pending"})
        with self._op("get_pod") as (db, _):
            return self._pod_view(db, self._pod(db, pod))

    def list_pods(self, **flags) -> list[dict]:
        _flags(flags, {"mediator", "failover_preference", "pending"})
        with self._op("list_pods") as (db, _):
            return [self._pod_view(db, p) for p in db.execute(
                "SELECT p.* FROM pods p JOIN pod_arrays a ON a.pod=p.name WHERE a.array=? "
                "AND p.destroyed IS NULL ORDER BY p.name", (self.name,)).fetchall()]

    def set_pod(self, pod: str, **changes) -> dict:
        changes = _flags(changes, {"failover_preference"})
        with self._op("set_pod") as (db, _):
            self._pod(db, pod)
            if "failover_preference" in changes:
                db.execute("UPDATE pods SET failover_preference=? WHERE name=?",
                           (json.dumps(list(changes["failover_preference"])), pod))
            return self._pod_view(db, self._pod(db, pod))

    def add_pod(self, pod: str, array: str) -> dict:
        """Stretch the pod to ``array``: every object in it now lives on both arrays."""
        with self._op("add_pod") as (db, _):
            self._pod(db, pod)
            if self.fabric._pod_status(db, pod, array) is not None:
                raise PurityError(array, f"Pod {pod} already exists on array {array}.")
            if db.execute("SELECT COUNT(*) FROM pod_arrays WHERE pod=?", (pod,)).fetchone()[0] >= 2:
                raise PurityError(pod, "Pod array limit reached.")
            link = self.fabric._link(db, self.name, array)
            if link is None or "sync-replication" not in json.loads(link["types"]) or \
                    not self.fabric._link_ok(db, self.name, array):
                raise PurityError(array, f"Array {array} is not connected for sync replication.")
            if db.execute("SELECT 1 FROM volumes WHERE array=? AND name LIKE ?",
                          (array, f"{pod}::%")).fetchone():
                raise PurityError(pod, "Pod already exists.")
            db.execute("INSERT INTO pod_arrays(pod, array, status, seq) VALUES (?, ?, 'online', 2)",
                       (pod, array))
            self._copy_pod_objects(db, pod, self.name, array)
            return self._pod_view(db, self._pod(db, pod))

    @staticmethod
    def _copy_pod_objects(db, pod: str, source: str, target: str):
        like = f"{pod}::%"
        for table, key in (("volumes", "name"), ("pgroups", "name"), ("snapshots", "name"),
                           ("pgroup_snapshots", "name"), ("pgroup_volumes", "pgroup")):
            columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            select = ", ".join("?" if c == "array" else c for c in columns)
            db.execute(f"INSERT OR REPLACE INTO {table}({', '.join(columns)}) "
                       f"SELECT {select} FROM {table} WHERE array=? AND {key} LIKE ?",
                       (target, source, like))

    def remove_pod(self, pod: str, array: str, **flags) -> dict:
        """Unstretch: the pod and its objects leave ``array``."""
        flags = _flags(flags, {"with_unknown"})
        with self._op("remove_pod") as (db, _):
            self._pod(db, pod)
            if self.fabric._pod_status(db, pod, array) is None:
                raise PurityError(array, f"Pod {pod} is not stretched to array {array}.")
            others = db.execute("SELECT COUNT(*) FROM pod_arrays WHERE pod=?", (pod,)).fetchone()[0]
            if others < 2:
                raise PurityError(pod, "Cannot remove the last array of a pod.")
            reachable = db.execute("SELECT up FROM arrays WHERE name=?", (array,)).fetchone()["up"]
            if (not reachable or not self.fabric._link_ok(db, self.name, array)) and \
                    not flags.get("with_unknown"):
                raise PurityError(array, f"Array {array} is not connected; use with_unknown.")
            like = f"{pod}::%"
            for table in ("volumes", "pgroups", "snapshots", "pgroup_snapshots"):
                db.execute(f"DELETE FROM {table} WHERE array=? AND name LIKE ?", (array, like))
            db.execute("DELETE FROM pgroup_volumes WHERE array=? AND pgroup LIKE ?", (array, like))
            db.execute("DELETE FROM pod_arrays WHERE pod=? AND array=?", (pod, array))
            db.execute("UPDATE pod_arrays SET status='online', frozen_at=NULL WHERE pod=?", (pod,))
            if db.execute("SELECT source FROM pods WHERE name=?", (pod,)).fetchone()[0] == array:
                db.execute("UPDATE pods SET source=? WHERE name=?", (self.name, pod))
            return self._pod_view(db, self._pod(db, pod))

    def destroy_pod(self, pod: str) -> dict:
        with self._op("destroy_pod") as (db, now):
            self._pod(db, pod)
            if db.execute("SELECT COUNT(*) FROM pod_arrays WHERE pod=?", (pod,)).fetchone()[0] > 1:
                raise PurityError(pod, "Pod is stretched; unstretch it first.")
            if db.execute("SELECT 1 FROM volumes WHERE array=? AND name LIKE ? AND destroyed IS "
                          "NULL", (self.name, f"{pod}::%")).fetchone():
                raise PurityError(pod, "Pod contains volumes.")
            db.execute("UPDATE pods SET destroyed=? WHERE name=?", (now, pod))
            return {"name": pod, "time_remaining": ERADICATION_DELAY}

    def eradicate_pod(self, pod: str, **flags) -> dict:
        _flags(flags, {"eradicate"})
        with self._op("eradicate_pod") as (db, _):
            row = db.execute("SELECT destroyed FROM pods WHERE name=?", (pod,)).fetchone()
            if row is None or self.fabric._pod_status(db, pod, self.name) is None:
                raise PurityError(pod, "Pod does not exist.")
            if row["destroyed"] is None:
                raise PurityError(pod, "Pod must be destroyed before it is eradicated.")
            like = f"{pod}::%"
            for table in ("volumes", "pgroups", "snapshots", "pgroup_snapshots"):
                db.execute(f"DELETE FROM {table} WHERE array=? AND name LIKE ?",
                           (self.name, like))
            db.execute("DELETE FROM pods WHERE name=?", (pod,))
            db.execute("DELETE FROM pod_arrays WHERE pod=?", (pod,))
            return {"name": pod}

    # -- hosts ---------------------------------------------------------------------------
    def create_host(self, host: str, **flags) -> dict:
        with self._op("create_host") as (db, _):
            if db.execute("SELECT 1 FROM hosts WHERE array=? AND name=?",
                          (self.name, host)).fetchone():
                raise PurityError(host, "Host already exists.")
            db.execute("INSERT INTO hosts(array, name) VALUES (?, ?)", (self.name, host))
            return {"name": host, "iqn": [], "wwn": [], "nqn": []}

    def delete_host(self, host: str) -> dict:
        with self._op("delete_host") as (db, _):
            if db.execute("SELECT 1 FROM host_volumes WHERE array=? AND host=?",
                          (self.name, host)).fetchone():
                raise PurityError(host, "Host cannot be deleted due to existing connections.")
            if not db.execute("DELETE FROM hosts WHERE array=? AND name=?",
                              (self.name, host)).rowcount:
                raise PurityError(host, "Host does not exist.")
            return {"name": host}

    def connect_host(self, host: str, volume: str, **flags) -> dict:
        with self._op("connect_host") as (db, _):
            if not db.execute("SELECT 1 FROM hosts WHERE array=? AND name=?",
                              (self.name, host)).fetchone():
                raise PurityError(host, "Host does not exist.")
            self.fabric._live_volume(db, self.name, volume)
            if db.execute("SELECT 1 FROM host_volumes WHERE array=? AND host=? AND volume=?",
                          (self.name, host, volume)).fetchone():
                raise PurityError(volume, "Connection already exists.")
            lun = db.execute("SELECT COALESCE(MAX(lun), 0) + 1 FROM host_volumes WHERE array=? "
                             "AND host=?", (self.name, host)).fetchone()[0]
            db.execute("INSERT INTO host_volumes(array, host, volume, lun) VALUES (?, ?, ?, ?)",
                       (self.name, host, volume, lun))
            return {"name": host, "vol": volume, "lun": lun}

    def disconnect_host(self, host: str, volume: str) -> dict:
        with self._op("disconnect_host") as (db, _):
            if not db.execute("DELETE FROM host_volumes WHERE array=? AND host=? AND volume=?",
                              (self.name, host, volume)).rowcount:
                raise PurityError(volume, "Volume is not connected to host.")
            return {"name": host, "vol": volume}

    def list_hosts(self, **flags) -> list[dict]:
        _flags(flags, {"all", "private", "shared"})
        with self._op("list_hosts") as (db, _):
            if flags.get("all"):
                return [{"name": r["host"], "vol": r["volume"], "lun": r["lun"], "hgroup": None}
                        for r in db.execute("SELECT * FROM host_volumes WHERE array=? "
                                            "ORDER BY host, lun", (self.name,))]
            return [{"name": r["name"], "iqn": [], "wwn": [], "nqn": [], "hgroup": None}
                    for r in db.execute("SELECT * FROM hosts WHERE array=? ORDER BY name",
                                        (self.name,))]

    def list_host_connections(self, host: str, **flags) -> list[dict]:
        with self._op("list_host_connections") as (db, _):
            return [{"name": host, "vol": r["volume"], "lun": r["lun"]}
                    for r in db.execute("SELECT * FROM host_volumes WHERE array=? AND host=? "
                                        "ORDER BY lun", (self.name, host))]
