"""The service answers in JSON, always, and reports its health and metrics."""

from __future__ import annotations

import pytest

from site_recovery.webhook import db
from site_recovery.webhook.app import create_app
from site_recovery.webhook.config import parse
from tests.unit.test_webhook_config import minimal


@pytest.fixture
def client(tmp_path):
    config = parse(minimal(tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}"))
    app = create_app(config, keystone=False)
    db.upgrade(app.extensions["engine"])
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
