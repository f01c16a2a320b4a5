"""The fabric's records: its schema, Purity's errors, and the lookups every part of the
simulation shares (the clock, a live volume or pgroup, a replication link, a pod's state
on an array, the arrays a write to a pod's object mirrors to)."""

from __future__ import annotations

import re
import sqlite3
import time
import uuid
from datetime import datetime, timezone
from typing import Any

ERADICATION_DELAY = 24 * 3600
PURITY_VERSION = "6.1.0"

SCHEMA = """
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
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def size_bytes(size: Any) -> int:
    if isinstance(size, int) and size > 0:
        return size
    match = _SIZE.match(str(size).upper())
    if not match or int(match.group(1)) == 0:
        raise PurityError(str(size), "Invalid volume size.")
    return int(match.group(1)) * _UNITS[match.group(2)]


def new_serial() -> str:
    return uuid.uuid4().hex[:24].upper()


def pod_of(name: str) -> str | None:
    return name.split("::", 1)[0] if "::" in name else None


def bare(volume: str) -> str:
    """Member part of a snapshot name: Purity drops the ``pod::`` prefix there."""
    return volume.split("::", 1)[1] if "::" in volume else volume


def check_flags(given: dict, allowed: set[str]) -> dict:
    unknown = set(given) - allowed
    if unknown:
        raise PurityError(", ".join(sorted(unknown)), "Invalid parameter.")
    return given


def setting(db, key: str, default: str) -> str:
    row = db.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
    return row["value"] if row else default


def put_setting(db, key: str, value: Any):
    db.execute("INSERT INTO settings(key, value) VALUES (?, ?) "
               "ON CONFLICT(key) DO UPDATE SET value=excluded.value", (key, str(value)))


def clock(db) -> float:
    """The fabric's time: the wall clock plus the offset tests advance it by."""
    return time.time() + float(setting(db, "clock_offset", "0"))


def check_up(db, array: str):
    row = db.execute("SELECT up FROM arrays WHERE name=?", (array,)).fetchone()
    if row is None or not row["up"]:
        raise ArrayDown(array)


def _live(db, table: str, array: str, name: str, missing: str) -> sqlite3.Row:
    row = db.execute(f"SELECT * FROM {table} WHERE array=? AND name=? AND destroyed IS NULL",
                     (array, name)).fetchone()
    if row is None:
        raise PurityError(name, missing)
    return row


def live_volume(db, array: str, name: str) -> sqlite3.Row:
    return _live(db, "volumes", array, name, "Volume does not exist.")


def link(db, a: str, b: str) -> sqlite3.Row | None:
    a, b = sorted((a, b))
    return db.execute("SELECT * FROM links WHERE a=? AND b=?", (a, b)).fetchone()


def link_ok(db, a: str, b: str) -> bool:
    row = link(db, a, b)
    if row is None or not row["up"]:
        return False
    ups = db.execute("SELECT COUNT(*) FROM arrays WHERE name IN (?, ?) AND up=1",
                     (a, b)).fetchone()[0]
    return ups == 2


def pod_status(db, pod: str, array: str) -> str | None:
    row = db.execute("SELECT status FROM pod_arrays WHERE pod=? AND array=?",
                     (pod, array)).fetchone()
    return row["status"] if row else None


def mirrors(db, array: str, name: str) -> list[str]:
    """Other arrays that receive a write to pod object ``name`` made on ``array``."""
    pod = pod_of(name)
    if not pod or pod_status(db, pod, array) != "online":
        return []
    return [r["array"] for r in db.execute(
        "SELECT array FROM pod_arrays WHERE pod=? AND array<>? AND status='online'",
        (pod, array))]


def live_pgroup(db, array: str, name: str) -> sqlite3.Row:
    return _live(db, "pgroups", array, name, "Protection group does not exist.")
