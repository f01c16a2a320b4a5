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


def add_mapping(parser) -> None:
    common.add_named(parser, "mapping", "<mapping>", "Mapping ID")


class CreateMapping(common.ProtectorCommand, command.ShowOne):
    """Map a primary-site resource to its DR-site equivalent."""

    def arguments(self, parser):
        parser.add_argument("--kind", choices=KINDS, type=kind_argument, required=True,
                            help="What is mapped")
        parser.add_argument("--source", metavar="<source>", required=True,
                            help="The resource on the primary site (name, ID, address "
                                 "range or availability zone)")
        parser.add_argument("--target", metavar="<target>", required=True,
                            help="Its equivalent on the DR site")
        parser.add_argument("--protection-group", metavar="<protection-group>",
                            help="Only for this protection group (default: the whole project)")

    def take_action(self, parsed_args):
        mapping = self.client.create_mapping(
            parsed_args.kind.replace("-", "_"), parsed_args.source, parsed_args.target,
            group=parsed_args.protection_group)
        return common.show(mapping, FIELDS, FORMATTERS)


class ListMappings(common.ProtectorCommand, command.Lister):
    """List resource mappings."""

    def arguments(self, parser):
        parser.add_argument("--protection-group", metavar="<protection-group>",
                            help="Only the mappings of this protection group (name or ID)")
        common.add_all_projects(parser)

    def take_action(self, parsed_args):
        mappings = self.client.list_mappings(group=parsed_args.protection_group,
                                             all_projects=parsed_args.all_projects)
        return common.listing(mappings, common.with_project(
            [("ID", "id"), ("Kind", "kind"), ("Source", "source"), ("Target", "target"),
             ("Protection Group", "protection_group_id"), ("Version", "version")],
            parsed_args.all_projects, at=1), FORMATTERS)


class ShowMapping(common.ProtectorCommand, command.ShowOne):
    """Show a resource mapping."""

    def arguments(self, parser):
        add_mapping(parser)

    def take_action(self, parsed_args):
        return common.show(self.client.get_mapping(parsed_args.mapping,
                                                   all_projects=parsed_args.all_projects),
                           FIELDS, FORMATTERS)


class ResolveMapping(common.ProtectorCommand, command.ShowOne):
    """Keep one of a diverged mapping's two copies on both sites: the named site's."""

    def arguments(self, parser):
        add_mapping(parser)
        parser.add_argument("--keep", metavar="<site>", required=True,
                            help="Site whose copy to keep")

    def take_action(self, parsed_args):
        return common.show(self.client.resolve_mapping(
            parsed_args.mapping, parsed_args.keep, all_projects=parsed_args.all_projects),
            FIELDS, FORMATTERS)


class SetMapping(common.ProtectorCommand, command.Command):
    """Change what a resource maps to, on both sites."""

    def arguments(self, parser):
        add_mapping(parser)
        parser.add_argument("--target", metavar="<target>", required=True,
                            help="The new equivalent on the DR site")
        parser.add_argument("--expected-version", metavar="<version>", type=int,
                            help="Refuse the change if the mapping has changed since this "
                                 "version")

    def take_action(self, parsed_args):
        self.client.update_mapping(parsed_args.mapping, parsed_args.target,
                                   expected_version=parsed_args.expected_version,
                                   all_projects=parsed_args.all_projects)


class DeleteMapping(common.DeleteCommand):
    """Delete resource mappings on both sites."""

    noun, metavar = "resource mapping", "<mapping>"
    names_help = "Mapping ID(s) to delete"

    def delete(self, name, all_projects):
        self.client.delete_mapping(name, all_projects=all_projects)
