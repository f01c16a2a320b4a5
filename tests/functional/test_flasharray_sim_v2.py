"""The simulator's REST 2.x, driven by the real py-pure-client beside the ``purestorage`` SDK.

Two arrays (``fa-a``, ``fa-b``) share one fabric (``tests/conftest.py``), each served by one
:class:`SimulatorServer` that speaks 1.x and 2.x at once. The tests check what a user of
either client sees: logins, objects made through one API and found through the other,
replication, paging, Purity's errors with the object they are about, and arrays that stop
answering.
"""

from __future__ import annotations

import time

import purestorage
import pytest
import requests
import urllib3
from pypureclient import flasharray
from pypureclient.configuration import Configuration as ClientConfiguration
from pypureclient.flasharray import (
    ErrorResponse,
    PodPost,
    ProtectionGroup,
    ProtectionGroupSnapshotPost,
    Reference,
    ReplicationSchedule,
    RetentionPolicy,
    TargetProtectionGroupPostPatch,
    ValidResponse,
    VolumePatch,
    VolumePost,
)

from site_recovery.lab.flasharray_sim import SimulatorServer

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

TIMEOUT = (2, 10)
GIB = 1 << 30


@pytest.fixture
def client(fabric, servers):
    """``client(array, **options)``: a logged-in py-pure-client FlashArray client."""
    def connect(array: str, server: SimulatorServer | None = None, **options):
        return flasharray.Client((server or servers[array]).address,
                                 api_token=fabric.api_token(array), verify_ssl=False,
                                 timeout=TIMEOUT, **options)
    return connect


@pytest.fixture
def sdk(fabric, servers):
    """``sdk(array)``: a REST 1.x ``purestorage.FlashArray`` on the same simulated array."""
    def connect(array: str) -> purestorage.FlashArray:
        return purestorage.FlashArray(servers[array].address, api_token=fabric.api_token(array),
                                      request_kwargs={"timeout": TIMEOUT})
    return connect


def ok(response) -> list:
    """The items of a successful answer (all pages)."""
    assert isinstance(response, ValidResponse), response
    return list(response.items) if response.items is not None else []


def error(response) -> tuple[str, str]:
    """The ``(context, message)`` of a single-error answer."""
    assert isinstance(response, ErrorResponse), response
    assert response.status_code == 400
    [entry] = response.errors
    return entry.context, entry.message


def names(response) -> list[str]:
    return [item.name for item in ok(response)]


def url(server: SimulatorServer, path: str) -> str:
    return f"https://{server.address}/api/{path}"


def login(fabric, server: SimulatorServer) -> str:
    """A session token by plain ``requests`` (the client keeps its own to itself)."""
    response = requests.post(url(server, "2.4/login"),
                             headers={"api-token": fabric.api_token(server.array)},
                             verify=False, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json() == {"items": [{"username": "pureuser"}]}
    return response.headers["x-auth-token"]


# -- logging in ----------------------------------------------------------------------------------
def test_the_client_negotiates_rest_2_4_over_a_verified_certificate(fabric, servers):
    server = servers["fa-a"]
    array = flasharray.Client(server.address, api_token=fabric.api_token("fa-a"),
                              verify_ssl=True, timeout=TIMEOUT,
                              configuration=ClientConfiguration(
                                  ssl_ca_cert=str(server.cert_file)))
    assert array.get_rest_version() == "2.4"
    [info] = ok(array.get_arrays())
    assert (info.name, info.os, info.version) == ("fa-a", "Purity//FA", "6.1.0")
    [connection] = ok(array.get_array_connections())
    assert (connection.name, connection.status) == ("fa-b", "connected")


def test_a_wrong_api_token_is_refused_and_changes_nothing(fabric, servers):
    server = servers["fa-a"]
    before = fabric.inventory("fa-a")
    with pytest.raises(flasharray.PureError, match="401"):
        flasharray.Client(server.address, api_token="wrong", verify_ssl=False, timeout=TIMEOUT)
    refused = requests.post(url(server, "2.4/login"), headers={"api-token": "wrong"},
                            verify=False, timeout=TIMEOUT)
    assert refused.status_code == 401
    assert "x-auth-token" not in refused.headers
    assert refused.json()["errors"][0]["context"] == "api-token"
    for token in ({}, {"x-auth-token": "forged"}):
        attempt = requests.post(url(server, "2.4/volumes?names=v1"), json={"provisioned": GIB},
                                headers=token, verify=False, timeout=TIMEOUT)
        assert attempt.status_code == 401
        assert attempt.json()["errors"][0]["message"] == "Session is missing or has expired."
    assert fabric.inventory("fa-a") == before


def test_an_expired_session_is_renewed_by_the_client(fabric, client, cert_dir):
    with SimulatorServer(fabric, "fa-a", session_ttl=0.5, cert_dir=cert_dir) as server:
        array = client("fa-a", server)
        stale = login(fabric, server)
        time.sleep(0.7)                         # the client's session has expired too
        assert requests.get(url(server, "2.4/arrays"), headers={"x-auth-token": stale},
                            verify=False, timeout=TIMEOUT).status_code == 401
        assert names(array.get_arrays()) == ["fa-a"]


def test_each_api_keeps_its_own_paths_and_sessions(fabric, servers):
    server = servers["fa-a"]
    token = login(fabric, server)
    for path in ("2.4/volume", "2.4/auth/session", "2.99/volumes"):   # 1.x names, bad version
        response = requests.get(url(server, path), headers={"x-auth-token": token},
                                verify=False, timeout=TIMEOUT)
        assert response.status_code == 404, path
        assert response.json()["errors"][0]["message"]
    one_x = requests.get(url(server, "1.19/volumes"), headers={"x-auth-token": token},
                         verify=False, timeout=TIMEOUT)
    assert one_x.status_code == 401                 # a 2.x token is no 1.x session
    assert "ctx" in one_x.json()[0]


# -- volumes -------------------------------------------------------------------------------------
def test_volumes_made_through_either_api_are_seen_through_the_other(client, sdk):
    new, old = client("fa-a"), sdk("fa-a")
    [made] = ok(new.post_volumes(names=["v2x"], volume=VolumePost(provisioned=GIB)))
    assert old.get_volume("v2x")["serial"] == made.serial
    assert old.get_volume("v2x")["size"] == GIB

    old.create_volume("v1x", "2G")
    [seen] = ok(new.get_volumes(names=["v1x"]))
    assert (seen.provisioned, seen.destroyed) == (2 * GIB, False)
    assert abs(seen.created / 1000 - time.time()) < 60

    [moved] = ok(new.patch_volumes(names=["v1x"], volume=VolumePatch(name="renamed")))
    assert moved.name == "renamed"
    ok(new.patch_volumes(names=["renamed"], volume=VolumePatch(destroyed=True)))
    assert [v["name"] for v in old.list_volumes(pending_only=True)] == ["renamed"]
    assert names(new.get_volumes(destroyed=True)) == ["renamed"]
    assert names(new.get_volumes(destroyed=False)) == ["v2x"]
    ok(new.delete_volumes(names=["renamed"]))
    assert [v["name"] for v in old.list_volumes(pending=True)] == ["v2x"]


def test_a_snapshot_is_copied_over_a_volume_only_with_overwrite(fabric, client, sdk):
    new = client("fa-a")
    ok(new.post_volumes(names=["data"], volume=VolumePost(provisioned=GIB)))
    snapped = fabric.write("fa-a", "data")
    sdk("fa-a").create_snapshot("data", suffix="before")
    fabric.write("fa-a", "data")
    [snapshot] = ok(new.get_volume_snapshots(source_names=["data"]))
    assert (snapshot.name, snapshot.source.name, snapshot.suffix) == \
        ("data.before", "data", "before")

    restore = VolumePost(source=Reference(name="data.before"))
    assert error(new.post_volumes(names=["data"], volume=restore)) == \
        ("data", "Volume already exists.")
    assert fabric.generation("fa-a", "data") == snapped + 1
    [restored] = ok(new.post_volumes(names=["data"], volume=restore, overwrite=True))
    assert restored.name == "data"
    assert fabric.generation("fa-a", "data") == snapped


# -- protection groups and replication -----------------------------------------------------------
def test_a_replicated_pgroup_snapshot_completes_on_the_target(fabric, client, sdk):
    source, target = client("fa-a"), client("fa-b")
    ok(source.post_volumes(names=["vol1"], volume=VolumePost(provisioned=GIB)))
    written = fabric.write("fa-a", "vol1")
    ok(source.post_protection_groups(names=["pg"]))
    ok(source.post_protection_groups_volumes(group_names=["pg"], member_names=["vol1"]))
    ok(source.post_protection_groups_targets(group_names=["pg"], member_names=["fa-b"]))
    [offered] = ok(target.get_protection_groups_targets(group_names=["fa-a:pg"]))
    assert (offered.member.name, offered.allowed) == ("fa-b", False)
    ok(target.patch_protection_groups_targets(
        group_names=["fa-a:pg"], target=TargetProtectionGroupPostPatch(allowed=True)))
    assert sdk("fa-a").get_pgroup("pg")["targets"] == [{"name": "fa-b", "allowed": True}]

    [snap] = ok(source.post_protection_group_snapshots(
        source_names=["pg"], replicate_now=True,
        protection_group_snapshot=ProtectionGroupSnapshotPost(suffix="s1")))
    assert (snap.name, snap.source.name, snap.suffix) == ("pg.s1", "pg", "s1")
    fabric.write("fa-a", "vol1")              # after the snapshot: must not be replicated

    deadline = time.monotonic() + 5
    while True:
        [transfer] = ok(target.get_protection_group_snapshots_transfer(names=["fa-a:pg.s1"]))
        if getattr(transfer, "completed", None):
            break
        assert time.monotonic() < deadline, transfer
        time.sleep(0.02)
    assert transfer.progress == 1.0
    assert transfer.started <= transfer.completed
    [member] = ok(target.get_volume_snapshots(source_names=["fa-a:vol1"]))
    assert member.name == "fa-a:pg.s1.vol1"
    ok(target.post_volumes(names=["restored"],
                           volume=VolumePost(source=Reference(name=member.name))))
    assert fabric.generation("fa-b", "restored") == written

    ok(source.patch_protection_group_snapshots(
        names=["pg.s1"], protection_group_snapshot=flasharray.ProtectionGroupSnapshotPatch(
            destroyed=True)))
    assert names(source.get_protection_group_snapshots(destroyed=True)) == ["pg.s1"]
    ok(source.delete_protection_group_snapshots(names=["pg.s1"]))
    assert names(source.get_protection_group_snapshots()) == []


def test_schedule_and_retention_set_through_2x_are_what_1x_reads(client, sdk):
    new, old = client("fa-a"), sdk("fa-a")
    ok(new.post_protection_groups(names=["pg"]))
    [group] = ok(new.patch_protection_groups(names=["pg"], protection_group=ProtectionGroup(
        replication_schedule=ReplicationSchedule(enabled=True, frequency=600_000),
        target_retention=RetentionPolicy(all_for_sec=3600, per_day=2, days=3))))
    assert (group.replication_schedule.enabled, group.replication_schedule.frequency) == \
        (True, 600_000)
    schedule, retention = old.get_pgroup("pg", schedule=True), old.get_pgroup("pg", retention=True)
    assert (schedule["replicate_enabled"], schedule["replicate_frequency"]) == (True, 600)
    assert (retention["target_all_for"], retention["target_per_day"],
            retention["target_days"]) == (3600, 2, 3)

    ok(new.patch_protection_groups(names=["pg"], protection_group=ProtectionGroup(
        destroyed=True)))
    assert old.list_pgroups() == []
    assert names(new.get_protection_groups(destroyed=True)) == ["pg"]
    ok(new.delete_protection_groups(names=["pg"]))
    assert names(new.get_protection_groups()) == []


# -- pods ----------------------------------------------------------------------------------------
def test_a_pod_is_stretched_to_the_second_array_and_removed(client):
    a, b = client("fa-a"), client("fa-b")
    [pod] = ok(a.post_pods(names=["pod1"], pod=PodPost(
        failover_preferences=[Reference(name="fa-a")])))
    assert [p.name for p in pod.failover_preferences] == ["fa-a"]
    [volume] = ok(a.post_volumes(names=["pod1::v1"], volume=VolumePost(provisioned=GIB)))
    assert volume.pod.name == "pod1"

    ok(a.post_pods_arrays(group_names=["pod1"], member_names=["fa-b"]))
    [stretched] = ok(b.get_pods(names=["pod1"]))
    assert [(m.name, m.status) for m in stretched.arrays] == \
        [("fa-a", "online"), ("fa-b", "online")]
    assert [m.member.name for m in ok(b.get_pods_arrays(group_names=["pod1"]))] == \
        ["fa-a", "fa-b"]
    [mirrored] = ok(b.get_volumes(names=["pod1::v1"]))
    assert mirrored.serial == volume.serial

    ok(a.delete_pods_arrays(group_names=["pod1"], member_names=["fa-b"]))
    assert error(b.get_volumes(names=["pod1::v1"])) == ("pod1::v1", "Volume does not exist.")
    assert names(b.get_pods()) == []
    ok(a.patch_volumes(names=["pod1::v1"], volume=VolumePatch(destroyed=True)))
    ok(a.delete_volumes(names=["pod1::v1"]))
    ok(a.patch_pods(names=["pod1"], pod=flasharray.PodPatch(destroyed=True)))
    ok(a.delete_pods(names=["pod1"]))
    assert names(a.get_pods()) == []


# -- lists and errors ----------------------------------------------------------------------------
def test_limit_and_continuation_tokens_page_through_every_volume(client):
    array = client("fa-a")
    made = [f"v{n}" for n in range(5)]
    ok(array.post_volumes(names=made, volume=VolumePost(provisioned=GIB)))

    seen, pages, token = [], [], None
    while True:
        page = array.get_volumes(limit=2, continuation_token=token)
        assert page.total_item_count == 5
        pages.append(names(page))
        seen += pages[-1]
        token = page.continuation_token
        if token is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(seen) == made

    paging = client("fa-a", auto_pagination_limit=2)
    assert sorted(names(paging.get_volumes())) == made
    assert error(array.get_volumes(limit=2, continuation_token="forged"))[0] == \
        "continuation_token"


def test_a_name_filter_lists_only_matching_objects_and_other_filters_are_refused(client):
    array = client("fa-a")
    ok(array.post_volumes(names=["db-1", "db-2", "web-1"], volume=VolumePost(provisioned=GIB)))
    assert names(array.get_volumes(filter="name='db-*'")) == ["db-1", "db-2"]
    assert names(array.get_volumes(filter="name='web-1'")) == ["web-1"]
    assert names(array.get_volumes(filter="name='nothing*'")) == []
    assert error(array.get_volumes(filter="provisioned>1")) == (
        "filter", "Not supported by the simulator.")


def test_errors_are_error_responses_naming_the_object(client):
    array = client("fa-a")
    assert error(array.get_volumes(names=["missing"])) == ("missing", "Volume does not exist.")
    ok(array.post_volumes(names=["twice"], volume=VolumePost(provisioned=GIB)))
    assert error(array.post_volumes(names=["twice"], volume=VolumePost(provisioned=GIB))) == \
        ("twice", "Volume already exists.")
    assert error(array.post_protection_groups_volumes(
        group_names=["nopg"], member_names=["twice"])) == \
        ("nopg", "Protection group does not exist.")
    assert error(array.patch_volumes(names=["twice"], volume=VolumePatch(
        destroyed=True, provisioned=2 * GIB)))[1] == "Not supported by the simulator."
    assert names(array.get_volumes()) == ["twice"]


def test_an_injected_failure_reaches_the_2x_client(fabric, client):
    array = client("fa-a")
    fabric.fail_call("fa-a", "create_volume", "Volume limit reached.")
    assert error(array.post_volumes(names=["v1"], volume=VolumePost(provisioned=GIB))) == \
        ("create_volume", "Volume limit reached.")
    assert names(array.post_volumes(names=["v1"], volume=VolumePost(provisioned=GIB))) == ["v1"]


def test_an_array_that_is_down_fails_the_client_quickly_until_it_is_back(fabric, client):
    array = client("fa-a")
    fabric.set_array_up("fa-a", False)
    started = time.monotonic()
    # py-pure-client lets urllib3's error through when the connection drops unanswered.
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="without response"):
        array.get_arrays()
    with pytest.raises(urllib3.exceptions.MaxRetryError, match="api_version"):
        client("fa-a")
    assert time.monotonic() - started < 5
    assert names(client("fa-b").get_arrays()) == ["fa-b"]

    fabric.set_array_up("fa-a", True)
    assert names(array.get_arrays()) == ["fa-a"]
