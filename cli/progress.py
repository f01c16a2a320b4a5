"""``--wait``: follow an operation to its end, showing its progress on stderr.

A terminal gets a live bar; a log or a pipe gets one line per change, so a CI job's
output tells the same story. A drill ends with the lines the concept document promises
(its status, the test VMs' prefix, whether production replication was affected):
:func:`drill_outcome`, which the command prints.
"""

from __future__ import annotations

import sys
import time

from osc_lib import exceptions
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from site_recovery.core.model import FINISHED, OperationKind, Status

from .client import ProtectorError, ServiceUnreachable

FAILED = frozenset({Status.FAILED, Status.PARTIALLY_FAILED})
POLL_INTERVAL = 1.0
# What a drill's group results say, as the concept document words it.
DRILL_DETAILS = (("test_prefix", "Test VMs created with prefix"),
                 ("production_replication", "Production replication"))


def counts(operation: dict) -> str:
    return (f"{operation.get('completed_count') or 0}/"
            f"{operation.get('total_protection_groups') or 0} groups done, "
            f"{operation.get('failed_count') or 0} failed")


def summary(operation: dict) -> str:
    return (f"{operation.get('operation_type')} {operation['id']}: {operation['status']} "
            f"{operation.get('progress') or 0}% ({counts(operation)})")


def result_line(result: dict) -> str:
    """One group's outcome: where it stopped and why, when it did."""
    name = result.get("protection_group") or result.get("protection_group_id")
    line = f"{name}: {result.get('status')}"
    if result.get("step") and result.get("status") != Status.COMPLETED:
        line += f" at {result['step']}"
    if result.get("reason"):
        line += f": {result['reason']}"
    if result.get("rpo_achieved_seconds") is not None:
        line += f" (RPO achieved {result['rpo_achieved_seconds']} s)"
    return line


def detail_lines(result: dict) -> list[str]:
    """What a group's steps found (a drill: its test prefix and production's state)."""
    return [f"  {key}: {value}" for key, value in (result.get("details") or {}).items()]


def drill_outcome(operation: dict) -> list[str]:
    """A finished drill as the concept document shows it: its status, then for each group
    that completed its test VMs' prefix and whether production replication was affected
    (named by group when there are several)."""
    if operation.get("operation_type") != OperationKind.TEST_FAILOVER:
        return []
    lines = [f"Status: {operation['status']}"]
    results = operation.get("results") or []
    for result in results:
        if result.get("status") != Status.COMPLETED:
            continue
        name = "" if len(results) == 1 else \
            f"{result.get('protection_group') or result.get('protection_group_id')}: "
        details = result.get("details") or {}
        lines += [f"{name}{label}: {details[key]}" for key, label in DRILL_DETAILS
                  if key in details]
    return lines


def finished_results(operation: dict) -> list[str]:
    return [result_line(r) for r in operation.get("results") or []
            if r.get("status") in FINISHED]


class _Lines:
    """One line whenever the operation or one of its groups changes."""

    def __init__(self, stream):
        self.stream = stream
        self.seen: set[str] = set()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, operation: dict) -> None:
        for line in [summary(operation), *finished_results(operation)]:
            if line not in self.seen:
                self.seen.add(line)
                print(line, file=self.stream, flush=True)

    def note(self, message: str) -> None:
        print(message, file=self.stream, flush=True)


class _Bar:
    """A rich progress bar; each group's outcome is printed above it as it arrives."""

    def __init__(self, stream):
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
            console=Console(file=stream))
        self.task = None
        self.seen: set[str] = set()

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()
        return False

    def update(self, operation: dict) -> None:
        description = f"{operation.get('operation_type')} {operation['status']}"
        if self.task is None:
            self.task = self.progress.add_task(description, total=100, counts="")
        for line in finished_results(operation):
            if line not in self.seen:
                self.seen.add(line)
                self.progress.console.print(line, markup=False, highlight=False)
        self.progress.update(self.task, description=description,
                             completed=operation.get("progress") or 0,
                             counts=counts(operation))
        self.progress.refresh()

    def note(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)


def follow(client, operation: dict, *, timeout: float, interval: float | None = None,
           stream=None) -> dict:
    """Poll until the operation finishes; the operation goes on if we stop watching."""
    stream = stream or sys.stderr
    interval = POLL_INTERVAL if interval is None else interval
    hint = f"follow it with: openstack dr operation show {operation['id']}"
    deadline = time.monotonic() + timeout
    display = _Bar(stream) if stream.isatty() else _Lines(stream)
    with display:
        try:
            while True:
                display.update(operation)
                if operation["status"] in FINISHED:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise exceptions.CommandError(
                        f"operation {operation['id']} is still {operation['status']} after "
                        f"{timeout:g} s; it goes on without us: {hint}")
                time.sleep(min(interval, remaining))
                operation = _poll(client, operation, display)
        except KeyboardInterrupt:
            display.note(f"Stopped watching; operation {operation['id']} goes on: {hint}")
            raise
    return operation


def _poll(client, operation: dict, display) -> dict:
    """A site under stress may drop a poll; only a refusal ends the watch."""
    try:
        return client.get_operation(operation["id"])
    except ProtectorError as exc:
        if exc.status < 500:
            raise
        display.note(f"Polling failed, trying again: {exc}")
    except ServiceUnreachable as exc:
        display.note(f"Polling failed, trying again: {exc}")
    return operation
