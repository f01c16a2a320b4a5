"""Dependencies point down: product code never imports the lab, and core/storage import
none of the adapters (DESIGN.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "actions": {"site_recovery.lab", "site_recovery.webhook", "site_recovery.cli"},
    "webhook": {"site_recovery.lab"},
    "cli": {"site_recovery.lab"},
    "core": {"site_recovery.lab", "site_recovery.actions", "site_recovery.webhook",
             "site_recovery.cli"},
    "storage": {"site_recovery.lab", "site_recovery.actions", "site_recovery.webhook",
                "site_recovery.cli", "site_recovery.core"},
}


def imported_modules(path: Path) -> set[str]:
    """Absolute names of what a module imports, relative imports resolved."""
    package = ["site_recovery", *path.relative_to(ROOT).parent.parts]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_imports_nothing_above_it(room):
    offenders = {}
    for path in (ROOT / room).rglob("*.py"):
        bad = {m for m in imported_modules(path)
               if any(m == f or m.startswith(f + ".") for f in FORBIDDEN[room])}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}
