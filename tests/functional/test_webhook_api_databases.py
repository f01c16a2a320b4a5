"""The service's API tests, again on PostgreSQL and MariaDB.

The same tests as the unit suite runs on SQLite (metadata sync, conflicts, concurrent
edits, operations and their progress, alerts, which executions may act), with each site's
database on a real server: row locks, isolation and types are the server's own. Opportunistic as in
oslo.db: skipped, with the reason, where the server does not answer.
"""

from __future__ import annotations

import inspect

import pytest

from site_recovery.webhook.services import services
from tests.functional.test_webhook_db import _server_database
from tests.unit import (
    test_webhook_alerts,
    test_webhook_operations,
    test_webhook_registry,
    test_webhook_trust,
)
from tests.unit.webhook_sites import linked_sites


@pytest.fixture(params=["postgresql", "mysql"])
def database(request):
    """A factory of empty databases on the server; all dropped at the end."""
    drops = []

    def new():
        url, drop = _server_database(request.param)
        drops.append(drop)
        return url

    yield new
    for drop in drops:
        drop()


@pytest.fixture
def sites(tmp_path, database):
    yield from linked_sites(tmp_path, database)


@pytest.fixture
def dr_site(tmp_path, database):
    client = test_webhook_alerts.alerting_site(tmp_path, database_url=database())
    yield client
    services(client.application).close()


def _uses_a_service(test) -> bool:
    arguments = inspect.signature(test).parameters if callable(test) else {}
    return bool({"sites", "dr_site"} & set(arguments))


for module in (test_webhook_registry, test_webhook_operations, test_webhook_alerts,
               test_webhook_trust):
    for name, test in vars(module).items():
        if name.startswith("test_") and _uses_a_service(test):
            globals()[name] = test
