"""What Prometheus scrapes: every worker's requests, summed across worker processes, and
the DR figures people alert on, as they change with drills and the peer's reachability;
and the example alert rules that use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from site_recovery.webhook import db, metrics
from site_recovery.webhook.models import OperationResult, Site
from site_recovery.webhook.services import services
from tests.unit.test_core_config import minimal
from tests.unit.webhook_sites import ALICE, SERVICE, report

ROOT = Path(__file__).resolve().parents[2]
SHARED = "PROMETHEUS_MULTIPROC_DIR"
HEALTHZ = {"endpoint": "/healthz", "method": "GET", "status": "200"}
WEB = {"name": "web", "replication_type": "async", "primary_site": "site-a",
       "secondary_site": "site-b", "volume_type": "replicated-ssd",
       "rpo_target_seconds": 300}
SITES = {"primary_site": "site-a", "secondary_site": "site-b"}
DAY = 86400


def figure(scraped: str, name: str, **labels) -> float | None:
    """The one sample ``name`` whose labels include ``labels``; None when there is none."""
    found = [sample.value for family in text_string_to_metric_families(scraped)
             for sample in family.samples
             if sample.name == name and labels.items() <= sample.labels.items()]
    assert len(found) <= 1, f"{name} {labels}: {len(found)} samples"
    return found[0] if found else None


# -- several worker processes ----------------------------------------------------------------

def worker(config: Path, *args: str, shared: Path | None = None) -> subprocess.Popen:
    """A worker process (``metrics_worker``); ``shared``: its PROMETHEUS_MULTIPROC_DIR from
    the start."""
    env = {key: value for key, value in os.environ.items() if key != SHARED}
    if shared is not None:
        env[SHARED] = str(shared)
    return subprocess.Popen([sys.executable, "-m", "tests.unit.metrics_worker", str(config),
                             *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def answer(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.splitlines()[-1])


def site_config(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    path = tmp_path / "protector.yaml"
    path.write_text(yaml.safe_dump(minimal(tmp_path, database_url=url, peer={
        "name": "site-b", "url": "http://127.0.0.1:9"})))
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    return path


def test_a_scrape_counts_the_requests_of_every_worker_and_only_grows(tmp_path):
    config, shared = site_config(tmp_path), tmp_path / "prometheus"
    shared.mkdir()
    # Two workers side by side: one with the variable from the start, one that imported
    # prometheus_client before it was set (a launcher that sets it in its main()).
    first = worker(config, "--requests", "3", shared=shared)
    second = worker(config, "--requests", "5", "--late", str(shared))
    first_pid, _ = answer(first)["pid"], answer(second)
    scraped = answer(worker(config, "--scrape", shared=shared))["scraped"]
    assert figure(scraped, "protector_http_requests_total", **HEALTHZ) == 8
    assert figure(scraped, "protector_http_request_seconds_count", endpoint="/healthz") == 8
    # A worker that ended is marked dead; what it counted still counts, and the next
    # scrape (from yet another worker, after more requests) is never lower.
    later = answer(worker(config, "--requests", "2", "--dead", str(first_pid), "--scrape",
                          shared=shared))["scraped"]
    assert figure(later, "protector_http_requests_total", **HEALTHZ) == 10
    assert figure(later, "protector_http_request_seconds_count", endpoint="/healthz") == 10
    assert figure(later, "protector_database_up") == 1


def test_without_the_shared_directory_a_worker_exit_needs_no_bookkeeping(monkeypatch):
    monkeypatch.delenv(SHARED, raising=False)
    metrics.worker_exited(os.getpid())          # nothing to clean, nothing raised


# -- DR figures ------------------------------------------------------------------------------

def scrape(client) -> str:
    reply = client.get("/metrics")
    assert reply.status_code == 200
    return reply.get_data(as_text=True)


def protected_web(clients) -> str:
    """Group web (RPO target 5 minutes) replicating from site-a to site-b; its id."""
    return protected_group(clients, WEB)


def protected_group(clients, fields: dict) -> str:
    """A group of alice's project with ``fields``, replicating (as its protect records it);
    its id."""
    created = clients["site-a"].post("/v1/protection-groups", json=fields, headers=ALICE)
    assert created.status_code == 201, created.json
    group_id = created.json["protection_group"]["id"]
    assert clients["site-a"].put(f"/v1/internal/protection-groups/{group_id}/state",
                                 json={"status": "protected"},
                                 headers=SERVICE).status_code == 200
    return group_id


def drill(dr, group_id: str, *, status: str, **reported) -> str:
    """A drill of web on its DR site, whose workflow reports the group's end."""
    started = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE)
    assert started.status_code == 202, started.json
    op_id = started.json["operation"]["id"]
    assert figure(scrape(dr), "protector_operations_unfinished", kind="test_failover",
                  status="pending") == 1
    assert report(dr, op_id, status="running").status_code == 200
    assert figure(scrape(dr), "protector_operations_unfinished", kind="test_failover",
                  status="running") == 1
    assert report(dr, op_id, protection_group_id=group_id, status=status,
                  **reported).status_code == 200
    return op_id


def test_the_drill_figures_follow_each_drill_on_the_groups_dr_site(sites):
    clients, _ = sites
    dr = clients["site-b"]
    group_id = protected_web(clients)
    of_web = {"group_id": group_id, **SITES}
    before = scrape(dr)
    assert "ecommerce" not in before and 'web"' not in before, \
        "public figures name no tenant's group or project"
    assert figure(before, "protector_group_status", status="protected", **of_web) == 1
    assert figure(before, "protector_group_status", status="unprotected", **of_web) == 0
    assert figure(before, "protector_group_rpo_target_seconds", **of_web) == 300
    # Never drilled: no result yet, and the drill is due counting from the group's creation.
    assert figure(before, "protector_group_last_drill_success", **of_web) is None
    assert 0 <= figure(before, "protector_group_last_drill_age_seconds", **of_web) < 60
    # Drills run on the DR site: the primary shows none.
    assert figure(scrape(clients["site-a"]), "protector_group_last_drill_age_seconds",
                  **of_web) is None

    point_created = datetime.now(UTC) - timedelta(minutes=10)
    drill(dr, group_id, status="completed", recovery_point="pg-web.1234",
          rpo_achieved_seconds=600.0, timings={"copy_volumes": 3.5, "create_stack": 7.25},
          details={"point_created": point_created.isoformat()})
    done = scrape(dr)
    assert figure(done, "protector_operations_unfinished", kind="test_failover",
                  status="running") == 0
    assert figure(done, "protector_group_last_drill_success", **of_web) == 1
    assert 0 <= figure(done, "protector_group_last_drill_age_seconds", **of_web) < 60
    # The drill found replication 10 minutes behind: twice the group's target.
    assert figure(done, "protector_group_rpo_achieved_seconds", **of_web) == 600
    assert 600 <= figure(done, "protector_group_recovery_point_age_seconds", **of_web) < 660
    assert 0 <= figure(done, "protector_last_completed_operation_seconds",
                       kind="test_failover") < 60
    assert figure(done, "protector_last_completed_operation_phase_seconds",
                  kind="test_failover", phase="create_stack") == 7.25
    assert figure(done, "protector_last_completed_operation_phase_seconds",
                  kind="test_failover", phase="copy_volumes") == 3.5

    # Forty days on, the drill is overdue for a monthly policy.
    with db.transaction(services(dr.application).sessions) as session:
        session.execute(update(OperationResult).values(
            finished_at=datetime.now(UTC) - timedelta(days=40)))
    aged = figure(scrape(dr), "protector_group_last_drill_age_seconds", **of_web)
    assert 40 * DAY <= aged < 40 * DAY + 60

    # The next drill fails: that is what the figures say now.
    drill(dr, group_id, status="failed", step="create_stack", reason="Heat said no")
    failed = scrape(dr)
    assert figure(failed, "protector_group_last_drill_success", **of_web) == 0
    assert 0 <= figure(failed, "protector_group_last_drill_age_seconds", **of_web) < 60
    # A failed drill is no completed one: the last completed figures stay the first's.
    assert figure(failed, "protector_last_completed_operation_phase_seconds",
                  kind="test_failover", phase="create_stack") == 7.25


def peer_seen(client, *, reachable: bool, seen_ago: timedelta):
    """The peer as this site's probes judged it (what ``prober.probe_once`` writes)."""
    with db.transaction(services(client.application).sessions) as session:
        peer = session.get(Site, "site-a")
        peer.reachable, peer.last_seen_at = reachable, datetime.now(UTC) - seen_ago


def test_the_peer_figures_follow_what_the_probes_recorded(sites):
    clients, _ = sites
    dr = clients["site-b"]
    assert figure(scrape(dr), "protector_peer_reachable", peer="site-a") is None  # unprobed
    peer_seen(dr, reachable=True, seen_ago=timedelta(seconds=5))
    up = scrape(dr)
    assert figure(up, "protector_peer_reachable", peer="site-a") == 1
    assert 5 <= figure(up, "protector_peer_last_seen_age_seconds", peer="site-a") < 60
    peer_seen(dr, reachable=False, seen_ago=timedelta(minutes=7))
    down = scrape(dr)
    assert figure(down, "protector_peer_reachable", peer="site-a") == 0
    assert 420 <= figure(down, "protector_peer_last_seen_age_seconds", peer="site-a") < 480


def test_a_database_that_does_not_answer_leaves_the_request_counts_served(sites):
    clients, _ = sites
    dr = clients["site-b"]
    with services(dr.application).engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE sites")
    scraped = scrape(dr)
    assert figure(scraped, "protector_database_up") == 0
    assert figure(scraped, "protector_peer_reachable", peer="site-a") is None
    assert figure(scraped, "protector_http_requests_total", endpoint="/metrics",
                  method="GET", status="200") >= 1


# -- the example alert rules -----------------------------------------------------------------

RULES = ROOT / "docs" / "alerts" / "site-recovery.rules.yml"


def test_the_example_alert_rules_parse_and_use_only_figures_the_service_serves(sites):
    clients, _ = sites
    protected_web(clients)
    served = {family.name for family in text_string_to_metric_families(
        scrape(clients["site-b"]))}            # with those that have no sample yet
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"]
             for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {
        "SiteRecoveryPeerUnreachable", "SiteRecoveryRPOTargetMissed",
        "SiteRecoveryReplicationBehindTarget", "SiteRecoveryGroupNotReady",
        "SiteRecoveryDrillFailed", "SiteRecoveryDrillOverdue",
        "SiteRecoveryCopiesDiverged"}
    for rule in rules:
        assert {"expr", "labels", "annotations"} <= rule.keys(), rule["alert"]
        named = {word for word in _words(rule["expr"]) if word.startswith("protector_")}
        assert named and named <= served, (rule["alert"], named - served)


def _words(expr: str) -> list[str]:
    return "".join(c if c.isalnum() or c == "_" else " " for c in expr).split()
