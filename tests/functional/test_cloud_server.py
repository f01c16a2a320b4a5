"""``python -m site_recovery.lab.cloud`` as the lab runs it: a process on a real port that
stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
import requests


@pytest.fixture
def serve(tmp_path, fabric):
    """``serve(*flags)``: start the cloud process; returns its base URL."""
    processes = []

    def start(*flags: str) -> str:
        proc = subprocess.Popen(
            [sys.executable, "-m", "site_recovery.lab.cloud", "--site", "site-a", "--port", "0",
             "--db", str(tmp_path / "cloud.db"), "--fabric", fabric.path, "--array", "fa-a",
             *flags], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        processes.append(proc)
        line = proc.stdout.readline()
        assert line.startswith("site-a cloud serving http://127.0.0.1:"), line
        return line.split()[-1]

    yield start
    for proc in processes:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_serves_the_catalog_paths_until_sigterm(serve):
    url = serve()
    assert requests.get(f"{url}/compute/v2.1", timeout=5).json()["version"]["version"] == "2.96"
    assert requests.get(f"{url}/volume/", timeout=5).status_code == 300
    response = requests.get(f"{url}/network/v2.0/networks", timeout=5, headers={
        "X-Project-Id": "ecommerce", "X-Roles": "member"})
    assert response.json() == {"networks": []}


def test_with_keystone_a_request_needs_a_token(serve):
    url = serve("--keystone-url", "http://127.0.0.1:9/v3")
    response = requests.get(f"{url}/network/v2.0/networks", timeout=5, headers={
        "X-Project-Id": "ecommerce", "X-Roles": "admin"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Keystone uri="http://127.0.0.1:9/v3"'
    assert requests.get(f"{url}/image/versions", timeout=5).status_code == 200
