"""One simulated array: the REST 1.x operations under the ``purestorage`` SDK's names,
returning the array's JSON objects and failing with Purity's own messages. Volumes and
hosts are here; protection groups (:mod:`.pgroups`) and pods (:mod:`.pods`) beside."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from typing import Any

from . import replication
from .pgroups import PgroupOperations
from .pods import PodOperations
from .records import (
    ERADICATION_DELAY,
    PURITY_VERSION,
    PurityError,
    bare,
    check_flags,
    check_up,
    clock,
    iso,
    link_ok,
    live_volume,
    mirrors,
    new_serial,
    pod_of,
    pod_status,
    size_bytes,
)


class FabricArray(PgroupOperations, PodOperations):
    """One simulated array: REST 1.x operations under the ``purestorage`` SDK's names, in
    ``fabric`` (the :class:`~.controls.Fabric` whose database and faults it uses)."""

    def __init__(self, fabric, name: str, timeout: float | None):
        self.fabric = fabric
        self.name = name
        self.timeout = timeout

    @contextlib.contextmanager
    def _op(self, operation: str):
        self.fabric.enter(self.name, operation, self.timeout)
        with self.fabric.transaction() as db:
            check_up(db, self.name)
            now = clock(db)
            replication.tick(db, now)
            yield db, now

    def _row_id(self, db) -> sqlite3.Row:
        return db.execute("SELECT * FROM arrays WHERE name=?", (self.name,)).fetchone()

    # -- array ---------------------------------------------------------------------------
    def get(self, **flags) -> dict:
        check_flags(flags, set())
        with self._op("get") as (db, _):
            row = self._row_id(db)
            return {"array_name": self.name, "id": row["id"], "version": PURITY_VERSION,
                    "revision": "201911220159+b9d8405"}

    def list_array_connections(self, **flags) -> list[dict]:
        check_flags(flags, set())
        with self._op("list_array_connections") as (db, _):
            out = []
            for link in db.execute("SELECT * FROM links WHERE a=? OR b=? ORDER BY a, b",
                                   (self.name, self.name)).fetchall():
                peer = link["b"] if link["a"] == self.name else link["a"]
                peer_row = db.execute("SELECT * FROM arrays WHERE name=?", (peer,)).fetchone()
                status = "connected" if link_ok(db, self.name, peer) else "connecting"
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
        flags = check_flags(flags, {"snap", "pending", "pending_only", "names", "pgrouplist"})
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
        flags = check_flags(flags, {"snap", "pgroup", "pending"})
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
        pod = pod_of(name)
        if pod and pod_status(db, pod, self.name) is None:
            raise PurityError(pod, "Pod does not exist.")
        if len(bare(name)) > 63:
            raise PurityError(name, "Volume name is too long.")

    def _insert_volume(self, db, name, size, created, source, generation, serial=None):
        serial = serial or new_serial()
        for target in [self.name, *mirrors(db, self.name, name)]:
            db.execute("INSERT OR REPLACE INTO volumes(array, name, size, serial, created, "
                       "source, generation) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (target, name, size, serial, created, source, generation))
        return db.execute("SELECT * FROM volumes WHERE array=? AND name=?",
                          (self.name, name)).fetchone()

    def create_volume(self, volume: str, size: Any, **flags) -> dict:
        check_flags(flags, set())
        with self._op("create_volume") as (db, now):
            self._check_new_volume(db, volume)
            row = self._insert_volume(db, volume, size_bytes(size), now, None, 0)
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
        flags = check_flags(flags, {"overwrite"})
        with self._op("copy_volume") as (db, now):
            src, origin = self._content_source(db, source)
            existing = db.execute("SELECT * FROM volumes WHERE array=? AND name=?",
                                  (self.name, dest)).fetchone()
            if existing is not None and existing["destroyed"] is None and flags.get("overwrite"):
                for target in [self.name, *mirrors(db, self.name, dest)]:
                    db.execute("UPDATE volumes SET generation=?, size=?, source=? "
                               "WHERE array=? AND name=?",
                               (src["generation"], src["size"], origin, target, dest))
                row = live_volume(db, self.name, dest)
            else:
                self._check_new_volume(db, dest)
                row = self._insert_volume(db, dest, src["size"], now, origin, src["generation"])
            return self._volume_view(row)

    def create_snapshots(self, volumes: list[str], **flags) -> list[dict]:
        flags = check_flags(flags, {"suffix"})
        with self._op("create_snapshots") as (db, now):
            out = []
            for vol in volumes:
                row = live_volume(db, self.name, vol)
                name = f"{vol}.{flags.get('suffix') or int(now * 1000)}"
                if db.execute("SELECT 1 FROM snapshots WHERE array=? AND name=?",
                              (self.name, name)).fetchone():
                    raise PurityError(name, "Snapshot already exists.")
                db.execute("INSERT INTO snapshots(array, name, source, size, serial, created, "
                           "generation) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (self.name, name, vol, row["size"], new_serial(), now,
                            row["generation"]))
                out.append({"name": name, "source": vol, "size": row["size"],
                            "serial": new_serial(), "created": iso(now)})
            return out

    def rename_volume(self, volume: str, name: str) -> dict:
        with self._op("rename_volume") as (db, _):
            live_volume(db, self.name, volume)
            if pod_of(volume) != pod_of(name):
                raise PurityError(name, "Rename cannot change the volume's container.")
            self._check_new_volume(db, name)
            for target in [self.name, *mirrors(db, self.name, volume)]:
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
            row = live_volume(db, self.name, volume)
            source_pod = pod_of(volume)
            target_pod = container or None
            new_name = f"{target_pod}::{bare(volume)}" if target_pod else bare(volume)
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

            if target_pod and pod_status(db, target_pod, self.name) is None:
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
            live_volume(db, self.name, volume)
            if db.execute("SELECT 1 FROM host_volumes WHERE array=? AND volume=?",
                          (self.name, volume)).fetchone():
                raise PurityError(volume, "Volume cannot be destroyed due to existing "
                                          "host connections.")
            for target in [self.name, *mirrors(db, self.name, volume)]:
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
            for target in [self.name, *mirrors(db, self.name, volume)]:
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
            row = live_volume(db, self.name, volume)
            return [{"host": r["host"], "lun": r["lun"], "name": volume, "size": row["size"]}
                    for r in db.execute("SELECT * FROM host_volumes WHERE array=? AND volume=?",
                                        (self.name, volume))]

    def add_volume(self, volume: str, pgroup: str) -> dict:
        self.set_pgroup(pgroup, addvollist=[volume])
        return {"name": volume, "protection_group": pgroup}

    def remove_volume(self, volume: str, pgroup: str) -> dict:
        self.set_pgroup(pgroup, remvollist=[volume])
        return {"name": volume, "protection_group": pgroup}

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
            live_volume(db, self.name, volume)
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
        check_flags(flags, {"all", "private", "shared"})
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
