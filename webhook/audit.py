"""The append-only audit log: every change and every decision, with who asked and why.

Written here, in the transaction of what it records (or in one of its own for a refusal,
whose work was rolled back); read at ``GET /v1/audit-log`` (:mod:`.sites`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from . import db
from .models import AuditEntry


def record_in(session: Session, actor: dict, action: str, target: str | None, outcome: str,
              reason: str | None = None, *, project_name: str | None = None,
              details: dict | None = None):
    session.add(AuditEntry(actor=actor, action=action, target=target, outcome=outcome,
                           reason=reason, project_name=project_name, details=details or {}))


def record(sessions: sessionmaker[Session], *args, **kwargs):
    """One entry in a transaction of its own (refusals, whose own work was rolled back)."""
    with db.transaction(sessions) as session:
        record_in(session, *args, **kwargs)
