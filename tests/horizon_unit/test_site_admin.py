"""Admin → Disaster Recovery → Site Recovery, in Horizon's own view-test style: who finds
the panel, the typed confirmation of the site's name, what the form sends, and the
service's refusal as Horizon's error message."""

from __future__ import annotations

from django.urls import reverse
from openstack_dashboard.test.helpers import IsHttpRequest

from site_recovery.dashboard import api
from tests.horizon_unit.helpers import (
    SITES,
    DashboardTestCase,
    error_messages,
    mock_api,
    operation,
    shown_key,
)

INDEX_URL = reverse("horizon:admin:site_recovery:index")
FAILOVER_URL = reverse("horizon:admin:site_recovery:failover", args=("site-b",))


class DrAdministratorTests(DashboardTestCase):
    user_roles = ("admin", "dr_site_admin")

    @mock_api("list_sites", "list_operations")
    def test_both_sites_are_listed_and_only_the_peer_can_be_failed_over(self):
        self.mock_list_sites.return_value = SITES
        self.mock_list_operations.return_value = []

        page = self.client.get(INDEX_URL)

        self.assertContains(page, 'id="sites__row__site-a"')
        self.assertContains(page, 'id="sites__row__site-b"')
        self.assertContains(page, 'id="sites__row_site-b__action_site_failover"')
        self.assertNotContains(page, 'id="sites__row_site-a__action_site_failover"')
        self.mock_list_operations.assert_called_once_with(IsHttpRequest(), all_projects=True,
                                                          scope="site")

    @mock_api("site_failover")
    def test_a_name_that_does_not_match_sends_nothing(self):
        key = shown_key(self.client.get(FAILOVER_URL))

        page = self.client.post(FAILOVER_URL, {
            "site": "site-b", "failover_type": "planned", "confirmation": "site-a",
            "idempotency_key": key})

        self.assertFormErrors(page, 1)
        self.assertContains(page, "does not match the site&#x27;s name site-b: nothing was "
                                  "started")
        self.mock_site_failover.assert_not_called()

    @mock_api("site_failover")
    def test_the_typed_name_starts_the_failover_forced_only_when_unplanned(self):
        self.mock_site_failover.return_value = operation("site_failover", id="site-op")
        key = shown_key(self.client.get(FAILOVER_URL))
        for failover_type, forced in (("unplanned", True), ("planned", False)):
            with self.subTest(failover_type=failover_type):
                self.mock_site_failover.reset_mock()
                sent = self.client.post(FAILOVER_URL, {
                    "site": "site-b", "failover_type": failover_type, "force": "on",
                    "confirmation": "site-b", "idempotency_key": key})
                self.assertRedirectsNoFollow(
                    sent, reverse("horizon:admin:site_recovery:operation", args=("site-op",)))
                self.mock_site_failover.assert_called_once_with(
                    IsHttpRequest(), "site-b", failover_type, forced, idempotency_key=key)

    @mock_api("site_failover")
    def test_a_refusal_shows_in_the_services_words(self):
        refusal = ("site site-b is the primary of no protection group: nothing to fail over "
                   "(HTTP 409 Conflict)")
        self.mock_site_failover.side_effect = api.ProtectorError(refusal)

        page = self.client.post(FAILOVER_URL, {
            "site": "site-b", "failover_type": "planned", "confirmation": "site-b",
            "idempotency_key": "k-refused"})

        self.assertEqual(error_messages(page), [f"Site failover of site-b refused: {refusal}"])


class MemberTests(DashboardTestCase):
    """Without ``dr_site_admin`` there is no Site Recovery panel: Horizon refuses its URL
    before the service is asked anything."""

    @mock_api("list_sites", "list_operations")
    def test_there_is_no_site_recovery_panel(self):
        page = self.client.get(INDEX_URL)

        self.assertContains(page, "Unauthorized", status_code=403)
        self.assertNotContains(page, 'id="sites"', status_code=403)
        self.mock_list_sites.assert_not_called()


class AdminWithoutDrSiteAdminTests(MemberTests):
    user_roles = ("admin",)
