"""The append-only audit log: every change and every decision, with who asked and why.

``GET /v1/audit-log`` shows a caller the entries of their own project (an admin with
``all_projects`` sees every entry), newest first, paged by ``marker``.
"""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from . import db
from .identity import caller
from .models import AuditEntry
from .params import bounded_int
from .services import services

bp = Blueprint("audit", __name__, url_prefix="/v1/audit-log")


def record_in(session: Session, actor: dict, action: str, target: str | None, outcome: str,
              reason: str | None = None, *, project_name: str | None = None,
              details: dict | None = None):
    session.add(AuditEntry(actor=actor, action=action, target=target, outcome=outcome,
                           reason=reason, project_name=project_name, details=details or {}))


def record(sessions: sessionmaker[Session], *args, **kwargs):
    """One entry in a transaction of its own (refusals, whose own work was rolled back)."""
    with db.transaction(sessions) as session:
        record_in(session, *args, **kwargs)


def view(entry: AuditEntry) -> dict:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "outcome": entry.outcome,
            "reason": entry.reason, "project_name": entry.project_name,
            "details": entry.details}


@bp.get("")
def list_entries():
    who = caller()
    policy = services().policy
    policy.require("protector:read", who)
    limit = bounded_int("limit", 100, 1, 1000)
    marker = bounded_int("marker", None, 0, 2**62)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if not policy.all_projects(who):
        query = query.where(AuditEntry.project_name == who.project_name)
    if marker is not None:
        query = query.where(AuditEntry.id < marker)
    with services().sessions() as session:
        entries = session.scalars(query).all()
    return {"entries": [view(e) for e in entries]}
