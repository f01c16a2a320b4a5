"""Project → Disaster Recovery in a real headless Chromium: alice builds and protects a
group on site-a's Horizon, drills it on site-b's (the group's secondary site, where a drill
runs) and cleans up; rita, a reader, finds no action button; alice unprotects it on
site-a's. Each test then asks the service and the clouds, not only the page.

The package's lab (conftest.py); the tests run in order and build on each other.
"""

from __future__ import annotations

import re

import pytest
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from site_recovery.core.plan import array_group_name
from site_recovery.lab.seed import connect
from tests.functional.horizon.conftest import screenshot, service, sign_in, wait_reachable

PANEL = "/project/protection_groups/"
GROUP = "shop-web"
SERVERS = ("web-1", "web-2")
# The seeded web tier: prod-net and m1.small on site-a are dr-prod-net and dr.small on site-b.
MAPPINGS = (("network", "prod-net", "dr-prod-net"), ("flavor", "m1.small", "dr.small"))
KIND_LABELS = {"network": "Network", "flavor": "Flavor"}
OPERATION_TIMEOUT = 240
FINISHED = ("completed", "failed", "partially_failed")


def wait_for(browser, condition, timeout: float = 30):
    """``condition(browser)`` truthy, across the page reloads of a polled page; else the
    page as it was is kept as ``timed-out.png``."""
    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.3, ignored_exceptions=(
            NoSuchElementException, StaleElementReferenceException)).until(condition)
    except TimeoutException:
        screenshot(browser, "timed-out")
        raise


def click(browser, element_id: str):
    """By script: row actions sit in a dropdown a user opens first."""
    browser.execute_script("arguments[0].click();", browser.find_element(By.ID, element_id))


def fill_modal(browser, texts: dict[str, str] = {}, choices: dict[str, str] = {},  # noqa: B006
               checks: tuple[str, ...] = ()):
    """Fill Horizon's modal form (by field id) and submit it."""
    form = wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".modal form"))
    wait_for(browser, lambda b: form.is_displayed())
    for field, value in texts.items():
        form.find_element(By.ID, field).clear()
        form.find_element(By.ID, field).send_keys(value)
    for field, label in choices.items():
        Select(form.find_element(By.ID, field)).select_by_visible_text(label)
    for field in checks:
        form.find_element(By.ID, field).click()
    form.find_element(By.CSS_SELECTOR, ".modal-footer .btn-primary").click()


def error_messages(browser) -> list[str]:
    return [alert.text for alert in browser.find_elements(By.CSS_SELECTOR, ".alert-danger")]


def operation_status(browser) -> str:
    return browser.find_element(By.ID, "operation").get_attribute("data-status")


def watch_operation(browser) -> str:
    """From an action to its progress page, followed until the operation ends."""
    wait_for(browser, lambda b: "/operations/" in b.current_url and operation_status(b))
    return wait_for(browser, lambda b: operation_status(b) in FINISHED and operation_status(b),
                    OPERATION_TIMEOUT)


def modal_explanation(browser) -> str:
    """What a confirmation's modal says will happen."""
    return wait_for(browser, lambda b: b.find_element(By.CSS_SELECTOR, ".modal #explanation")
                    .text)


def modal_submission(browser) -> tuple[str, dict[str, str]]:
    """The open modal form's action and fields, as a browser would send them again."""
    return browser.execute_script(
        "const form = document.querySelector('.modal form');"
        "return [form.action, Object.fromEntries(new FormData(form))];")


def resubmitted(browser, action: str, fields: dict[str, str]) -> str:
    """The form sent again in the signed-in browser (a double click, a reload that
    resends); the URL its answer ends on."""
    return browser.execute_async_script(
        "const [action, fields, done] = arguments;"
        "fetch(action, {method: 'POST', body: new URLSearchParams(fields)})"
        ".then(reply => done(reply.url), error => done(String(error)));", action, fields)


def group_record(lab, site: str = "site-a") -> dict:
    return service(lab, "alice", "GET", f"/protection-groups/{GROUP}",
                   site=site).json()["protection_group"]


@pytest.fixture(scope="module")
def alice_a(lab):
    wait_reachable(lab)
    return connect(lab.sites["site-a"], "alice")


def test_alice_creates_a_group_and_adds_two_servers_and_its_mappings(lab, browser, alice_a):
    base = sign_in(browser, lab, "alice", "site-a")
    browser.get(f"{base}{PANEL}")
    click(browser, "protection_groups__action_create")
    fill_modal(browser, texts={"id_name": GROUP, "id_volume_type": "replicated-ssd",
                               "id_description": "web tier, from Horizon"},
               choices={"id_primary_site": "site-a", "id_secondary_site": "site-b"})
    link = wait_for(browser, lambda b: b.find_element(By.LINK_TEXT, GROUP))
    group_id = group_record(lab)["id"]
    link.click()
    wait_for(browser, lambda b: group_id in b.current_url)

    servers = {name: alice_a.compute.find_server(name).id for name in SERVERS}
    for name in SERVERS:
        click(browser, "members__action_add_member")
        fill_modal(browser, choices={"id_server": name})
        wait_for(browser, lambda b, name=name: b.find_element(
            By.ID, f"members__row__{servers[name]}"))
    for kind, source, target in MAPPINGS:
        click(browser, "mappings__action_add_mapping")
        fill_modal(browser, texts={"id_source": source, "id_target": target},
                   choices={"id_kind": KIND_LABELS[kind]})
        wait_for(browser, lambda b, source=source: source in b.find_element(
            By.ID, "mappings").get_attribute("textContent"))      # on a tab not shown
    assert not error_messages(browser)

    for site in ("site-a", "site-b"):          # written to both sites
        record = group_record(lab, site)
        assert (record["replication_type"], record["primary_site"], record["secondary_site"],
                record["volume_type"], record["member_count"]) == (
            "async", "site-a", "site-b", "replicated-ssd", 2)
    members = service(lab, "alice", "GET", f"/protection-groups/{GROUP}/members").json()
    assert {m["server_id"] for m in members["members"]} == set(servers.values())
    mappings = service(lab, "alice", "GET", "/resource-mappings",
                       params={"protection_group": group_id}).json()["resource_mappings"]
    assert {(m["kind"], m["source"], m["target"]) for m in mappings
            if m["protection_group_id"] == group_id} == set(MAPPINGS)


def test_alice_protects_the_group_and_sees_it_protected(lab, browser, alice_a):
    group_id = group_record(lab)["id"]
    base = sign_in(browser, lab, "alice", "site-a")
    browser.get(f"{base}{PANEL}{group_id}/")
    click(browser, f"protection_groups__row_{group_id}__action_protect")
    assert "replicating from site-a to site-b" in modal_explanation(browser)
    action, fields = modal_submission(browser)
    assert fields["idempotency_key"], fields
    fill_modal(browser)
    assert watch_operation(browser) == "completed", browser.find_element(By.ID, "results").text
    assert "protect" in browser.title
    # The same form sent again answers with the operation it started: no second protect.
    assert resubmitted(browser, action, fields) == browser.current_url
    operations = service(lab, "alice", "GET", "/operations",
                         params={"protection_group": group_id}).json()["operations"]
    assert [op["operation_type"] for op in operations].count("protect") == 1, operations

    browser.get(f"{base}{PANEL}")
    row = browser.find_element(By.ID, f"protection_groups__row__{group_id}")
    assert "protected" in row.text.split()
    screenshot(browser, "protection-groups-table")

    assert group_record(lab, "site-b")["status"] == "protected"
    volumes = {f"volume-{attachment.volume_id}-cinder" for name in SERVERS
               for attachment in alice_a.compute.volume_attachments(
                   alice_a.compute.find_server(name))}
    pgroup = lab.fabric.array(lab.sites["site-a"].array_name).get_pgroup(
        array_group_name(group_id))
    assert set(pgroup["volumes"]) == volumes


def test_alice_drills_on_site_b_watches_it_and_cleans_up(lab, browser):
    group_id = group_record(lab)["id"]
    alice_b = connect(lab.sites["site-b"], "alice")
    test_net = alice_b.network.find_network("dr-test-net")
    base = sign_in(browser, lab, "alice", "site-b")
    browser.get(f"{base}{PANEL}")
    click(browser, f"protection_groups__row_{group_id}__action_test_failover")
    fill_modal(browser, choices={"id_network": "dr-test-net"})
    wait_for(browser, lambda b: "/operations/" in b.current_url
             and operation_status(b) in ("running", *FINISHED))
    screenshot(browser, "drill-running")
    assert watch_operation(browser) == "completed", browser.find_element(By.ID, "results").text
    assert "test_failover" in browser.title

    browser.get(f"{base}/project/instances/")
    instances = wait_for(browser, lambda b: b.find_element(By.ID, "instances").text)
    assert all(f"test-{name}" in instances for name in SERVERS), instances
    for name in SERVERS:                       # on the isolated network, not on dr-prod-net
        server = alice_b.compute.find_server(f"test-{name}")
        assert server.status == "ACTIVE"
        assert {port.network_id for port in alice_b.network.ports(device_id=server.id)} == {
            test_net.id}
    assert alice_b.orchestration.find_stack(f"test-{GROUP}").status == "CREATE_COMPLETE"

    # The groups table on the DR site, where the drill ran, shows the recovery point it
    # used: how old it is, and the data it lacked (the group has no RPO target); and the
    # verdict of the group's readiness check there.
    assert group_record(lab, "site-b")["last_recovery_point"]["created_at"]
    checked = service(lab, "alice", "POST", f"/protection-groups/{GROUP}/readiness",
                      site="site-b").json()["readiness"]
    browser.get(f"{base}{PANEL}")
    row = wait_for(browser, lambda b: b.find_element(By.ID,
                                                     f"protection_groups__row__{group_id}"))
    for column in ("recovery_point_age", "rpo_achieved"):
        shown = row.find_element(By.CSS_SELECTOR, f"td.{column}").text
        assert re.fullmatch(r"\d+ (s|min|h|d)", shown), (column, shown)
    assert row.find_element(By.CSS_SELECTOR, "td.ready").text == (
        "Ready" if checked["ready"] else "Not ready"), checked

    click(browser, f"protection_groups__row_{group_id}__action_test_cleanup")
    assert "test servers" in modal_explanation(browser)
    fill_modal(browser)
    assert watch_operation(browser) == "completed", browser.find_element(By.ID, "results").text
    assert not [server for server in alice_b.compute.servers()
                if server.name.startswith("test-")]
    assert alice_b.orchestration.find_stack(f"test-{GROUP}") is None
    assert group_record(lab, "site-b")["status"] == "protected"


def test_a_refusal_appears_in_the_services_words(lab, browser):
    """A mapping whose target site-b does not have: the service's 400, word for word."""
    group_id = group_record(lab)["id"]
    refusal = service(lab, "alice", "POST", "/resource-mappings", json={
        "kind": "network", "source": "db-net", "target": "no-such-net",
        "protection_group": group_id})
    assert refusal.status_code == 400
    words = refusal.json()["error"]["message"]
    base = sign_in(browser, lab, "alice", "site-a")
    browser.get(f"{base}{PANEL}{group_id}/")
    click(browser, "mappings__action_add_mapping")
    fill_modal(browser, texts={"id_source": "db-net", "id_target": "no-such-net"})
    wait_for(browser, lambda b: any(words in text for text in error_messages(b)))


@pytest.mark.parametrize("site", ["site-a", "site-b"])
def test_rita_a_reader_finds_no_action_buttons(lab, browser, site):
    group_id = group_record(lab)["id"]
    base = sign_in(browser, lab, "rita", site)
    for page, shown in ((PANEL, (By.LINK_TEXT, GROUP)),
                        (f"{PANEL}{group_id}/", (By.ID, "members"))):
        browser.get(f"{base}{page}")
        wait_for(browser, lambda b, shown=shown: b.find_element(*shown))
        actions = browser.find_elements(By.CSS_SELECTOR, '[id*="__action_"]')
        assert not actions, [action.get_attribute("id") for action in actions]
    # and the service refuses her what the page does not offer
    refused = service(lab, "rita", "POST", f"/protection-groups/{group_id}/test-cleanup",
                      site="site-b")
    assert refused.status_code == 403, refused.text


def test_alice_unprotects_the_group_and_neither_array_replicates_it(lab, browser):
    """On site-a's Horizon, the group's primary site, where an unprotect runs."""
    group_id = group_record(lab)["id"]
    base = sign_in(browser, lab, "alice", "site-a")
    browser.get(f"{base}{PANEL}{group_id}/")
    click(browser, f"protection_groups__row_{group_id}__action_unprotect")
    assert "stops replicating" in modal_explanation(browser)
    fill_modal(browser)
    assert watch_operation(browser) == "completed", browser.find_element(By.ID, "results").text

    for site in ("site-a", "site-b"):
        assert group_record(lab, site)["status"] == "unprotected"
        array = lab.fabric.array(lab.sites[site].array_name)
        assert not [pgroup["name"] for pgroup in array.list_pgroups()
                    if array_group_name(group_id) in pgroup["name"]], site
