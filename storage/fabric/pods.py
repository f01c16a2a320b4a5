"""A simulated array's pods: ActiveCluster pods stretched over two arrays, mirroring
their objects, with a failover preference and the destroyed-then-eradicated lifecycle."""

from __future__ import annotations

import json
import sqlite3

from .records import (
    ERADICATION_DELAY,
    PurityError,
    check_flags,
    iso,
    link,
    link_ok,
    pod_status,
)


class PodOperations:
    """Mixed into :class:`.array.FabricArray`."""

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
        if pod is None or pod_status(db, name, self.name) is None:
            raise PurityError(name, "Pod does not exist.")
        return pod

    def create_pod(self, pod: str, **flags) -> dict:
        flags = check_flags(flags, {"failover_list"})
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
        check_flags(flags, {"mediator", "failover_preference", "pending"})
        with self._op("get_pod") as (db, _):
            return self._pod_view(db, self._pod(db, pod))

    def list_pods(self, **flags) -> list[dict]:
        check_flags(flags, {"mediator", "failover_preference", "pending"})
        with self._op("list_pods") as (db, _):
            return [self._pod_view(db, p) for p in db.execute(
                "SELECT p.* FROM pods p JOIN pod_arrays a ON a.pod=p.name WHERE a.array=? "
                "AND p.destroyed IS NULL ORDER BY p.name", (self.name,)).fetchall()]

    def set_pod(self, pod: str, **changes) -> dict:
        changes = check_flags(changes, {"failover_preference"})
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
            if pod_status(db, pod, array) is not None:
                raise PurityError(array, f"Pod {pod} already exists on array {array}.")
            if db.execute("SELECT COUNT(*) FROM pod_arrays WHERE pod=?", (pod,)).fetchone()[0] >= 2:
                raise PurityError(pod, "Pod array limit reached.")
            joined = link(db, self.name, array)
            if joined is None or "sync-replication" not in json.loads(joined["types"]) or \
                    not link_ok(db, self.name, array):
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
        flags = check_flags(flags, {"with_unknown"})
        with self._op("remove_pod") as (db, _):
            self._pod(db, pod)
            if pod_status(db, pod, array) is None:
                raise PurityError(array, f"Pod {pod} is not stretched to array {array}.")
            others = db.execute("SELECT COUNT(*) FROM pod_arrays WHERE pod=?", (pod,)).fetchone()[0]
            if others < 2:
                raise PurityError(pod, "Cannot remove the last array of a pod.")
            reachable = db.execute("SELECT up FROM arrays WHERE name=?", (array,)).fetchone()["up"]
            if (not reachable or not link_ok(db, self.name, array)) and \
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
        check_flags(flags, {"eradicate"})
        with self._op("eradicate_pod") as (db, _):
            row = db.execute("SELECT destroyed FROM pods WHERE name=?", (pod,)).fetchone()
            if row is None or pod_status(db, pod, self.name) is None:
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

