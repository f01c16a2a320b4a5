"""``--dry-run``: what a drill, a failover or a site failover would do, shown before it
starts anything.

People get each group's plan as lines: the recovery point and the data it would lose,
the volumes copied, the servers with the addresses their ports get, the boot order, the
stack's resources, and what would stop it. ``-f json`` gets the service's whole plan.
"""

from __future__ import annotations

from collections import Counter

from cliff import columns
from osc_lib.cli import format_columns

from . import common

FIELDS = ("operation_type", "failover_type", "site", "recovered_on", "ready",
          "protection_groups", "skipped")


def point_line(point: dict | None) -> str:
    if point is None:
        return "none usable"
    if point.get("replicated_at_start"):
        newest = point.get("newest")
        return ("replicated once the primary's servers are stopped (RPO 0 s)"
                + (f"; newest now {newest['name']}, {newest['age_seconds']:.0f} s old"
                   if newest else ""))
    return (f"{point['name']}, taken {point['created_at']} ({point['age_seconds']:.0f} s "
            f"old); data lost: {point['rpo_seconds']:.0f} s")


def port_text(port: dict) -> str:
    network = port["network_name"] or port["network"] or \
        f"{port['source_network']} (unmapped)"
    if port["address"] == "allocated":
        source = f", was {port['source_ip']}" if port["source_ip"] else ""
        return f"{network} address from Neutron{source}"
    moved = f" (was {port['source_ip']})" if port["address"] == "moved" else ""
    return f"{network} {port['ip_address']} {port['address']}{moved}"


def group_lines(group: dict) -> list[str]:
    stack = group.get("stack") or {}
    resources = Counter(r["type"] for r in stack.get("resources", []))
    lines = [f"{group['protection_group']}: stack {stack.get('name')}",
             f"  recovery point: {point_line(group.get('recovery_point'))}",
             f"  volumes to copy: {len(group.get('volumes', []))}"]
    lines += [f"    {v['copy_name']} <- {v['volume_id']} ({v['server']}"
              f"{', boot' if v['boot'] else ''})" for v in group.get("volumes", [])]
    lines.append("  boot order: " + " | ".join(
        f"{tier['boot_order']}: {', '.join(tier['servers'])}" + "".join(
            f" ({server} must show {gate['console_marker']!r})"
            for server, gate in (tier.get("gates") or {}).items())
        for tier in group.get("boot_order", [])))
    lines += [f"  server {s['name']} ({s['flavor']}): "
              + "; ".join(port_text(p) for p in s["ports"]) for s in group.get("servers", [])]
    if resources:
        lines.append(f"  stack resources: {sum(resources.values())} ("
                     + ", ".join(f"{kind} x{n}" for kind, n in sorted(resources.items()))
                     + ")")
    lines += [f"  PROBLEM: {problem}" for problem in group.get("problems", [])]
    return lines


class GroupsColumn(columns.FormattableColumn):
    """Each group's plan as lines for people; the whole plan for ``-f json``."""

    def human_readable(self):
        return "\n".join(line for group in self._value or [] for line in group_lines(group))


def show_plan(plan: dict):
    return common.show(plan, FIELDS, {"protection_groups": GroupsColumn,
                                      "skipped": format_columns.DictColumn})


def problems(plan: dict) -> int:
    return sum(len(g.get("problems", [])) for g in plan.get("protection_groups", []))
