"""protector-engine and protector-api as two services: the engine's duties and where its
engines agree who leads, the request id an operation keeps, the WSGI module, and the
database that the services refuse until ``db upgrade`` brought it to this release."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from site_recovery.core.config import parse
from site_recovery.webhook import commands, db
from site_recovery.webhook.engine import Engine, Leadership, coordination_url
from site_recovery.webhook.models import Operation, Site
from site_recovery.webhook.services import services
from tests.unit.test_core_config import minimal
from tests.unit.test_webhook_operations import launcher, setup_groups
from tests.unit.webhook_sites import ALICE, planned_execution

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("database", "backend", "expected"), [
    ("sqlite:////var/lib/sr/protector.db", None, "file:///var/lib/sr/coordination"),
    ("postgresql+psycopg2://protector:s3cret@db.example.com/protector", None,
     "postgresql://protector:s3cret@db.example.com/protector"),
    ("mysql+pymysql://protector@db.example.com/protector", None,
     "mysql://protector@db.example.com/protector"),
    ("sqlite:////var/lib/sr/protector.db", "redis://redis.example.com:6379",
     "redis://redis.example.com:6379")])
def test_engines_agree_through_the_configured_backend_else_the_database(
        tmp_path, database, backend, expected):
    config = parse(minimal(tmp_path, database_url=database,
                           **({"coordination": {"backend_url": backend}} if backend else {})))
    assert coordination_url(config) == expected


def test_one_engine_of_a_site_leads_and_another_takes_over_when_it_stops(tmp_path):
    """Two engines of one site on the file backend (SQLite's, one host): the lock is
    per process, so each engine is a process of its own."""
    url = f"file://{tmp_path / 'coordination'}"
    probe = ("import sys, time\n"
             "from site_recovery.webhook.engine import Leadership\n"
             "lead = Leadership(sys.argv[1], 'site-a', sys.argv[2])\n"
             "lead.start()\n"
             "print(lead.leading(), flush=True)\n"
             "sys.stdin.readline()\n"
             "print(lead.leading(), flush=True)\n"
             "lead.stop()\n")
    engines = []
    try:
        for name, leads in (("engine-1", "True"), ("engine-2", "False")):
            engines.append(subprocess.Popen([sys.executable, "-c", probe, url, name],
                                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                            text=True, cwd=ROOT))
            assert engines[-1].stdout.readline().strip() == leads, name
        engines[0].kill()                       # the leader dies without a word
        engines[0].wait(10)
        engines[1].stdin.write("\n")
        engines[1].stdin.flush()
        assert engines[1].stdout.readline().strip() == "True"
    finally:
        for engine in engines:
            engine.kill()
            engine.wait(10)


def test_a_leader_keeps_the_lead_round_after_round(tmp_path):
    lead = Leadership(f"file://{tmp_path / 'coordination'}", "site-a", "engine-1")
    lead.start()
    try:
        assert [lead.leading() for _ in range(3)] == [True, True, True]
    finally:
        lead.stop()


def test_an_operation_keeps_its_request_id_in_mistral_and_in_the_engine_log(sites, caplog):
    dr = setup_groups(sites)
    reply = dr.post("/v1/protection-groups/web/test-failover", json={}, headers=ALICE)
    assert reply.status_code == 202
    request_id = reply.headers["x-openstack-request-id"]
    assert request_id.startswith("req-")
    op_id = reply.json["operation"]["id"]
    planned = planned_execution(dr, op_id)
    for _ in range(100):
        if planned in launcher(dr).descriptions:
            break
        time.sleep(0.05)
    assert launcher(dr).descriptions[planned] == (
        f"site-recovery test_failover {op_id} (request {request_id})")

    site = services(dr.application)
    engine = Engine(site, leadership=None)
    engine._ended_since = datetime.now(UTC) - timedelta(minutes=1)
    with db.transaction(site.sessions) as session:
        op = session.get(Operation, op_id)
        op.status, op.failed_count = "failed", 1
        op.error = "its workflow ended ERROR in Mistral: boom"
        op.finished_at = datetime.now(UTC)
    with caplog.at_level(logging.INFO, logger="site_recovery.webhook.engine"):
        engine.log_ended()
    (record,) = [r for r in caplog.records if op_id in r.getMessage()]
    assert record.context.request_id == request_id
    assert "ended failed: 0 completed, 1 failed (its workflow ended ERROR" in \
        record.getMessage()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="site_recovery.webhook.engine"):
        engine.log_ended()                      # told once
    assert not [r for r in caplog.records if op_id in r.getMessage()]


def test_an_engine_round_probes_the_peer_and_catches_up_once_it_answers(sites):
    clients, _ = sites
    site = services(clients["site-b"].application)
    engine = Engine(site, leadership=None)
    engine.run_round()
    with site.sessions() as session:
        peer = session.get(Site, "site-a")
        assert peer.last_probe_at is not None and peer.consecutive_failures == 1


def config_file(tmp_path: Path, database: str) -> Path:
    path = tmp_path / "protector.yaml"
    config = parse(minimal(tmp_path, database_url=database))
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    return path


def test_the_services_refuse_a_database_until_db_upgrade_and_then_serve(tmp_path, capsys):
    database = f"sqlite:///{tmp_path / 'protector.db'}"
    path = config_file(tmp_path, database)
    env = {**os.environ, "SITE_RECOVERY_CONFIG": str(path), "PYTHONWARNINGS": "ignore"}
    serve = ("from site_recovery.webhook.wsgi import application\n"
             "from werkzeug.test import Client\n"
             "client = Client(application)\n"
             "versions = client.get('/')\n"
             "print(versions.status_code, versions.json['versions'][0]['id'])\n"
             "health = client.get('/healthcheck')\n"
             "print(health.status_code, health.headers['x-openstack-request-id'][:4])\n")
    refused = subprocess.run([sys.executable, "-c", serve], env=env, capture_output=True,
                             text=True, timeout=120, cwd=ROOT)
    assert refused.returncode != 0
    assert "schema revision none, this release needs" in refused.stderr
    assert "run 'site-recovery-protector db upgrade' first" in refused.stderr
    assert commands.main(["--config", str(path), "engine"]) == 2
    assert "db upgrade" in capsys.readouterr().err

    assert commands.main(["--config", str(path), "db", "upgrade"]) == 0
    assert commands.main(["--config", str(path), "db", "upgrade"]) == 0     # a no-op
    head = db.head()
    assert f"site-a: database at revision {head} (this release: {head})" in \
        capsys.readouterr().out
    served = subprocess.run([sys.executable, "-c", serve], env=env, capture_output=True,
                            text=True, timeout=120, cwd=ROOT)
    assert served.stdout.split("\n")[:2] == ["200 v1.0", "200 req-"], served.stderr[-2000:]


def test_a_drain_file_takes_the_host_out_of_the_load_balancer(tmp_path):
    from site_recovery.webhook.app import create_app

    drain = tmp_path / "healthcheck_disable"
    config = parse(minimal(tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}",
                           healthcheck_disable_file=str(drain)))
    client = create_app(config, keystone=False).test_client()
    assert client.get("/healthcheck").status_code == 200
    drain.touch()
    assert client.get("/healthcheck").status_code == 503


def test_while_the_coordination_backend_is_away_every_engine_acts():
    """A site whose Redis went with the disaster still probes and reconciles: each duty
    is safe to run twice, so every engine acts until the backend answers again."""
    engines = [Leadership("redis://127.0.0.1:9?socket_connect_timeout=1", "site-a",
                          f"engine-{n}") for n in (1, 2)]
    for engine in engines:
        engine.start(wait=0.5)             # the engine goes on while a thread tries
    try:
        assert [engine.leading() for engine in engines] == [True, True]
    finally:
        for engine in engines:
            engine.stop()
