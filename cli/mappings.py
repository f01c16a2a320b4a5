"""``openstack protector mapping ...``: what a primary-site resource becomes on the DR site."""

from __future__ import annotations

from cliff import columns
from osc_lib.command import command

from site_recovery.core.model import MappingKind

from . import common

KINDS = tuple(kind.option for kind in MappingKind)
FIELDS = ("id", "kind", "source", "target", "protection_group_id", "project_name", "version")


def kind_argument(value: str) -> str:
    """Accept the API's spelling (security_group) as well as the CLI's."""
    return value.replace("_", "-")


class KindColumn(columns.FormattableColumn):
    """The CLI's spelling for people, the API's for ``-f json``."""

    def human_readable(self):
        return kind_argument(self._value or "")


FORMATTERS = {"kind": KindColumn}


class CreateMapping(command.ShowOne):
    """Map a primary-site resource to its DR-site equivalent."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("--kind", choices=KINDS, type=kind_argument, required=True,
                            help="What is mapped")
        parser.add_argument("--source", metavar="<source>", required=True,
                            help="The resource on the primary site (name, ID or address)")
        parser.add_argument("--target", metavar="<target>", required=True,
                            help="Its equivalent on the DR site")
        parser.add_argument("--protection-group", metavar="<protection-group>",
                            help="Only for this protection group (default: the whole project)")
        return parser

    def take_action(self, parsed_args):
        mapping = self.app.client_manager.protector.create_mapping(
            parsed_args.kind.replace("-", "_"), parsed_args.source, parsed_args.target,
            group=parsed_args.protection_group)
        return common.show(mapping, FIELDS, FORMATTERS)


class ListMappings(command.Lister):
    """List resource mappings."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("--protection-group", metavar="<protection-group>",
                            help="Only the mappings of this protection group (name or ID)")
        common.add_all_projects(parser)
        return parser

    def take_action(self, parsed_args):
        mappings = self.app.client_manager.protector.list_mappings(
            group=parsed_args.protection_group, all_projects=parsed_args.all_projects)
        columns = [("ID", "id"), ("Kind", "kind"), ("Source", "source"), ("Target", "target"),
                   ("Protection Group", "protection_group_id"), ("Version", "version")]
        if parsed_args.all_projects:
            columns.insert(1, ("Project", "project_name"))
        return common.listing(mappings, tuple(columns), FORMATTERS)


class ShowMapping(command.ShowOne):
    """Show a resource mapping."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("mapping", metavar="<mapping>", help="Mapping ID")
        common.add_all_projects(parser)
        return parser

    def take_action(self, parsed_args):
        mapping = self.app.client_manager.protector.get_mapping(
            parsed_args.mapping, all_projects=parsed_args.all_projects)
        return common.show(mapping, FIELDS, FORMATTERS)


class SetMapping(command.Command):
    """Change what a resource maps to, on both sites."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("mapping", metavar="<mapping>", help="Mapping ID")
        parser.add_argument("--target", metavar="<target>", required=True,
                            help="The new equivalent on the DR site")
        parser.add_argument("--expected-version", metavar="<version>", type=int,
                            help="Refuse the change if the mapping has changed since this "
                                 "version")
        common.add_all_projects(parser)
        return parser

    def take_action(self, parsed_args):
        self.app.client_manager.protector.update_mapping(
            parsed_args.mapping, parsed_args.target,
            expected_version=parsed_args.expected_version,
            all_projects=parsed_args.all_projects)


class DeleteMapping(command.Command):
    """Delete resource mappings on both sites."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        parser.add_argument("mappings", metavar="<mapping>", nargs="+",
                            help="Mapping ID(s) to delete")
        common.add_all_projects(parser)
        return parser

    def take_action(self, parsed_args):
        client = self.app.client_manager.protector
        common.delete_each(self.log, "resource mapping", parsed_args.mappings,
                           lambda mapping: client.delete_mapping(
                               mapping, all_projects=parsed_args.all_projects))
