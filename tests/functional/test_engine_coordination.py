"""A site's protector-engines agree which one leads on each coordination backend the
service supports: Redis (the lab's and CI's), and the service's own database, PostgreSQL
and MariaDB, when no backend is configured. Opportunistic as in oslo.db: skipped, with
the reason, where the server does not answer. And the lab's databases are created once
however many ask at once."""

from __future__ import annotations

import socket
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from site_recovery.core.config import parse
from site_recovery.webhook.engine import Leadership, coordination_url
from tests.conftest import redis_answers
from tests.functional.test_webhook_db import _server_database
from tests.unit.test_core_config import minimal


@pytest.fixture(params=["redis", "postgresql", "mysql"])
def backend(request, tmp_path) -> str:
    if request.param == "redis":
        if not redis_answers():
            pytest.skip("redis does not answer on 127.0.0.1:6379")
        yield f"redis://127.0.0.1:6379?namespace=sr-test-{uuid.uuid4().hex[:8]}&lock_timeout=2"
        return
    url, drop = _server_database(request.param)      # the service's database: its locks
    yield coordination_url(parse(minimal(tmp_path, database_url=url)))
    drop()


def test_one_engine_leads_until_it_stops_then_another_does(backend):
    engines = [Leadership(backend, "site-a", f"engine-{n}") for n in (1, 2)]
    for engine in engines:
        engine.start()
    try:
        assert [e.leading() for e in engines] == [True, False]
        assert [e.leading() for e in engines] == [True, False], "the lead is kept"
        engines[0].stop()
        assert engines[1].leading()
    finally:
        for engine in engines:
            engine.stop()


def test_the_engines_of_two_sites_sharing_one_backend_each_lead_their_own(backend):
    engines = [Leadership(backend, site, f"{site}-engine") for site in ("site-a", "site-b")]
    for engine in engines:
        engine.start()
    try:
        assert [e.leading() for e in engines] == [True, True]
    finally:
        for engine in engines:
            engine.stop()


def test_a_lab_database_asked_for_by_many_at_once_is_created_once():
    from site_recovery.lab.services import postgres

    try:
        socket.create_connection(("127.0.0.1", postgres.POSTGRES_PORT), timeout=1).close()
    except OSError as exc:
        pytest.skip(f"postgresql does not answer on 127.0.0.1: {exc}")
    name = f"sr_lab_race_{uuid.uuid4().hex[:8]}"
    try:
        with ThreadPoolExecutor(6) as pool:
            said = list(pool.map(lambda _: postgres.pg_database(
                Path(sys.prefix), "ensure", name), range(6)))
        assert len(said) == 6                  # each ensure succeeded
    finally:
        postgres.pg_database(Path(sys.prefix), "drop", name)
