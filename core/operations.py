"""The rules of DR operations that hold wherever they are started from.

What an operation needs of the peer site before it may start, which operations keep
which others from starting on a group, and how per-group results add up to the
operation's status. (A group's recovery operations run on its secondary site, the one
that brings the workload up; after a failover the roles have swapped, so a failback runs
on the original primary. A protect or an unprotect runs on the group's primary site,
where its VMs and volumes are.) The protection service applies them before launching a workflow; the
workflows report results that :func:`rollup` sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .model import FailoverType, GroupStatus, OperationKind, Status

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
    automatic: bool = False                        # an alert's, not a person's

    def __post_init__(self):
        object.__setattr__(self, "operation", OperationKind(self.operation))

    @property
    def planned(self) -> bool:
        """A failback is always planned: it needs both sites."""
        return (self.operation is OperationKind.FAILBACK
                or self.failover_type == FailoverType.PLANNED)


def conflicting(operation: OperationKind) -> tuple[OperationKind, ...]:
    """The operations that, unfinished on a group, keep ``operation`` from starting on it.
    A protect or an unprotect waits for any operation, and every operation waits for
    them (the group's replication is being set up or taken down); a drill waits for any
    operation; a failover only for a protect, an unprotect or another move of the group,
    as a drill must never hold back a recovery; a peer step is a part of an operation the
    peer site already holds the group for; a fence (the service's own, keeping a
    failed-over group's originals down) and a move of the group wait for each other."""
    operation = OperationKind(operation)
    if operation is OperationKind.PEER_STEP:
        return ()                  # a part of an operation the peer holds the group for
    if operation is OperationKind.FENCE:
        return MOVING              # never beside a move of the group, such as its failback
    if operation.runs_on_primary:
        return KINDS
    return (*MOVING, *ON_PRIMARY, OperationKind.FENCE) if operation.moves else \
        (*MOVING, *DRILLS, *ON_PRIMARY)


def precheck(request: Request, peer: str, peer_reachable: bool | None):
    """Refuse what the peer's state does not allow. Drills and protect never need the
    peer (a protect works on the primary site's Cinder and arrays; the peer service is
    told of its result later); a planned failover or a failback needs it (the primary is
    shut down cleanly and replication is reversed). An unplanned failover is for a primary
    that is gone: it must be forced, so nobody splits the brain by accident; while the
    peer still answers, a person may still force it (the workflow then fences the old
    primary first: its VMs stopped and locked by its own service), an alert never. A
    reprotect and an unprotect need the peer: its array takes the replica back, or holds
    the one to remove."""
    if request.operation in (OperationKind.REPROTECT, OperationKind.UNPROTECT) and \
            peer_reachable is not True:
        state = "unreachable" if peer_reachable is False else "not probed yet"
        raise Refused(f"an {request.operation.label} needs peer site {peer}, whose array "
                      f"holds the group's replica; it is {state}" if request.operation is
                      OperationKind.UNPROTECT else
                      f"a reprotect needs peer site {peer}, whose array takes the replica "
                      f"back and whose service keeps the originals fenced; it is {state}")
    if not request.operation.moves:
        return
    label = request.operation.label
    if request.planned and peer_reachable is not True:
        state = ("unreachable" if peer_reachable is False else
                 "unknown (not probed yet, or peer.url is misconfigured)")
        raise Refused(f"a planned {label} needs peer site {peer}, which is {state}; if it "
                      f"is down, run an unplanned failover with force")
    if request.planned:
        return
    if peer_reachable and request.automatic:
        raise Refused(f"an alert never starts an unplanned {label} while peer site {peer} "
                      "answers: a person decides (a planned failover, or --force)")
    if peer_reachable and not request.force:
        raise Refused(f"peer site {peer} still answers: use a planned failover, or --force "
                      f"for an unplanned {label} (the old primary's VMs are then stopped "
                      "and locked first)")
    if not request.force:
        answer = ("does not answer" if peer_reachable is False else
                  "is in an unknown state (not probed yet, or peer.url is misconfigured)")
        raise Refused(f"an unplanned {label} needs force: peer site {peer} {answer}, and "
                      f"the groups' primaries will not be shut down first")


def check_group(operation: OperationKind, group: str, status: GroupStatus):
    """Refuse what the group's state does not allow, naming what to run instead. A group
    that runs on its DR site (failed over, or reprotected) is failed back, or reprotected,
    never failed over again, protected nor unprotected (its way home is its replication);
    one that does not is never failed back nor reprotected."""
    operation, status = OperationKind(operation), GroupStatus(status)
    if operation is OperationKind.UNPROTECT and status.away:
        raise Refused(f"protection group {group} is {status.label}: it runs on its DR site, "
                      "and its failback needs its replication; fail it back first "
                      f"(openstack dr failback {group}), then unprotect it")
    if operation in (OperationKind.REPROTECT, OperationKind.FAILBACK) and not status.away:
        done = "reprotected" if operation is OperationKind.REPROTECT else "failed back"
        raise Refused(f"protection group {group} is {status.label}: only a group that "
                      f"failed over is {done}")
    if operation is OperationKind.PROTECT and status.away:
        raise Refused(f"protection group {group} is {status.label}: it runs on its DR site "
                      f"from copies; protect it there with openstack dr reprotect {group}")
    if operation is OperationKind.FAILOVER and status.away:
        raise Refused(f"protection group {group} is {status.label}: it already runs on its "
                      f"DR site; bring it home with openstack dr failback {group}")


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
