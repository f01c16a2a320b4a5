"""A real Prometheus Alertmanager that delivers webhooks to the protection service.

Debian's ``prometheus-alertmanager`` package (0.25 in bookworm) installs the binary as
``/usr/bin/prometheus-alertmanager``; upstream tarballs call it ``alertmanager``. Nothing is
downloaded at run time but through apt. Each instance runs from a directory of its own,
on loopback, with clustering off (no gossip port, ready at once) and every alert routed to
one webhook receiver with a bearer token read from a file, as a production one would be.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import requests
import yaml

from ..layout import HOST
from .base import ServiceSpec, start_and_wait, stop_group
from .postgres import answers

log = logging.getLogger(__name__)

PACKAGE = "prometheus-alertmanager"
DEBIAN_BINARY = Path("/usr/bin/prometheus-alertmanager")
INSTALL_TIMEOUT = 600
TIMEOUT = 10


class Unavailable(RuntimeError):
    """Alertmanager is not installed and this machine cannot install it; says why."""


def binary() -> Path | None:
    """The Alertmanager executable: on PATH under either name, or where Debian puts it."""
    for name in ("alertmanager", PACKAGE):
        found = shutil.which(name)
        if found:
            return Path(found)
    return DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None


def ensure_installed() -> Path:
    """The executable, installed with apt first if missing (root only).

    Raises :class:`Unavailable` with the reason, so a test can skip saying why. If the
    package list lacks the package (a fresh image), it is refreshed once and tried again.
    """
    found = binary()
    if found:
        return found
    if os.geteuid() != 0:
        raise Unavailable(f"{PACKAGE} is not installed and installing it needs root")
    if shutil.which("apt-get") is None:
        raise Unavailable(f"{PACKAGE} is not installed and there is no apt-get")
    install = ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE]
    result = _apt(install)
    if result.returncode:
        _apt(["apt-get", "update"])
        result = _apt(install)
    if result.returncode:
        raise Unavailable(f"apt-get install {PACKAGE} failed: {result.stdout.strip()[-800:]}")
    _stop_packaged_service()
    found = binary()
    if found is None:
        raise Unavailable(f"{PACKAGE} installed, but no alertmanager executable was found")
    log.info("installed %s: %s", PACKAGE, found)
    return found


def _apt(argv: list[str]) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{' '.join(argv[:3])} took over {INSTALL_TIMEOUT} s") from None


def _stop_packaged_service():
    """Under systemd the package starts its own daemon (:9093, gossip :9094); the lab runs
    its own instances, so the packaged one is stopped and kept from starting at boot.
    Without systemd (containers) policy-rc.d already kept it from starting."""
    if not Path("/run/systemd/system").is_dir():
        return
    result = subprocess.run(["systemctl", "disable", "--now", PACKAGE], capture_output=True,
                            text=True, timeout=60)
    if result.returncode:
        log.warning("could not stop the packaged %s service: %s", PACKAGE,
                    result.stderr.strip())


def prepare(workdir: Path, port: int, receiver_url: str, bearer_token_file: Path, *,
            ca_file: Path | None = None,
            executable: Path | None = None, group_by: tuple[str, ...] = ("...",),
            group_wait: str = "1s", group_interval: str = "1s",
            repeat_interval: str = "1h") -> ServiceSpec:
    """Write the configuration into ``workdir``; the process that serves on ``port``.

    Timings are Alertmanager durations. The defaults suit tests: a firing alert is sent
    about ``group_wait`` after it arrives, a change (resolution, a failed delivery) at the
    next ``group_interval`` tick, and an unchanged alert again only after
    ``repeat_interval``. ``group_by: ["..."]`` makes every alert a group of its own, so
    each payload carries one alert. ``ca_file``: the CA bundle that verifies the receiver.
    """
    executable = executable or binary()
    if executable is None:
        raise Unavailable(f"{PACKAGE} is not installed (see ensure_installed)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "alertmanager.yml"
    config.write_text(yaml.safe_dump({
        "route": {"receiver": "protector", "group_by": list(group_by),
                  "group_wait": group_wait, "group_interval": group_interval,
                  "repeat_interval": repeat_interval},
        "receivers": [{"name": "protector", "webhook_configs": [{
            "url": receiver_url,
            "send_resolved": True,
            "http_config": {"authorization": {
                "type": "Bearer", "credentials_file": str(bearer_token_file)},
                **({"tls_config": {"ca_file": str(ca_file)}} if ca_file else {})},
        }]}],
    }, sort_keys=False))
    return ServiceSpec(
        name="alertmanager",
        argv=(str(executable), f"--config.file={config}",
              f"--storage.path={workdir / 'data'}",
              f"--web.listen-address={HOST}:{port}",
              "--cluster.listen-address="),           # empty: no HA gossip, no port 9094
        cwd=workdir,
        log=workdir / "alertmanager.log",
        ready_url=f"http://{HOST}:{port}/-/ready",
        port=port,
    )


@contextlib.contextmanager
def running(spec: ServiceSpec, timeout: float = 30.0) -> Iterator[str]:
    """Run Alertmanager while the block runs; yields its base URL.

    On the way out it is stopped and its port checked free, so the next test can reuse it.
    """
    process = start_and_wait(spec, timeout)
    try:
        yield f"http://{HOST}:{spec.port}"
    finally:
        stop_group(process.pid, spec.stop_timeout)
        deadline = time.monotonic() + spec.stop_timeout
        while answers(spec.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if answers(spec.port):
            raise RuntimeError(f"port {spec.port} still answers after Alertmanager stopped")


def alert(labels: dict[str, str], annotations: dict[str, str] | None = None, *,
          starts_at: datetime | None = None, ends_at: datetime | None = None) -> dict:
    """One alert as API v2 takes it. An ``ends_at`` in the past resolves the alert."""
    body = {"labels": labels, "annotations": annotations or {},
            "startsAt": (starts_at or datetime.now(UTC)).isoformat()}
    if ends_at is not None:
        body["endsAt"] = ends_at.isoformat()
    return body


def post_alerts(url: str, alerts: list[dict], timeout: float = TIMEOUT):
    """Send alerts to Alertmanager at ``url`` as Prometheus does (``POST /api/v2/alerts``)."""
    requests.post(f"{url}/api/v2/alerts", json=alerts, timeout=timeout).raise_for_status()


def alerts(url: str, timeout: float = TIMEOUT) -> list[dict]:
    """The alerts Alertmanager holds, with the fingerprints it computed."""
    response = requests.get(f"{url}/api/v2/alerts", timeout=timeout)
    response.raise_for_status()
    return response.json()
