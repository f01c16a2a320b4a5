"""Fixtures of the unit tests of the simulated cloud."""

from __future__ import annotations

import pytest

from site_recovery.lab.cloud import CloudConfig, create_app


@pytest.fixture
def app(tmp_path, fabric):
    """One site's simulated Nova/Neutron/Cinder/Glance, in process, over the test fabric."""
    return create_app(CloudConfig(db=str(tmp_path / "cloud.db"), fabric=fabric.path,
                                  array="fa-a"))


# Two linked protection services (site-a and site-b), for the webhook tests.
from tests.unit.webhook_sites import sites  # noqa: E402, F401


# The CLI plugin's tests: a scripted protection service and the client the plugin makes.
@pytest.fixture
def service():
    from tests.unit.test_cli_client import FakeService
    fake = FakeService()
    yield fake
    fake.stop()


@pytest.fixture
def client(service):
    from tests.unit.test_cli_client import client_for
    return client_for(service, timeout=5)
