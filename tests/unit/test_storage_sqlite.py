"""The simulators' SQLite connections outlive the request threads that borrow them."""

from __future__ import annotations

import threading

from site_recovery.storage.sqlite import ThreadConnections


def in_thread(work):
    out = []
    thread = threading.Thread(target=lambda: out.append(work()))
    thread.start()
    thread.join()
    return out[0]


def test_a_released_connection_serves_the_next_thread_and_an_unreleased_one_does_not(tmp_path):
    connections = ThreadConnections(tmp_path / "s.db")

    def request():
        db = connections.get()
        assert connections.get() is db             # one per thread while it runs
        connections.release()
        return db

    first = in_thread(request)
    assert in_thread(request) is first
    kept = in_thread(connections.get)             # never released: stays with its thread
    assert kept is first
    assert in_thread(connections.get) is not first


def test_release_rolls_back_what_a_failed_request_left_open(tmp_path):
    connections = ThreadConnections(tmp_path / "s.db")
    connections.get().execute("CREATE TABLE t (v INTEGER)")

    def failed_request():
        db = connections.get()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (1)")
        connections.release()                     # no COMMIT: the request raised

    in_thread(failed_request)
    db = in_thread(connections.get)
    assert not db.in_transaction
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (0,)
    # and the write lock is free for others
    in_thread(lambda: connections.get().execute("INSERT INTO t VALUES (2)"))
