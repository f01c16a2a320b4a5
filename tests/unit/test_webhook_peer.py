"""The peer's reachability does not flap with the link."""

from __future__ import annotations

import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from site_recovery.core.config import PeerConfig
from site_recovery.webhook.peer import PeerState, judge
from site_recovery.webhook.prober import healthy

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


def test_a_misconfigured_peer_url_makes_the_state_unknown_never_unreachable():
    """An unreachable peer lets alerts fail the site over; a wrong URL must not."""
    down, _ = run([False, False, False])
    state = judge(down, None, T0, failure_threshold=3, success_threshold=2,
                  error="misconfigured: ...")
    assert (state.reachable, state.failures, state.last_error) == (None, 0,
                                                                   "misconfigured: ...")
    _, history = run([None, None, None, None])
    assert history == [None] * 4


class _Answers(BaseHTTPRequestHandler):
    """Whatever the test puts in ``answer``: (status, body)."""

    answer: tuple[int, bytes] = (200, b"")

    def do_GET(self):
        status, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def somewhere():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.mark.parametrize(("status", "body", "verdict", "said"), [
    (200, b'{"status": "ok", "site": "site-a"}', True, None),
    (500, b'{"error": {"message": "database"}}', False, "HTTP 500"),
    (502, b"<html>bad gateway</html>", False, "HTTP 502"),
    (404, b"<html>not found</html>", None, "misconfigured: {url}/healthz is not site-a's "
                                           "protection service (HTTP 404); check peer.url"),
    (200, b'{"status": "ok", "site": "site-b"}', None, "(the protection service of site-b)"),
])
def test_the_probe_tells_a_wrong_url_from_a_peer_that_is_down(somewhere, status, body,
                                                               verdict, said):
    _Answers.answer = (status, body)
    ok, why = healthy(somewhere, 2.0, "site-a")
    assert ok is verdict
    assert (why is None) if said is None else said.format(url=somewhere) in why


def test_the_peer_url_may_name_the_api_version():
    assert str(PeerConfig(name="site-a", url="https://dr.example.com/v1").url) == \
        "https://dr.example.com/"
    assert str(PeerConfig(name="site-a", url="https://dr.example.com/protector/v1/").url) \
        == "https://dr.example.com/protector"


def test_a_peer_served_over_tls_is_verified_with_the_configured_ca(tmp_path):
    from site_recovery.lab.flasharray_sim import ensure_certificate

    pem = ensure_certificate(tmp_path / "tls")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Answers.answer = (200, b'{"status": "ok", "site": "site-a"}')
    url = f"https://127.0.0.1:{server.server_port}"
    try:
        assert healthy(url, 2.0, "site-a", str(pem)) == (True, None)
        ok, why = healthy(url, 2.0, "site-a")       # the system's CAs do not know it
        assert ok is None and "(TLS verification failed); check peer.ca_file" in why
    finally:
        server.shutdown()
