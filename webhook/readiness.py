"""A group's readiness, on its DR site: whether it would recover now, and why not.

:mod:`site_recovery.core.readiness` checks what the DR site's cloud offers the tenant's
project, as a failover would look it up (the DR account in that project); this site's
records add replication against the RPO target (what the engine's replication watch last
read from the array) and the last drill. The engine checks every group replicating here
every ``engine.readiness_interval``; ``POST .../readiness`` checks one now. The last check
is kept, shown by ``GET .../readiness`` and with the group.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from site_recovery.core import readiness, rto
from site_recovery.core.clouds import Clouds
from site_recovery.core.config import ServiceConfig
from site_recovery.core.model import TOTAL, Status
from site_recovery.core.plan import GroupPlan, PlanError
from site_recovery.core.readiness import Finding, Severity

from . import db
from .models import (
    OperationResult,
    ProtectionGroup,
    ReadinessRecord,
    ReplicationState,
    last_drills,
)
from .registry import recovery_inputs
from .replication import WATCHED

log = logging.getLogger(__name__)
DRILL_DUE = timedelta(days=30)       # a group not drilled this long is not proven


class Readiness:
    def __init__(self, sessions: sessionmaker[Session], config: ServiceConfig, clouds: Clouds):
        self.sessions, self.config, self.clouds = sessions, config, clouds

    def check(self, group_id: str) -> ReadinessRecord:
        """Check one group replicating to this site now; its record, kept."""
        now = datetime.now(timezone.utc)
        with self.sessions() as session:
            group, plan, documents = recovery_inputs(session, group_id)
            findings = [*self._cloud(plan, documents),
                        _replication(session.get(ReplicationState, group_id),
                                     group.rpo_target_seconds),
                        _drill(session, group_id, now),
                        *_rto(session, group_id, group.rto_target_seconds)]
        with db.transaction(self.sessions) as session:
            record = session.get(ReadinessRecord, group_id, with_for_update=True) or \
                ReadinessRecord(group_id=group_id)
            record.checked_at, record.ready = now, readiness.ready(findings)
            record.findings = [f.as_dict() for f in findings]
            session.add(record)
        return record

    def _cloud(self, plan: GroupPlan, documents: list) -> list[Finding]:
        try:
            return readiness.assess(plan, documents, self.clouds.connect(
                self.config.site, plan.project))
        except PlanError as exc:
            return [Finding("captured", False, str(exc), f"protect the group again on "
                            f"{plan.primary}: protect captures every member")]
        except (sdk_exceptions.SDKException, ks_exceptions.ClientException) as exc:
            return [Finding("cloud", False, f"{self.config.site}'s cloud could not be asked "
                            f"as project {plan.project} ({type(exc).__name__}: {exc})",
                            "check that the cloud answers and that the DR account holds a "
                            "role in the project")]

    def check_all(self) -> int:
        """The engine's duty: every group replicating here; how many were checked."""
        with self.sessions() as session:
            ids = session.scalars(select(ProtectionGroup.id).where(
                ProtectionGroup.secondary_site == self.config.site,
                ProtectionGroup.status.in_(WATCHED))).all()
        for group_id in ids:
            try:
                record = self.check(group_id)
            except Exception:                  # one group's trouble never stops the others
                log.exception("readiness check of protection group %s failed", group_id)
                continue
            if not record.ready:
                log.warning("protection group %s is not ready to recover: %s", group_id,
                            "; ".join(f["detail"] for f in record.findings if not f["ok"]))
        return len(ids)


def _replication(state: ReplicationState | None, target: int | None) -> Finding:
    if state is None:
        return Finding("replication", False, "not read from the DR array yet",
                       "wait for the engine's next replication check",
                       Severity.WARNING)
    if state.error:
        return Finding("replication", False, f"the DR array could not be read: {state.error}",
                       "check the array and the service's token for it")
    if state.recovery_point_at is None:
        return Finding("replication", False, "the DR array holds no usable recovery point",
                       "check the replication link and the group's protect")
    lag = f"newest recovery point {state.lag_seconds:.0f} s old"
    if state.violated:
        return Finding("replication", False, f"{lag}, over the {target} s RPO target",
                       "check the replication link between the arrays and the schedule")
    return Finding("replication", True, lag + (f", within the {target} s RPO target"
                                               if target is not None else ""))


def _drill(session: Session, group_id: str, now: datetime) -> Finding:
    drills = last_drills()
    last = session.execute(
        select(OperationResult.status, OperationResult.finished_at, OperationResult.step,
               OperationResult.operation_id)
        .join(drills, drills.c.id == OperationResult.id)
        .where(drills.c.group_id == group_id)).first()
    run = "run a drill: openstack dr test failover <group>, then its cleanup"
    if last is None:
        return Finding("drill", False, "never drilled", run, Severity.WARNING)
    status, finished, step, op_id = last
    if status == Status.FAILED:
        return Finding("drill", False, f"the last drill ({op_id}) failed at {step}",
                       run, Severity.WARNING)
    age = now - finished
    if age > DRILL_DUE:
        return Finding("drill", False, f"the last drill ({op_id}) is {age.days} days old",
                       run, Severity.WARNING)
    return Finding("drill", True, f"the last drill ({op_id}) completed "
                   f"{_ago(age)} ago")


def _rto(session: Session, group_id: str, target: int | None) -> list[Finding]:
    """With an RTO target: whether the last completed drill recovered within it (a
    warning: a slow recovery is still a recovery)."""
    if target is None:
        return []
    drills = last_drills((Status.COMPLETED,))
    last = session.execute(select(OperationResult.timings, OperationResult.operation_id)
                           .join(drills, drills.c.id == OperationResult.id)
                           .where(drills.c.group_id == group_id)).first()
    measured = last and last.timings.get(TOTAL)
    if measured is None:
        return [Finding("rto", False, f"no completed drill has measured the recovery "
                        f"against its {target} s RTO target",
                        "run a drill: openstack dr test failover <group>", Severity.WARNING)]
    said = rto.verdict(measured, target, done="the last drill recovered")
    if rto.exceeded(measured, target):
        return [Finding("rto", False, said, "find its slowest phase (openstack dr "
                        f"operation show {last.operation_id}), then split the group, raise "
                        "the target, or speed that phase up; the next drill measures again",
                        Severity.WARNING)]
    return [Finding("rto", True, said)]


def _ago(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    return f"{minutes // 1440} d" if minutes >= 1440 else (
        f"{minutes // 60} h" if minutes >= 60 else f"{minutes} min")


