"""``openstack protector site ...`` and ``... audit list``: what the service knows."""

from __future__ import annotations

from osc_lib.command import command

from . import common

SITE_FIELDS = ("name", "role", "state", "url", "since", "last_probe_at",
               "consecutive_failures", "last_error")


class ListSites(command.Lister):
    """List this site and its peer, with whether the peer answers."""

    def take_action(self, parsed_args):
        sites = self.app.client_manager.protector.list_sites()
        return common.listing(sites, (
            ("Name", "name"), ("Role", "role"), ("State", "state"), ("Since", "since"),
            ("URL", "url"), ("Last Error", "last_error")))


class ShowSite(command.ShowOne):
    """Show a site and its reachability."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("site", metavar="<site>", help="Site name")
        return parser

    def take_action(self, parsed_args):
        site = self.app.client_manager.protector.get_site(parsed_args.site)
        return common.show(site, SITE_FIELDS)


class ListAudit(command.Lister):
    """List the audit log, newest first: who changed or started what, and the outcome."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("--limit", metavar="<n>", type=int,
                            help="At most this many entries (the service's default: 100)")
        parser.add_argument("--marker", metavar="<entry-id>",
                            help="Start after this entry (the last one of the previous page)")
        common.add_all_projects(parser)
        return parser

    def take_action(self, parsed_args):
        entries = self.app.client_manager.protector.list_audit(
            limit=parsed_args.limit, marker=parsed_args.marker,
            all_projects=parsed_args.all_projects)
        columns = [("ID", "id"), ("At", "at"), ("Actor", "actor"), ("Action", "action"),
                   ("Target", "target"), ("Outcome", "outcome"), ("Reason", "reason")]
        if parsed_args.all_projects:
            columns.append(("Project", "project_name"))
        return common.listing(entries, tuple(columns), {"actor": common.ActorColumn})
