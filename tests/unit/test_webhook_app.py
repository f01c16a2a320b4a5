"""The service answers in JSON, always, and reports its health and metrics."""

from __future__ import annotations

import pytest

from site_recovery.core.config import parse
from site_recovery.webhook import commands, db, prober
from site_recovery.webhook.app import create_app
from site_recovery.webhook.services import services
from tests.unit.test_core_config import minimal


@pytest.fixture
def client(tmp_path):
    config = parse(minimal(tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}",
                           peer={"name": "site-b", "url": "http://127.0.0.1:9",
                                 "probe_timeout": 1}))
    app = create_app(config, keystone=False)
    db.upgrade(services(app).engine)
    return app.test_client()


def test_health_says_ok_and_names_the_site(client):
    reply = client.get("/healthz")
    assert reply.status_code == 200 and reply.json == {"status": "ok", "site": "site-a"}


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", "/v1/nothing-here", 404), ("post", "/healthz", 405)])
def test_errors_are_json_with_code_message_and_details(client, method, path, status):
    reply = getattr(client, method)(path)
    assert reply.status_code == status
    assert reply.is_json and set(reply.json["error"]) == {"code", "message", "details"}
    assert reply.json["error"]["code"] == status and reply.json["error"]["message"]


def test_metrics_count_the_requests_served(client):
    client.get("/healthz")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'protector_http_requests_total{endpoint="/healthz",method="GET",status="200"}' in text


READER = {"X-Identity-Status": "Confirmed", "X-Project-Id": "p1", "X-Project-Name": "ecommerce",
          "X-User-Id": "u1", "X-User-Name": "rita", "X-Roles": "reader"}


def test_sites_need_a_token_and_show_both_sites_to_a_reader(client):
    app = client.application
    prober.ensure_sites(services(app).sessions, services(app).config)
    anonymous = client.get("/v1/sites")
    assert anonymous.status_code == 401 and "Keystone uri=" in anonymous.headers[
        "WWW-Authenticate"]
    reply = client.get("/v1/sites", headers=READER)
    assert reply.status_code == 200
    assert [(s["name"], s["state"]) for s in reply.json["sites"]] == [
        ("site-a", "local"), ("site-b", "unknown")]
    assert client.get("/v1/sites/site-z", headers=READER).status_code == 404


def test_a_failed_probe_is_recorded_once_per_interval(client):
    app = client.application
    sessions, config = services(app).sessions, services(app).config
    prober.ensure_sites(sessions, config)
    first = prober.probe_once(sessions, config)          # nothing listens on the peer's port
    assert first.failures == 1 and "ConnectionError" in first.last_error
    assert prober.probe_once(sessions, config) is None   # another worker just probed
    shown = client.get("/v1/sites/site-b", headers=READER).json["site"]
    assert shown["consecutive_failures"] == 1 and shown["state"] == "unknown"


def test_the_service_refuses_a_bad_configuration_with_status_2(tmp_path, capsys):
    bad = tmp_path / "protector.yaml"
    bad.write_text("site: site-a\n")
    assert commands.main(["--config", str(bad), "api"]) == 2
    assert "peer: Field required" in capsys.readouterr().err
