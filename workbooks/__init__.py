"""Mistral DSL v2 workbooks: the only place where the order of DR steps lives.

A workbook carries its version in its name (``site_recovery.dr.v1``, as tripleo-common
names its workbooks), so an operator sees which runbooks a site runs and an install can
replace an older version: the workflows an operation starts are named after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

DR = "site_recovery.dr"               # the DR runbooks, whatever their version
_VERSIONED = re.compile(r"^(?P<family>.+?)(?:\.v(?P<version>\d+))?$")


@dataclass(frozen=True)
class Workbook:
    name: str                         # as Mistral knows it: site_recovery.dr.v1
    text: str                         # as Mistral takes it (YAML)

    @property
    def family(self) -> str:
        return family_and_version(self.name)[0]

    @property
    def version(self) -> int:
        return family_and_version(self.name)[1]


def family_and_version(name: str) -> tuple[str, int]:
    """``site_recovery.dr.v3`` is version 3 of ``site_recovery.dr``; a name without a
    version (the pack's first workbooks) is version 0."""
    match = _VERSIONED.match(name)
    return match["family"], int(match["version"] or 0)


def workbooks() -> dict[str, str]:
    """Every workbook of the pack, by file name, as Mistral takes it (YAML text)."""
    folder = resources.files(__name__)
    return {entry.name: entry.read_text() for entry in sorted(
        folder.iterdir(), key=lambda e: e.name) if entry.name.endswith(".yaml")}


@cache
def pack() -> tuple[Workbook, ...]:
    """The pack's workbooks, named as their text names them."""
    return tuple(Workbook(yaml.safe_load(text)["name"], text) for text in workbooks().values())


def dr() -> Workbook:
    """The DR runbooks: one workflow per operation kind, named after it."""
    return next(book for book in pack() if book.family == DR)


def workflow_name(operation: str) -> str:
    """The workflow that runs ``operation``: ``site_recovery.dr.v1.failover``."""
    return f"{dr().name}.{operation}"
