"""Project → Disaster Recovery → Protection Groups, in Horizon's own view-test style: the
table's rows and the action buttons each role and status gets, the operation forms' POSTs
(the API function, its body and the Idempotency-Key made when the form was shown) and the
service's refusals as Horizon's error messages."""

from __future__ import annotations

import re

from django.urls import reverse
from openstack_dashboard.test.helpers import IsHttpRequest

from site_recovery.dashboard import api
from tests.horizon_unit.helpers import (
    SITES,
    DashboardTestCase,
    error_messages,
    group,
    mock_api,
    operation,
    shown_key,
)

INDEX_URL = reverse("horizon:project:protection_groups:index")
WRITER_ACTIONS = {"edit", "delete"}
# The service's 409 to an unforced unplanned failover while the peer answers.
PEER_ANSWERS = ("peer site site-b still answers: use a planned failover, or --force for an "
                "unplanned failover (the old primary's VMs are then stopped and locked "
                "first) (HTTP 409 Conflict)")


def confirm_url(group_id: str, operation_name: str) -> str:
    return reverse("horizon:project:protection_groups:confirm",
                   args=(group_id, operation_name))


def failover_url(group_id: str, failover_type: str) -> str:
    return reverse("horizon:project:protection_groups:failover",
                   args=(group_id, failover_type))


def operation_url(operation_id: str) -> str:
    return reverse("horizon:project:protection_groups:operation", args=(operation_id,))


def row_actions(response) -> dict[str, set[str]]:
    """Each row's action buttons on the rendered page, by group id."""
    found: dict[str, set[str]] = {}
    for group_id, action in re.findall(r'id="protection_groups__row_([^"]+?)__action_(\w+)"',
                                       response.content.decode()):
        found.setdefault(group_id, set()).add(action)
    return found


class GroupsTableTests(DashboardTestCase):
    @mock_api("list_groups", "list_sites")
    def test_the_table_lists_the_projects_groups_with_their_sites_and_status(self):
        self.mock_list_sites.return_value = SITES
        self.mock_list_groups.return_value = [
            group("shop-web", "protected"),
            group("shop-db", "failed_over", primary_site="site-b", secondary_site="site-a")]

        page = self.client.get(INDEX_URL)

        self.assertTemplateUsed(page, "horizon/common/_data_table_view.html")
        rows = {row.datum["name"]: {name: cell.data for name, cell in row.cells.items()}
                for row in page.context["protection_groups_table"].get_rows()}
        self.assertEqual(set(rows), {"shop-web", "shop-db"})
        self.assertEqual(
            [rows["shop-db"][column] for column in ("primary_site", "secondary_site",
                                                    "status", "member_count")],
            ["site-b", "site-a", "failed_over", 2])
        self.assertContains(page, 'id="protection_groups__row__shop-web-id"')
        self.mock_list_groups.assert_called_once_with(IsHttpRequest())

    @mock_api("list_groups", "list_sites")
    def test_each_group_offers_what_the_service_accepts_on_this_site(self):
        """This Horizon is site-a's. A protect, unprotect or reprotect runs on the group's
        primary site, every other operation on its secondary site; a group failed over
        (or reprotected) runs on its DR site, which is then its primary: it is
        reprotected or failed back, never protected, unprotected nor failed over again."""
        expected = {
            # primary here: protect and unprotect, until it fails over to here
            ("unprotected", "site-a"): {"protect", "unprotect"},
            ("protected", "site-a"): {"protect", "unprotect"},
            ("error", "site-a"): {"protect", "unprotect"},
            ("failed_over", "site-a"): {"reprotect"},
            ("reprotected", "site-a"): {"reprotect"},
            # secondary here: drills and failovers, and failback once it runs away
            ("protected", "site-b"): {"test_failover", "test_cleanup", "planned_failover",
                                      "unplanned_failover"},
            ("failed_over", "site-b"): {"test_failover", "test_cleanup", "failback"},
            ("reprotected", "site-b"): {"test_failover", "test_cleanup", "failback"},
        }
        groups = {f"{status}-on-{primary}": (status, primary) for status, primary in expected}
        self.mock_list_sites.return_value = SITES
        self.mock_list_groups.return_value = [
            group(name, status, primary_site=primary,
                  secondary_site="site-b" if primary == "site-a" else "site-a")
            for name, (status, primary) in groups.items()]

        shown = row_actions(self.client.get(INDEX_URL))

        for name, case in groups.items():
            with self.subTest(group=name):
                self.assertEqual(shown[f"{name}-id"], expected[case] | WRITER_ACTIONS)


class ReaderTests(DashboardTestCase):
    user_roles = ("reader",)

    @mock_api("list_groups", "list_sites", "get_group", "list_members", "list_mappings",
              "list_operations", "list_audit")
    def test_a_reader_sees_the_groups_and_no_action_button(self):
        shop = group("shop-web", "failed_over")
        self.mock_list_sites.return_value = SITES
        self.mock_list_groups.return_value = [shop]
        self.mock_get_group.return_value = shop
        for listing in (self.mock_list_members, self.mock_list_mappings,
                        self.mock_list_operations, self.mock_list_audit):
            listing.return_value = []

        index = self.client.get(INDEX_URL)
        detail = self.client.get(reverse("horizon:project:protection_groups:detail",
                                         args=(shop["id"],)))

        self.assertContains(index, 'data-display="shop-web"')
        self.assertContains(detail, "replicated-ssd")
        for page in (index, detail):
            self.assertNotRegex(page.content.decode(), r'id="[^"]*__action_')


class ConfirmedOperationTests(DashboardTestCase):
    """Unprotect, Reprotect and Failback: a modal that says what will happen, one POST."""

    CASES = {
        # operation: the group as the service has it, words of the modal's explanation
        "unprotect": (group("shop-web", "protected"),
                      "shop-web stops replicating"),
        "reprotect": (group("shop-web", "failed_over"),
                      "shop-web has run on site-a since its failover"),
        "failback": (group("shop-web", "failed_over", primary_site="site-b",
                           secondary_site="site-a"),
                     "shop-web comes home to site-a: the servers running on site-b stop"),
    }

    @mock_api("get_group", "run_group_operation")
    def test_the_modal_explains_and_its_post_starts_the_operation_once(self):
        for name, (shown, explanation) in self.CASES.items():
            with self.subTest(operation=name):
                self.mock_get_group.return_value = shown
                self.mock_run_group_operation.reset_mock()
                self.mock_run_group_operation.return_value = operation(name)
                url = confirm_url(shown["id"], name)

                modal = self.client.get(url)
                self.assertContains(modal, explanation)
                key = shown_key(modal)

                sent = self.client.post(url, {"group_id": shown["id"], "operation": name,
                                              "idempotency_key": key})

                self.assertNoFormErrors(sent)
                self.assertRedirectsNoFollow(sent, operation_url(f"{name}-op"))
                self.mock_run_group_operation.assert_called_once_with(
                    IsHttpRequest(), shown["id"], name, idempotency_key=key)

    @mock_api("get_group", "run_group_operation")
    def test_a_refusal_shows_in_the_services_words_and_the_modal_stays(self):
        refusal = ("an unprotect needs peer site site-b, whose array holds the group's "
                   "replica; it is unreachable (HTTP 409 Conflict)")
        self.mock_get_group.return_value = group("shop-web")
        self.mock_run_group_operation.side_effect = api.ProtectorError(refusal)
        url = confirm_url("shop-web-id", "unprotect")

        page = self.client.post(url, {"group_id": "shop-web-id", "operation": "unprotect",
                                      "idempotency_key": "k1"})

        self.assertEqual(page.status_code, 200)
        self.assertTemplateUsed(page, "site_recovery/protection_groups/form.html")
        self.assertEqual(error_messages(page),
                         [f"Unable to start the operation: {refusal}"])


class FailoverFormTests(DashboardTestCase):
    """Planned sends no force; unplanned's Force box is the explicit ``--force``."""

    @mock_api("run_group_operation")
    def test_a_planned_failover_has_no_force_and_never_sends_it(self):
        self.mock_run_group_operation.return_value = operation("failover")
        url = failover_url("shop-web-id", "planned")

        modal = self.client.get(url)
        self.assertNotContains(modal, 'name="force"')
        key = shown_key(modal)
        sent = self.client.post(url, {"group_id": "shop-web-id", "failover_type": "planned",
                                      "idempotency_key": key, "force": "on"})

        self.assertRedirectsNoFollow(sent, operation_url("failover-op"))
        self.mock_run_group_operation.assert_called_once_with(
            IsHttpRequest(), "shop-web-id", "failover", idempotency_key=key,
            failover_type="planned", force=False)

    @mock_api("run_group_operation")
    def test_an_unplanned_failover_is_forced_only_when_the_box_is_ticked(self):
        self.mock_run_group_operation.return_value = operation("failover")
        url = failover_url("shop-web-id", "unplanned")

        modal = self.client.get(url)
        self.assertContains(modal, 'name="force"')
        self.assertContains(modal, "Force: fail over even though the primary site answers")
        for ticked, form_value in ((True, {"force": "on"}), (False, {})):
            with self.subTest(force=ticked):
                self.mock_run_group_operation.reset_mock()
                sent = self.client.post(url, {"group_id": "shop-web-id",
                                              "failover_type": "unplanned",
                                              "idempotency_key": "k-unplanned",
                                              **form_value})
                self.assertRedirectsNoFollow(sent, operation_url("failover-op"))
                self.mock_run_group_operation.assert_called_once_with(
                    IsHttpRequest(), "shop-web-id", "failover",
                    idempotency_key="k-unplanned", failover_type="unplanned", force=ticked)

    @mock_api("run_group_operation")
    def test_unforced_while_the_peer_answers_shows_the_services_refusal(self):
        self.mock_run_group_operation.side_effect = api.ProtectorError(PEER_ANSWERS)

        page = self.client.post(failover_url("shop-web-id", "unplanned"), {
            "group_id": "shop-web-id", "failover_type": "unplanned",
            "idempotency_key": "k-unforced"})

        self.assertEqual(page.status_code, 200)
        self.assertEqual(error_messages(page),
                         [f"Unable to start the failover: {PEER_ANSWERS}"])


class OperationPageTests(DashboardTestCase):
    @mock_api("get_operation", "retry_operation")
    def test_a_failed_operation_offers_a_retry_that_starts_one_operation(self):
        self.mock_get_operation.return_value = operation(
            "unprotect", "failed", failed_count=1, error="the array refused",
            results=[{"protection_group_id": "shop-web-id", "protection_group": "shop-web",
                      "status": "failed", "step": "destroy_pgroup",
                      "reason": "protection group shop-web: the array refused",
                      "recovery_point": None, "rpo_achieved_seconds": None,
                      "timings": {}}])
        self.mock_retry_operation.return_value = operation("unprotect", id="retried-op")

        page = self.client.get(operation_url("unprotect-op"))
        self.assertContains(page, "protection group shop-web: the array refused")
        self.assertNotContains(page, "window.location.reload")
        key = page.context["retry_key"]
        retried = self.client.post(reverse("horizon:project:protection_groups:retry",
                                           args=("unprotect-op",)),
                                   {"idempotency_key": key})

        self.assertRedirectsNoFollow(retried, operation_url("retried-op"))
        self.mock_retry_operation.assert_called_once_with(
            IsHttpRequest(), "unprotect-op", False, idempotency_key=key)


class EditGroupTests(DashboardTestCase):
    """The edit form sends what changed only; a drill schedule emptied is cleared (null)."""

    @mock_api("get_group", "update_group")
    def test_a_drill_schedule_is_set_and_an_emptied_one_cleared(self):
        shown = group("shop-web", drill_schedule="0 3 * * 6", drill_network="drill-net",
                      rto_target_seconds=None)
        self.mock_get_group.return_value = shown
        self.mock_update_group.return_value = shown
        url = reverse("horizon:project:protection_groups:update", args=(shown["id"],))

        form = self.client.get(url)
        self.assertContains(form, 'value="0 3 * * 6"')
        sent = self.client.post(url, {
            "group_id": shown["id"], "version": 3, "name": "shop-web",
            "volume_type": "replicated-ssd", "description": "", "drill_schedule": "",
            "drill_network": "drill-net"})

        self.assertNoFormErrors(sent)
        self.mock_update_group.assert_called_once_with(
            IsHttpRequest(), shown["id"], version=3, drill_schedule=None)
