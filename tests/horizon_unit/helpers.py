"""What the dashboard's view tests share: Horizon's own ``TestCase`` (its test user, its
service catalog with the protection service added, its test client), the dashboard's
``api`` module mocked, and the service's objects as it answers them."""

from __future__ import annotations

import html
import re

from openstack_dashboard.test import helpers

from site_recovery.dashboard import api

PROTECTOR_ENDPOINT = {"type": "protector", "name": "protector", "endpoints_links": [],
                      "endpoints": [{"region": "RegionOne", "interface": "public",
                                     "url": "https://protector.example.com:8788/v1"}]}
# This Horizon's site and its peer, as the service lists them.
SITES = [{"name": "site-a", "role": "local", "state": "reachable", "since": None},
         {"name": "site-b", "role": "peer", "state": "reachable",
          "since": "2025-01-01T00:00:00+00:00"}]


def mock_api(*functions: str):
    """Horizon's ``create_mocks`` over the dashboard's API: ``self.mock_<function>``."""
    return helpers.create_mocks({api: functions})


def group(name: str, status: str = "protected", primary_site: str = "site-a",
          secondary_site: str = "site-b", **fields) -> dict:
    """A protection group as the service shows it."""
    return {"id": f"{name}-id", "name": name, "description": "", "replication_type": "async",
            "primary_site": primary_site, "secondary_site": secondary_site,
            "status": status, "member_count": 2, "volume_type": "replicated-ssd",
            "project_domain": "Default", "project_name": "ecommerce", "version": 3,
            "updated_at": "2025-01-01T00:00:00+00:00", "rpo_target_seconds": None,
            "last_recovery_point": None, **fields}


def operation(operation_type: str, status: str = "pending", **fields) -> dict:
    """An operation as the service answers a start or a read."""
    return {"id": f"{operation_type}-op", "operation_type": operation_type,
            "status": status, "progress": 0, "failover_type": None, "force": False,
            "protection_group": "shop-web", "site": None, "completed_count": 0,
            "failed_count": 0, "total_protection_groups": 1, "error": None,
            "created_at": "2025-01-01T00:00:00+00:00", "finished_at": None,
            "results": [], **fields}


def error_messages(response) -> list[str]:
    """The error messages Horizon shows on the page, as a user reads them."""
    return [html.unescape(text).strip() for text in re.findall(
        r"<strong>Error: </strong>(.*?)</p>", response.content.decode(), re.S)]


def shown_key(response) -> str:
    """The Idempotency-Key the shown form carries, which the browser sends with it."""
    (key,) = re.findall(r'name="idempotency_key" value="([^"]+)"', response.content.decode())
    return key


class DashboardTestCase(helpers.TestCase):
    """Horizon's test user, with ``user_roles``, in a project whose catalog has the
    protection service."""

    user_roles: tuple[str, ...] = ("member",)

    def _setup_test_data(self):
        super()._setup_test_data()
        self.service_catalog.append(PROTECTOR_ENDPOINT)

    def _setup_user(self, **kwargs):
        super()._setup_user(roles=[{"id": str(number), "name": role}
                                   for number, role in enumerate(self.user_roles)], **kwargs)
