"""The peer's reachability does not flap with the link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from site_recovery.webhook.peer import PeerState, judge

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def run(results, state: PeerState | None = None):
    state = state or PeerState()
    history = []
    for second, ok in enumerate(results):
        state = judge(state, ok, T0 + timedelta(seconds=second), failure_threshold=3,
                      success_threshold=2, error=None if ok else "timed out after 3 s")
        history.append(state.reachable)
    return state, history


def test_the_first_success_settles_an_unknown_peer():
    state, history = run([True])
    assert history == [True] and state.since == T0


def test_unreachable_only_after_three_failures_in_a_row():
    state, history = run([True, False, False, True, False, False, False])
    assert history == [True, True, True, True, True, True, False]
    assert state.since == T0 + timedelta(seconds=6)
    assert state.last_error == "timed out after 3 s" and state.failures == 3


def test_reachable_again_only_after_two_successes_in_a_row():
    down, _ = run([False, False, False])
    assert down.reachable is False
    state, history = run([True, False, True, True], state=down)
    assert history == [False, False, False, True]
    assert state.last_error is None


def test_an_unknown_peer_that_never_answers_becomes_unreachable():
    _, history = run([False, False, False])
    assert history == [None, None, False]
