"""The rules of DR operations that hold wherever they are started from.

What an operation needs of the peer site before it may start, which operations keep
which others from starting on a group, and how per-group results add up to the
operation's status. (A group's recovery operations run on its secondary site, the one
that brings the workload up; after a failover the roles have swapped, so a failback runs
on the original primary. A protect runs on the group's primary site, where its VMs and
volumes are.) The protection service applies them before launching a workflow; the
workflows report results that :func:`rollup` sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .model import FailoverType, OperationKind, Status

KINDS = tuple(OperationKind)
MOVING = tuple(kind for kind in OperationKind if kind.moves)
DRILLS = tuple(kind for kind in OperationKind if kind.drill)
ON_PRIMARY = tuple(kind for kind in OperationKind if kind.runs_on_primary)


class Refused(Exception):
    """The operation may not start; the message says why and what would let it."""


@dataclass(frozen=True)
class Request:
    operation: OperationKind
    failover_type: FailoverType | None = None      # failovers only
    force: bool = False

    def __post_init__(self):
        object.__setattr__(self, "operation", OperationKind(self.operation))

    @property
    def planned(self) -> bool:
        """A failback is always planned: it needs both sites."""
        return (self.operation is OperationKind.FAILBACK
                or self.failover_type == FailoverType.PLANNED)


def conflicting(operation: OperationKind) -> tuple[OperationKind, ...]:
    """The operations that, unfinished on a group, keep ``operation`` from starting on it.
    A protect waits for any operation, and every operation waits for a protect (the
    group's replication is being set up); a drill waits for any operation; a failover
    only for a protect or another move of the group, as a drill must never hold back a
    recovery; a peer step is a part of an operation the peer site already holds the group
    for."""
    operation = OperationKind(operation)
    if operation is OperationKind.PEER_STEP:
        return ()                  # a part of an operation the peer holds the group for
    if operation.runs_on_primary:
        return KINDS
    return (*MOVING, *ON_PRIMARY) if operation.moves else (*MOVING, *DRILLS, *ON_PRIMARY)


def precheck(request: Request, peer: str, peer_reachable: bool | None):
    """Refuse what the peer's state does not allow. Drills and protect never need the
    peer (a protect works on the primary site's Cinder and arrays; the peer service is
    told of its result later); a planned failover or a failback needs it (the primary is
    shut down cleanly and replication is reversed); an unplanned failover must be forced,
    so nobody splits the brain by accident while the primary might still be serving."""
    if not request.operation.moves:
        return
    label = request.operation.label
    if request.planned and peer_reachable is not True:
        state = ("unreachable" if peer_reachable is False else
                 "unknown (not probed yet, or peer.url is misconfigured)")
        raise Refused(f"a planned {label} needs peer site {peer}, which is {state}; if it "
                      f"is down, run an unplanned failover with force")
    if not request.planned and not request.force:
        answer = ("still answers" if peer_reachable else "does not answer"
                  if peer_reachable is False else
                  "is in an unknown state (not probed yet, or peer.url is misconfigured)")
        raise Refused(f"an unplanned {label} needs force: peer site {peer} {answer}, and "
                      f"the groups' primaries will not be shut down first")


@dataclass(frozen=True)
class Rollup:
    status: Status
    completed: int
    failed: int


def rollup(statuses: Iterable[str], *, started: bool) -> Rollup:
    """The operation's status from its groups' statuses."""
    statuses = list(statuses)
    completed = statuses.count(Status.COMPLETED)
    failed = statuses.count(Status.FAILED)
    if statuses and completed + failed == len(statuses):
        status = (Status.COMPLETED if not failed else Status.FAILED if not completed
                  else Status.PARTIALLY_FAILED)
    else:
        status = Status.RUNNING if started or completed or failed else Status.PENDING
    return Rollup(status, completed, failed)
