"""Is the peer site reachable? Judged from consecutive probe results, with hysteresis.

A single lost probe must not block every edit, and a flapping link must not flip the
state back and forth: the peer becomes unreachable only after ``failure_threshold``
failures in a row, and reachable again only after ``success_threshold`` successes in a
row. Before any verdict the state is unknown (``None``); the first success settles it.
A probe answered by something that is not the peer's service (a wrong URL) makes the
state unknown at once: a misconfiguration is no evidence that the peer is gone, and must
never let an alert or an unplanned failover think so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class PeerState:
    reachable: bool | None = None
    since: datetime | None = None             # when the current verdict was reached
    failures: int = 0                         # consecutive
    successes: int = 0                        # consecutive
    last_probe_at: datetime | None = None
    last_error: str | None = None


def judge(state: PeerState, ok: bool | None, now: datetime, *, failure_threshold: int,
          success_threshold: int, error: str | None = None) -> PeerState:
    """The state after one more probe result (None: misconfigured)."""
    if ok is None:
        state = replace(state, failures=0, successes=0, last_error=error,
                        since=now if state.reachable is not None else state.since,
                        reachable=None)
    elif ok:
        state = replace(state, successes=state.successes + 1, failures=0, last_error=None)
        needed = 1 if state.reachable is None else success_threshold
        if state.reachable is not True and state.successes >= needed:
            state = replace(state, reachable=True, since=now)
    else:
        state = replace(state, failures=state.failures + 1, successes=0, last_error=error)
        if state.reachable is not False and state.failures >= failure_threshold:
            state = replace(state, reachable=False, since=now)
    return replace(state, last_probe_at=now)
