"""The DR runbooks as Mistral will read them: a versioned name, a workflow per operation,
group workflows that are their steps plus one report, and nothing Mistral's parser reads
differently from ours."""

from __future__ import annotations

import yaml

from site_recovery import workbooks
from site_recovery.core.model import STEP_TIMEOUT, OperationKind, PeerStepName

BOOK = yaml.safe_load(workbooks.dr().text)
GROUP_WORKFLOWS = {name: flow for name, flow in BOOK["workflows"].items()
                   if name.endswith("_group")}


def test_the_runbooks_carry_their_version_and_a_workflow_per_operation():
    assert (workbooks.dr().family, workbooks.dr().version) == ("site_recovery.dr", 1)
    assert BOOK["name"] == "site_recovery.dr.v1"
    for kind in OperationKind:
        assert kind.value in BOOK["workflows"], kind
        assert workbooks.workflow_name(kind) == f"site_recovery.dr.v1.{kind}"


def test_older_and_newer_names_are_told_apart():
    assert workbooks.family_and_version("site_recovery.dr") == ("site_recovery.dr", 0)
    assert workbooks.family_and_version("site_recovery.dr.v12") == ("site_recovery.dr", 12)


def test_mistral_reads_the_text_as_yaml_does():
    """Mistral's loader reads anchors and aliases as plain text: the workbook has none."""
    events = yaml.parse(workbooks.dr().text)
    assert not [e for e in events if getattr(e, "anchor", None)]


def test_every_group_workflow_is_its_steps_then_one_report_of_how_it_ended():
    assert set(GROUP_WORKFLOWS) == {"protect_group", "unprotect_group", "drill_group",
                                    "cleanup_group",
                                    "failover_group", "failback_group", "peer_step_group",
                                    "fence_group", "reprotect_group"}
    for name, flow in GROUP_WORKFLOWS.items():
        defaults, tasks = flow["task-defaults"], flow["tasks"]
        assert defaults == {"timeout": STEP_TIMEOUT, "on-error": ["report"]}, name
        assert tasks["report"]["action"] == "site_recovery.finish_group", name
        steps = [task for task in tasks if task != "report"]
        assert all("publish-on-error" not in tasks[task] for task in steps), name
        reaching_report = [task for task in steps
                           if "report" in (tasks[task].get("on-success") or [])]
        # A peer step is one step of several, each of which ends in the report.
        ends = set(PeerStepName) if name == "peer_step_group" else None
        assert (set(reaching_report) == ends) if ends else len(reaching_report) == 1, \
            (name, reaching_report)
