"""Fixtures of the functional tests that talk to the lab's array simulator."""

from __future__ import annotations

import pytest

from site_recovery.lab.flasharray_sim import SimulatorServer


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("certs")


@pytest.fixture
def servers(fabric, cert_dir):
    """Both arrays of ``fabric`` served over HTTPS, REST 1.x and 2.x, by name."""
    with SimulatorServer(fabric, "fa-a", cert_dir=cert_dir) as a, \
            SimulatorServer(fabric, "fa-b", cert_dir=cert_dir) as b:
        yield {"fa-a": a, "fa-b": b}
