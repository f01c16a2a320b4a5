"""Is a group within its RPO target? Told from the newest recovery point its DR array holds.

A group's RPO target is the most writes, in seconds, its owners accept to lose. What a
failover would lose now is the age of the newest fully transferred recovery point on the
DR array (zero for a sync group whose pod is online there): the replication lag. Only the
array says how old it is; an operation's record ages with it but never learns of newer
points. A DR array that cannot be read gives no verdict: newer points may have arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ReplicationState:
    checked_at: datetime
    recovery_point_at: datetime | None   # the newest usable point on the DR array
    lag_seconds: float | None            # what a failover now would lose
    violated: bool | None                # over the target; None: no target, or unknown
    error: str | None = None             # why the DR array gave no answer

    @property
    def reason(self) -> str:
        """For people and the audit log: the lag against the target, or why unknown."""
        if self.error:
            return f"the DR array could not be read: {self.error}"
        if self.recovery_point_at is None:
            return "the DR array holds no usable recovery point"
        return f"the newest recovery point is {self.lag_seconds:.0f} s old"


def assess(newest: datetime | None, now: datetime, target_seconds: int | None,
           error: str | None = None) -> ReplicationState:
    """The state a check at ``now`` found: ``newest`` usable point, or ``error``."""
    if error is not None:
        return ReplicationState(now, None, None, None, error)
    if newest is None:
        return ReplicationState(now, None, None, None if target_seconds is None else True)
    lag = max(0.0, (now - newest).total_seconds())
    return ReplicationState(now, newest, lag,
                            None if target_seconds is None else lag > target_seconds)
