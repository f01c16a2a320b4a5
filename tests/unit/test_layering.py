"""Dependencies point down: product code never imports the lab (its own distribution,
``lab/``), core/storage import none of the adapters (docs/architecture.md), and no room
imports in a circle."""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("actions", "cli", "core", "dashboard", "heat_templates", "storage", "webhook",
           "workbooks")
# The dashboard plugin imports Horizon, which only Horizon's environment holds.
IMPORTABLE_HERE = tuple(room for room in PRODUCT if room != "dashboard")
FORBIDDEN = {
    "actions": {"site_recovery.lab", "site_recovery.webhook", "site_recovery.cli"},
    "webhook": {"site_recovery.lab"},
    "cli": {"site_recovery.lab"},
    "core": {"site_recovery.lab", "site_recovery.actions", "site_recovery.webhook",
             "site_recovery.cli"},
    "storage": {"site_recovery.lab", "site_recovery.actions", "site_recovery.webhook",
                "site_recovery.cli", "site_recovery.core"},
    # it speaks only the protection service's API, inside Horizon
    "dashboard": {"site_recovery.lab", "site_recovery.actions", "site_recovery.webhook",
                  "site_recovery.cli", "site_recovery.core", "site_recovery.storage"},
}


def module_name(path: Path) -> str:
    parts = ["site_recovery", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """What a module imports (under TYPE_CHECKING too), relative imports resolved: for
    ``import a.b``, ``("a.b", [])``; for ``from a import b, c``, ``("a", ["b", "c"])``."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((module, [alias.name for alias in node.names]))
    return found


def imported_modules(path: Path) -> set[str]:
    """Every name a module imports, ``from package import name`` naming both."""
    return {name for module, names in imports(path)
            for name in (module, *(f"{module}.{n}" for n in names))}


def sources(*rooms: str) -> list[Path]:
    return [p for room in rooms for p in sorted((ROOT / room).rglob("*.py"))]


@pytest.mark.parametrize("room", sorted(FORBIDDEN))
def test_a_room_imports_nothing_above_it(room):
    offenders = {}
    for path in sources(room):
        bad = {m for m in imported_modules(path)
               if any(m == f or m.startswith(f + ".") for f in FORBIDDEN[room])}
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}


def lab_packages() -> list[str]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "lab" / "setup.cfg")
    return setup["options"]["packages"].split()


def test_the_product_never_names_the_lab_distribution():
    """Neither an import nor a string (``-m``, importlib) of product code reaches a package
    of the lab distribution."""
    assert "site_recovery.lab" in lab_packages()
    named = {str(path.relative_to(ROOT)) for path in sources(*PRODUCT)
             if any(package in path.read_text() for package in lab_packages())}
    assert named == set()


def test_every_product_module_imports_without_the_lab():
    """Import every product module with the lab distribution unimportable."""
    probe = (
        "import importlib, pkgutil, sys\n"
        "class NoLab:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'site_recovery.lab' or name.startswith('site_recovery.lab.'):\n"
        "            raise ImportError(f'{name} belongs to the lab distribution')\n"
        "sys.meta_path.insert(0, NoLab())\n"
        f"for room in {list(IMPORTABLE_HERE)!r}:\n"
        "    package = importlib.import_module('site_recovery.' + room)\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        # Alembic's scripts, run by Alembic; the WSGI module, which loads its\n"
        "        # configuration file as it is imported (tests/unit/test_webhook_services.py)\n"
        "        if '.migrations' not in info.name and not info.name.endswith('.wsgi'):\n"
        "            importlib.import_module(info.name)\n"
        "print('imported')\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, cwd=ROOT.parent)
    assert done.stdout.strip() == "imported", done.stderr[-2000:]


def cycles(paths: list[Path]) -> list[list[str]]:
    """The import circles among ``paths`` (strongly connected components of two or more
    modules, or a module importing itself)."""
    graph = {module_name(p): set() for p in paths}
    for path in paths:
        for module, names in imports(path):
            submodules = {f"{module}.{n}" for n in names} & set(graph)
            # ``from package import submodule`` needs the submodule, not the package's own
            # code (which is already being imported when a submodule of it runs)
            graph[module_name(path)] |= submodules or ({module} & set(graph))
        graph[module_name(path)].discard(module_name(path))
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("rooms", [PRODUCT, ("lab",)], ids=["product", "lab"])
def test_no_module_imports_in_a_circle(rooms):
    """Counting imports made only for type checking: a circle is a circle to a reader."""
    paths = [p for p in sources(*rooms) if "launchers" not in p.parts]
    assert cycles(paths) == []
