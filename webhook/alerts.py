"""Deciding what a monitoring alert may start.

Prometheus Alertmanager posts webhook payloads (version 4). Each alert is matched against
the configured rules; the first rule whose labels all match decides. Guardrails, in order:
resolved alerts start nothing; a delivery already decided (same fingerprint, start time
and status) is not decided again; an alert that began too long ago (or in the future) is
stale and starts nothing, for good; an alert must have been firing for the rule's minimum
time; and an unplanned failover is started only when this site itself finds the peer
unreachable. Every decision carries its reason, for the audit log.

A delivery is authentic with the shared secret as a bearer token (Alertmanager's own
``http_config.authorization``), or signed by a proxy: ``X-Signature: sha256=<HMAC of
"<X-Signature-Timestamp>.<body>">``, refused once older than
``monitoring.max_delivery_age_seconds``, so a captured delivery cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import Blueprint, request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from site_recovery.core.config import AlertRule
from site_recovery.core.model import DEFAULT_DOMAIN, FailoverType, OperationKind

from . import audit, db
from .errors import APIError, Conflict
from .lifecycle import Start
from .models import AlertDelivery, ProtectionGroup, Site
from .params import body
from .services import services


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: AwareDatetime              # Alertmanager's field name
    fingerprint: str = Field(min_length=1, max_length=64)


class AlertmanagerPayload(BaseModel):
    """The webhook body; fields this service does not use are ignored, as the format
    grows compatibly."""

    model_config = ConfigDict(extra="ignore")

    version: str = Field(pattern="^4$")
    status: str
    receiver: str = ""
    alerts: list[Alert] = Field(max_length=1000)


@dataclass(frozen=True)
class Decision:
    alert: Alert
    rule: AlertRule | None
    # ignored | duplicate | stale | waiting | refused | record | dry_run | execute
    action: str
    reason: str

    @property
    def final(self) -> bool:
        """Final decisions are remembered. A waiting alert, or one refused because the
        peer still answered, is decided again when Alertmanager delivers it again (until
        it is stale)."""
        return self.action not in ("waiting", "refused")


# Clocks of monitoring and of this site may differ this much.
CLOCK_SKEW = timedelta(seconds=300)


def refusal(body: bytes, authorization: str | None, signature: str | None,
            timestamp: str | None, now: datetime, *, shared_secret: str | None,
            hmac_secret: str | None, max_age: float) -> str | None:
    """Why a delivery is not accepted (None: it is): a bearer shared secret, or an
    HMAC-SHA256 of ``"<timestamp>.<body>"`` in ``X-Signature: sha256=<hex>`` with
    ``X-Signature-Timestamp`` (Unix seconds) no older than ``max_age``."""
    if shared_secret and authorization and authorization.startswith("Bearer "):
        if hmac.compare_digest(authorization[7:].encode(errors="replace"),
                               shared_secret.encode()):
            return None
    elif hmac_secret and signature and signature.startswith("sha256="):
        try:
            signed_at = datetime.fromtimestamp(int(timestamp or ""), timezone.utc)
        except (ValueError, OverflowError, OSError):
            return "a signed alert needs X-Signature-Timestamp (Unix seconds)"
        expected = hmac.new(hmac_secret.encode(), f"{int(timestamp)}.".encode() + body,
                            hashlib.sha256).hexdigest()
        if hmac.compare_digest(signature[7:].encode(errors="replace"), expected.encode()):
            age = (now - signed_at).total_seconds()
            if age > max_age or signed_at - now > CLOCK_SKEW:
                return (f"alert not accepted: signed {age:.0f} s ago; a delivery older "
                        f"than {max_age:g} s (or from the future) is a replay")
            return None
    return ("alert not accepted: send the shared secret as a bearer token or sign the "
            "body (X-Signature: sha256=..., X-Signature-Timestamp)"
            if shared_secret or hmac_secret else
            "this site accepts no alerts: monitoring has no secret configured")


def decide(alert: Alert, rules: list[AlertRule], now: datetime, *,
           already_decided: Callable[[Alert], bool],
           peer_unreachable: Callable[[], bool], max_age: float = 3600) -> Decision:
    if alert.status == "resolved":
        return Decision(alert, None, "ignored", "resolved alerts start nothing")
    rule = next((r for r in rules
                 if all(alert.labels.get(k) == v for k, v in r.match.items())), None)
    if rule is None:
        return Decision(alert, None, "ignored", "no rule matches the alert's labels")
    if already_decided(alert):
        return Decision(alert, rule, "duplicate", "this alert delivery was already decided")
    firing = (now - alert.startsAt).total_seconds()
    if firing > max_age or alert.startsAt - now > CLOCK_SKEW:
        return Decision(alert, rule, "stale", f"the alert began {firing:.0f} s ago: one "
                        f"older than {max_age:g} s (or from the future) starts nothing; so "
                        "late, a person decides")
    if firing < rule.min_firing_seconds:
        return Decision(alert, rule, "waiting", f"firing for {firing:.0f} s; rule "
                        f"{rule.name!r} acts after {rule.min_firing_seconds} s")
    if OperationKind(rule.operation).moves and rule.mode == "execute" and \
            not peer_unreachable():
        return Decision(alert, rule, "refused", f"rule {rule.name!r} asks for an unplanned "
                        f"{rule.operation}, but this site still reaches its peer")
    verb = {"record": "recorded", "dry_run": "would start", "execute": "starts"}[rule.mode]
    return Decision(alert, rule, rule.mode, f"rule {rule.name!r} {verb} {rule.operation}")


# -- the receiver ----------------------------------------------------------------------------

bp = Blueprint("alerts", __name__, url_prefix="/v1/alerts")


@bp.post("/alertmanager")
def alertmanager():
    """Alertmanager's webhook: each alert decided on, recorded, and started if its rule
    says so. A start that fails (Mistral unreachable) answers 503 so that Alertmanager
    delivers again; everything else answers 200 with the decisions."""
    site = services()
    config = site.config
    monitoring = config.monitoring
    shared, hmac_key = monitoring.secrets()
    now = datetime.now(timezone.utc)
    why = refusal(request.get_data(cache=True), request.headers.get("Authorization"),
                  request.headers.get("X-Signature"),
                  request.headers.get("X-Signature-Timestamp"), now, shared_secret=shared,
                  hmac_secret=hmac_key, max_age=monitoring.max_delivery_age_seconds)
    if why:
        raise APIError(why, status=401, headers={"WWW-Authenticate": 'Bearer realm="alerts"'})
    payload = body(AlertmanagerPayload)
    sessions = site.sessions
    decisions = [_handle(sessions, config, decide(
        alert, monitoring.rules, now,
        already_decided=lambda a: _decided(sessions, a),
        peer_unreachable=lambda: _peer_unreachable(sessions, config),
        max_age=monitoring.max_alert_age_seconds))
        for alert in payload.alerts]
    return {"decisions": decisions}


def _decided(sessions, alert: Alert) -> bool:
    with sessions() as session:
        return session.scalar(select(AlertDelivery.id).where(
            AlertDelivery.fingerprint == alert.fingerprint,
            AlertDelivery.starts_at == alert.startsAt.isoformat(),
            AlertDelivery.status == alert.status)) is not None


def _peer_unreachable(sessions, config) -> bool:
    with sessions() as session:
        return session.get(Site, config.peer.name).reachable is False


def _handle(sessions, config, decision: Decision) -> dict:
    alert, rule = decision.alert, decision.rule
    answer = {"fingerprint": alert.fingerprint, "rule": rule.name if rule else None,
              "action": decision.action, "reason": decision.reason, "operation_ids": [],
              "busy": []}
    actor = {"user": f"alertmanager ({rule.name})" if rule else "alertmanager",
             "roles": [], "labels": alert.labels}
    if decision.final and decision.action != "duplicate":
        try:
            with db.transaction(sessions) as session:
                session.add(AlertDelivery(fingerprint=alert.fingerprint,
                                          starts_at=alert.startsAt.isoformat(),
                                          status=alert.status, rule=answer["rule"],
                                          decision=decision.action))
        except IntegrityError:                 # a concurrent delivery of the same alert
            answer = {**answer, "action": "duplicate",
                      "reason": "this alert delivery was already decided"}
    if answer["action"] in ("dry_run", "execute"):
        answer = _act(sessions, config, decision, answer, actor)
    audit.record(sessions, actor, f"alert.{answer['action']}", alert.fingerprint,
                 "recorded", answer["reason"],
                 details={"rule": answer["rule"], "labels": alert.labels,
                          "starts_at": alert.startsAt.isoformat(),
                          "operation_ids": answer["operation_ids"]})
    return answer


def _act(sessions, config, decision: Decision, answer: dict, actor: dict) -> dict:
    """Find what the rule's operation covers here; start it if the mode is execute: one
    site failover, or one operation per group (each visible to the group's project)."""
    rule, alert = decision.rule, decision.alert
    with sessions() as session:
        query = select(ProtectionGroup).order_by(ProtectionGroup.name)
        selector = dict(rule.selector)
        if "project_name" in selector:     # a project is its domain and name, never a name
            selector.setdefault("project_domain", DEFAULT_DOMAIN)
        for name, wanted in selector.items():
            value = alert.labels.get(wanted[1:], "") if wanted.startswith("$") else wanted
            query = query.where(getattr(ProtectionGroup, name) == value)
        kind = OperationKind(rule.operation)
        recover_here = (ProtectionGroup.primary_site == config.peer.name if kind.moves
                        else ProtectionGroup.secondary_site == config.site)
        groups = list(session.scalars(query.where(recover_here)))
    if not groups:
        return {**answer, "action": "ignored", "reason": f"rule {rule.name!r} matches no "
                f"protection group that recovers on {config.site}"}
    names = ", ".join(g.name for g in groups)
    if decision.action == "dry_run":
        return {**answer, "reason": f"{decision.reason} of {names}"}
    params = {"failover_type": FailoverType.UNPLANNED} if kind.moves else {}
    batches = [groups] if kind.site_wide else [[g] for g in groups]
    started, busy = [], {}
    try:
        for batch in batches:
            # Keyed by alert and group: a redelivery starts only what did not start (a
            # key whose operation never started is released; one that did finds it).
            key = "alert:" + hashlib.sha256(
                f"{alert.fingerprint}|{alert.startsAt.isoformat()}|{batch[0].id}".encode()
            ).hexdigest()[:40]
            try:
                started.append(services().operations.start(Start(
                    kind, batch, actor, None, params=dict(params), force=kind.moves,
                    site=config.peer.name if kind.site_wide else None,
                    key=key, automatic=True)).operation_id)
            except Conflict as exc:         # this group is busy: the others go on
                busy[batch[0].name if len(batch) == 1 else "the site"] = exc.message
    except APIError as exc:
        _forget(sessions, alert)                          # let Alertmanager deliver again
        audit.record(sessions, actor, f"alert.{decision.action}", alert.fingerprint,
                     "refused", exc.message,
                     details={"rule": rule.name, "operation_ids": started})
        raise
    reason = f"{decision.reason} of {names}"
    if busy:
        _forget(sessions, alert)                # the next delivery takes the busy ones up
        reason += ("; busy, taken up when the alert is delivered again: "
                   + "; ".join(f"{name}: {why}" for name, why in busy.items()))
    return {**answer, "reason": reason, "operation_ids": started, "busy": sorted(busy)}


def _forget(sessions, alert: Alert):
    """Undo the record that ``alert`` was decided: its next delivery is decided again."""
    with db.transaction(sessions) as session:
        session.execute(delete(AlertDelivery).where(
            AlertDelivery.fingerprint == alert.fingerprint,
            AlertDelivery.starts_at == alert.startsAt.isoformat()))
