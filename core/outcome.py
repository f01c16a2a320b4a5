"""How a group ended, told from what its steps returned.

A group's workflow is its steps in order; when it ends, one report says how: completed
(step ``done``) or failed (the step that failed and why), with what the steps found for
people: how long each timed step took, the recovery point and the RPO it achieved, and
findings such as a drill's test prefix. Each step's result carries its share
(:func:`step_result`), so the report needs no knowledge of any particular step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .model import REASON_MAX, TEXT_MAX, Status

DONE = "done"                         # the step a completed group is reported at
SECONDS = "seconds"                   # a timed step's duration, in its result
STARTED = "started_at"                # when a step started (ISO 8601, UTC), in its result
OUTCOME = "outcome"                   # a step's share of the group's report, in its result


def step_result(result: Mapping, *, started_at: str, seconds: float | None,
                findings: Iterable[str] = (), reports: Mapping[str, str] | None = None
                ) -> dict:
    """A step's result as the workflow keeps it: what the step returned, when it started
    and how long it took (``seconds``; None for a check that is not a phase of the
    recovery), and its share of the group's report: ``findings`` (result keys, for
    people) and ``reports`` (report field -> result key)."""
    outcome = {field: result[key] for field, key in (reports or {}).items()}
    details = {key: result[key] for key in findings if result.get(key) is not None}
    if details:
        outcome["details"] = details
    timing = {} if seconds is None else {SECONDS: round(seconds, 3)}
    return {**result, STARTED: started_at, **timing, OUTCOME: outcome}


def cut_details(details: Mapping) -> dict[str, str]:
    """Findings as the protection service keeps them: text, at most TEXT_MAX long."""
    return {str(k): str(v)[:TEXT_MAX] for k, v in details.items() if v is not None}


@dataclass(frozen=True)
class StepEnd:
    """One step of a group's workflow as it ended: its name (the workflow's task), whether
    it succeeded, what it returned, and what Mistral said of it."""

    name: str
    succeeded: bool
    result: object = None
    state_info: str | None = None


def group_report(steps: Iterable[StepEnd]) -> dict:
    """The report of a group whose workflow has ended: the fields of a
    :class:`~.model.ProgressReport` for it."""
    steps = list(steps)
    report: dict = {"timings": {}, "details": {}}
    done = sorted((step for step in steps
                   if step.succeeded and isinstance(step.result, Mapping)),
                  key=lambda step: step.result.get(STARTED) or "")     # in the order run
    for step in done:
        if step.result.get(SECONDS) is not None:
            report["timings"][step.name] = float(step.result[SECONDS])
        outcome = dict(step.result.get(OUTCOME) or {})
        report["details"].update(cut_details(outcome.pop("details", {})))
        report.update(outcome)
    failed = next((step for step in steps if not step.succeeded), None)
    if failed is None:
        return {**report, "status": Status.COMPLETED, "step": DONE}
    reason = failed.result if isinstance(failed.result, str) and failed.result else (
        failed.state_info or "the step failed without saying why")
    return {**report, "status": Status.FAILED, "step": failed.name,
            "reason": str(reason)[:REASON_MAX]}


def scheduled_problems(steps: Iterable[StepEnd]) -> list[str]:
    """What went wrong in a scheduled drill's run, from its steps as they ended: the
    problems its verification found, a cleanup that did not complete, and every step that
    failed (with what Mistral said of it)."""
    problems = []
    for step in steps:
        result = step.result if isinstance(step.result, Mapping) else {}
        if not step.succeeded:
            said = step.result if isinstance(step.result, str) and step.result else \
                step.state_info or "failed without saying why"
            problems.append(f"{step.name}: {said}"[:REASON_MAX])
        elif step.name == "verify":
            problems += [str(p)[:REASON_MAX] for p in result.get("problems") or []]
        elif step.name == "wait_cleanup" and result.get("status") != Status.COMPLETED:
            problems.append(f"the cleanup {result.get('status') or 'did not end'}: what the "
                            "drill built may remain; run openstack dr test cleanup")
    return problems
