"""The simulated cloud's state: JSON documents in one SQLite file, with lazy transitions.

Every resource (server, port, volume, ...) is one document of a *kind*, owned by a project.
A document may carry ``_pending``: changes due at a given time (a server that becomes ACTIVE
when its build time has passed, a volume that becomes ``in-use``). They are applied when
the document is read, so no background thread drives the simulation and a restarted
process resumes where it stopped. Keys starting with ``_`` are internal, never shown.

Each thread gets its own connection; writers take ``BEGIN IMMEDIATE`` so one request's
read-modify-write is atomic against the other threads of the server.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from site_recovery.storage.sqlite import ThreadConnections

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, id TEXT NOT NULL,
    project_id TEXT, body TEXT NOT NULL, UNIQUE (kind, id));
CREATE INDEX IF NOT EXISTS docs_kind ON docs (kind, project_id);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

Doc = dict[str, Any]


def new_id() -> str:
    return str(uuid.uuid4())


def iso(ts: float) -> str:
    """OpenStack's timestamp format (UTC, no fraction)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule(doc: Doc, at: float, **changes: Any) -> Doc:
    """Queue ``changes`` to take effect at time ``at`` (kept in time order)."""
    pending = [*doc.get("_pending", []), {"at": at, "set": changes}]
    doc["_pending"] = sorted(pending, key=lambda p: p["at"])
    return doc


def settle(doc: Doc, now: float) -> Doc:
    """Apply the pending changes that are due."""
    pending = doc.get("_pending") or []
    while pending and pending[0]["at"] <= now:
        doc.update(pending.pop(0)["set"])
    doc["_pending"] = pending
    return doc


def public(doc: Doc) -> Doc:
    return {k: v for k, v in doc.items() if not k.startswith("_")}


class Store:
    """Documents by kind and id, plus a clock that tests may advance."""

    def __init__(self, path: str):
        self.path = str(path)
        self._connections = ThreadConnections(self.path)
        self._db().executescript(_SCHEMA)

    def _db(self) -> sqlite3.Connection:
        return self._connections.get()

    def release(self):
        """A request's end: its thread's connection goes to the next request."""
        self._connections.release()

    @contextlib.contextmanager
    def transaction(self):
        """Serialise read-modify-write cycles (re-entrant within one thread)."""
        db = self._db()
        if db.in_transaction:
            yield
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # -- clock ---------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + float(self.setting("clock_offset", "0"))

    def advance(self, seconds: float):
        """Move the simulation clock forward: builds, attaches and the like complete."""
        with self.transaction():
            self.put_setting("clock_offset", float(self.setting("clock_offset", "0")) + seconds)

    def setting(self, key: str, default: str) -> str:
        row = self._db().execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def put_setting(self, key: str, value: Any):
        self._db().execute("INSERT INTO settings(key, value) VALUES (?, ?) ON CONFLICT(key) "
                           "DO UPDATE SET value=excluded.value", (key, str(value)))

    # -- documents -----------------------------------------------------------------------
    def get(self, kind: str, doc_id: str) -> Doc | None:
        row = self._db().execute("SELECT body FROM docs WHERE kind=? AND id=?",
                                 (kind, doc_id)).fetchone()
        return settle(json.loads(row[0]), self.now()) if row else None

    def list(self, kind: str, project_id: str | None = None, **equal: str) -> list[Doc]:
        """All documents of a kind (of one project if given), oldest first; ``equal``
        keeps those whose top-level fields have these values, matched by SQLite before
        any document is decoded (a site holds thousands of ports after a site failover)."""
        sql, args = "SELECT body FROM docs WHERE kind=?", [kind]
        if project_id is not None:
            sql += " AND project_id=?"
            args.append(project_id)
        for field, value in equal.items():
            sql += " AND json_extract(body, ?) = ?"
            args += [f'$."{field}"', value]
        now = self.now()
        return [settle(json.loads(r[0]), now)
                for r in self._db().execute(sql + " ORDER BY seq", args)]

    def count(self, kind: str, project_id: str | None = None) -> int:
        return self.totals(kind, project_id)[0]

    def totals(self, kind: str, project_id: str | None = None,
               *paths: str) -> tuple[int, ...]:
        """How many documents of a kind (of one project if given), and the sum of each
        JSON ``path`` over them (``$.flavor.vcpus``): quota usage without decoding them."""
        sums = "".join(", COALESCE(SUM(json_extract(body, ?)), 0)" for _ in paths)
        sql, args = f"SELECT COUNT(*){sums} FROM docs WHERE kind=?", [*paths, kind]
        if project_id is not None:
            sql += " AND project_id=?"
            args.append(project_id)
        return tuple(self._db().execute(sql, args).fetchone())

    def put(self, kind: str, doc: Doc) -> Doc:
        """Insert or replace a document (it keeps its place in the listing order)."""
        body = json.dumps(doc)
        db = self._db()
        if not db.execute("UPDATE docs SET body=?, project_id=? WHERE kind=? AND id=?",
                          (body, doc.get("project_id"), kind, doc["id"])).rowcount:
            db.execute("INSERT INTO docs(kind, id, project_id, body) VALUES (?, ?, ?, ?)",
                       (kind, doc["id"], doc.get("project_id"), body))
        return doc

    def delete(self, kind: str, doc_id: str) -> bool:
        return bool(self._db().execute("DELETE FROM docs WHERE kind=? AND id=?",
                                       (kind, doc_id)).rowcount)
