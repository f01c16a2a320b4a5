"""Starting an operation's workflow without making the caller queue behind Mistral.

Mistral accepts executions one at a time per API worker (about 20 a second on the lab's
two cores), so under a burst of requests a synchronous start would keep every caller
waiting for the whole queue. Each start runs on a small pool instead; the request waits
for it up to ``mistral.start_wait`` seconds. A start that fails within that time (Mistral
refuses the connection, the workflow is unknown) fails the request, so nothing is
half-done; one still under way answers 202 with the operation pending, and records its
execution, or that it never started, when Mistral answers. An operation whose start was
lost with its worker is found by :func:`expire_unstarted` and marked as never started.
"""

from __future__ import annotations

import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillStarting
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from . import audit, db
from .errors import APIError, Unavailable
from .launcher import Launcher
from .models import Operation

log = logging.getLogger(__name__)


def never_started(sessions: sessionmaker[Session], op_id: str, actor: dict, kind: str,
                  why: str):
    with db.transaction(sessions) as session:
        op = session.get(Operation, op_id, with_for_update=True)
        if op.mistral_execution_id or op.finished_at:
            return
        op.status, op.finished_at = "failed", datetime.now(UTC)
        op.error = f"never started: {why}"
        for result in op.results:
            result.status, result.reason = "failed", "the workflow never started"
        op.failed_count = len(op.results)
        audit.record_in(session, actor, f"operation.{kind}", op_id, "refused", op.error,
                        project_name=op.project_name)


class Starts:
    def __init__(self, sessions: sessionmaker[Session], launcher: Launcher, workers: int):
        self.sessions, self.launcher = sessions, launcher
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="mistral-start")

    def start(self, op: Operation, actor: dict, workflow: str, workflow_input: dict, *,
              wait: float):
        """Start ``op``'s workflow, waiting for it up to ``wait`` seconds; a start that
        failed within them raises its APIError."""
        future = self._pool.submit(self._start, op.id, op.type, op.project_name, actor,
                                   workflow, workflow_input)
        with contextlib.suppress(StillStarting):
            future.result(timeout=wait)

    def close(self):
        """Wait for the starts under way (a worker's or a test's end)."""
        self._pool.shutdown(wait=True)

    def _start(self, op_id: str, kind: str, project: str | None, actor: dict,
               workflow: str, workflow_input: dict):
        with self.sessions() as session:
            op = session.get(Operation, op_id)
            if op is None or op.finished_at is not None:
                return                            # given up while it waited its turn
        try:
            execution = self.launcher.start(workflow, workflow_input,
                                            description=f"site-recovery {kind} {op_id}")
        except APIError as exc:
            never_started(self.sessions, op_id, actor, kind, exc.message)
            raise
        except Exception as exc:                  # TLS, credentials, a garbled answer
            log.exception("starting %s for operation %s failed", workflow, op_id)
            never_started(self.sessions, op_id, actor, kind,
                          f"Mistral could not be asked ({type(exc).__name__})")
            raise Unavailable(f"Mistral could not be asked to start {workflow} "
                              f"({type(exc).__name__}); nothing was started") from None
        with db.transaction(self.sessions) as session:
            op = session.get(Operation, op_id, with_for_update=True)
            op.mistral_execution_id = execution.id
            given_up = op.finished_at is not None
            audit.record_in(session, actor, f"operation.{kind}", op_id,
                            "refused" if given_up else "accepted",
                            f"{workflow} started as execution {execution.id}"
                            + (" after the operation was given up: cancelled"
                               if given_up else ""),
                            project_name=project,
                            details={"params": workflow_input["params"]})
        if given_up:
            self.launcher.cancel(execution.id)


def expire_unstarted(sessions: sessionmaker[Session], older_than: float,
                     now: datetime | None = None) -> int:
    """Mark operations whose start never reached Mistral (their worker stopped) as never
    started; returns how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=older_than)
    with sessions() as session:
        lost = session.scalars(select(Operation.id).where(
            Operation.status == "pending", Operation.mistral_execution_id.is_(None),
            Operation.finished_at.is_(None), Operation.created_at < cutoff)).all()
    for op_id in lost:
        with sessions() as session:
            op = session.get(Operation, op_id)
            actor, kind = op.requested_by, op.type
        never_started(sessions, op_id, actor, kind,
                      f"no Mistral execution {older_than:g} s after it was accepted (the "
                      "service stopped while starting it); start it again")
    return len(lost)


def follow_executions(sessions: sessionmaker[Session], launcher: Launcher) -> int:
    """Fail the unfinished operations whose workflow Mistral ended in ERROR or CANCELLED
    (a crashed workflow reports nothing more); returns how many. One question to Mistral,
    and none while no operation is under way."""
    with sessions() as session:
        running = dict(session.execute(
            select(Operation.mistral_execution_id, Operation.id).where(
                Operation.status.in_(("pending", "running")),
                Operation.mistral_execution_id.is_not(None))).all())
        oldest = session.scalar(select(func.min(Operation.created_at)).where(
            Operation.mistral_execution_id.in_(list(running)))) if running else None
    if not running:
        return 0
    try:
        ended = [e for e in launcher.ended_badly(oldest - timedelta(minutes=1))
                 if e.id in running]
    except APIError:
        return 0                                  # Mistral away: ask again next round
    for execution in ended:
        _fail_ended(sessions, running[execution.id], execution)
    return len(ended)


def _fail_ended(sessions: sessionmaker[Session], op_id: str, execution):
    why = (f"its workflow ended {execution.state} in Mistral: "
           f"{execution.state_info or 'no reason given'}")
    with db.transaction(sessions) as session:
        op = session.get(Operation, op_id, with_for_update=True)
        if op.finished_at is not None:
            return
        now = datetime.now(UTC)
        for result in op.results:
            if result.status not in ("completed", "failed"):
                result.status, result.finished_at, result.reason = "failed", now, why
        op.completed_count = sum(r.status == "completed" for r in op.results)
        op.failed_count = len(op.results) - op.completed_count
        op.status = "failed" if not op.completed_count else "partially_failed"
        op.error, op.finished_at = why, now
        audit.record_in(session, {"user": "site-recovery"}, f"operation.{op.type}", op_id,
                        "recorded", why, project_name=op.project_name)
