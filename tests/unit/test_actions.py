"""The Mistral actions: a failure comes back as the action's error, naming the step and
the cause, never as a traceback; what Mistral needs to find them is registered."""

from __future__ import annotations

from importlib import metadata

from mistral_lib import actions

from site_recovery.actions import dr


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
