"""The fabric as a whole: its database (one file that several processes share, one writer
at a time), its clock, its arrays and links, the data hosts write, and the faults a test
or the lab injects (an array down, a link cut, latency, an error on the Nth call)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid

from ..sqlite import ThreadConnections
from . import replication
from .array import FabricArray
from .records import (
    SCHEMA,
    ArrayTimeout,
    PurityError,
    check_up,
    clock,
    live_volume,
    mirrors,
    pod_of,
    pod_status,
    put_setting,
    setting,
)


class Fabric:
    """The shared database of a set of simulated arrays, plus the lab's admin controls."""

    def __init__(self, path: str, *, transfer_seconds: float | None = None):
        self.path = str(path)
        self._connections = ThreadConnections(self.path, row_factory=sqlite3.Row)
        db = self._db()
        db.executescript(SCHEMA)
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
    def now(self, db=None) -> float:
        db = db or self._db()
        return time.time() + float(setting(db, "clock_offset", "0"))

    def advance(self, seconds: float):
        """Move the fabric's clock forward (replication, retention, eradication follow)."""
        with self.transaction() as db:
            offset = float(setting(db, "clock_offset", "0")) + seconds
            put_setting(db, "clock_offset", offset)

    def set_transfer_seconds(self, seconds: float):
        """How long one replication transfer takes while the link is up."""
        with self.transaction() as db:
            put_setting(db, "transfer_seconds", max(float(seconds), 0.001))

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
            check_up(db, array)
            row = live_volume(db, array, volume)
            pod = pod_of(volume)
            if pod and pod_status(db, pod, array) != "online":
                raise PurityError(volume, "Pod is offline; I/O is suspended.")
            generation = row["generation"] + 1
            for target in [array, *mirrors(db, array, volume)]:
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
        """Every object on one array, for leak checks: destroyed volumes apart (they wait
        out the eradication window, the last safety net)."""
        db = self._db()

        def names(sql):
            return sorted(r[0] for r in db.execute(sql, (array,)))

        return {
            "volumes": names("SELECT name FROM volumes WHERE array=? AND destroyed IS NULL"),
            "destroyed_volumes": names(
                "SELECT name FROM volumes WHERE array=? AND destroyed IS NOT NULL"),
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
            replication.settle_pods(db)

    def set_link(self, a: str, b: str, up: bool):
        """Cut or restore the replication link between two arrays."""
        a, b = sorted((a, b))
        with self.transaction() as db:
            replication.tick(db, clock(db))
            db.execute("UPDATE links SET up=? WHERE a=? AND b=?", (int(up), a, b))
            replication.settle_pods(db)

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
            replication.settle_pods(db)

    def is_up(self, array: str) -> bool:
        row = self._db().execute("SELECT up FROM arrays WHERE name=?", (array,)).fetchone()
        return bool(row and row["up"])

    def enter(self, array: str, operation: str, timeout: float | None = None):
        """Apply the faults standing for one call (before its transaction starts)."""
        db = self._db()
        check_up(db, array)
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

