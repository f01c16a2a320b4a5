"""The REST 2.x backend's translations, without an array: REST 2.x objects into the DR
driver's values, and its errors into typed ones that never carry the API token. The
whole backend runs against the simulator in tests/functional/test_storage_contract.py."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pypureclient import flasharray
from pypureclient.exceptions import PureError
from urllib3 import exceptions as transport

from site_recovery.storage.base import (
    ArrayEndpoint,
    Connection,
    PgroupSnapshot,
    PodArray,
    Volume,
)
from site_recovery.storage.errors import (
    AlreadyExists,
    ArrayOperationFailed,
    ArrayUnreachable,
    NotFound,
    PendingEradication,
)
from site_recovery.storage.flasharray_rest2 import (
    FlashArrayRest2Client,
    connection_of,
    moment,
    pod_arrays_of,
    replication_patch,
    snapshot_of,
    volume_of,
)

TOKEN = "0b7e9f3c-secret-api-token"
CREATED_MS = 1_796_642_524_123          # 2026-12-07T11:22:04.123Z


@pytest.fixture
def client():
    """A client that never connects: these tests stop before the network."""
    return FlashArrayRest2Client(ArrayEndpoint("fa-a", "127.0.0.1:1", TOKEN),
                                 connect_timeout=2.0, read_timeout=7.5)


def test_times_are_milliseconds_since_the_epoch():
    assert moment(CREATED_MS) == datetime(2026, 12, 7, 11, 22, 4, 123000, tzinfo=timezone.utc)
    assert moment(None) is None


def test_a_volume_keeps_its_name_serial_size_and_whether_it_is_destroyed():
    live = flasharray.Volume(name="web-1", serial="F4A1", provisioned=1 << 30,
                             created=CREATED_MS, destroyed=False,
                             source=flasharray.Reference(name="gold"))
    assert volume_of(live) == Volume("web-1", "F4A1", 1 << 30, destroyed=False)
    destroyed = flasharray.Volume(name="old", serial="F4A2", provisioned=1, destroyed=True,
                                  time_remaining=86_399_999)
    assert volume_of(destroyed).destroyed


def test_a_pgroup_snapshot_carries_its_transfer_when_asked():
    snapshot = flasharray.ProtectionGroupSnapshot(
        name="fa-a:web.sr-1", created=CREATED_MS,
        source=flasharray.Reference(name="fa-a:web"))
    assert snapshot_of(snapshot) == PgroupSnapshot("fa-a:web.sr-1", moment(CREATED_MS))
    in_flight = flasharray.ProtectionGroupSnapshotTransfer(
        name="fa-a:web.sr-1", started=CREATED_MS, progress=0.5, data_transferred=10)
    assert snapshot_of(snapshot, in_flight) == PgroupSnapshot(
        "fa-a:web.sr-1", moment(CREATED_MS), completed=None, progress=0.5)
    done = flasharray.ProtectionGroupSnapshotTransfer(
        name="fa-a:web.sr-1", completed=CREATED_MS + 1500, progress=1.0)
    assert snapshot_of(snapshot, done).completed == moment(CREATED_MS + 1500)


def test_a_pod_names_its_arrays_and_when_a_side_froze():
    pod = flasharray.Pod(
        name="db", source=flasharray.Reference(name="fa-a"),
        arrays=[flasharray.PodArrayStatus(name="fa-a", id="1", status="online"),
                flasharray.PodArrayStatus(name="fa-b", id="2", status="offline",
                                          frozen_at=CREATED_MS)],
        failover_preferences=[flasharray.Reference(name="fa-a")])
    assert pod_arrays_of(pod) == {"fa-a": PodArray("fa-a", "online"),
                                  "fa-b": PodArray("fa-b", "offline", moment(CREATED_MS))}


def test_an_array_connection_names_its_peer():
    connection = flasharray.ArrayConnection(name="fa-b", status="connected",
                                            type="sync-replication")
    assert connection_of(connection) == Connection("fa-b", "connected", ("sync-replication",))
    assert connection_of(connection).connected


def test_schedule_switch_and_retention_become_one_patch_in_milliseconds():
    patch = replication_patch(600, None, True)
    assert patch.as_request_dict() == {
        "replication_schedule": {"enabled": True, "frequency": 600_000}}
    patch = replication_patch(None, 86400, None)
    assert patch.as_request_dict() == {"source_retention": {"all_for_sec": 86400},
                                       "target_retention": {"all_for_sec": 86400}}
    assert replication_patch(None, None, None) is None


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
