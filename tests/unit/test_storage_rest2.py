"""The REST 2.x backend's translations, without an array: REST 2.x objects into the
REST 1.x shapes the DR driver reads, its errors into typed ones, and REST 1.x options it
cannot translate refused before anything is sent. The whole backend runs against the
simulator in tests/functional/test_storage_contract.py."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pypureclient import flasharray
from pypureclient.exceptions import PureError
from urllib3 import exceptions as transport

from site_recovery.storage.base import ArrayEndpoint, parse_time
from site_recovery.storage.errors import (
    AlreadyExists,
    ArrayOperationFailed,
    ArrayUnreachable,
    InvalidArgument,
    NotFound,
    PendingEradication,
)
from site_recovery.storage.flasharray_rest2 import (
    FlashArrayRest2Client,
    connection_view,
    iso_time,
    pgroup_settings,
    pgroup_snapshot_view,
    pod_view,
    volume_view,
)

TOKEN = "0b7e9f3c-secret-api-token"
CREATED_MS = 1_796_642_524_123          # 2026-12-07T11:22:04.123Z


@pytest.fixture
def client():
    """A client that never connects: these tests stop before the network."""
    return FlashArrayRest2Client(ArrayEndpoint("fa-a", "127.0.0.1:1", TOKEN),
                                 connect_timeout=2.0, read_timeout=7.5)


def test_times_become_iso_strings_the_driver_parses_back_to_the_millisecond():
    assert iso_time(CREATED_MS) == "2026-12-07T11:22:04.123Z"
    assert parse_time(iso_time(CREATED_MS)) == datetime(2026, 12, 7, 11, 22, 4, 123000,
                                                        tzinfo=timezone.utc)
    assert iso_time(None) is None


def test_a_volume_reads_as_rest_1():
    live = flasharray.Volume(name="web-1", serial="F4A1", provisioned=1 << 30,
                             created=CREATED_MS, destroyed=False,
                             source=flasharray.Reference(name="gold"))
    assert volume_view(live) == {"name": "web-1", "serial": "F4A1", "size": 1 << 30,
                                 "created": "2026-12-07T11:22:04.123Z", "source": "gold",
                                 "time_remaining": None}
    destroyed = flasharray.Volume(name="old", serial="F4A2", provisioned=1, destroyed=True,
                                  time_remaining=86_399_999)
    assert volume_view(destroyed)["time_remaining"] == 86_399      # seconds, as REST 1.x
    assert volume_view(destroyed)["source"] is None


def test_a_pgroup_snapshot_carries_its_transfer_when_asked():
    snapshot = flasharray.ProtectionGroupSnapshot(
        name="fa-a:web.sr-1", created=CREATED_MS,
        source=flasharray.Reference(name="fa-a:web"))
    assert pgroup_snapshot_view(snapshot) == {
        "name": "fa-a:web.sr-1", "source": "fa-a:web", "created": "2026-12-07T11:22:04.123Z"}
    in_flight = flasharray.ProtectionGroupSnapshotTransfer(
        name="fa-a:web.sr-1", started=CREATED_MS, progress=0.5, data_transferred=10)
    view = pgroup_snapshot_view(snapshot, in_flight)
    assert (view["started"], view["completed"], view["progress"]) == (
        "2026-12-07T11:22:04.123Z", None, 0.5)


def test_a_pod_names_its_arrays_and_failover_preference():
    pod = flasharray.Pod(
        name="db", source=flasharray.Reference(name="fa-a"),
        arrays=[flasharray.PodArrayStatus(name="fa-a", id="1", status="online"),
                flasharray.PodArrayStatus(name="fa-b", id="2", status="offline",
                                          frozen_at=CREATED_MS)],
        failover_preferences=[flasharray.Reference(name="fa-a")])
    view = pod_view(pod)
    assert [(a["name"], a["status"], a["frozen_at"]) for a in view["arrays"]] == [
        ("fa-a", "online", None), ("fa-b", "offline", "2026-12-07T11:22:04.123Z")]
    assert view["failover_preference"] == ["fa-a"] and view["source"] == "fa-a"


def test_an_array_connection_names_its_peer_as_rest_1_does():
    connection = flasharray.ArrayConnection(name="fa-b", status="connected",
                                            type="sync-replication")
    view = connection_view(connection)
    assert (view["array_name"], view["status"], view["type"]) == (
        "fa-b", "connected", "sync-replication")


def test_schedule_and_retention_become_one_patch_in_milliseconds():
    patch = pgroup_settings({"replicate_enabled": True, "replicate_frequency": 600})
    assert patch.as_request_dict() == {
        "replication_schedule": {"enabled": True, "frequency": 600_000}}
    patch = pgroup_settings({"all_for": 86400, "target_all_for": 3600})
    assert patch.as_request_dict() == {"source_retention": {"all_for_sec": 86400},
                                       "target_retention": {"all_for_sec": 3600}}
    assert pgroup_settings({"addvollist": ["web-1"]}) is None


@pytest.mark.parametrize(("message", "kind"), [
    ("Volume does not exist.", NotFound),
    ("Volume already exists.", AlreadyExists),
    ("Volume has been destroyed.", PendingEradication),
    ("Volume limit reached.", ArrayOperationFailed),
])
def test_error_answers_are_typed_and_name_array_and_object(client, message, kind):
    answer = flasharray.ErrorResponse(400, [flasharray.ApiError("web-1", message)], None)
    error = client._refusal(answer, "fallback")
    assert type(error) is kind
    assert (error.array, error.obj) == ("fa-a", "web-1") and message in str(error)
    without_context = flasharray.ErrorResponse(400, [flasharray.ApiError(None, message)], None)
    assert client._refusal(without_context, "fallback").obj == "fallback"


def test_an_error_answer_without_errors_still_fails(client):
    error = client._refusal(flasharray.ErrorResponse(502, [], None), "web-1")
    assert isinstance(error, ArrayOperationFailed) and "HTTP 502" in str(error)


@pytest.mark.parametrize(("cause", "said"), [
    (transport.NewConnectionError(None, "refused"), "connection refused (or no such address)"),
    (transport.ConnectTimeoutError(None, "slow"), "no connection within 2 s"),
    (transport.ReadTimeoutError(None, "/api", "slow"), "no answer within 7.5 s"),
    (transport.ProtocolError("reset"), "connection dropped"),
    (transport.SSLError("certificate verify failed"), "TLS failure: certificate verify failed"),
])
def test_transport_failures_get_a_short_cause(client, cause, said):
    assert client._describe(transport.MaxRetryError(None, "/api", cause)) == said


def test_no_message_carries_the_api_token(client):
    echoed = PureError(f"Failed to retrieve session token: api-token {TOKEN} refused (401)")
    error = client._sdk_failure(echoed, None)
    assert TOKEN not in str(error) and "<api token>" in str(error)
    tls = PureError(type("ApiException", (), {"status": 0, "reason": f"SSLError {TOKEN}"})())
    assert isinstance(client._sdk_failure(tls, None), ArrayUnreachable)
    assert TOKEN not in str(client._sdk_failure(tls, None))
    assert TOKEN not in repr(client)


@pytest.mark.parametrize(("call", "option"), [
    (lambda c: c.list_volumes(pending_only=True), "pending_only"),
    (lambda c: c.get_pgroup("web", schedule=True), "schedule"),
    (lambda c: c.set_pgroup("web", snap_frequency=60), "snap_frequency"),
    (lambda c: c.create_pgroup_snapshot("web", snap=True), "snap"),
    (lambda c: c.set_pod("db", mediator="m"), "mediator"),
])
def test_an_option_it_cannot_translate_is_refused_before_anything_is_sent(client, call, option):
    with pytest.raises(InvalidArgument, match=option):
        call(client)
    assert client._client is None                    # it never connected
