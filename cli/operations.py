"""DR operations: how one is shown, followed, listed and retried."""

from __future__ import annotations

import abc
import json

from cliff import columns
from osc_lib import exceptions
from osc_lib.cli import format_columns
from osc_lib.command import command

from site_recovery.core.model import OperationKind, Status

from . import common, progress
from . import plan as plans

FIELDS = (
    "operation_type", "status", "total_protection_groups", "completed_count", "failed_count",
    "progress", "id", "protection_group", "site", "failover_type", "force", "peer_reachable",
    "recovery_point", "rpo_achieved_seconds", "error", "mistral_execution_id",
    "project_name", "requested_by", "params", "created_at", "started_at", "finished_at",
    "results",
)
DEFAULT_WAIT_TIMEOUT = 3600
REPORT_FORMATS = ("json", "html", "pdf")


class ResultsColumn(columns.FormattableColumn):
    """One line per group for people, with what its steps found below it; every field of
    every group for ``-f json``."""

    def human_readable(self):
        return "\n".join(line for r in self._value or []
                         for line in (progress.result_line(r), *progress.detail_lines(r)))


FORMATTERS = {"progress": common.PercentColumn, "results": ResultsColumn,
              "params": format_columns.DictColumn, "requested_by": common.ActorColumn}


def show_operation(operation: dict):
    return common.show(operation, FIELDS, FORMATTERS)


def add_operation(parser) -> None:
    common.add_named(parser, "operation", "<operation>", "Operation ID")


def add_wait(parser) -> None:
    parser.add_argument(
        "--wait", action="store_true",
        help="Follow the operation to its end, showing progress on stderr; exit "
             "non-zero if it failed")
    parser.add_argument(
        "--timeout", metavar="<seconds>", type=float, default=DEFAULT_WAIT_TIMEOUT,
        help=f"How long --wait waits (default {DEFAULT_WAIT_TIMEOUT}); the operation "
             "goes on after that")


class Outcome:
    """A command that shows an operation, following it with ``--wait``, and exits non-zero
    when it failed. A drill followed to its end shows what the concept document shows:
    its status, the test VMs' prefix and production replication's state, on stdout (for
    people; a program's ``-f json`` gets the operation, and those lines on stderr)."""

    outcome: dict

    def shown(self, operation: dict, parsed_args):
        if getattr(parsed_args, "wait", False):
            operation = progress.follow(self.client, operation, timeout=parsed_args.timeout,
                                        stream=self.app.stderr)
        self.outcome = operation
        return show_operation(operation)

    def produce_output(self, parsed_args, column_names, data):
        followed = getattr(parsed_args, "wait", False) and \
            self.outcome["status"] in progress.FINISHED
        lines = progress.drill_outcome(self.outcome) if followed else []
        if lines and parsed_args.formatter == "table":
            self.app.stdout.write("".join(f"{line}\n" for line in lines))
            return 0
        for line in lines:
            self.app.stderr.write(f"{line}\n")
        return super().produce_output(parsed_args, column_names, data)

    def run(self, parsed_args):
        super().run(parsed_args)
        if self.outcome["status"] not in progress.FAILED:
            return 0
        hint = ""
        if self.outcome.get("failed_count"):
            hint = f"; retry the failed groups: openstack dr operation retry {self.outcome['id']}"
        self.app.stderr.write(f"Operation {self.outcome['id']} {self.outcome['status']}"
                              f"{hint}\n")
        return 1


class ShowOperation(Outcome, common.ProtectorCommand, command.ShowOne):
    """Show a DR operation: its progress and each protection group's outcome; with
    --wait, re-attach to a running one and follow it to its end."""

    def arguments(self, parser):
        add_operation(parser)
        add_wait(parser)

    def take_action(self, parsed_args):
        return self.shown(self.client.get_operation(
            parsed_args.operation, all_projects=parsed_args.all_projects), parsed_args)

    def run(self, parsed_args):
        status = super().run(parsed_args)
        return status if parsed_args.wait else 0


class CancelOperation(Outcome, common.ProtectorCommand, command.ShowOne):
    """Cancel a running DR operation: it ends failed and its workflow stops; what it built
    stays, for a retry or a cleanup to continue from."""

    def arguments(self, parser):
        add_operation(parser)

    def take_action(self, parsed_args):
        return self.shown(self.client.cancel_operation(
            parsed_args.operation, all_projects=parsed_args.all_projects), parsed_args)

    def run(self, parsed_args):
        super().run(parsed_args)
        return 0


class ReportOperation(common.ProtectorCommand, command.Command):
    """Write a recovery's report: each group's recovery point, RPO and RTO against its
    targets, its recovered servers' boot times, production's replication, and a chart of
    RPO and RTO over the group's last drills (html and pdf)."""

    def arguments(self, parser):
        add_operation(parser)
        parser.add_argument("--format", dest="report_format", default="json",
                            choices=REPORT_FORMATS, help="json (the default), html or pdf")
        parser.add_argument("--output", metavar="<file>",
                            help="Write the report to this file instead of stdout")

    def take_action(self, parsed_args):
        if parsed_args.report_format == "pdf" and not parsed_args.output and \
                self.app.stdout.isatty():
            raise exceptions.CommandError("a PDF is not for a terminal: give --output <file> "
                                          "or redirect stdout")
        made = self.client.operation_report(parsed_args.operation, parsed_args.report_format,
                                            all_projects=parsed_args.all_projects)
        data = (json.dumps(made, indent=2) + "\n").encode() if isinstance(made, dict) \
            else made
        if parsed_args.output:
            with open(parsed_args.output, "wb") as out:
                out.write(data)
            self.app.stderr.write(f"Report of operation {parsed_args.operation} written to "
                                  f"{parsed_args.output}\n")
            return
        self.app.stdout.flush()
        stream = getattr(self.app.stdout, "buffer", None)
        if stream is None:
            self.app.stdout.write(data.decode("utf-8", "replace"))
        else:
            stream.write(data)
            stream.flush()


class ListOperations(common.ProtectorCommand, command.Lister):
    """List DR operations, newest first."""

    def arguments(self, parser):
        parser.add_argument("--status", choices=[s.value for s in Status],
                            help="Only operations in this status")
        parser.add_argument("--protection-group", metavar="<protection-group>",
                            help="Only operations of this protection group (name or ID)")
        common.add_all_projects(parser)

    def take_action(self, parsed_args):
        operations = self.client.list_operations(status=parsed_args.status,
                                                 group=parsed_args.protection_group,
                                                 all_projects=parsed_args.all_projects)
        return common.listing(operations, (
            ("ID", "id"), ("Type", "operation_type"), ("Status", "status"),
            ("Protection Group", "protection_group"), ("Site", "site"),
            ("Progress", "progress"), ("Failed", "failed_count"), ("Created At", "created_at"),
        ), FORMATTERS)


class OperationCommand(Outcome, common.ProtectorCommand, command.ShowOne):
    """Starts an operation, optionally follows it, and exits non-zero if it failed; with
    ``--dry-run`` (where :func:`add_dry_run` offers it), shows its plan instead and exits
    non-zero if the plan names a problem."""

    plan: dict | None = None

    def arguments(self, parser):
        add_wait(parser)
        parser.add_argument(
            "--idempotency-key", metavar="<key>",
            help="Repeating a request with the same key returns the operation it started "
                 "instead of starting another (default: a new key each time)")

    @abc.abstractmethod
    def start(self, client, parsed_args) -> dict:
        """Ask the service to start the operation; returns it as accepted."""

    def preview(self, client, parsed_args) -> dict:
        """Ask the service for the operation's plan (commands with ``--dry-run``)."""
        raise NotImplementedError

    def take_action(self, parsed_args):
        if getattr(parsed_args, "dry_run", False):
            self.plan = self.preview(self.client, parsed_args)
            return plans.show_plan(self.plan)
        return self.shown(self.start(self.client, parsed_args), parsed_args)

    def produce_output(self, parsed_args, column_names, data):
        if self.plan is not None:
            return command.ShowOne.produce_output(self, parsed_args, column_names, data)
        return super().produce_output(parsed_args, column_names, data)

    def run(self, parsed_args):
        if not getattr(parsed_args, "dry_run", False):
            return super().run(parsed_args)
        command.ShowOne.run(self, parsed_args)
        found = plans.problems(self.plan)
        if found:
            self.app.stderr.write(f"The plan names {found} problem(s) that would stop the "
                                  "recovery; nothing was started\n")
        return 1 if found else 0


def add_dry_run(parser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true",
        help="Show the plan (recovery point, volumes to copy, servers and their addresses, "
             "boot order, stack resources, problems) and start nothing; exit non-zero if "
             "it names a problem")


class GroupOperationCommand(OperationCommand):
    """An operation on one protection group: ``operation`` names it (and the client method
    that starts it); ``options`` adds what the subclass's own arguments ask for."""

    operation: OperationKind
    group_help = "Protection group (name or ID)"

    def arguments(self, parser):
        super().arguments(parser)
        common.add_group(parser, self.group_help)

    def options(self, parsed_args) -> dict:
        return {}

    def start(self, client, parsed_args):
        return client.start_operation(
            self.operation, parsed_args.group, all_projects=parsed_args.all_projects,
            idempotency_key=parsed_args.idempotency_key, **self.options(parsed_args))

    def preview(self, client, parsed_args):
        return client.plan_operation(self.operation, parsed_args.group,
                                     all_projects=parsed_args.all_projects,
                                     **self.options(parsed_args))


class RetryOperation(OperationCommand):
    """Retry a DR operation for the protection groups that failed."""

    def arguments(self, parser):
        super().arguments(parser)
        add_operation(parser)

    def start(self, client, parsed_args):
        return client.retry_operation(parsed_args.operation,
                                      all_projects=parsed_args.all_projects,
                                      idempotency_key=parsed_args.idempotency_key)
