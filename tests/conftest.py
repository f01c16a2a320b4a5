"""Fixtures shared by every test layer: a two-array fabric and a storage driver over it."""

from __future__ import annotations

import uuid

import pytest

from site_recovery.storage.fabric import Fabric
from site_recovery.storage.mock import mock_driver

GIB = 1 << 30


@pytest.fixture
def fabric(tmp_path):
    """Two arrays joined for async and sync replication; transfers take 50 ms."""
    fabric = Fabric(tmp_path / "fabric.db", transfer_seconds=0.05)
    fabric.add_array("fa-a")
    fabric.add_array("fa-b")
    fabric.connect("fa-a", "fa-b")
    yield fabric
    fabric.close()


@pytest.fixture
def mock(fabric):
    return mock_driver(fabric, timeout=5.0, poll_interval=0.02, setup_timeout=5.0)


def redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    """Whether the machine's Redis answers (the engines' coordination backend in CI)."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def make_volumes(fabric: Fabric, array: str, names, size=GIB) -> list[str]:
    handle = fabric.array(array)
    for name in names:
        handle.create_volume(name, size)
    return list(names)


def fresh_lab(port_base: int, name: str, *, seeded: bool = True, horizon: bool = False,
              **options):
    """A two-site lab of its own on ``port_base`` (seeded with the e-commerce tenant unless
    told not to; ``options``: more of :class:`LabOptions`), purged afterwards: the body of
    the lab-backed fixtures. Horizon only for a test that asks for it: it costs a venv of
    its own (60 to 110 s to build) and about 150 MB per site, and no other test uses it."""
    from site_recovery.lab.seed import seed
    from site_recovery.lab.supervisor import Lab, LabOptions

    lab = Lab(LabOptions(port_base=port_base, run_name=f"{name}-{uuid.uuid4().hex[:8]}",
                         horizon=horizon, **options))
    try:
        lab.up(progress=lambda line: None)
        if seeded:
            seed(lab, progress=lambda line: None)
        yield lab
    finally:
        lab.purge(progress=lambda line: None)
