"""How a group's end is told from what its steps returned: the report a user reads in the
operation's result (timings in the order the steps ran, the recovery point and RPO,
findings cut to what the service keeps), or the step that failed and why."""

from __future__ import annotations

from types import SimpleNamespace

from mistral_lib import actions

from site_recovery.actions import dr
from site_recovery.core.model import ProgressReport
from site_recovery.core.outcome import StepEnd, group_report, step_result
from tests.unit.test_actions import in_workflow

LONG = "affected: " + "replication link fa-a -> fa-b is down; " * 10


def ended(name, result, succeeded=True, state_info=None):
    return StepEnd(name, succeeded, result, state_info)


def drill_steps():
    return [
        ended("build_stack", step_result({"stack_id": "s-1", "servers": 2},
                                         started_at="2026-11-25T10:00:03+00:00",
                                         seconds=4.25)),
        ended("recovery_point", step_result(
            {"name": "pure-b:pg.7", "rpo_seconds": 31.5},
            started_at="2026-11-25T10:00:01+00:00", seconds=0.1,
            reports={"recovery_point": "name", "rpo_achieved_seconds": "rpo_seconds"})),
        ended("import_volumes", step_result({"volumes": 2, "imported": 2},
                                            started_at="2026-11-25T10:00:02+00:00",
                                            seconds=1.0)),
        ended("production_check", step_result(
            {"test_prefix": "test-", "production_replication": LONG},
            started_at="2026-11-25T10:00:08+00:00", seconds=None,
            findings=("test_prefix", "production_replication")))]


def test_a_completed_drill_reports_its_phases_in_order_its_point_and_its_findings():
    report = group_report(drill_steps())
    assert (report["status"], report["step"]) == ("completed", "done")
    assert list(report["timings"].items()) == [
        ("recovery_point", 0.1), ("import_volumes", 1.0), ("build_stack", 4.25)]
    assert (report["recovery_point"], report["rpo_achieved_seconds"]) == ("pure-b:pg.7", 31.5)
    assert report["details"] == {"test_prefix": "test-", "production_replication": LONG[:255]}
    ProgressReport.model_validate(report)          # what the service accepts


def test_a_failed_step_is_named_with_the_actions_own_message():
    steps = [*drill_steps()[1:3],
             ended("build_stack", "build_stack: protection group web: stack dr-web "
                   "CREATE_FAILED: quota", succeeded=False)]
    report = group_report(steps)
    assert (report["status"], report["step"]) == ("failed", "build_stack")
    assert report["reason"].startswith("build_stack: protection group web: stack dr-web")
    assert set(report["timings"]) == {"recovery_point", "import_volumes"}


def test_a_step_mistral_timed_out_fails_with_mistral_s_reason():
    report = group_report([ended("import_volumes", None, succeeded=False,
                                 state_info="Task timed out [timeout=7200]")])
    assert (report["step"], report["reason"]) == ("import_volumes",
                                                  "Task timed out [timeout=7200]")


def test_finish_group_reports_once_and_tells_the_workflow_whether_to_fail(monkeypatch):
    reported = []
    service = SimpleNamespace(report=lambda execution_id, operation_id, **progress:
                              reported.append((execution_id, operation_id, progress)))
    monkeypatch.setattr(dr, "engine", lambda: SimpleNamespace(service=service))
    tasks = [["recovery_point", "SUCCESS", drill_steps()[1].result, None],
             ["import_volumes", "ERROR", "import_volumes: Cinder could not manage", None],
             ["report", "RUNNING", None, None]]
    result = dr.FinishGroup("g-1", tasks, operation_id="op-1").run(in_workflow("exec-1"))
    assert not isinstance(result, actions.Result)
    assert result == {"status": "failed", "failed": True}
    ((execution, operation, progress),) = reported
    assert (execution, operation, progress["protection_group_id"], progress["step"],
            progress["finished_is_fine"]) == ("exec-1", "op-1", "g-1", "import_volumes", True)
