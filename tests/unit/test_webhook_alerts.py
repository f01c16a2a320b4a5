"""What an Alertmanager alert may start, and what it may not."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from site_recovery.webhook import db
from site_recovery.webhook.alerts import AlertmanagerPayload, authentic, decide
from site_recovery.webhook.config import AlertRule
from site_recovery.webhook.models import Site
from tests.unit.webhook_sites import ADMIN, make_site

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SITE_DOWN = AlertRule(name="site-a down", match={"alertname": "SiteDown", "site": "site-a"},
                      operation="site_failover", mode="execute", min_firing_seconds=120)
DRILL = AlertRule(name="weekly drill", match={"alertname": "DrillDue"},
                  operation="test_failover", mode="dry_run")


def payload(status="firing", age=300, labels=None, fingerprint="f00d"):
    return AlertmanagerPayload.model_validate({
        "version": "4", "status": status, "receiver": "site-recovery",
        "groupLabels": {}, "commonLabels": {}, "externalURL": "http://am:9093",
        "alerts": [{"status": status, "fingerprint": fingerprint,
                    "labels": labels or {"alertname": "SiteDown", "site": "site-a"},
                    "annotations": {"summary": "site-a is down"},
                    "startsAt": (NOW - timedelta(seconds=age)).isoformat(),
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom"}]})


def verdict(alert, *, seen=False, peer_down=True, rules=(SITE_DOWN, DRILL)):
    return decide(alert, list(rules), NOW, already_decided=lambda a: seen,
                  peer_unreachable=lambda: peer_down)


def test_a_long_firing_site_down_alert_starts_the_site_failover():
    decision = verdict(payload().alerts[0])
    assert (decision.action, decision.final) == ("execute", True)
    assert decision.reason == "rule 'site-a down' starts site_failover"


@pytest.mark.parametrize(("kwargs", "action", "reason"), [
    ({"alert": {"status": "resolved"}}, "ignored", "resolved alerts start nothing"),
    ({"alert": {"labels": {"alertname": "DiskFull"}}}, "ignored", "no rule matches"),
    ({"seen": True}, "duplicate", "already decided"),
    ({"alert": {"age": 30}}, "waiting", "firing for 30 s; rule 'site-a down' acts after 120 s"),
    ({"peer_down": False}, "refused", "this site still reaches its peer"),
])
def test_guardrails_decide_nothing_and_say_why(kwargs, action, reason):
    alert = payload(**kwargs.pop("alert", {})).alerts[0]
    decision = verdict(alert, **kwargs)
    assert decision.action == action and reason in decision.reason


def test_a_waiting_alert_is_decided_again_when_redelivered_later():
    assert not verdict(payload(age=30).alerts[0]).final


def test_a_dry_run_rule_only_says_what_it_would_start():
    decision = verdict(payload(labels={"alertname": "DrillDue"}).alerts[0], peer_down=False)
    assert (decision.action, decision.reason) == (
        "dry_run", "rule 'weekly drill' would start test_failover")


def test_only_version_4_payloads_are_accepted():
    with pytest.raises(ValidationError):
        AlertmanagerPayload.model_validate({"version": "3", "status": "firing", "alerts": []})


def test_a_shared_secret_or_an_hmac_signature_authenticates():
    body = b'{"version": "4"}'
    signature = "sha256=" + hmac.new(b"sign-key", body, hashlib.sha256).hexdigest()
    secrets = {"shared_secret": "s3cret", "hmac_secret": "sign-key"}
    assert authentic(body, "Bearer s3cret", None, **secrets)
    assert authentic(body, None, signature, **secrets)
    assert not authentic(body, "Bearer wrong", None, **secrets)
    assert not authentic(body + b" ", None, signature, **secrets)
    assert not authentic(body, None, None, **secrets)


# -- the receiver, in the service ------------------------------------------------------------

def alerting_site(tmp_path, **settings):
    """site-b's service with two rules; its peer site-a is unreachable."""
    secret = tmp_path / "alert.secret"
    secret.write_text("alert-secret\n")
    app = make_site(tmp_path, "site-b", "site-a", monitoring={
        "shared_secret_file": str(secret),
        "rules": [{"name": "site-a down", "match": {"alertname": "SiteDown"},
                   "operation": "site_failover", "mode": "execute"},
                  {"name": "drill due", "match": {"alertname": "DrillDue"},
                   "operation": "test_failover", "mode": "dry_run",
                   "selector": {"name": "$group"}}]}, **settings)
    with db.transaction(app.extensions["sessions"]) as session:
        session.get(Site, "site-a").reachable = False
    return app.test_client()


@pytest.fixture
def dr_site(tmp_path):
    return alerting_site(tmp_path)


def delivery(labels, status="firing", fingerprint="f00d"):
    return {"version": "4", "status": status, "receiver": "site-recovery",
            "alerts": [{"status": status, "fingerprint": fingerprint, "labels": labels,
                        "startsAt": "2026-11-25T10:00:00Z"}]}


BEARER = {"Authorization": "Bearer alert-secret"}


def test_a_wrong_or_missing_secret_is_refused_and_decides_nothing(dr_site):
    for headers in ({}, {"Authorization": "Bearer guess"}):
        reply = dr_site.post("/v1/alerts/alertmanager", json=delivery(
            {"alertname": "SiteDown"}), headers=headers)
        assert reply.status_code == 401 and "shared secret" in reply.json["error"]["message"]
    assert dr_site.application.extensions["launcher"].started == []


def test_a_firing_alert_is_decided_once_and_a_redelivery_is_a_duplicate(dr_site):
    first = dr_site.post("/v1/alerts/alertmanager", json=delivery({"alertname": "SiteDown"}),
                         headers=BEARER)
    (decision,) = first.json["decisions"]
    # No group has site-a as primary yet: the rule executes on nothing.
    assert decision["action"] == "execute" and "no protection group" in decision["reason"]
    again = dr_site.post("/v1/alerts/alertmanager", json=delivery({"alertname": "SiteDown"}),
                         headers=BEARER)
    assert again.json["decisions"][0]["action"] == "duplicate"
    entries = dr_site.get("/v1/audit-log?all_projects=true", headers=ADMIN).json["entries"]
    assert [e["action"] for e in entries] == ["alert.duplicate", "alert.execute"]


def test_resolved_and_unmatched_alerts_start_nothing(dr_site):
    resolved = dr_site.post("/v1/alerts/alertmanager", json=delivery(
        {"alertname": "SiteDown"}, status="resolved"), headers=BEARER)
    unmatched = dr_site.post("/v1/alerts/alertmanager", json=delivery(
        {"alertname": "DiskFull"}, fingerprint="beef"), headers=BEARER)
    assert [r.json["decisions"][0]["action"] for r in (resolved, unmatched)] == [
        "ignored", "ignored"]
    assert dr_site.application.extensions["launcher"].started == []


def test_a_malformed_payload_is_a_400_naming_the_field(dr_site):
    reply = dr_site.post("/v1/alerts/alertmanager", json={"version": "3", "status": "firing",
                                                         "alerts": []}, headers=BEARER)
    assert reply.status_code == 400 and "version" in reply.json["error"]["message"]
