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

SITE_OPERATIONS = ("site_failover",)
MOVING = ("failover", "failback", "site_failover")
DRILLS = ("test_failover", "test_cleanup")
ON_PRIMARY = ("protect",)          # run on the group's primary site, not its secondary
KINDS = (*ON_PRIMARY, *DRILLS, *MOVING)
FINISHED = ("completed", "failed")


class Refused(Exception):
    """The operation may not start; the message says why and what would let it."""


@dataclass(frozen=True)
class Request:
    operation: str
    failover_type: str | None = None      # planned | unplanned (failovers only)
    force: bool = False


def conflicting(operation: str) -> tuple[str, ...]:
    """The operations that, unfinished on a group, keep ``operation`` from starting on it.
    A protect waits for any operation, and every operation waits for a protect (the
    group's replication is being set up); a drill waits for any operation; a failover
    only for a protect or another move of the group, as a drill must never hold back a
    recovery."""
    if operation in ON_PRIMARY:
        return KINDS
    return (*MOVING, *ON_PRIMARY) if operation in MOVING else (*MOVING, *DRILLS, *ON_PRIMARY)


def precheck(request: Request, peer: str, peer_reachable: bool | None):
    """Refuse what the peer's state does not allow. Drills and protect never need the
    peer (a protect works on the primary site's Cinder and arrays; the peer service is
    told of its result later); a planned failover or a failback needs it (the primary is
    shut down cleanly and replication is reversed); an unplanned failover must be forced,
    so nobody splits the brain by accident while the primary might still be serving."""
    if request.operation in (*DRILLS, *ON_PRIMARY):
        return
    planned = request.operation == "failback" or request.failover_type == "planned"
    if planned and peer_reachable is not True:
        state = "unreachable" if peer_reachable is False else "not yet probed"
        raise Refused(f"a planned {request.operation.replace('_', ' ')} needs peer site "
                      f"{peer}, which is {state}; if it is down, run an unplanned failover "
                      f"with force")
    if not planned and not request.force:
        answer = ("still answers" if peer_reachable else "does not answer"
                  if peer_reachable is False else "has not been probed yet")
        raise Refused(f"an unplanned {request.operation.replace('_', ' ')} needs force: "
                      f"peer site {peer} {answer}, and the groups' primaries will not be "
                      f"shut down first")


@dataclass(frozen=True)
class Rollup:
    status: str               # pending | running | completed | failed | partially_failed
    completed: int
    failed: int


def rollup(statuses: Iterable[str], *, started: bool) -> Rollup:
    """The operation's status from its groups' statuses."""
    statuses = list(statuses)
    completed = statuses.count("completed")
    failed = statuses.count("failed")
    if statuses and completed + failed == len(statuses):
        status = ("completed" if not failed else "failed" if not completed
                  else "partially_failed")
    else:
        status = "running" if started or completed or failed else "pending"
    return Rollup(status, completed, failed)
