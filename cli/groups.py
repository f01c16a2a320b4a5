"""``openstack protector protection-group ...`` (protect among them) and ``... member ...``."""

from __future__ import annotations

from cliff import columns
from osc_lib import exceptions
from osc_lib.command import command

from site_recovery.core.model import OperationKind, ReplicationType

from . import common, progress
from .operations import GroupOperationCommand, add_wait

FIELDS = ("id", "name", "description", "project_name", "replication_type", "primary_site",
          "secondary_site", "volume_type", "rpo_target_seconds", "rto_target_seconds",
          "priority", "status", "version", "member_count", "created_at", "updated_at", "conflict",
          "fence", "last_recovery_point", "ready", "rto_estimate_seconds", "drill_schedule",
          "drill_network")
MEMBER_FIELDS = ("id", "server_id", "server_name", "position", "captured_at", "boot_tier",
                 "gate")


def add_rto_target(parser) -> None:
    parser.add_argument("--rto-target", metavar="<seconds>", type=int,
                        help="Longest acceptable recovery, in seconds from the request to "
                             "the VMs running; a recovery over it says so, and readiness "
                             "compares the last drill with it")


def add_priority(parser) -> None:
    parser.add_argument("--priority", metavar="<priority>", type=int,
                        help="0 to 1000 (default 0): in a site failover, groups of a higher "
                             "priority start first")


def add_drill_schedule(parser, *, clearable: bool = False) -> None:
    parser.add_argument("--drill-schedule", metavar="<cron>",
                        help="Drill the group by itself on this cron schedule (five fields, "
                             "UTC, e.g. '0 3 * * 6'): its DR site runs the drill, keeps and "
                             "checks its report, cleans up, and records how it went")
    parser.add_argument("--drill-network", metavar="<network>",
                        help="Network of the DR site (name or ID) that a scheduled drill "
                             "recovers every mapped network onto (default: the mappings)")
    if clearable:
        parser.add_argument("--no-drill-schedule", action="store_true",
                            help="Stop drilling the group by schedule")
        parser.add_argument("--no-drill-network", action="store_true",
                            help="Scheduled drills use the group's mappings again")


def drill_fields(parsed_args) -> dict:
    """The drill schedule options given, as the API takes them (a cleared one as null)."""
    fields = {}
    for field, cleared in (("drill_schedule", "no_drill_schedule"),
                           ("drill_network", "no_drill_network")):
        value = getattr(parsed_args, field)
        if getattr(parsed_args, cleared, False):
            if value is not None:
                raise exceptions.CommandError(f"--{field.replace('_', '-')} and "
                                              f"--{cleared.replace('_', '-')} contradict "
                                              "each other")
            fields[field] = None
        elif value is not None:
            fields[field] = value
    return fields


class CreateGroup(common.ProtectorCommand, command.ShowOne):
    """Create a protection group: VMs recovered together, on one replicated volume type."""

    def arguments(self, parser):
        parser.add_argument("--name", metavar="<name>", required=True,
                            help="Name, unique in the project")
        parser.add_argument("--replication-type", choices=[t.value for t in ReplicationType],
                            required=True,
                            help="async: periodic snapshots, RPO = replication lag; "
                                 "sync: ActiveCluster, RPO 0")
        parser.add_argument("--primary-site", metavar="<site>", required=True,
                            help="Site where the VMs run")
        parser.add_argument("--secondary-site", metavar="<site>", required=True,
                            help="Site where they are recovered")
        parser.add_argument("--volume-type", metavar="<volume-type>", required=True,
                            help="Replication-enabled Cinder volume type of the members' "
                                 "volumes (name or ID)")
        parser.add_argument("--description", metavar="<description>")
        parser.add_argument("--rpo-target", metavar="<seconds>", type=int,
                            help="Largest acceptable data loss, in seconds")
        add_rto_target(parser)
        add_priority(parser)
        add_drill_schedule(parser)

    def take_action(self, parsed_args):
        fields = {"name": parsed_args.name, "replication_type": parsed_args.replication_type,
                  "primary_site": parsed_args.primary_site,
                  "secondary_site": parsed_args.secondary_site,
                  "volume_type": parsed_args.volume_type}
        if parsed_args.description is not None:
            fields["description"] = parsed_args.description
        if parsed_args.rpo_target is not None:
            fields["rpo_target_seconds"] = parsed_args.rpo_target
        if parsed_args.rto_target is not None:
            fields["rto_target_seconds"] = parsed_args.rto_target
        if parsed_args.priority is not None:
            fields["priority"] = parsed_args.priority
        fields.update(drill_fields(parsed_args))
        return common.show(self.client.create_group(**fields), FIELDS)


class ListGroups(common.ProtectorCommand, command.Lister):
    """List protection groups."""

    def arguments(self, parser):
        common.add_all_projects(parser)

    def take_action(self, parsed_args):
        groups = self.client.list_groups(all_projects=parsed_args.all_projects)
        return common.listing(groups, common.with_project(
            [("ID", "id"), ("Name", "name"), ("Replication Type", "replication_type"),
             ("Primary Site", "primary_site"), ("Secondary Site", "secondary_site"),
             ("Status", "status"), ("Members", "member_count"), ("Ready", "ready")],
            parsed_args.all_projects, at=2), formatters={"ready": ReadyColumn})


class ReadyColumn(columns.FormattableColumn):
    """A group's last readiness verdict, known on its DR site once checked: ``ready``,
    ``NOT READY`` or ``-`` for people; true, false or null for ``-f json``."""

    def human_readable(self):
        return {True: "ready", False: "NOT READY"}.get(self._value, "-")


class ShowGroup(common.ProtectorCommand, command.ShowOne):
    """Show a protection group."""

    def arguments(self, parser):
        common.add_group(parser)

    def take_action(self, parsed_args):
        return common.show(self.client.get_group(parsed_args.group,
                                                 all_projects=parsed_args.all_projects), FIELDS)


class GroupReadiness(common.ProtectorCommand, command.Lister):
    """Show whether a protection group would recover now, each check with what to do
    (ask the group's DR site: its secondary)."""

    def arguments(self, parser):
        common.add_group(parser)
        parser.add_argument("--refresh", action="store_true",
                            help="Check now rather than show the engine's last check")

    def take_action(self, parsed_args):
        ask = self.client.check_readiness if parsed_args.refresh else \
            self.client.get_readiness
        found = ask(parsed_args.group, all_projects=parsed_args.all_projects)
        if found is None:
            raise exceptions.CommandError(
                f"protection group {parsed_args.group} has not been checked yet; "
                "--refresh checks it now")
        self.app.stderr.write(f"{'ready' if found['ready'] else 'NOT READY'} "
                              f"(checked {found['checked_at']})\n")
        return common.listing(
            [{**f, "result": "ok" if f["ok"] else f["severity"]} for f in found["findings"]],
            (("Check", "check"), ("Result", "result"), ("Detail", "detail"),
             ("What to do", "remedy")))


class SetGroup(common.ProtectorCommand, command.Command):
    """Change a protection group on both sites."""

    def arguments(self, parser):
        common.add_group(parser)
        parser.add_argument("--name", metavar="<name>", help="New name")
        parser.add_argument("--description", metavar="<description>")
        parser.add_argument("--volume-type", metavar="<volume-type>")
        parser.add_argument("--rpo-target", metavar="<seconds>", type=int)
        add_rto_target(parser)
        add_priority(parser)
        add_drill_schedule(parser, clearable=True)
        parser.add_argument("--expected-version", metavar="<version>", type=int,
                            help="Refuse the change if the group has changed since this "
                                 "version (see 'show')")

    def take_action(self, parsed_args):
        fields = {key: value for key, value in (
            ("name", parsed_args.name), ("description", parsed_args.description),
            ("volume_type", parsed_args.volume_type),
            ("rpo_target_seconds", parsed_args.rpo_target),
            ("rto_target_seconds", parsed_args.rto_target),
            ("priority", parsed_args.priority)) if value is not None}
        fields.update(drill_fields(parsed_args))
        if not fields:
            raise exceptions.CommandError(
                "nothing to change: give --name, --description, --volume-type, --rpo-target, "
                "--rto-target, --priority, --drill-schedule or --drill-network (or their "
                "--no- forms)")
        if parsed_args.expected_version is not None:
            fields["version"] = parsed_args.expected_version
        self.client.update_group(parsed_args.group, all_projects=parsed_args.all_projects,
                                 **fields)


class ResolveGroup(common.ProtectorCommand, command.ShowOne):
    """Keep one of a diverged group's two copies (status conflict) on both sites: the
    copy of the site named. The other stays in the audit log and the divergence record."""

    def arguments(self, parser):
        common.add_group(parser)
        parser.add_argument("--keep", metavar="<site>", required=True,
                            help="Site whose copy to keep (see 'show': conflict)")

    def take_action(self, parsed_args):
        return common.show(self.client.resolve_group(
            parsed_args.group, parsed_args.keep, all_projects=parsed_args.all_projects),
            FIELDS)


class DeleteGroup(common.DeleteCommand):
    """Delete protection groups on both sites. A group that may still replicate (not
    unprotected) is refused: unprotect it first, or --force."""

    noun, metavar = "protection group", "<protection-group>"
    names_help = "Protection group(s) to delete (name or ID)"

    def arguments(self, parser):
        super().arguments(parser)
        parser.add_argument("--force", action="store_true",
                            help="Delete a group that is not unprotected too, leaving its "
                                 "replication (Cinder group, array pgroup or pod) in place")

    def take_action(self, parsed_args):
        self.force = parsed_args.force
        super().take_action(parsed_args)

    def delete(self, name, all_projects):
        self.client.delete_group(name, all_projects=all_projects, force=self.force)


class ProtectGroup(GroupOperationCommand):
    """Protect a protection group: make its volumes replicate to the secondary site and
    capture its VMs. Run it against the group's primary site (the cloud its VMs run on)."""

    operation = OperationKind.PROTECT


class UnprotectGroup(GroupOperationCommand):
    """Unprotect a protection group: its Cinder group and its array pgroup or pod are
    removed on both sites and replication stops; its VMs and volumes are not touched.
    Run it against the group's primary site; a failed-over group is failed back first."""

    operation = OperationKind.UNPROTECT


class MemberChange(common.ProtectorCommand):
    """A member change, which on a protected group starts a protect so its replication
    follows the members: said on stderr, followed to its end with --wait. A protect that
    failed or could not start fails the command (the change itself is made)."""

    def arguments(self, parser):
        common.add_group(parser)
        parser.add_argument("server_id", metavar="<server-id>", help="Server ID")
        add_wait(parser)

    def followed(self, answer: dict, parsed_args) -> int:
        operation, say = answer.get("operation"), self.app.stderr.write
        if operation is None:
            if answer.get("protect"):
                say(f"Protect {answer['protect']}\n")
                return 1
            return 0
        if parsed_args.wait:
            operation = progress.follow(self.client, operation, timeout=parsed_args.timeout,
                                        stream=self.app.stderr)
        else:
            say(f"Protect {operation['id']} started, so that replication follows the "
                f"members; follow it: openstack protector operation show {operation['id']} "
                "--wait\n")
        if operation["status"] in progress.FAILED:
            say(f"Protect {operation['id']} {operation['status']}; retry it: openstack "
                f"protector operation retry {operation['id']}\n")
            return 1
        return 0


class AddMember(MemberChange, command.ShowOne):
    """Add a server to a protection group. To a protected group once its volumes replicate
    the group's way: a protect then puts them in replication and captures the server."""

    def arguments(self, parser):
        super().arguments(parser)
        parser.add_argument("--server-name", metavar="<name>",
                            help="Server name to record with it")

    def take_action(self, parsed_args):
        answer = self.client.add_member(
            parsed_args.group, parsed_args.server_id, server_name=parsed_args.server_name,
            all_projects=parsed_args.all_projects)
        self.protect_failed = self.followed(answer, parsed_args)
        return common.show(answer["member"], MEMBER_FIELDS)

    def run(self, parsed_args):
        return super().run(parsed_args) or self.protect_failed


class ListMembers(common.ProtectorCommand, command.Lister):
    """List the servers of a protection group, in boot order."""

    def arguments(self, parser):
        common.add_group(parser)

    def take_action(self, parsed_args):
        members = self.client.list_members(parsed_args.group,
                                           all_projects=parsed_args.all_projects)
        return common.listing(members, (
            ("Position", "position"), ("Server ID", "server_id"),
            ("Server Name", "server_name"), ("Captured At", "captured_at"),
            ("Boot Tier", "boot_tier"), ("Gate", "gate")), {"gate": GateColumn})


class GateColumn(columns.FormattableColumn):
    """``console shows 'ready' (300 s)`` for people; the gate itself for ``-f json``."""

    def human_readable(self):
        if not self._value:
            return ""
        return f"console shows {self._value['console_marker']!r} " \
            f"({self._value.get('timeout_seconds', 300)} s)"


class SetMember(common.ProtectorCommand, command.ShowOne):
    """Set how a member boots in its group's recoveries: its boot tier (lower first) and
    the gate it must pass before the next tier starts (its console log showing a
    marker), on both sites."""

    def arguments(self, parser):
        common.add_group(parser)
        parser.add_argument("server_id", metavar="<server-id>", help="Server ID")
        tier = parser.add_mutually_exclusive_group()
        tier.add_argument("--boot-tier", metavar="<tier>", type=int,
                          help="Boot tier, 0 to 99: every server of a tier boots before "
                               "any of the next")
        tier.add_argument("--no-boot-tier", action="store_true",
                          help="Let the server's 'tier' metadata decide (db, app, web, "
                               "then the rest)")
        gate = parser.add_mutually_exclusive_group()
        gate.add_argument("--gate-console-marker", metavar="<text>",
                          help="Text the recovered server's console log must show before "
                               "the next tier starts")
        gate.add_argument("--no-gate", action="store_true", help="Remove the gate")
        parser.add_argument("--gate-timeout", metavar="<seconds>", type=int, default=300,
                            help="How long the gate waits for the marker (default 300); "
                                 "then the recovery fails, naming the server")

    def take_action(self, parsed_args):
        fields = {}
        if parsed_args.boot_tier is not None or parsed_args.no_boot_tier:
            fields["boot_tier"] = parsed_args.boot_tier
        if parsed_args.gate_console_marker is not None:
            fields["gate"] = {"console_marker": parsed_args.gate_console_marker,
                              "timeout_seconds": parsed_args.gate_timeout}
        elif parsed_args.no_gate:
            fields["gate"] = None
        if not fields:
            raise exceptions.CommandError(
                "nothing to change: give --boot-tier, --no-boot-tier, --gate-console-marker "
                "or --no-gate")
        member = self.client.set_member(parsed_args.group, parsed_args.server_id,
                                        all_projects=parsed_args.all_projects, **fields)
        return common.show(member, MEMBER_FIELDS, {"gate": GateColumn})


class RemoveMember(MemberChange, command.Command):
    """Remove a server from a protection group. From a protected group (on its primary
    site), a protect then takes its volumes out of replication; they are not touched."""

    def take_action(self, parsed_args):
        answer = self.client.remove_member(parsed_args.group, parsed_args.server_id,
                                           all_projects=parsed_args.all_projects)
        return self.followed(answer, parsed_args)
