"""A real Prometheus Alertmanager delivers webhooks the way the protection service gets them.

Alertmanager comes from Debian's package, installed with apt when missing (root only); the
tests skip, saying why, only where it cannot be installed. Its webhook goes to a small
in-process receiver that records each delivery, so these tests pin what Alertmanager
sends (bearer token, payload version 4, labels, fingerprints) and when it sends it again.
The fixtures are meant for tests against the real endpoint too: ``start_alertmanager``
points an Alertmanager at any URL. Ports 28000-28099 are this module's alone.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus

import pytest

from site_recovery.lab.layout import HOST
from site_recovery.lab.services import alertmanager
from site_recovery.lab.serving import BackgroundServer

ALERTMANAGER_PORT = 28000
RECEIVER_PORT = 28001
WEBHOOK_PATH = "/v1/alerts/alertmanager"
SECRET = "alert-secret-0123456789"
DEADLINE = 10.0              # for any one delivery; group_wait and group_interval are 1 s


@dataclass(frozen=True)
class Delivery:
    at: float                # time.monotonic() on arrival
    path: str
    authorization: str | None
    payload: dict


class Receiver(BackgroundServer):
    """Records every webhook delivery; answers the next ones with ``statuses``, then 200."""

    def __init__(self, port: int):
        super().__init__(HOST, port, name="alert-receiver")
        self.deliveries: list[Delivery] = []
        self.statuses: list[int] = []
        self._arrived = threading.Condition()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Receiver:
        if not self.running:
            self._serve(self._app)
        return self

    def _app(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        with self._arrived:
            self.deliveries.append(Delivery(time.monotonic(), environ["PATH_INFO"],
                                            environ.get("HTTP_AUTHORIZATION"), json.loads(body)))
            status = HTTPStatus(self.statuses.pop(0) if self.statuses else 200)
            self._arrived.notify_all()
        start_response(f"{status.value} {status.phrase}", [("Content-Type", "application/json")])
        return [b"{}"]

    def wait_for(self, count: int, timeout: float = DEADLINE) -> list[Delivery]:
        """The first ``count`` deliveries, once they have arrived."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.deliveries) >= count, timeout):
                pytest.fail(f"{len(self.deliveries)} of {count} deliveries within {timeout:g} s")
            return self.deliveries[:count]


@pytest.fixture(scope="module")
def alertmanager_binary():
    try:
        return alertmanager.ensure_installed()
    except alertmanager.Unavailable as exc:
        pytest.skip(f"no Alertmanager on this machine: {exc}")


@pytest.fixture
def receiver():
    server = Receiver(RECEIVER_PORT).start()
    yield server
    server.stop()


@pytest.fixture
def bearer_token_file(tmp_path):
    path = tmp_path / "alertmanager-token"
    path.write_text(SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture
def start_alertmanager(alertmanager_binary, tmp_path):
    """``start(receiver_url, token_file, **timings)`` runs an Alertmanager delivering there
    and returns its URL; it is stopped, and its port found free, when the test ends."""
    with contextlib.ExitStack() as stack:
        def start(receiver_url: str, token_file, *, port: int = ALERTMANAGER_PORT, **timings):
            spec = alertmanager.prepare(tmp_path / f"alertmanager-{port}", port, receiver_url,
                                        token_file, executable=alertmanager_binary, **timings)
            return stack.enter_context(alertmanager.running(spec))

        yield start


@pytest.fixture
def alertmanager_url(receiver, bearer_token_file, start_alertmanager):
    """Alertmanager delivering to ``receiver``; it stops before the receiver does."""
    return start_alertmanager(receiver.url + WEBHOOK_PATH, bearer_token_file)


def _labels() -> dict[str, str]:
    """Labels no other test uses, so each test's alert is a group of its own."""
    return {"alertname": "SiteDown", "site": "site-b", "test_run": uuid.uuid4().hex}


def test_firing_alert_is_delivered_with_the_bearer_token(alertmanager_url, receiver):
    labels = _labels()
    posted = time.monotonic()
    alertmanager.post_alerts(alertmanager_url, [alertmanager.alert(
        labels, {"summary": "site-b unreachable"})])

    (delivery,) = receiver.wait_for(1)

    assert delivery.path == WEBHOOK_PATH
    assert delivery.authorization == f"Bearer {SECRET}"
    payload = delivery.payload
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    (sent,) = payload["alerts"]
    assert sent["status"] == "firing"
    assert sent["labels"] == labels
    assert sent["annotations"] == {"summary": "site-b unreachable"}
    (held,) = [a for a in alertmanager.alerts(alertmanager_url) if a["labels"] == labels]
    assert sent["fingerprint"] == held["fingerprint"]
    assert delivery.at - posted < 5.0            # group_wait is 1 s


def test_resolved_alert_is_delivered(alertmanager_url, receiver):
    labels = _labels()
    alertmanager.post_alerts(alertmanager_url, [alertmanager.alert(labels)])
    (firing,) = receiver.wait_for(1)

    alertmanager.post_alerts(alertmanager_url, [alertmanager.alert(
        labels, starts_at=datetime.fromisoformat(firing.payload["alerts"][0]["startsAt"]),
        ends_at=datetime.now(UTC))])

    resolved = receiver.wait_for(2)[1]
    assert resolved.payload["status"] == "resolved"
    (sent,) = resolved.payload["alerts"]
    assert sent["status"] == "resolved"
    assert sent["fingerprint"] == firing.payload["alerts"][0]["fingerprint"]


@pytest.mark.parametrize("refusal", [401, 503])
def test_a_refused_delivery_is_sent_again(alertmanager_url, receiver, refusal):
    """4xx is not retried within a flush but the alert stays unsent, so the next
    group_interval tick sends it again; 5xx is retried with backoff. Either way it comes
    back within seconds here (group_interval 1 s), and minutes with production timings."""
    receiver.statuses = [refusal]
    alertmanager.post_alerts(alertmanager_url, [alertmanager.alert(_labels())])

    refused, accepted = receiver.wait_for(2)

    assert refused.payload["alerts"][0]["fingerprint"] == \
        accepted.payload["alerts"][0]["fingerprint"]
    assert accepted.at - refused.at < 5.0
