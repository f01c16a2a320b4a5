"""The DR steps as Mistral actions: thin adapters over :mod:`site_recovery.core.recovery`.

Each action reads this site's configuration (``$SITE_RECOVERY_CONFIG``) and tells the
protection service which step its group has reached; it acts only if the service answers
that its execution may (:meth:`site_recovery.webhook.lifecycle.Lifecycle.admit`): Mistral
lets any tenant run an installed action, ad hoc or from a workflow of its own, and these
hold the DR service's keys. Then it runs one step and returns a small JSON result carrying
its share of the group's report (:func:`~site_recovery.core.outcome.step_result`). A
failure is returned as the action's error, a message naming the group, the step and the
cause; the traceback goes to the executor's log only. How the group ended is reported
once, by :class:`FinishGroup`, from what its steps returned.
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from functools import lru_cache

from mistral_lib import actions

from site_recovery.core import outcome, recovery
from site_recovery.core.config import CONFIG_ENV, DEFAULT_CONFIG, load
from site_recovery.core.model import REASON_MAX, GroupStatus, Status
from site_recovery.core.service import NotAuthorized

LOG = logging.getLogger(__name__)
# Mistral's task states that end a step.
SUCCESS, ERROR = "SUCCESS", "ERROR"


@lru_cache(maxsize=4)
def _engine(path: str, modified: float) -> recovery.Engine:
    return recovery.Engine.from_config(load(path))


def engine() -> recovery.Engine:
    """This process's engine, made again when the configuration file changes."""
    path = os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)
    try:
        modified = os.stat(path).st_mtime
    except OSError:
        modified = 0.0
    return _engine(path, modified)


def execution_of(context) -> str | None:
    """The Mistral execution running this action (None: run ad hoc, by itself), as
    Mistral's executor tells it; the action's caller cannot choose it."""
    return getattr(getattr(context, "execution", None), "workflow_execution_id", None)


def step_key(context) -> str | None:
    """What makes one run of one task one peer step: Mistral's task execution (and its
    rerun), which stays the same when Mistral runs the action again for the task."""
    execution = getattr(context, "execution", None)
    task = getattr(execution, "task_execution_id", None)
    return f"{task}.{getattr(execution, 'task_rerun_no', 0) or 0}" if task else None


def _refused(action: str, exc: NotAuthorized) -> actions.Result:
    LOG.warning("%s refused: %s", action, exc)
    return actions.Result(error=f"{action}: refused, nothing done: {exc}")


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (recovery.StepFailed, ValueError)) else \
        f"{type(exc).__name__}: {text}"


class Step(actions.Action):
    """One DR step on one protection group: ``function``, a step of
    :mod:`site_recovery.core.recovery`, called with the engine, the group and the action's
    other arguments (a subclass's ``__init__`` names them, for Mistral to check).

    ``timed``: the step is a phase of the operation, whose duration the group's report
    shows; ``findings``: result keys that are for people; ``reports``: report fields the
    result gives (field -> result key)."""

    function: staticmethod
    timed = True
    findings: tuple[str, ...] = ()
    reports: dict[str, str] = {}

    def __init__(self, group_id: str, operation_id: str | None = None):
        super().__init__()       # Mistral sends the action to its executor as JSON
        self.group_id, self.operation_id = group_id, operation_id
        self.arguments: dict = {}

    @property
    def step(self) -> str:
        return self.function.__name__

    def run(self, context):
        started, started_at = time.monotonic(), datetime.now(timezone.utc).isoformat()
        try:
            dr = engine()
            operation = dr.service.report(execution_of(context), self.operation_id,
                                          protection_group_id=self.group_id,
                                          status=Status.RUNNING, step=self.step)
            result = self.function(dr.for_step(step_key(context), operation), self.group_id,
                                   **self.arguments)
        except NotAuthorized as exc:
            return _refused(self.step, exc)
        except Exception as exc:            # every failure becomes a message
            LOG.exception("step %s of group %s failed", self.step, self.group_id)
            return actions.Result(error=f"{self.step}: {_describe(exc)}")
        seconds = time.monotonic() - started if self.timed else None
        return outcome.step_result(result, started_at=started_at, seconds=seconds,
                                   findings=self.findings, reports=self.reports)

    def test(self, context):
        return {"step": self.step, outcome.SECONDS: 0.0}


class Protect(Step):
    """Check the members' volume types, then make the group replicate on the arrays."""

    function = staticmethod(recovery.protect)
    findings = ("array_group", "cinder_group")


class Unprotect(Step):
    """Stop the group replicating: on its primary site its Cinder group and its array
    pgroup or pod go, its volumes stay; on its DR site (a peer step) what reached that
    array. Nothing else is touched."""

    function = staticmethod(recovery.unprotect)
    findings = ("array_group", "cinder_group")


class Capture(Step):
    """Record what the DR site needs to rebuild each member."""

    function = staticmethod(recovery.capture)
    findings = ("servers", "volumes")


class StopServers(Step):
    """Stop the members (or, with ``copies``, their failover copies) on ``site``; with
    ``fence``, the members are locked too, to stay down while the group runs elsewhere."""

    function = staticmethod(recovery.stop_servers)
    findings = ("fence",)

    def __init__(self, group_id: str, site: str | None = None, copies: bool = False,
                 fence: bool = False, operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"site": site, "copies": copies, "fence": fence}


class Fence(Step):
    """Keep the group's original VMs down (stopped and locked) where they run, asking the
    peer's service for it when they run there; a peer that does not answer fences them
    itself once it is back, and the result says so (``fenced``)."""

    function = staticmethod(recovery.fence)
    findings = ("fence",)

    def __init__(self, group_id: str, ask_peer: bool = True, returned: bool = False,
                 operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"ask_peer": ask_peer, "returned": returned}


class StartServers(Step):
    """Start the members on the group's primary site (a failback: the workload is home)."""

    function = staticmethod(recovery.start_servers)


class ReverseReplication(Step):
    """Make the failover copies replicate back to the group's original site."""

    function = staticmethod(recovery.reverse_replication)


class Reprotect(Step):
    """On the site a group failed over to: its copies replicate home, so it is protected
    again and its failback is a planned move home."""

    function = staticmethod(recovery.reprotect)
    findings = ("replicating_to", "recovery_point")


class ResumeReplication(Step):
    """At home, a failback's end: the copies' replica let go, and a recovery point of
    what home holds now shipped to the DR site."""

    function = staticmethod(recovery.resume_replication)
    findings = ("replicating_to",)


class AcceptReplication(Step):
    """On the group's DR site: its array allows the group's replica in."""

    function = staticmethod(recovery.accept_replication)


class RestoreInPlace(Step):
    """Write recovery point ``point`` over the members' own volumes on the original site."""

    function = staticmethod(recovery.restore_in_place)

    def __init__(self, group_id: str, point: str, operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"point_name": point}


class Preflight(Step):
    """Before a recovery changes anything: every member captured, every mapping's target
    found on the DR site in the tenant's project (with a drill's ``network_mapping``)."""

    function = staticmethod(recovery.preflight)
    timed = False
    findings = ("servers", "networks", "security_groups")

    def __init__(self, group_id: str, network_mapping: dict | None = None,
                 operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"network_mapping": dict(network_mapping or {})}


class RecoveryPoint(Step):
    """The recovery point a recovery uses and the RPO it achieves: the newest fully
    replicated one, ``name``, or with ``replicate`` one taken and shipped now (RPO 0); for
    a ``purpose`` whose copies an earlier attempt left, theirs (a retry continues)."""

    function = staticmethod(recovery.recovery_point)
    reports = {"recovery_point": "name", "rpo_achieved_seconds": "rpo_seconds"}
    findings = ("point_created", "primary_lost_at")

    def __init__(self, group_id: str, operation_id: str | None = None,
                 replicate: bool = False, name: str | None = None,
                 purpose: str | None = None, lost_at: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"replicate": replicate, "name": name, "purpose": purpose,
                          "lost_at": lost_at}


class ImportVolumes(Step):
    """Copy ``point``'s volumes on the DR array and manage them into the DR site's Cinder,
    in the tenant's project, tagged with ``purpose`` (drill or failover)."""

    function = staticmethod(recovery.import_volumes)

    def __init__(self, group_id: str, purpose: str, point: str,
                 operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"purpose": purpose, "point_name": point}


class BuildStack(Step):
    """Create or finish the group's stack (``test-`` or ``dr-<group>``) on the DR site,
    with a drill's own ``network_mapping`` over the group's mappings."""

    function = staticmethod(recovery.build_stack)

    def __init__(self, group_id: str, purpose: str, network_mapping: dict | None = None,
                 operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"purpose": purpose, "network_mapping": dict(network_mapping or {})}


class ProductionCheck(Step):
    """After a drill: whether production still replicates as before (a finding, not a
    failure: the drill itself worked). A check after the recovery, not a phase of it."""

    function = staticmethod(recovery.production_check)
    timed = False
    findings = ("test_prefix", "production_replication")

    def __init__(self, group_id: str, point: str, operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"point_name": point}


class RemoveCopy(Step):
    """Delete what a drill (or an abandoned failover) built on ``site``: its stack, its
    volumes in Cinder and on the array, and nothing else."""

    function = staticmethod(recovery.remove_copy)

    def __init__(self, group_id: str, purpose: str, site: str | None = None,
                 operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"purpose": purpose, "site": site}


class TakeOver(Step):
    """This site (``site``) now runs the group: recorded on both sites, or here alone."""

    function = staticmethod(recovery.take_over)
    findings = ("fence",)

    def __init__(self, group_id: str, site: str, status: str = GroupStatus.FAILED_OVER,
                 fenced: bool = False, operation_id: str | None = None):
        super().__init__(group_id, operation_id)
        self.arguments = {"site": site, "status": status, "fenced": fenced}


class GroupsRunningHere(actions.Action):
    """The ids of the groups whose primary is this site (for the periodic capture)."""

    def run(self, context):
        try:
            dr = engine()
            dr.service.report(execution_of(context), status=Status.RUNNING)
            return {"ids": recovery.groups_running_here(dr)}
        except NotAuthorized as exc:
            return _refused("groups_running_here", exc)
        except Exception as exc:
            LOG.exception("listing this site's groups failed")
            return actions.Result(error=f"groups_running_here: {_describe(exc)}")

    def test(self, context):
        return {"ids": []}


class Report(actions.Action):
    """Progress of an operation, or of one group in it, to the protection service."""

    def __init__(self, operation_id: str | None, status: str,
                 protection_group_id: str | None = None, step: str | None = None,
                 reason: str | None = None, recovery_point: str | None = None,
                 rpo_achieved_seconds: float | None = None, timings: dict | None = None,
                 details: dict | None = None):
        super().__init__()
        self.operation_id = operation_id
        self.progress = {"status": status, "protection_group_id": protection_group_id,
                         "step": step, "reason": str(reason)[:REASON_MAX] if reason else None,
                         "recovery_point": recovery_point,
                         "rpo_achieved_seconds": rpo_achieved_seconds,
                         "timings": {k: float(v) for k, v in (timings or {}).items()
                                     if v is not None},
                         "details": outcome.cut_details(details or {})}

    def run(self, context):
        try:
            operation = engine().service.report(execution_of(context), self.operation_id,
                                                finished_is_fine=True, **self.progress)
        except NotAuthorized as exc:
            return _refused("report", exc)
        except Exception as exc:
            LOG.exception("progress report for operation %s failed", self.operation_id)
            return actions.Result(error=f"report: {_describe(exc)}")
        return {"operation_id": operation}

    def test(self, context):
        return {"operation_id": self.operation_id}


class FinishGroup(actions.Action):
    """How one group ended, reported from its workflow's tasks (``steps``: each task's
    name, state, result and state_info, as Mistral's ``tasks()`` gives them). Returns the
    group's status and whether it failed, so that its workflow can end failed too."""

    def __init__(self, group_id: str, steps: list, operation_id: str | None = None):
        super().__init__()       # Mistral sends the action to its executor as JSON
        self.group_id, self.operation_id, self.steps = group_id, operation_id, steps

    def _ends(self) -> list[outcome.StepEnd]:
        return [outcome.StepEnd(name, state == SUCCESS, result, state_info)
                for name, state, result, state_info in self.steps if state in (SUCCESS, ERROR)]

    def run(self, context):
        report = outcome.group_report(self._ends())
        try:
            engine().service.report(execution_of(context), self.operation_id,
                                    protection_group_id=self.group_id,
                                    finished_is_fine=True, **report)
        except NotAuthorized as exc:
            return _refused("finish_group", exc)
        except Exception as exc:
            LOG.exception("the end of group %s could not be reported", self.group_id)
            return actions.Result(error=f"finish_group: {_describe(exc)}")
        return _ended(report)

    def test(self, context):
        return _ended(outcome.group_report(self._ends()))


def _ended(report: dict) -> dict:
    return {"status": report["status"], "failed": report["status"] == Status.FAILED}


class ScheduledStep(actions.Action):
    """One step of a group's scheduled drill (the workflow ``scheduled_drill``, run by the
    group's cron trigger): the protection service does the work and answers for the run it
    is part of only, so the group is the run's, never the caller's choice."""

    name: str

    def call(self, service, execution_id: str | None) -> dict:
        raise NotImplementedError

    def run(self, context):
        try:
            return self.call(engine().service, execution_of(context))
        except NotAuthorized as exc:
            return _refused(self.name, exc)
        except Exception as exc:
            LOG.exception("scheduled drill step %s failed", self.name)
            return actions.Result(error=f"{self.name}: {_describe(exc)}")


class StartScheduled(ScheduledStep):
    """Start the run's drill (``test_failover``) or its cleanup (``test_cleanup``)."""

    name = "start_scheduled"

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def call(self, service, execution_id):
        return service.start_scheduled(execution_id, self.kind)

    def test(self, context):
        return {"operation_id": None, "skipped": "a test run starts nothing"}


class ScheduledOperation(ScheduledStep):
    """Whether the run's drill or cleanup ``operation_id`` ended (the workflow asks again
    until it has, by its retry policy)."""

    name = "scheduled_operation"

    def __init__(self, operation_id: str):
        super().__init__()
        self.operation_id = operation_id

    def call(self, service, execution_id):
        return service.scheduled_operation(execution_id, self.operation_id)

    def test(self, context):
        return {"ended": True, "status": Status.COMPLETED}


class VerifyScheduled(ScheduledStep):
    """Keep the drill's report and check it: every server up and through its gate,
    production still replicating, the RPO and RTO within their targets."""

    name = "verify_scheduled"

    def __init__(self, operation_id: str):
        super().__init__()
        self.operation_id = operation_id

    def call(self, service, execution_id):
        return service.verify_scheduled(execution_id, self.operation_id)

    def test(self, context):
        return {"passed": True, "problems": []}


class FinishScheduled(ScheduledStep):
    """How the run went, from its steps (``steps``: each task's name, state, result and
    state_info): recorded by the service, and the workflow fails when the run did."""

    name = "finish_scheduled"

    def __init__(self, steps: list):
        super().__init__()
        self.steps = steps

    def call(self, service, execution_id):
        problems = outcome.scheduled_problems(
            outcome.StepEnd(name, state == SUCCESS, result, state_info)
            for name, state, result, state_info in self.steps if state in (SUCCESS, ERROR))
        return {**service.finish_scheduled(execution_id, problems), "problems": problems,
                "failed": bool(problems)}

    def test(self, context):
        return {"result": "passed", "problems": [], "failed": False}
