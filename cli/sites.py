"""``openstack protector site ...`` and ``... audit list``: what the service knows."""

from __future__ import annotations

from osc_lib.command import command

from . import common

SITE_FIELDS = ("name", "role", "state", "url", "since", "last_probe_at",
               "consecutive_failures", "last_error")


class ListSites(common.ProtectorCommand, command.Lister):
    """List this site and its peer, with whether the peer answers."""

    def take_action(self, parsed_args):
        sites = self.client.list_sites()
        return common.listing(sites, (
            ("Name", "name"), ("Role", "role"), ("State", "state"), ("Since", "since"),
            ("URL", "url"), ("Last Error", "last_error")))


class ShowSite(common.ProtectorCommand, command.ShowOne):
    """Show a site and its reachability."""

    def arguments(self, parser):
        parser.add_argument("site", metavar="<site>", help="Site name")

    def take_action(self, parsed_args):
        return common.show(self.client.get_site(parsed_args.site), SITE_FIELDS)


class ListAudit(common.ProtectorCommand, command.Lister):
    """List the audit log, newest first: who changed or started what, and the outcome."""

    def arguments(self, parser):
        parser.add_argument("--limit", metavar="<n>", type=int,
                            help="At most this many entries (the service's default: 100)")
        parser.add_argument("--marker", metavar="<entry-id>",
                            help="Start after this entry (the last one of the previous page)")
        common.add_all_projects(parser)

    def take_action(self, parsed_args):
        entries = self.client.list_audit(limit=parsed_args.limit, marker=parsed_args.marker,
                                         all_projects=parsed_args.all_projects)
        columns = [("ID", "id"), ("At", "at"), ("Actor", "actor"), ("Action", "action"),
                   ("Target", "target"), ("Outcome", "outcome"), ("Reason", "reason")]
        return common.listing(entries, common.with_project(columns, parsed_args.all_projects,
                                                           at=len(columns)),
                              {"actor": common.ActorColumn})
