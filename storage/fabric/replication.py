"""The fabric's replication engine: what happens between calls.

Every call to an array first brings the whole fabric to "now" (:func:`tick`): scheduled
pgroup snapshots are taken and sent, transfers progress over the link while it is up and
land on the target when complete, retention and eradication remove what has expired.
Stretched pods follow links and arrays (:func:`settle_pods`): the preferred side keeps a
pod online when the arrays lose each other, and the frozen side resyncs when they meet.
"""

from __future__ import annotations

import json
import re
import sqlite3

from .records import (
    ERADICATION_DELAY,
    PurityError,
    bare,
    clock,
    iso,
    link_ok,
    live_pgroup,
    live_volume,
    mirrors,
    new_serial,
    pod_of,
    setting,
)


def tick(db, now: float):
    """Advance schedules, transfers, retention and eradication to ``now``."""
    transfer_seconds = float(setting(db, "transfer_seconds", "1.0"))
    for pg in db.execute(
            "SELECT p.* FROM pgroups p JOIN arrays a ON a.name=p.array WHERE a.up=1 "
            "AND p.replica=0 AND p.destroyed IS NULL AND p.replicate_enabled=1").fetchall():
        last = pg["last_schedule"] or pg["created"]
        frequency = pg["replicate_frequency"]
        if now - last >= frequency:
            due = last + ((now - last) // frequency) * frequency
            snapshot_pgroup(db, pg["array"], pg["name"], str(pg["next_suffix"]), due,
                            replicate=True, scheduled=True)
            db.execute("UPDATE pgroups SET last_schedule=?, next_suffix=next_suffix+1 "
                       "WHERE array=? AND name=?", (due, pg["array"], pg["name"]))
    for snap in db.execute(
            "SELECT * FROM pgroup_snapshots WHERE replica=1 AND progress<1 "
            "AND destroyed IS NULL").fetchall():
        if not link_ok(db, snap["origin"], snap["array"]):
            db.execute("UPDATE pgroup_snapshots SET last_tick=? WHERE array=? AND name=?",
                       (now, snap["array"], snap["name"]))
            continue
        progress = snap["progress"] + (now - snap["last_tick"]) / transfer_seconds
        completed = None
        if progress >= 1.0:
            completed = now - (progress - 1.0) * transfer_seconds
            progress = 1.0
            land_transfer(db, snap, completed)
        db.execute("UPDATE pgroup_snapshots SET progress=?, completed=?, last_tick=? "
                   "WHERE array=? AND name=?",
                   (progress, completed, now, snap["array"], snap["name"]))
    apply_retention(db, now)
    cutoff = now - ERADICATION_DELAY
    for table in ("volumes", "snapshots", "pgroups", "pgroup_snapshots", "pods"):
        db.execute(f"DELETE FROM {table} WHERE destroyed IS NOT NULL AND destroyed < ?",
                   (cutoff,))


def land_transfer(db, snap: sqlite3.Row, completed: float):
    """The transfer finished: the replica's volume snapshots now exist on the target."""
    origin, local_name = snap["origin"], snap["name"].split(":", 1)[1]
    for member in db.execute("SELECT * FROM snapshots WHERE array=? AND pgsnap=?",
                             (origin, local_name)).fetchall():
        db.execute(
            "INSERT OR REPLACE INTO snapshots(array, name, source, size, serial, created, "
            "generation, pgsnap) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (snap["array"], f"{origin}:{member['name']}", f"{origin}:{member['source']}",
             member["size"], new_serial(), completed, member["generation"], snap["name"]))


def apply_retention(db, now: float):
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
                destroy_pgroup_snapshot(db, pg["array"], row["name"], now)


def settle_pods(db):
    """Re-evaluate every stretched pod after a link or array state change.

    A mediator is assumed reachable: when the arrays of a pod lose each other, the
    preferred array (failover preference, else the pod's source) keeps the pod online
    and the other freezes; a powered-off array always loses. When they see each other
    again, the frozen side resyncs from the online side.
    """
    now = clock(db)
    for pod in db.execute("SELECT * FROM pods WHERE destroyed IS NULL").fetchall():
        members = db.execute("SELECT * FROM pod_arrays WHERE pod=? ORDER BY seq",
                             (pod["name"],)).fetchall()
        if len(members) < 2:
            continue
        names = [m["array"] for m in members]
        up = {n for n in names if db.execute(
            "SELECT up FROM arrays WHERE name=?", (n,)).fetchone()["up"]}
        linked = len(names) == 2 and link_ok(db, *names)
        if linked:
            online = [m for m in members if m["status"] == "online"]
            for m in members:
                if m["status"] != "online" and online:
                    resync_pod(db, pod["name"], online[0]["array"], m["array"])
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


def resync_pod(db, pod: str, source: str, target: str):
    for vol in db.execute("SELECT * FROM volumes WHERE array=? AND name LIKE ? "
                          "AND destroyed IS NULL", (source, f"{pod}::%")).fetchall():
        db.execute("UPDATE volumes SET generation=? WHERE array=? AND name=?",
                   (vol["generation"], target, vol["name"]))


def snapshot_pgroup(db, array: str, pgroup: str, suffix: str | None, created: float, *,
                     replicate: bool, scheduled: bool) -> dict:
    pg = live_pgroup(db, array, pgroup)
    if pg["replica"]:
        raise PurityError(pgroup, "Cannot snapshot a replicated protection group.")
    if suffix is None:
        suffix = str(pg["next_suffix"])
        db.execute("UPDATE pgroups SET next_suffix=next_suffix+1 WHERE array=? AND name=?",
                   (array, pgroup))
    elif not re.match(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$", suffix):
        raise PurityError(suffix, "Invalid suffix.")
    name = f"{pgroup}.{suffix}"
    existing = db.execute("SELECT destroyed FROM pgroup_snapshots WHERE array=? AND name=?",
                          (array, name)).fetchone()
    if existing is not None:
        raise PurityError(name, "Protection group snapshot has been destroyed."
                          if existing["destroyed"] is not None
                          else "Protection group snapshot already exists.")
    pod = pod_of(pgroup)
    arrays = [array, *(mirrors(db, array, pgroup) if pod else [])]
    seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM pgroup_snapshots").fetchone()[0]
    members = db.execute("SELECT volume FROM pgroup_volumes WHERE array=? AND pgroup=? "
                         "ORDER BY seq", (array, pgroup)).fetchall()
    for target in arrays:
        db.execute("INSERT INTO pgroup_snapshots(array, name, source, created, seq, scheduled) "
                   "VALUES (?, ?, ?, ?, ?, ?)",
                   (target, name, pgroup, created, seq, int(scheduled)))
        for member in members:
            vol = live_volume(db, target, member["volume"])
            db.execute("INSERT INTO snapshots(array, name, source, size, serial, created, "
                       "generation, pgsnap) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (target, f"{name}.{bare(member['volume'])}", member["volume"],
                        vol["size"], new_serial(), created, vol["generation"], name))
    if replicate:
        for target in db.execute("SELECT target FROM pgroup_targets WHERE array=? AND "
                                 "pgroup=? AND allowed=1", (array, pgroup)).fetchall():
            # OR REPLACE: a snapshot of a replica destroyed earlier (an unprotected group,
            # protected again) may hold the name, numbered anew, until it is eradicated.
            db.execute(
                "INSERT OR REPLACE INTO pgroup_snapshots(array, name, source, created, seq, "
                "replica, origin, scheduled, started, progress, last_tick) "
                "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, 0, ?)",
                (target["target"], f"{array}:{name}", f"{array}:{pgroup}", created,
                 seq, array, int(scheduled), created, created))
    return {"name": name, "source": pgroup, "created": iso(created)}


def destroy_pgroup_snapshot(db, array: str, name: str, now: float):
    db.execute("UPDATE pgroup_snapshots SET destroyed=? WHERE array=? AND name=?",
               (now, array, name))
    db.execute("UPDATE snapshots SET destroyed=? WHERE array=? AND pgsnap=?",
               (now, array, name))

