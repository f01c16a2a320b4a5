"""Recovery reports (:mod:`site_recovery.core.report`), made on the site the recovery ran
on and kept there once the operation ended.

A report reads each group's recovered stack (its resources from Heat, then each server
from Nova, as the DR account in the group's project) for its servers' boot times, so a
drill's report is kept before its cleanup removes them: the engine keeps one for each
recovery that ends (:meth:`Reports.keep_ended`), a scheduled drill keeps its own before
it cleans up, and the first reader of an ended operation keeps it otherwise.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timedelta, timezone

from heatclient import exc as heat_exc
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, sessionmaker

from site_recovery.core import report as reports
from site_recovery.core.clouds import Clouds
from site_recovery.core.config import ServiceConfig
from site_recovery.core.model import FINISHED, TOTAL, OperationKind, Purpose, Status
from site_recovery.core.plan import GroupPlan, PlanError
from site_recovery.core.stacks import stack_name

from . import db
from .errors import Conflict
from .models import Operation, OperationReport, OperationResult, ProtectionGroup
from .registry import group_document

log = logging.getLogger(__name__)
KEEP_WITHIN = timedelta(hours=1)     # the engine keeps the reports of what ended this recently
SERVER_TYPE = "OS::Nova::Server"
BUILT_STACK = (OperationKind.TEST_FAILOVER, OperationKind.FAILOVER,
               OperationKind.SITE_FAILOVER)


class Reports:
    def __init__(self, sessions: sessionmaker[Session], config: ServiceConfig, clouds: Clouds):
        self.sessions, self.config, self.clouds = sessions, config, clouds

    def of(self, op_id: str) -> reports.Report:
        """The operation's report: the one kept, else one made now (and kept, once the
        operation ended). A Conflict for an operation that recovers nothing."""
        with self.sessions() as session:
            kept = session.get(OperationReport, op_id)
            if kept is not None:
                return reports.Report.model_validate(kept.document)
            op = session.get(Operation, op_id, options=[joinedload(Operation.results)])
            kind = OperationKind(op.type)
            if not kind.recovers:
                raise Conflict(f"operation {op_id} is a {kind.label}: reports are made of "
                               "what recovers workloads (a test failover, a failover, a "
                               "failback, a site failover)")
            made = self._made(session, op, kind)
        if Status(made.status).finished:
            self._keep(made)
        return made

    def keep_ended(self, now: datetime | None = None) -> int:
        """The engine's duty: a report kept for each recovery that ended within the last
        hour without one. How many were kept."""
        since = (now or datetime.now(timezone.utc)) - KEEP_WITHIN
        with self.sessions() as session:
            waiting = session.scalars(select(Operation.id).where(
                Operation.type.in_([k.value for k in OperationKind if k.recovers]),
                Operation.status.in_(list(FINISHED)), Operation.finished_at >= since,
                ~select(OperationReport.operation_id).where(
                    OperationReport.operation_id == Operation.id).exists())).all()
        for op_id in waiting:
            self.of(op_id)
        return len(waiting)

    def _keep(self, made: reports.Report):
        try:
            with db.transaction(self.sessions) as session:
                session.add(OperationReport(operation_id=made.operation_id,
                                            made_at=made.made_at,
                                            document=made.model_dump(mode="json")))
        except IntegrityError:            # another worker kept it meanwhile: theirs stays
            pass

    def _made(self, session: Session, op: Operation, kind: OperationKind) -> reports.Report:
        completed = Status(op.status) == Status.COMPLETED
        groups = []
        for result in sorted(op.results, key=lambda r: r.group_name):
            group = session.get(ProtectionGroup, result.group_id)
            plan = group and GroupPlan(group_document(group))
            boots, note = self._boots(plan, kind, op.created_at,
                                      result.status == Status.COMPLETED or completed)
            groups.append(reports.group_report(
                group_id=result.group_id, name=result.group_name,
                project=f"{op.project_domain or (group and group.project_domain)}/"
                        f"{op.project_name or (group and group.project_name)}",
                result=_result(result),
                rpo_target=group and group.rpo_target_seconds,
                rto_target=group and group.rto_target_seconds,
                servers=boots, servers_note=note, drills=_drills(session, result.group_id)))
        return reports.Report(
            operation_id=op.id, operation_type=op.type, status=op.status,
            site=self.config.site, requested_by=op.requested_by.get("user"),
            scheduled=bool(op.requested_by.get("scheduled")), requested_at=op.created_at,
            finished_at=op.finished_at, made_at=datetime.now(timezone.utc),
            protection_groups=groups)

    def _boots(self, plan: GroupPlan | None, kind: OperationKind, requested_at: datetime,
               completed: bool) -> tuple[list[reports.ServerBoot], str | None]:
        """Each recovered server with Heat's times of it, and a note when there are none."""
        if plan is None:
            return [], "the protection group was deleted since: its servers are not known"
        try:
            servers = plan.servers
        except PlanError as exc:
            return [], f"its servers are not known: {exc}"
        purpose = Purpose.DRILL if kind is OperationKind.TEST_FAILOVER else Purpose.FAILOVER
        if kind not in BUILT_STACK:
            return reports.server_boots(servers, plan.gates, purpose, None, requested_at,
                                        completed), \
                f"a {kind.label} starts the group's own servers: no stack was built"
        name = stack_name(purpose, plan.name)
        try:
            found, note = self._recovered(plan, name), None
        except heat_exc.HTTPNotFound:
            found, note = None, (f"stack {name} is gone (cleaned up before this report was "
                                 "made): boot times are shown by reports made while it stood")
        except (heat_exc.BaseException, ks_exceptions.ClientException,
                sdk_exceptions.SDKException) as exc:
            found, note = None, f"{self.config.site}'s cloud could not be asked for stack " \
                f"{name}: {exc}"
        return reports.server_boots(servers, plan.gates, purpose, found, requested_at,
                                    completed), note

    def _recovered(self, plan: GroupPlan, name: str) -> dict[str, reports.RecoveredServer]:
        """The stack's servers by resource name: Heat lists them (one call), Nova tells
        each one's status, create and launch times (one call each)."""
        listed = self.clouds.heat(self.config.site, plan.project).resources.list(name)
        compute = self.clouds.connect(self.config.site, plan.project).compute
        found = {}
        for resource in listed:
            if resource.resource_type != SERVER_TYPE:
                continue
            server = None
            if resource.physical_resource_id:
                with contextlib.suppress(sdk_exceptions.NotFoundException):   # deleted
                    server = compute.get_server(resource.physical_resource_id)
            found[resource.resource_name] = reports.RecoveredServer(
                server.status, _when(server.created_at), _when(server.launched_at)) \
                if server is not None else reports.RecoveredServer(resource.resource_status)
        return found


def _result(result: OperationResult) -> dict:
    return {"status": result.status, "step": result.step, "reason": result.reason,
            "recovery_point": result.recovery_point,
            "rpo_achieved_seconds": result.rpo_achieved_seconds,
            "timings": result.timings, "details": result.details}


def _drills(session: Session, group_id: str) -> list[reports.DrillPoint]:
    """The group's last drills that ended, here."""
    rows = session.execute(
        select(OperationResult.operation_id, OperationResult.finished_at,
               OperationResult.status, OperationResult.rpo_achieved_seconds,
               OperationResult.timings)
        .join(Operation).where(Operation.type == OperationKind.TEST_FAILOVER,
                               OperationResult.group_id == group_id,
                               OperationResult.status.in_([Status.COMPLETED, Status.FAILED]),
                               OperationResult.finished_at.is_not(None))
        .order_by(OperationResult.finished_at.desc()).limit(reports.HISTORY)).all()
    return [reports.DrillPoint(operation_id=op_id, finished_at=finished, status=status,
                               rpo_seconds=rpo, rto_seconds=(timings or {}).get(TOTAL))
            for op_id, finished, status, rpo, timings in rows]


def _when(text: str | None) -> datetime | None:
    """Heat's timestamps (``2026-12-08T01:02:03Z``, UTC, sometimes without the zone)."""
    if not text:
        return None
    found = datetime.fromisoformat(text)
    return found if found.tzinfo else found.replace(tzinfo=timezone.utc)
