"""Deciding what a monitoring alert may start.

Prometheus Alertmanager posts webhook payloads (version 4). Each alert is matched against
the configured rules; the first rule whose labels all match decides. Guardrails, in order:
resolved alerts start nothing; a delivery already decided (same fingerprint, start time
and status) is not decided again; an alert must have been firing for the rule's minimum
time; and an unplanned failover is started only when this site itself finds the peer
unreachable. Every decision carries its reason, for the audit log.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from .config import AlertRule

UNPLANNED = {"failover", "site_failover"}


class Alert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str = Field(pattern="^(firing|resolved)$")
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime                   # Alertmanager's field name
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
    action: str           # ignored | duplicate | waiting | refused | record | dry_run | execute
    reason: str

    @property
    def final(self) -> bool:
        """Final decisions are remembered; a waiting alert is decided again on redelivery."""
        return self.action != "waiting"


def authentic(body: bytes, authorization: str | None, signature: str | None, *,
              shared_secret: str | None, hmac_secret: str | None) -> bool:
    """A bearer shared secret (Alertmanager's ``http_config.authorization``), or an
    HMAC-SHA256 of the body in ``X-Signature: sha256=<hex>`` (a signing proxy)."""
    if shared_secret and authorization and authorization.startswith("Bearer "):
        return hmac.compare_digest(authorization[7:].encode(), shared_secret.encode())
    if hmac_secret and signature and signature.startswith("sha256="):
        expected = hmac.new(hmac_secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature[7:], expected)
    return False


def decide(alert: Alert, rules: list[AlertRule], now: datetime, *,
           already_decided: Callable[[Alert], bool],
           peer_unreachable: Callable[[], bool]) -> Decision:
    if alert.status == "resolved":
        return Decision(alert, None, "ignored", "resolved alerts start nothing")
    rule = next((r for r in rules
                 if all(alert.labels.get(k) == v for k, v in r.match.items())), None)
    if rule is None:
        return Decision(alert, None, "ignored", "no rule matches the alert's labels")
    if already_decided(alert):
        return Decision(alert, rule, "duplicate", "this alert delivery was already decided")
    firing = (now - alert.startsAt).total_seconds()
    if firing < rule.min_firing_seconds:
        return Decision(alert, rule, "waiting", f"firing for {firing:.0f} s; rule "
                        f"{rule.name!r} acts after {rule.min_firing_seconds} s")
    if rule.operation in UNPLANNED and rule.mode == "execute" and not peer_unreachable():
        return Decision(alert, rule, "refused", f"rule {rule.name!r} asks for an unplanned "
                        f"{rule.operation}, but this site still reaches its peer")
    verb = {"record": "recorded", "dry_run": "would start", "execute": "starts"}[rule.mode]
    return Decision(alert, rule, rule.mode, f"rule {rule.name!r} {verb} {rule.operation}")
