"""The append-only audit log: every change and every decision, with who asked and why.

Written here, in the transaction of what it records (or in one of its own for a refusal,
whose work was rolled back); read at ``GET /v1/audit-log`` (:mod:`.sites`).
"""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from site_recovery.core.model import Project

from . import db
from .models import AuditEntry


def record_in(session: Session, actor: dict, action: str, target: str | None, outcome: str,
              reason: str | None = None, *, project: Project | None = None,
              details: dict | None = None):
    """``project``: whose entry it is (its members read it); None: an administrator's."""
    session.add(AuditEntry(actor=actor, action=action, target=target, outcome=outcome,
                           reason=reason, project_domain=project.domain if project else None,
                           project_name=project.name if project else None,
                           details=details or {}))


def record(sessions: sessionmaker[Session], *args, **kwargs):
    """One entry in a transaction of its own (refusals, whose own work was rolled back)."""
    with db.transaction(sessions) as session:
        record_in(session, *args, **kwargs)
