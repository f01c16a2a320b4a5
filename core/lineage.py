"""Which of two copies of a document is newer, or whether they diverged.

Each document carries a clock: for every site, how many versions that site wrote. A
version both sites store (the coordinator's change, pushed before it is stored) counts as
the coordinator's; one recorded on a single site while its peer was away (a failover's
outcome) counts as that site's. A copy whose clock is at least the other's everywhere
holds everything the other does: it is newer, and the other site adopts it. Two copies
each ahead somewhere were written apart, from one common version: they diverged, and
nothing decides silently between them, except the rule of :func:`takeover_winner`.
"""

from __future__ import annotations

from collections.abc import Mapping

from site_recovery.storage.base import StrEnum

Clock = Mapping[str, int]


class Order(StrEnum):
    SAME = "same"                 # one version, one content
    BEHIND = "behind"             # ours is older: adopt theirs
    AHEAD = "ahead"               # ours is newer: they adopt ours
    DIVERGED = "diverged"         # written apart: neither holds the other


def tick(clock: Clock, site: str) -> dict[str, int]:
    """``clock`` after ``site`` writes a version."""
    return {**clock, site: clock.get(site, 0) + 1}


def merge(*clocks: Clock) -> dict[str, int]:
    """A clock at least as far as each of ``clocks``: what a resolution builds on."""
    merged: dict[str, int] = {}
    for clock in clocks:
        for site, count in clock.items():
            merged[site] = max(merged.get(site, 0), count)
    return merged


def compare(ours: Clock, our_version: int, theirs: Clock, their_version: int,
            same_content: bool) -> Order:
    """How our copy stands to theirs. Equal clocks (documents from before clocks were
    kept) fall back to the version: the higher is newer, one version with two contents
    diverged."""
    if same_content:
        return Order.SAME
    sites = set(ours) | set(theirs)
    ahead = any(ours.get(s, 0) > theirs.get(s, 0) for s in sites)
    behind = any(ours.get(s, 0) < theirs.get(s, 0) for s in sites)
    if ahead and behind:
        return Order.DIVERGED
    if ahead:
        return Order.AHEAD
    if behind:
        return Order.BEHIND
    if our_version == their_version:
        return Order.DIVERGED
    return Order.AHEAD if our_version > their_version else Order.BEHIND


def takeover_winner(ours_took_over: str | None, theirs_took_over: str | None) -> str | None:
    """Of two diverged copies of a group, the one that records a failover's takeover wins
    (``"ours"`` or ``"theirs"``): that site runs the workload now, and whatever the other
    recorded meanwhile was written by a site that no longer does. Both or neither: None,
    for people to decide."""
    if ours_took_over and not theirs_took_over:
        return "ours"
    if theirs_took_over and not ours_took_over:
        return "theirs"
    return None
