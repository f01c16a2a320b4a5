"""A recovery's report: what each group got back, from which point, how its RPO and RTO
compare with its targets, when each recovered server booted, whether production still
replicates, and the group's last drills beside it (the chart's data).

Built from what the protection service recorded of the operation and what Heat holds of
the recovery's stack while it stands: a drill's report is kept when the drill ends, before
its cleanup removes the servers whose boot times it shows. Rendering is
:mod:`.report_render`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from .model import TOTAL, Gate, Purpose, Server
from .stacks import COPY_PREFIX, server_resources

HISTORY = 10                     # drills in a group's chart, the newest last
ACTIVE = "ACTIVE"                # Nova's status of a server that booted
PRODUCTION = "production_replication"


class Measure(BaseModel):
    """An RPO or an RTO: what was achieved against the target (``met``: None without
    either)."""

    seconds: float | None = None
    target_seconds: int | None = None
    met: bool | None = None


class ServerBoot(BaseModel):
    """One recovered server: its boot tier, its status (Nova's; Heat's while Nova has none
    of it), how long it took from its create to ACTIVE, and when it was ACTIVE counted
    from the operation's request."""

    name: str
    source: str
    boot_tier: int
    status: str | None = None
    boot_seconds: float | None = None
    ready_after_seconds: float | None = None
    gate: str | None = None             # passed | not passed | None: no gate


class DrillPoint(BaseModel):
    """One drill of the group, a bar pair in the chart."""

    operation_id: str
    finished_at: datetime
    status: str
    rpo_seconds: float | None = None
    rto_seconds: float | None = None


class GroupReport(BaseModel):
    id: str
    name: str
    project: str
    status: str
    step: str | None = None
    reason: str | None = None
    recovery_point: str | None = None
    rpo: Measure
    rto: Measure
    phases: dict[str, float]
    servers: list[ServerBoot]
    servers_note: str | None = None
    production_replication: str | None = None
    details: dict[str, str]
    history: list[DrillPoint]


class Report(BaseModel):
    operation_id: str
    operation_type: str
    status: str
    site: str
    requested_by: str | None = None
    scheduled: bool = False
    requested_at: datetime
    finished_at: datetime | None = None
    made_at: datetime
    protection_groups: list[GroupReport]


@dataclass(frozen=True)
class RecoveredServer:
    """A server resource of the recovery's stack, as Nova holds it (``active_at``: Nova's
    ``launched_at``), or as Heat does while Nova has no server for it."""

    status: str
    created_at: datetime | None = None
    active_at: datetime | None = None

    @property
    def up(self) -> bool:
        return self.status == ACTIVE


def measure(seconds: float | None, target: int | None) -> Measure:
    return Measure(seconds=seconds, target_seconds=target,
                   met=None if seconds is None or target is None else seconds <= target)


def server_boots(servers: list[Server], gates: Mapping[str, Gate], purpose: Purpose,
                 resources: Mapping[str, RecoveredServer] | None, requested_at: datetime,
                 completed: bool) -> list[ServerBoot]:
    """Each member's recovered server in boot order (``resources``: by the stack's
    resource name); without them (the stack is gone) only what the plan says."""
    named = server_resources(servers)
    boots = []
    for server in sorted(servers, key=lambda s: (s.boot_order, s.name)):
        found = (resources or {}).get(named[server.id])
        boot = ServerBoot(name=f"{COPY_PREFIX[purpose]}{server.name}", source=server.name,
                          boot_tier=server.boot_order)
        if found is not None:
            boot.status = found.status
            if found.up and found.created_at and found.active_at:
                boot.boot_seconds = _seconds(found.active_at - found.created_at)
                boot.ready_after_seconds = _seconds(found.active_at - requested_at)
        if server.id in gates:
            boot.gate = "passed" if completed or (
                found is not None and found.up
                and _later_tier_built(server, servers, named, resources)) else "not passed"
        boots.append(boot)
    return boots


def _later_tier_built(server: Server, servers: list[Server], named: Mapping[str, str],
                      resources: Mapping[str, RecoveredServer] | None) -> bool:
    """A gate was passed when a later tier's server is in the stack: it starts only then."""
    return any(s.boot_order > server.boot_order and named[s.id] in (resources or {})
               for s in servers)


def _seconds(delta) -> float:
    return round(max(delta.total_seconds(), 0.0), 1)


def history(drills: Iterable[DrillPoint]) -> list[DrillPoint]:
    """The group's last HISTORY drills, oldest first (a chart reads left to right)."""
    return sorted(drills, key=lambda d: d.finished_at)[-HISTORY:]


def group_report(*, group_id: str, name: str, project: str, result: Mapping,
                 rpo_target: int | None, rto_target: int | None,
                 servers: list[ServerBoot], servers_note: str | None,
                 drills: Iterable[DrillPoint]) -> GroupReport:
    """One group's part: ``result`` is what the operation recorded of it (status, step,
    reason, recovery_point, rpo_achieved_seconds, timings, details)."""
    timings = dict(result.get("timings") or {})
    details = dict(result.get("details") or {})
    return GroupReport(
        id=group_id, name=name, project=project, status=result["status"],
        step=result.get("step"), reason=result.get("reason"),
        recovery_point=result.get("recovery_point"),
        rpo=measure(result.get("rpo_achieved_seconds"), rpo_target),
        rto=measure(timings.pop(TOTAL, None), rto_target),
        phases=timings, servers=servers, servers_note=servers_note,
        production_replication=details.pop(PRODUCTION, None), details=details,
        history=history(drills))
