"""A simulated array's protection groups: pgroups with members, targets and their
``allowed`` replicas, schedules and retention, snapshots and their transfer state."""

from __future__ import annotations

import sqlite3
from typing import Any

from . import replication
from .records import (
    PurityError,
    bare,
    check_flags,
    clock,
    iso,
    link,
    live_pgroup,
    live_volume,
    mirrors,
    pod_of,
    pod_status,
)


class PgroupOperations:
    """Mixed into :class:`.array.FabricArray`."""

    def _pgroup(self, db, name: str) -> sqlite3.Row:
        return live_pgroup(db, self.name, name)

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
        flags = check_flags(flags, {"vollist", "targetlist"})
        with self._op("create_pgroup") as (db, now):
            row = db.execute("SELECT destroyed FROM pgroups WHERE array=? AND name=?",
                             (self.name, pgroup)).fetchone()
            if row is not None:
                raise PurityError(pgroup, "Protection group has been destroyed."
                                  if row["destroyed"] is not None
                                  else "Protection group already exists.")
            pod = pod_of(pgroup)
            if ":" in pgroup.replace("::", "") or len(bare(pgroup)) > 63:
                raise PurityError(pgroup, "Invalid protection group name.")
            arrays = [self.name]
            if pod:
                if pod_status(db, pod, self.name) is None:
                    raise PurityError(pod, "Pod does not exist.")
                arrays += mirrors(db, self.name, pgroup)
            for target in arrays:
                db.execute("INSERT INTO pgroups(array, name, source, created) VALUES (?, ?, ?, ?)",
                           (target, pgroup, pod or self.name, now))
        if flags.get("vollist") or flags.get("targetlist"):
            self.set_pgroup(pgroup, addvollist=flags.get("vollist") or [],
                            addtargetlist=flags.get("targetlist") or [])
        return self.get_pgroup(pgroup)

    def get_pgroup(self, pgroup: str, **flags) -> Any:
        flags = check_flags(flags, {"snap", "transfer", "schedule", "retention", "pending"})
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
        flags = check_flags(flags, {"snap", "transfer", "schedule", "retention", "pending"})
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
        changes = check_flags(changes, self._SETTABLE)
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
        live_volume(db, self.name, vol)
        if pod_of(vol) != pod_of(pg["name"]):
            raise PurityError(vol, "Volume and protection group must be in the same pod.")
        if db.execute("SELECT 1 FROM pgroup_volumes WHERE array=? AND pgroup=? AND volume=?",
                      (self.name, pg["name"], vol)).fetchone():
            raise PurityError(vol, f"Volume already belongs to protection group {pg['name']}.")
        seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM pgroup_volumes").fetchone()[0]
        for target in [self.name, *mirrors(db, self.name, pg["name"])]:
            db.execute("INSERT INTO pgroup_volumes(array, pgroup, volume, seq) "
                       "VALUES (?, ?, ?, ?)", (target, pg["name"], vol, seq))

    def _add_target(self, db, pg, target: str):
        if pod_of(pg["name"]):
            raise PurityError(pg["name"], "Replication targets for pgroups in pods are "
                                          "not supported by this simulator.")
        if link(db, self.name, target) is None:
            raise PurityError(target, f"Array {target} is not connected.")
        if db.execute("SELECT 1 FROM pgroup_targets WHERE array=? AND pgroup=? AND target=?",
                      (self.name, pg["name"], target)).fetchone():
            raise PurityError(target, f"Protection group already includes {target}.")
        db.execute("INSERT INTO pgroup_targets(array, pgroup, target) VALUES (?, ?, ?)",
                   (self.name, pg["name"], target))
        # A replica the target destroyed (the group was unprotected) is made anew: what it
        # held stays destroyed, waiting out its eradication window.
        db.execute("INSERT INTO pgroups(array, name, source, replica, created) "
                   "VALUES (?, ?, ?, 1, ?) ON CONFLICT(array, name) DO UPDATE SET "
                   "destroyed=NULL, created=excluded.created WHERE destroyed IS NOT NULL",
                   (target, f"{self.name}:{pg['name']}", self.name, clock(db)))

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
        flags = check_flags(flags, {"snap", "suffix", "replicate_now", "replicate",
                                    "apply_retention"})
        with self._op("create_pgroup_snapshots") as (db, now):
            return [replication.snapshot_pgroup(
                db, self.name, source, str(flags["suffix"]) if flags.get("suffix") else None, now,
                replicate=bool(flags.get("replicate_now") or flags.get("replicate")),
                scheduled=bool(flags.get("apply_retention")))
                for source in sources]

    def create_pgroup_snapshot(self, source: str, **flags) -> dict:
        return self.create_pgroup_snapshots([source], **flags)[0]

    def destroy_pgroup(self, pgroup: str, **flags) -> dict:
        check_flags(flags, set())
        with self._op("destroy_pgroup") as (db, now):
            if "." in pgroup:
                if self._pgsnap(db, pgroup) is None:
                    raise PurityError(pgroup, "Protection group snapshot does not exist.")
                for target in [self.name, *mirrors(db, self.name, pgroup)]:
                    replication.destroy_pgroup_snapshot(db, target, pgroup, now)
                return {"name": pgroup}
            self._pgroup(db, pgroup)
            for target in [self.name, *mirrors(db, self.name, pgroup)]:
                db.execute("UPDATE pgroups SET destroyed=? WHERE array=? AND name=?",
                           (now, target, pgroup))
                for snap in db.execute("SELECT name FROM pgroup_snapshots WHERE array=? AND "
                                       "source=? AND destroyed IS NULL",
                                       (target, pgroup)).fetchall():
                    replication.destroy_pgroup_snapshot(db, target, snap["name"], now)
            return {"name": pgroup}

    def eradicate_pgroup(self, pgroup: str, **flags) -> dict:
        check_flags(flags, {"eradicate"})
        with self._op("eradicate_pgroup") as (db, _):
            table = "pgroup_snapshots" if "." in pgroup else "pgroups"
            row = db.execute(f"SELECT destroyed FROM {table} WHERE array=? AND name=?",
                             (self.name, pgroup)).fetchone()
            if row is None:
                raise PurityError(pgroup, "Protection group does not exist.")
            if row["destroyed"] is None:
                raise PurityError(pgroup, "Protection group must be destroyed before it is "
                                          "eradicated.")
            for target in [self.name, *mirrors(db, self.name, pgroup)]:
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

