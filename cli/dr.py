"""``openstack dr ...``: drills, failover and failback of protection groups and sites."""

from __future__ import annotations

from site_recovery.core.model import FailoverType, OperationKind

from . import common
from .operations import GroupOperationCommand, OperationCommand, add_dry_run

FAILOVER_TYPES = tuple(t.value for t in FailoverType)


def add_failover_type(parser):
    parser.add_argument(
        "--failover-type", choices=FAILOVER_TYPES, required=True,
        help="planned: the primary site is up; its VMs are stopped and replicated one last "
             "time. unplanned: the primary site is lost; recover from the newest recovery "
             "point (needs --force)")
    parser.add_argument(
        "--force", action="store_true",
        help="Fail over unplanned and accept its data loss (the replication lag); while "
             "the primary site still answers, its VMs are stopped and locked first")


class TestFailover(GroupOperationCommand):
    """Run a DR drill: recover a protection group on the DR site without touching
    production, and follow it to its end (``--no-wait``: return once it is accepted)."""

    operation = OperationKind.TEST_FAILOVER
    group_help = ("Protection group (name or ID); a group named 'cleanup', or a prefix of it, "
                  "goes after '--'")

    def arguments(self, parser):
        super().arguments(parser)
        parser.set_defaults(wait=True)
        parser.add_argument("--no-wait", dest="wait", action="store_false",
                            help="Return once the drill is accepted; follow it with "
                                 "'openstack dr operation show <id> --wait'")
        common.add_network_mapping(parser)
        parser.add_argument("--recovery-point", metavar="<recovery-point>",
                            help="Recovery point to recover (default: the newest one fully "
                                 "replicated)")
        add_dry_run(parser)

    def options(self, parsed_args):
        return {"network_mapping": parsed_args.network_mapping,
                "recovery_point": parsed_args.recovery_point}


class TestCleanup(GroupOperationCommand):
    """Remove everything a DR drill created for a protection group."""

    operation = OperationKind.TEST_CLEANUP


class Failover(GroupOperationCommand):
    """Fail a protection group over to its secondary site."""

    operation = OperationKind.FAILOVER

    def arguments(self, parser):
        super().arguments(parser)
        add_failover_type(parser)
        common.add_network_mapping(parser)
        add_dry_run(parser)

    def options(self, parsed_args):
        return {"failover_type": parsed_args.failover_type, "force": parsed_args.force,
                "network_mapping": parsed_args.network_mapping}


class Failback(GroupOperationCommand):
    """Bring a failed-over protection group back to its original site."""

    operation = OperationKind.FAILBACK


class Reprotect(GroupOperationCommand):
    """Protect a failed-over protection group again where it now runs, once its original
    site is back: its copies replicate home, so its failback is a planned move home."""

    operation = OperationKind.REPROTECT


class SiteFailover(OperationCommand):
    """Fail every protection group of a failed site over to this site (dr_site_admin)."""

    def arguments(self, parser):
        super().arguments(parser)
        parser.add_argument("site", metavar="<site>", help="The site that failed")
        add_failover_type(parser)
        add_dry_run(parser)

    def start(self, client, parsed_args):
        return client.site_failover(parsed_args.site, parsed_args.failover_type,
                                    force=parsed_args.force,
                                    idempotency_key=parsed_args.idempotency_key)

    def preview(self, client, parsed_args):
        return client.plan_site_failover(parsed_args.site, parsed_args.failover_type,
                                         force=parsed_args.force)
