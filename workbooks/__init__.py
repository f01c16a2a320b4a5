"""Mistral DSL v2 workbooks: the only place where the order of DR steps lives."""

from __future__ import annotations

from importlib import resources


def workbooks() -> dict[str, str]:
    """Every workbook of the pack, by file name, as Mistral takes it (YAML text)."""
    folder = resources.files(__name__)
    return {entry.name: entry.read_text() for entry in sorted(
        folder.iterdir(), key=lambda e: e.name) if entry.name.endswith(".yaml")}
