"""SQLite connections for the simulated models: one per thread, kept when the thread ends.

The lab's HTTP servers run a thread per client connection, and most clients open a new
connection per request (Heat makes new clients for each resource), so opening SQLite and
setting its pragmas for every request was a tenth of a simulator's CPU. A thread borrows
a connection on its first query and hands it back with :meth:`ThreadConnections.release`
at the request's end; a thread that never does lets it close with the thread.
"""

from __future__ import annotations

import queue
import sqlite3
import threading


class ThreadConnections:
    def __init__(self, path: str, *, row_factory=None):
        self.path, self._row_factory = str(path), row_factory
        self._local = threading.local()
        self._idle: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()

    def get(self) -> sqlite3.Connection:
        """This thread's connection: its own, an idle one, or a new one."""
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = self._idle.get_nowait()
            except queue.Empty:
                db = self._open()
            self._local.db = db
        return db

    def release(self):
        """Hand this thread's connection to the next thread that needs one; a transaction
        left open (a request that failed inside one) is rolled back first."""
        db = getattr(self._local, "db", None)
        if db is None:
            return
        self._local.db = None
        if db.in_transaction:
            db.execute("ROLLBACK")
        self._idle.put(db)

    def close(self):
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            self._local.db = None
            db.close()

    def _open(self) -> sqlite3.Connection:
        # Autocommit (isolation_level=None): transactions are the callers' BEGIN IMMEDIATE.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                             check_same_thread=False)
        if self._row_factory is not None:
            db.row_factory = self._row_factory
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=30000")
        return db
