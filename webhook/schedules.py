"""Scheduled drills: a group drills itself, on its DR site, by its ``drill_schedule``.

The engine keeps one Mistral cron trigger per scheduled group that drills here
(``site_recovery.drill.<group id>``, :meth:`DrillSchedules.reconcile`), running the
pack's ``scheduled_drill`` workflow with the group's id. Its steps ask this module, through
``/v1/internal/scheduled-drills/<execution>``, to start the drill, to say when it ended,
to keep and check its report, to start its cleanup, and to record how the run went: an
audit entry of the group's project, and ``protector_group_last_scheduled_drill_passed``.

The drill and its cleanup are the group's ordinary operations, started through the same
checks as a tenant's (its status, the peer's, another operation under way), visible to its
project, and requested by "drill schedule". The group comes from the execution's input as
Mistral recorded it, never from the caller, and only a run of the pack's workflow started
in the service's own project is heard.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from site_recovery import workbooks
from site_recovery.core.config import ServiceConfig
from site_recovery.core.model import GroupStatus, MappingKind, OperationKind, Status
from site_recovery.core.report import ACTIVE

from . import audit, db
from .errors import Conflict, Forbidden, NotFound
from .launcher import Launcher
from .lifecycle import Lifecycle, Start
from .models import Operation, ProtectionGroup, ScheduledDrill
from .registry import mappings_for
from .reports import Reports

log = logging.getLogger(__name__)
TRIGGER_PREFIX = "site_recovery.drill."
WORKFLOW = "scheduled_drill"
ACTOR = "drill schedule"
KINDS = (OperationKind.TEST_FAILOVER, OperationKind.TEST_CLEANUP)


class DrillSchedules:
    def __init__(self, sessions: sessionmaker[Session], config: ServiceConfig,
                 launcher: Launcher, lifecycle: Lifecycle, reports: Reports):
        self.sessions, self.config, self.launcher = sessions, config, launcher
        self.lifecycle, self.reports = lifecycle, reports

    # -- the engine's duty: a trigger per scheduled group ----------------------------------

    def wanted(self) -> dict[str, tuple[str, str, dict]]:
        """The triggers this site should hold: (pattern, workflow, input) by name."""
        workflow = workbooks.workflow_name(WORKFLOW)
        with self.sessions() as session:
            groups = session.scalars(select(ProtectionGroup).where(
                ProtectionGroup.drill_schedule.is_not(None),
                ProtectionGroup.secondary_site == self.config.site,
                ProtectionGroup.status == GroupStatus.PROTECTED)).all()
            return {f"{TRIGGER_PREFIX}{g.id}": (g.drill_schedule, workflow, {"group_id": g.id})
                    for g in groups}

    def reconcile(self) -> list[str]:
        """Make this site's Mistral hold exactly the wanted triggers; what changed."""
        wanted, held = self.wanted(), self.launcher.triggers(TRIGGER_PREFIX)
        done = []
        for name in sorted(held.keys() - wanted.keys()):
            self.launcher.unschedule(name)
            done.append(f"cron trigger {name} removed")
        for name, (pattern, workflow, workflow_input) in sorted(wanted.items()):
            if held.get(name) != (pattern, workflow, workflow_input):
                self.launcher.set_trigger(name, workflow, pattern, workflow_input,
                                          replacing=name in held)
                done.append(f"cron trigger {name} runs {workflow} on '{pattern}'")
        for line in done:
            log.info("drill schedules: %s", line)
        return done

    # -- the workflow's steps --------------------------------------------------------------

    def admit(self, execution_id: str) -> ProtectionGroup:
        """The group run ``execution_id`` drills, if it is a run of the pack's
        scheduled_drill in the service's own project; else Forbidden."""
        root = self.launcher.root(execution_id)
        if root is None or root.id != execution_id or \
                root.project_id != self.launcher.account()[1] or \
                root.workflow_name != workbooks.workflow_name(WORKFLOW):
            raise Forbidden(f"execution {execution_id} is not one of the DR service's "
                            "scheduled_drill runs: only those are heard here")
        with self.sessions() as session:
            group = session.get(ProtectionGroup, str(root.input.get("group_id")))
            if group is None:
                raise NotFound(f"protection group {root.input.get('group_id')!r} of scheduled "
                               f"drill {execution_id} not found (deleted meanwhile)")
            session.expunge(group)
        if group.secondary_site != self.config.site:
            raise Conflict(f"protection group {group.name} drills on {group.secondary_site}, "
                           f"not here on {self.config.site}")
        return group

    def start(self, execution_id: str, kind: OperationKind) -> dict:
        """Start the run's drill or its cleanup (once: a retried step finds the one it
        started). ``skipped``: why none was started (the group is busy, not drillable, or
        no longer scheduled), recorded as the run's end."""
        if kind not in KINDS:
            raise Conflict(f"a scheduled drill starts a test failover or its cleanup, not a "
                           f"{kind.label}")
        group = self.admit(execution_id)
        with db.transaction(self.sessions) as session:
            if session.get(ScheduledDrill, execution_id) is None:
                session.add(ScheduledDrill(execution_id=execution_id, group_id=group.id))
        if kind is OperationKind.TEST_FAILOVER and group.drill_schedule is None:
            return self._skipped(execution_id, group, "its drill schedule was removed")
        params = {}
        if kind is OperationKind.TEST_FAILOVER and group.drill_network:
            with self.sessions() as session:
                sources = {m.source for m in mappings_for(session, group)
                           if m.kind == MappingKind.NETWORK}
            params["network_mapping"] = {source: group.drill_network for source in sources}
        actor = {"user": ACTOR, "roles": [], "scheduled": True, "execution_id": execution_id}
        try:
            started = self.lifecycle.start(Start(
                kind, [group], actor, None, params=params,
                key=f"schedule:{execution_id}:{kind.value}"))
        except Conflict as exc:
            if kind is OperationKind.TEST_CLEANUP:
                raise
            return self._skipped(execution_id, group, exc.message)
        column = "drill_operation_id" if kind is OperationKind.TEST_FAILOVER \
            else "cleanup_operation_id"
        with db.transaction(self.sessions) as session:
            setattr(session.get(ScheduledDrill, execution_id), column, started.operation_id)
        return {"operation_id": started.operation_id, "skipped": None}

    def _skipped(self, execution_id: str, group: ProtectionGroup, why: str) -> dict:
        self._end(execution_id, group, "skipped", [why])
        return {"operation_id": None, "skipped": why}

    def operation(self, execution_id: str, op_id: str) -> Operation:
        """One of the operations this run started, else Forbidden."""
        self.admit(execution_id)
        with self.sessions() as session:
            op = session.get(Operation, op_id)
            if op is None or op.requested_by.get("execution_id") != execution_id:
                raise Forbidden(f"operation {op_id} is not one scheduled drill "
                                f"{execution_id} started")
            session.expunge(op)
        return op

    def ended(self, execution_id: str, op_id: str) -> dict:
        op = self.operation(execution_id, op_id)
        return {"ended": Status(op.status).finished, "status": op.status}

    def verify(self, execution_id: str, op_id: str) -> dict:
        """Keep the drill's report and check what it recovered: the drill completed, each
        server came up (and passed its gate), production still replicates, and the RPO
        and RTO met their targets. ``problems``: each one found, for people."""
        op = self.operation(execution_id, op_id)
        if not Status(op.status).finished:
            return {"passed": False, "problems": [f"drill {op_id} had not ended ({op.status}) "
                                                  "when the schedule stopped waiting"]}
        made = self.reports.of(op_id)
        problems = []
        for group in made.protection_groups:
            if group.status != Status.COMPLETED:
                problems.append(f"the drill {group.status} at {group.step}: {group.reason}")
            problems += [f"server {s.name} is {s.status or 'missing'}" for s in group.servers
                         if s.status != ACTIVE]
            problems += [f"server {s.name} did not pass its gate" for s in group.servers
                         if s.gate == "not passed"]
            if (group.production_replication or "").startswith("affected"):
                problems.append(f"production replication {group.production_replication}")
            for label, measured in (("RPO", group.rpo), ("RTO", group.rto)):
                if measured.met is False:
                    problems.append(f"{label} {measured.seconds:.0f} s over its "
                                    f"{measured.target_seconds} s target")
        return {"passed": not problems, "problems": problems}

    def finish(self, execution_id: str, problems: list[str]) -> dict:
        """The run's end: passed without ``problems``, else failed, as its audit entry and
        the group's metric say."""
        group = self.admit(execution_id)
        result = "failed" if problems else "passed"
        self._end(execution_id, group, result, problems)
        return {"result": result}

    def _end(self, execution_id: str, group: ProtectionGroup, result: str,
             problems: list[str]):
        with db.transaction(self.sessions) as session:
            run = session.get(ScheduledDrill, execution_id)
            if run is None:
                run = ScheduledDrill(execution_id=execution_id, group_id=group.id)
                session.add(run)
            if run.finished_at is not None:          # a retried last step: recorded once
                return
            run.result, run.problems = result, list(problems)
            run.finished_at = datetime.now(timezone.utc)
            audit.record_in(
                session, {"user": ACTOR, "roles": [], "execution_id": execution_id},
                "drill.scheduled", group.id, "recorded",
                f"scheduled drill of {group.name} {result}"
                + (f": {'; '.join(problems)}" if problems else ""),
                project=group.project,
                details={"execution_id": execution_id, "result": result,
                         "drill_operation_id": run.drill_operation_id,
                         "cleanup_operation_id": run.cleanup_operation_id})
        (log.warning if result == "failed" else log.info)(
            "scheduled drill %s of protection group %s %s%s", execution_id, group.name, result,
            f": {'; '.join(problems)}" if problems else "")
