"""The FlashArray REST simulator, driven by the real ``purestorage`` SDK over HTTPS.

Two arrays (``fa-a``, ``fa-b``) share one fabric (``tests/conftest.py``); each gets its own
:class:`SimulatorServer`. The tests check what an SDK user sees: version negotiation,
sessions, names that carry ``:``, ``::`` and ``.``, Purity's error bodies, and arrays that
stop answering.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import purestorage
import pytest
import requests

from site_recovery.lab.flasharray_sim import SimulatorServer, ensure_certificate

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

TIMEOUT = (2, 10)


@pytest.fixture
def sdk(fabric, servers):
    """``sdk(array)``: a connected ``purestorage.FlashArray`` client."""
    def connect(array: str, server: SimulatorServer | None = None) -> purestorage.FlashArray:
        return purestorage.FlashArray((server or servers[array]).address,
                                      api_token=fabric.api_token(array),
                                      request_kwargs={"timeout": TIMEOUT})
    return connect


def url(server: SimulatorServer, path: str) -> str:
    return f"https://{server.address}/api/{path}"


def login(fabric, server: SimulatorServer) -> dict[str, str]:
    """Open a session with plain ``requests``; returns the cookies to send."""
    response = requests.post(url(server, "1.19/auth/session"), verify=False, timeout=TIMEOUT,
                             json={"api_token": fabric.api_token(server.array)})
    assert response.status_code == 200
    return {"session": response.cookies["session"]}


def error_of(caught) -> dict:
    """The single ``{"msg", "ctx"}`` entry of a Purity error body."""
    [entry] = json.loads(caught.value.text)
    assert set(entry) == {"msg", "ctx"}
    return entry


# -- connecting and sessions -------------------------------------------------------------------
def test_the_sdk_negotiates_rest_1_19_and_reads_the_array(sdk, servers):
    array = sdk("fa-a")
    assert array.get_rest_version() == "1.19"
    assert array.get()["array_name"] == "fa-a"
    versions = requests.get(url(servers["fa-a"], "api_version"), verify=False,
                            timeout=TIMEOUT).json()["version"]
    assert {"1.0", "1.19", "2.4"} <= set(versions)


def test_the_certificate_verifies_for_127_0_0_1_and_is_reused(fabric, servers, cert_dir):
    server = servers["fa-a"]
    pem = server.cert_file.read_bytes()
    response = requests.get(url(server, "api_version"), verify=str(server.cert_file),
                            timeout=TIMEOUT)
    assert response.status_code == 200
    assert servers["fa-b"].cert_file == server.cert_file
    with SimulatorServer(fabric, "fa-a", cert_dir=cert_dir):
        assert server.cert_file.read_bytes() == pem


def test_every_successful_answer_renews_the_session_cookie(fabric, servers):
    server = servers["fa-a"]
    cookies = login(fabric, server)
    for method, path, body in [("GET", "array", None), ("GET", "volume", None),
                               ("POST", "volume/v1", {"size": "1G"}),
                               ("GET", "volume/v1", None)]:
        response = requests.request(method, url(server, f"1.19/{path}"), json=body,
                                    cookies=cookies, verify=False, timeout=TIMEOUT)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.cookies.get("session") == cookies["session"], path


def test_calls_without_a_valid_session_get_401(fabric, servers):
    server = servers["fa-a"]
    for cookies in ({}, {"session": "forged"}):
        response = requests.get(url(server, "1.19/array"), cookies=cookies, verify=False,
                                timeout=TIMEOUT)
        assert response.status_code == 401
        assert "session" in response.json()[0]["ctx"]
    cookies = login(fabric, server)
    ended = requests.delete(url(server, "1.19/auth/session"), cookies=cookies, verify=False,
                            timeout=TIMEOUT)
    assert ended.status_code == 200
    assert requests.get(url(server, "1.19/array"), cookies=cookies, verify=False,
                        timeout=TIMEOUT).status_code == 401


def test_a_wrong_api_token_is_refused(servers):
    with pytest.raises(purestorage.PureHTTPError) as caught:
        purestorage.FlashArray(servers["fa-a"].address, api_token="wrong",
                               request_kwargs={"timeout": TIMEOUT})
    assert caught.value.code == 400
    assert error_of(caught)["msg"] == "invalid credentials"


def test_an_expired_session_is_renewed_by_the_sdk(fabric, sdk, cert_dir):
    with SimulatorServer(fabric, "fa-a", session_ttl=0.5, cert_dir=cert_dir) as server:
        array = sdk("fa-a", server)
        stale = login(fabric, server)
        time.sleep(0.7)
        assert requests.get(url(server, "1.19/array"), cookies=stale, verify=False,
                            timeout=TIMEOUT).status_code == 401
        assert array.get()["array_name"] == "fa-a"


def test_unknown_versions_and_paths_get_a_json_404(fabric, servers):
    server = servers["fa-a"]
    cookies = login(fabric, server)
    for path in ("1.99/array", "1.19/no-such-thing"):
        response = requests.get(url(server, path), cookies=cookies, verify=False,
                                timeout=TIMEOUT)
        assert response.status_code == 404
        assert response.headers["Content-Type"] == "application/json"
        assert response.json()[0]["msg"]


# -- routing -------------------------------------------------------------------------------------
def test_replica_names_with_colons_and_dots_route_through_a_restore(fabric, sdk):
    fabric.set_transfer_seconds(0.05)
    source, target = sdk("fa-a"), sdk("fa-b")
    source.create_volume("vol1", "1G")
    written = fabric.write("fa-a", "vol1")
    source.create_pgroup("pg", vollist=["vol1"], targetlist=["fa-b"])
    assert target.get_pgroup("fa-a:pg")["targets"] == [{"name": "fa-b", "allowed": False}]
    target.set_pgroup("fa-a:pg", allowed=True)
    assert source.create_pgroup_snapshot("pg", replicate_now=True, suffix="s1")["name"] == \
        "pg.s1"
    fabric.write("fa-a", "vol1")              # after the snapshot: must not be restored

    deadline = time.monotonic() + 5
    while (snaps := target.get_pgroup("fa-a:pg", snap=True, transfer=True))[0]["progress"] != 1:
        assert time.monotonic() < deadline, snaps
        time.sleep(0.02)
    assert snaps[0]["name"] == "fa-a:pg.s1"
    members = target.get_volume("fa-a:pg.s1", snap=True, pgroup=True)
    assert [m["name"] for m in members] == ["fa-a:pg.s1.vol1"]

    assert target.copy_volume("fa-a:pg.s1.vol1", "restored")["name"] == "restored"
    assert fabric.generation("fa-b", "restored") == written
    source.destroy_pgroup("pg.s1")
    assert source.get_pgroup("pg", snap=True) == []


def test_pod_volumes_are_created_read_and_stretched(sdk):
    a, b = sdk("fa-a"), sdk("fa-b")
    a.create_pod("pod1")
    created = a.create_volume("pod1::v1", "1G")
    assert a.get_volume("pod1::v1")["size"] == 1 << 30
    a.add_pod("pod1", "fa-b")
    assert b.get_volume("pod1::v1")["serial"] == created["serial"]
    assert [m["name"] for m in b.get_pod("pod1")["arrays"]] == ["fa-a", "fa-b"]
    a.remove_pod("pod1", "fa-b")
    with pytest.raises(purestorage.PureHTTPError, match="does not exist"):
        b.get_volume("pod1::v1")


def test_volume_host_and_pgroup_operations_route_to_the_model(fabric, sdk):
    a = sdk("fa-a")
    a.create_volume("v1", 1 << 30)
    a.create_pgroup("pg")
    assert a.add_volume("v1", "pg") == {"name": "v1", "protection_group": "pg"}
    assert a.get_pgroup("pg")["volumes"] == ["v1"]
    a.remove_volume("v1", "pg")
    assert a.list_pgroups()[0]["volumes"] == []

    a.create_host("h1")
    assert a.connect_host("h1", "v1")["lun"] == 1
    assert a.list_host_connections("h1") == [{"name": "h1", "vol": "v1", "lun": 1}]
    assert [c["host"] for c in a.list_volume_private_connections("v1")] == ["h1"]
    assert [h["name"] for h in a.list_hosts()] == ["h1"]
    with pytest.raises(purestorage.PureHTTPError, match="existing host connections"):
        a.destroy_volume("v1")
    a.disconnect_host("h1", "v1")
    a.delete_host("h1")

    a.rename_volume("v1", "v2")
    a.create_snapshot("v2", suffix="s")
    a.destroy_volume("v2")
    assert [v["name"] for v in a.list_volumes(pending_only=True)] == ["v2"]
    a.recover_volume("v2")
    a.destroy_volume("v2")
    a.eradicate_volume("v2")
    a.create_pod("pod2")
    a.create_volume("v3", "1G")
    assert a.move_volume("v3", "pod2")["name"] == "pod2::v3"
    a.destroy_pgroup("pg")
    a.eradicate_pgroup("pg")
    assert fabric.inventory("fa-a")["volumes"] == ["pod2::v3"]
    assert a.list_array_connections()[0]["array_name"] == "fa-b"


def test_get_parameters_are_also_read_from_the_query_string(fabric, sdk, servers):
    sdk("fa-a").create_volume("vol1", "1G")
    sdk("fa-a").create_snapshot("vol1", suffix="q")
    cookies = login(fabric, servers["fa-a"])

    def names(path):
        response = requests.get(url(servers["fa-a"], f"1.19/{path}"), cookies=cookies,
                                verify=False, timeout=TIMEOUT)
        assert response.status_code == 200, response.text
        return [v["name"] for v in response.json()]

    assert names("volume") == ["vol1"]
    assert names("volume?snap=true") == ["vol1.q"]
    assert names("volume?snap=false") == ["vol1"]
    assert names("volume/vol1?snap=true") == ["vol1.q"]


# -- errors and faults -----------------------------------------------------------------------------
def test_purity_errors_are_400_with_msg_and_ctx(sdk):
    a = sdk("fa-a")
    with pytest.raises(purestorage.PureHTTPError) as caught:
        a.get_volume("missing")
    assert caught.value.code == 400
    assert error_of(caught) == {"msg": "Volume does not exist.", "ctx": "missing"}
    a.create_volume("twice", "1G")
    with pytest.raises(purestorage.PureHTTPError) as caught:
        a.create_volume("twice", "1G")
    assert "already exists" in error_of(caught)["msg"]


def test_an_injected_failure_hits_the_next_call_only(fabric, sdk):
    a = sdk("fa-a")
    fabric.fail_call("fa-a", "create_volume", "Volume limit reached.")
    with pytest.raises(purestorage.PureHTTPError) as caught:
        a.create_volume("v1", "1G")
    assert error_of(caught)["msg"] == "Volume limit reached."
    assert a.create_volume("v1", "1G")["name"] == "v1"


def test_an_array_that_is_down_drops_connections_until_it_is_back(fabric, sdk, servers):
    a = sdk("fa-a")
    fabric.set_array_up("fa-a", False)
    started = time.monotonic()
    with pytest.raises(purestorage.PureError) as caught:
        a.get()
    assert time.monotonic() - started < 2
    assert not isinstance(caught.value, purestorage.PureHTTPError)
    with pytest.raises(requests.exceptions.ConnectionError):     # no HTTP answer at all
        requests.get(url(servers["fa-a"], "api_version"), verify=False, timeout=TIMEOUT)
    with pytest.raises(purestorage.PureError):
        sdk("fa-a")
    assert sdk("fa-b").get()["array_name"] == "fa-b"

    fabric.set_array_up("fa-a", True)
    assert a.get()["array_name"] == "fa-a"


def test_a_stopped_server_leaves_a_closed_port(sdk, servers):
    a = sdk("fa-a")
    servers["fa-a"].stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", servers["fa-a"].port), timeout=2).close()
    with pytest.raises(purestorage.PureError) as caught:
        a.get()
    assert not isinstance(caught.value, purestorage.PureHTTPError)


# -- the lab's entry point -------------------------------------------------------------------------
def test_the_command_serves_one_array_until_sigterm(fabric, cert_dir):
    process = subprocess.Popen(
        [sys.executable, "-m", "site_recovery.lab.flasharray_sim", "--fabric", fabric.path,
         "--array", "fa-b", "--cert-dir", str(cert_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        banner = process.stdout.readline()
        assert banner.startswith("fa-b serving https://"), banner
        address = banner.split("https://", 1)[1].strip()
        array = purestorage.FlashArray(address, api_token=fabric.api_token("fa-b"),
                                       request_kwargs={"timeout": TIMEOUT})
        assert array.get()["array_name"] == "fa-b"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        process.kill()
        process.wait()


def test_a_busy_port_raises_instead_of_ending_the_process(fabric):
    from site_recovery.lab.flasharray_sim import SimulatorServer

    with SimulatorServer(fabric, "fa-a") as first, \
            pytest.raises(OSError, match=r"fa-a: cannot listen on 127.0.0.1"):
        SimulatorServer(fabric, "fa-a", port=first.port).start()


def test_arrays_starting_at_once_serve_the_certificate_their_clients_trust(tmp_path):
    """Both sites' arrays start side by side on one certificate directory: whichever
    certificate a process loads must stay the one on disk that clients verify against."""
    start = threading.Barrier(8)
    loaded = []

    def array_process():
        start.wait()
        loaded.append(ensure_certificate(tmp_path).read_bytes())

    threads = [threading.Thread(target=array_process) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    on_disk = (tmp_path / "flasharray-sim.pem").read_bytes()
    assert loaded == [on_disk] * 8
    assert [p.name for p in tmp_path.iterdir()] == ["flasharray-sim.pem"]
