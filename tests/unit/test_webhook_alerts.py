"""What an Alertmanager alert may start, and what it may not."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from site_recovery.core.config import AlertRule
from site_recovery.core.model import GroupDocument
from site_recovery.webhook import db
from site_recovery.webhook.alerts import AlertmanagerPayload, decide, refusal
from site_recovery.webhook.models import Site
from site_recovery.webhook.registry import store_group
from site_recovery.webhook.services import services
from site_recovery.workbooks import workflow_name
from tests.unit.webhook_sites import ADMIN, ALICE, make_site

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


def signed(body: bytes, at: datetime, key: bytes = b"sign-key") -> tuple[str, str]:
    """A signing proxy's headers: the signature and its timestamp."""
    stamp = str(int(at.timestamp()))
    return ("sha256=" + hmac.new(key, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest(),
            stamp)


def check(body, authorization=None, signature=None, timestamp=None, now=NOW):
    return refusal(body, authorization, signature, timestamp, now, shared_secret="s3cret",
                   hmac_secret="sign-key", max_age=300)


def test_a_shared_secret_or_a_fresh_hmac_signature_authenticates():
    body = b'{"version": "4"}'
    assert check(body, "Bearer s3cret") is None
    assert check(body, None, *signed(body, NOW - timedelta(seconds=10))) is None
    assert "send the shared secret" in check(body, "Bearer wrong")
    assert "send the shared secret" in check(body + b" ", None, *signed(body, NOW))
    assert "send the shared secret" in check(body, None, *signed(body, NOW, b"other-key"))
    assert "send the shared secret" in check(body)


def test_a_replayed_signed_delivery_is_refused_as_stale():
    """The same bytes and signature, sent again ten minutes later (or with the timestamp
    changed, which breaks the signature)."""
    body = b'{"version": "4"}'
    signature, stamp = signed(body, NOW)
    assert check(body, None, signature, stamp) is None
    later = NOW + timedelta(minutes=10)
    assert "signed 600 s ago" in check(body, None, signature, stamp, now=later)
    assert "send the shared secret" in check(body, None, signature,
                                             str(int(later.timestamp())), now=later)
    assert "X-Signature-Timestamp" in check(body, None, signature, None)
    ahead = signed(body, NOW + timedelta(hours=1))
    assert "from the future" in check(body, None, *ahead)


def test_an_alert_that_began_too_long_ago_starts_nothing_for_good():
    stale = verdict(payload(age=7200).alerts[0])
    assert (stale.action, stale.final) == ("stale", True)
    assert "began 7200 s ago" in stale.reason
    future = verdict(payload(age=-3600).alerts[0])
    assert future.action == "stale"


# -- the receiver, in the service ------------------------------------------------------------

def _secret(tmp_path):
    secret = tmp_path / "alert.secret"
    secret.write_text("alert-secret\n")
    return secret


def alerting_site(tmp_path, **settings):
    """site-b's service with two rules; its peer site-a is unreachable."""
    app = make_site(tmp_path, "site-b", "site-a", monitoring={
        "shared_secret_file": str(_secret(tmp_path)),
        "rules": [{"name": "site-a down", "match": {"alertname": "SiteDown"},
                   "operation": "site_failover", "mode": "execute"},
                  {"name": "drill due", "match": {"alertname": "DrillDue"},
                   "operation": "test_failover", "mode": "dry_run",
                   "selector": {"name": "$group"}}]}, **settings)
    with db.transaction(services(app).sessions) as session:
        session.get(Site, "site-a").reachable = False
    return app.test_client()


@pytest.fixture
def dr_site(tmp_path):
    return alerting_site(tmp_path)


def with_groups(client, *names, domain: str = "Default"):
    """Groups of project ecommerce (of ``domain``) whose primary is site-a, as site-a's
    pushes left them."""
    with db.transaction(services(client.application).sessions) as session:
        for name in names:
            store_group(session, GroupDocument.model_validate({
                "id": f"id-{name}", "version": 1, "name": name, "description": "",
                "project_name": "ecommerce", "project_domain": domain,
                "replication_type": "async",
                "primary_site": "site-a", "secondary_site": "site-b", "volume_type": "ssd",
                "rpo_target_seconds": None, "status": "protected", "members": [],
                "created_at": NOW.isoformat(), "updated_at": NOW.isoformat()}))


# When the receiver's alerts began: minutes ago (one older than an hour is stale).
STARTED = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()


def delivery(labels, status="firing", fingerprint="f00d", starts_at=STARTED):
    return {"version": "4", "status": status, "receiver": "site-recovery",
            "alerts": [{"status": status, "fingerprint": fingerprint, "labels": labels,
                        "startsAt": starts_at}]}


BEARER = {"Authorization": "Bearer alert-secret"}


def test_a_wrong_or_missing_secret_is_refused_and_decides_nothing(dr_site):
    for headers in ({}, {"Authorization": "Bearer guess"}):
        reply = dr_site.post("/v1/alerts/alertmanager", json=delivery(
            {"alertname": "SiteDown"}), headers=headers)
        assert reply.status_code == 401 and "shared secret" in reply.json["error"]["message"]
    assert services(dr_site.application).launcher.started == []


def test_a_firing_alert_is_decided_once_and_a_redelivery_is_a_duplicate(dr_site):
    first = dr_site.post("/v1/alerts/alertmanager", json=delivery({"alertname": "SiteDown"}),
                         headers=BEARER)
    (decision,) = first.json["decisions"]
    # No group has site-a as its primary: the rule has nothing to act on.
    assert decision["action"] == "ignored" and "matches no protection group" in decision[
        "reason"]
    with_groups(dr_site, "web", "db")
    renewed = delivery({"alertname": "SiteDown"}, fingerprint="cafe")
    started = dr_site.post("/v1/alerts/alertmanager", json=renewed, headers=BEARER)
    (decision,) = started.json["decisions"]
    assert decision["action"] == "execute" and len(decision["operation_ids"]) == 1
    ((workflow, given),) = services(dr_site.application).launcher.started
    assert workflow == workflow_name("site_failover")
    assert len(given["protection_group_ids"]) == 2
    again = dr_site.post("/v1/alerts/alertmanager", json=renewed, headers=BEARER)
    assert again.json["decisions"][0]["action"] == "duplicate"
    assert len(services(dr_site.application).launcher.started) == 1
    entries = dr_site.get("/v1/audit-log?all_projects=true", headers=ADMIN).json["entries"]
    assert [e["action"] for e in entries if e["action"].startswith("alert.")] == [
        "alert.duplicate", "alert.execute", "alert.ignored"]


def test_a_start_that_mistral_refused_is_made_when_the_alert_comes_again(dr_site):
    with_groups(dr_site, "web")
    launcher = services(dr_site.application).launcher
    launcher.down = True
    refused = dr_site.post("/v1/alerts/alertmanager", json=delivery(
        {"alertname": "SiteDown"}), headers=BEARER)
    assert refused.status_code == 503              # Alertmanager will deliver it again
    launcher.down = False
    again = dr_site.post("/v1/alerts/alertmanager", json=delivery(
        {"alertname": "SiteDown"}), headers=BEARER)
    assert again.status_code == 200 and again.json["decisions"][0]["action"] == "execute"
    assert len(launcher.started) == 1


def test_each_group_is_decided_on_its_own_and_a_busy_one_is_taken_up_again(tmp_path):
    """An alert covering five groups, one of them failing over already: the other four
    start, the busy one is named (no error), and the alert's next delivery, once that
    failover has ended, starts it and nothing else."""
    app = make_site(tmp_path, "site-b", "site-a", monitoring={
        "shared_secret_file": str(_secret(tmp_path)),
        "rules": [{"name": "apps down", "match": {"alertname": "AppsDown"},
                   "operation": "failover", "mode": "execute"}]})
    with db.transaction(services(app).sessions) as session:
        session.get(Site, "site-a").reachable = False
    client = app.test_client()
    names = ["g1", "g2", "g3", "g4", "g5"]
    with_groups(client, *names)
    launcher = services(app).launcher
    busy = client.post("/v1/protection-groups/g3/failover", headers=ALICE, json={
        "failover_type": "unplanned", "force": True}).json["operation"]
    alert = delivery({"alertname": "AppsDown"})
    first = client.post("/v1/alerts/alertmanager", json=alert, headers=BEARER)
    assert first.status_code == 200
    (decision,) = first.json["decisions"]
    assert decision["action"] == "execute" and decision["busy"] == ["g3"]
    assert len(decision["operation_ids"]) == 4 and "g3: operation" in decision["reason"]
    assert len(launcher.started) == 5                   # g3's own failover, and four
    assert client.post(f"/v1/operations/{busy['id']}/cancel", headers=ALICE).status_code \
        == 200
    again = client.post("/v1/alerts/alertmanager", json=alert, headers=BEARER)
    (decision,) = again.json["decisions"]
    assert again.status_code == 200 and decision["busy"] == []
    assert len(decision["operation_ids"]) == 5, "the four it started, and g3's now"
    started = [given["protection_group_ids"] for _, given in launcher.started]
    assert sorted(g for ids in started[1:] for g in ids) == [f"id-{n}" for n in names]
    last = client.post("/v1/alerts/alertmanager", json=alert, headers=BEARER)
    assert last.json["decisions"][0]["action"] == "duplicate"


def test_an_alert_naming_a_project_covers_that_domains_project_only(tmp_path):
    """Two tenants named ecommerce, in the Default and the partners domains: a rule that
    selects by the alert's project label covers the Default domain's, unless it also
    selects the domain."""
    app = make_site(tmp_path, "site-b", "site-a", monitoring={
        "shared_secret_file": str(_secret(tmp_path)),
        "rules": [{"name": "project down", "match": {"alertname": "ProjectDown"},
                   "operation": "failover", "mode": "dry_run",
                   "selector": {"project_name": "$project"}},
                  {"name": "partner down", "match": {"alertname": "PartnerDown"},
                   "operation": "failover", "mode": "dry_run",
                   "selector": {"project_name": "$project", "project_domain": "$domain"}}]})
    client = app.test_client()
    with_groups(client, "ours")
    with_groups(client, "theirs", domain="partners")
    (ours,) = client.post("/v1/alerts/alertmanager", headers=BEARER, json=delivery(
        {"alertname": "ProjectDown", "project": "ecommerce"})).json["decisions"]
    assert ours["reason"].endswith("of ours"), ours
    (theirs,) = client.post("/v1/alerts/alertmanager", headers=BEARER, json=delivery(
        {"alertname": "PartnerDown", "project": "ecommerce", "domain": "partners"},
        fingerprint="beef")).json["decisions"]
    assert theirs["reason"].endswith("of theirs"), theirs


def test_resolved_and_unmatched_alerts_start_nothing(dr_site):
    resolved = dr_site.post("/v1/alerts/alertmanager", json=delivery(
        {"alertname": "SiteDown"}, status="resolved"), headers=BEARER)
    unmatched = dr_site.post("/v1/alerts/alertmanager", json=delivery(
        {"alertname": "DiskFull"}, fingerprint="beef"), headers=BEARER)
    assert [r.json["decisions"][0]["action"] for r in (resolved, unmatched)] == [
        "ignored", "ignored"]
    assert services(dr_site.application).launcher.started == []


def test_a_malformed_payload_is_a_400_naming_the_field(dr_site):
    reply = dr_site.post("/v1/alerts/alertmanager", json={"version": "3", "status": "firing",
                                                         "alerts": []}, headers=BEARER)
    assert reply.status_code == 400 and "version" in reply.json["error"]["message"]


def test_a_signature_or_token_that_is_not_ascii_is_refused_not_a_crash():
    assert check(b"{}", None, "sha256=\u00e9t\u00e9", str(int(NOW.timestamp())))
    assert check(b"{}", "Bearer \u00e9")
    assert check(b"{}", None, "sha256=00", "\u00e9")


def test_an_alert_time_without_a_zone_is_a_400(dr_site):
    body = delivery({"alertname": "SiteDown"})
    body["alerts"][0]["startsAt"] = "2026-11-25T10:00:00"
    reply = dr_site.post("/v1/alerts/alertmanager", json=body, headers=BEARER)
    assert reply.status_code == 400 and "startsAt" in reply.json["error"]["message"]


def test_a_stale_alert_and_a_replayed_signed_delivery_start_nothing(dr_site, tmp_path):
    stale = dr_site.post("/v1/alerts/alertmanager", headers=BEARER, json=delivery(
        {"alertname": "SiteDown"}, starts_at="2026-11-25T10:00:00Z")).json["decisions"]
    assert [d["action"] for d in stale] == ["stale"]
    again = dr_site.post("/v1/alerts/alertmanager", headers=BEARER, json=delivery(
        {"alertname": "SiteDown"}, starts_at="2026-11-25T10:00:00Z")).json["decisions"]
    assert [d["action"] for d in again] == ["duplicate"]
    assert services(dr_site.application).launcher.started == []

    key = tmp_path / "hmac.key"
    key.write_text("sign-key")
    (tmp_path / "signing").mkdir()
    signing = make_site(tmp_path / "signing", "site-b", "site-a", monitoring={
        "hmac_secret_file": str(key),
        "rules": [{"name": "site-a down", "match": {"alertname": "SiteDown"},
                   "operation": "site_failover", "mode": "execute"}]}).test_client()
    raw = json.dumps(delivery({"alertname": "SiteDown"})).encode()
    signature, stamp = signed(raw, datetime.now(UTC) - timedelta(minutes=30))
    replayed = signing.post("/v1/alerts/alertmanager", data=raw, headers={
        "X-Signature": signature, "X-Signature-Timestamp": stamp,
        "Content-Type": "application/json"})
    assert replayed.status_code == 401 and "is a replay" in replayed.json["error"]["message"]
    assert services(signing.application).launcher.started == []
