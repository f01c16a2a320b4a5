"""Options and column formats that several commands share."""

from __future__ import annotations

import argparse
import logging

from cliff import columns
from osc_lib import exceptions, utils
from osc_lib.command import command


class ProtectorCommand:
    """Mixed into an osc command (before ``ShowOne``, ``Lister`` or ``Command``): the
    arguments it takes (:meth:`arguments`), and the protection service's client."""

    def get_parser(self, prog_name):
        parser = super().get_parser(prog_name)
        self.arguments(parser)
        return parser

    def arguments(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's own arguments."""

    @property
    def client(self):
        return self.app.client_manager.protector


class DeleteCommand(ProtectorCommand, command.Command):
    """Delete one or more objects of a kind (``noun``; ``metavar`` as the user names one),
    on both sites; every one that can be is deleted, then the failures are counted."""

    noun: str
    metavar: str
    names_help: str

    def delete(self, name: str, all_projects: bool) -> None:
        raise NotImplementedError

    def arguments(self, parser):
        parser.add_argument("names", metavar=self.metavar, nargs="+", help=self.names_help)
        add_all_projects(parser)

    def take_action(self, parsed_args):
        delete_each(self.log, self.noun, parsed_args.names,
                    lambda name: self.delete(name, parsed_args.all_projects))


def add_all_projects(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--all-projects", action="store_true",
        help="Include every project, and look names up in every project (admin only)")


def add_group(parser: argparse.ArgumentParser,
              help: str = "Protection group (name or ID)") -> None:
    add_named(parser, "group", "<protection-group>", help)


def add_named(parser: argparse.ArgumentParser, dest: str, metavar: str, help: str) -> None:
    """The object a command acts on, looked up in every project with --all-projects."""
    parser.add_argument(dest, metavar=metavar, help=help)
    add_all_projects(parser)


def with_project(columns: list[tuple[str, str]], all_projects: bool,
                 at: int) -> tuple[tuple[str, str], ...]:
    """A listing's columns, with the project's at ``at`` when it spans every project."""
    if all_projects:
        columns = [*columns[:at], ("Project", "project_name"), *columns[at:]]
    return tuple(columns)


class NetworkMappingAction(argparse.Action):
    """Collects repeated ``<source>=<target>`` options into one dict, refusing a typo early."""

    def __call__(self, parser, namespace, value, option_string=None):
        source, sep, target = (part.strip() for part in value.partition("="))
        if not (sep and source and target):
            raise argparse.ArgumentError(
                self, f"expected <source-network>=<target-network>, got {value!r}")
        mapping = dict(getattr(namespace, self.dest) or {})
        if source in mapping:
            raise argparse.ArgumentError(self, f"network {source!r} is mapped twice")
        mapping[source] = target
        setattr(namespace, self.dest, mapping)


def add_network_mapping(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--network-mapping", metavar="<source-network>=<target-network>",
        action=NetworkMappingAction,
        help="Attach what was on <source-network> to <target-network> on the DR site, "
             "for this operation (name or ID; repeat for each network)")


def show(item: dict, fields: tuple[str, ...], formatters: dict | None = None):
    """A ShowOne answer: the fields in the order a reader expects them."""
    return fields, utils.get_dict_properties(item, fields, formatters=formatters)


def listing(items: list[dict], spec: tuple[tuple[str, str], ...],
            formatters: dict | None = None):
    """A Lister answer from ``(heading, field)`` pairs."""
    headings = tuple(heading for heading, _ in spec)
    fields = tuple(field for _, field in spec)
    return headings, (utils.get_dict_properties(item, fields, formatters=formatters)
                      for item in items)


def delete_each(log: logging.Logger, noun: str, names: list[str], delete) -> None:
    """Delete every one that can be, then say how many could not (osc's way)."""
    failed = 0
    for name in names:
        try:
            delete(name)
        except exceptions.CommandError as exc:
            failed += 1
            log.error("Failed to delete %s %s: %s", noun, name, exc)
    if failed:
        raise exceptions.CommandError(f"{failed} of {len(names)} {noun}s failed to delete")


class PercentColumn(columns.FormattableColumn):
    """``40%`` for people, the integer for ``-f json``."""

    def human_readable(self):
        return f"{self._value}%" if isinstance(self._value, int | float) else ""


class ActorColumn(columns.FormattableColumn):
    """Who acted, as ``alice (project ecommerce)``; the whole record for ``-f json``."""

    def human_readable(self):
        if isinstance(self._value, dict):
            return f"{self._value.get('user')} (project {self._value.get('project')})"
        return "" if self._value is None else str(self._value)
