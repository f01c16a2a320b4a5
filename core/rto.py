"""Is a group's recovery fast enough? Its RTO, measured and estimated.

A group's RTO target is how long its owners accept a recovery to take, from the moment
it is asked for to the group's workload running on the DR site. Each drill and failover
measures it (the group's ``total`` timing, beside each phase's); the last completed
drill's is the estimate of the next recovery. A drill runs the steps a failover runs, on
the same cloud and array, so it is the closest measure there is before the day.
"""

from __future__ import annotations


def exceeded(seconds: float | None, target: int | None) -> bool:
    return seconds is not None and target is not None and seconds > target


def verdict(seconds: float, target: int, done: str = "recovered") -> str:
    """For people: how long it took and how that compares with the target."""
    return f"{done} in {seconds:.0f} s, {'over' if exceeded(seconds, target) else 'within'} " \
        f"its {target} s RTO target"
