"""The Mistral actions: a failure comes back as the action's error, naming the step and
the cause, never as a traceback; what Mistral needs to find them is registered."""

from __future__ import annotations

from importlib import metadata
from types import SimpleNamespace

from mistral_lib import actions
from mistral_lib.actions.context import ActionContext, ExecutionContext, SecurityContext

from site_recovery.actions import dr
from site_recovery.core.service import Protector
from site_recovery.webhook.schemas import ExecutionReport
from tests.unit.test_core_production_check import drilled


def in_workflow(execution_id: str = "exec-1") -> ActionContext:
    """The context Mistral's executor gives an action that a workflow runs."""
    return ActionContext(SecurityContext(project_id="svc"),
                         ExecutionContext(workflow_execution_id=execution_id))


class Service:
    """The protection service as an action reaches it: answers each report with
    ``answer`` (a status and a body), and remembers what it was sent."""

    def __init__(self, status: int = 200, answer: dict | None = None):
        self.sent, self.status = [], status
        self.answer = answer if answer is not None else {"operation_id": "op-1"}

    def request(self, path, method, json=None, **kwargs):
        self.sent.append((method, path, json))
        return SimpleNamespace(status_code=self.status, content=b"{}", text="",
                               json=lambda: self.answer if self.status < 300 else {
                                   "error": {"message": self.answer["message"]}})


def test_a_step_that_cannot_start_names_itself_and_why(tmp_path, monkeypatch):
    monkeypatch.setenv("SITE_RECOVERY_CONFIG", str(tmp_path / "missing.yaml"))
    result = dr.RecoveryPoint("0d6f3c52-9d1e-4a8e-8f0c-1b2a3c4d5e6f").run(context=None)
    assert isinstance(result, actions.Result) and result.is_error()
    assert result.error.startswith("recovery_point: cannot read configuration")
    assert "missing.yaml" in result.error


def test_every_step_of_the_workbook_is_a_registered_action():
    import yaml

    from site_recovery import workbooks

    registered = {e.name for e in metadata.entry_points(group="mistral.actions")}
    used = set()
    for text in workbooks.workbooks().values():
        for workflow in yaml.safe_load(text)["workflows"].values():
            used.update(task["action"].split()[0] for task in workflow["tasks"].values()
                        if "action" in task)
    ours = {name for name in used if name.startswith("site_recovery.")}
    assert ours and ours <= registered
    assert used - ours <= {"std.noop"}


def test_every_operation_the_service_starts_is_a_workflow_taking_the_services_input():
    """Mistral refuses an execution whose input names a key the workflow lacks: the
    service's start would fail as "never started"."""
    import yaml

    from site_recovery import workbooks
    from site_recovery.core.config import WorkflowsConfig
    from site_recovery.lab.stand_in import INPUTS

    defined = {}
    for text in workbooks.workbooks().values():
        book = yaml.safe_load(text)
        for name, workflow in book["workflows"].items():
            defined[f"{book['name']}.{name}"] = {
                next(iter(i)) if isinstance(i, dict) else i for i in workflow.get("input", [])}
    for kind, workflow in WorkflowsConfig().model_dump().items():
        assert workflow in defined, f"{kind}: no workflow {workflow}"
        assert set(INPUTS) <= defined[workflow], (kind, set(INPUTS) - defined[workflow])


def test_a_drill_whose_production_check_finds_a_problem_still_succeeds_and_says_so(
        fabric, mock, monkeypatch):
    engine, group, _, point = drilled(fabric, mock)
    service = Service()
    engine.service.report = Protector(service).report
    monkeypatch.setattr(dr, "engine", lambda: engine)
    fabric.set_link("fa-a", "fa-b", up=False)
    result = dr.ProductionCheck(group, point, operation_id="op-1").run(in_workflow())
    assert not isinstance(result, actions.Result)
    assert result["test_prefix"] == "test-"
    assert result["production_replication"].startswith(
        "affected: replication link fa-a -> fa-b is down")
    assert service.sent == [("POST", "internal/executions/exec-1/progress", {
        "operation_id": "op-1", "protection_group_id": group, "status": "running",
        "step": "production_check"})]


def test_a_step_run_ad_hoc_is_refused_before_it_asks_or_touches_anything(fabric, mock,
                                                                        monkeypatch):
    """``openstack action execution run site_recovery.recovery_point ...``: Mistral gives
    the action no workflow execution; it refuses without a call to anyone."""
    engine, group, spec, _ = drilled(fabric, mock)
    service = Service()
    engine.service.report = Protector(service).report
    monkeypatch.setattr(dr, "engine", lambda: engine)
    before = mock.recovery_points(spec)
    for context in (None, ActionContext(SecurityContext(project_id="tenant"),
                                        ExecutionContext())):
        result = dr.RecoveryPoint(group, replicate=True).run(context)
        assert isinstance(result, actions.Result) and result.is_error()
        assert result.error.startswith("recovery_point: refused, nothing done: not run by "
                                       "a workflow")
    assert service.sent == []
    assert mock.recovery_points(spec) == before, "no replication was started"


def test_a_step_the_service_refuses_does_nothing(fabric, mock, monkeypatch):
    """A tenant's own workflow calling the action: the service answers 403."""
    engine, group, spec, _ = drilled(fabric, mock)
    service = Service(403, {"message": "execution exec-9 is not one of the DR service's"})
    engine.service.report = Protector(service).report
    monkeypatch.setattr(dr, "engine", lambda: engine)
    before = mock.recovery_points(spec)
    result = dr.RecoveryPoint(group, replicate=True).run(in_workflow("exec-9"))
    assert isinstance(result, actions.Result) and result.is_error()
    assert "refused, nothing done" in result.error and "exec-9" in result.error
    assert mock.recovery_points(spec) == before


def test_a_drills_findings_reach_the_service_cut_to_what_it_stores(monkeypatch):
    service = Service()
    monkeypatch.setattr(dr, "engine", lambda: SimpleNamespace(service=Protector(service)))
    finding = "affected: " + "replication link fa-a -> fa-b is down; " * 10
    assert dr.Report("op-1", "completed", protection_group_id="g", step="done", details={
        "test_prefix": "test-", "production_replication": finding}).run(in_workflow()) == {
        "operation_id": "op-1"}
    ((_, _, progress),) = service.sent
    assert progress["details"] == {"test_prefix": "test-",
                                   "production_replication": finding[:255]}
    # what the protection service accepts (it refuses a longer text)
    ExecutionReport.model_validate(progress)
