"""Admin → Disaster Recovery in a real browser: a DR administrator (``dr_site_admin``)
fails site-b over to site-a from site-a's Horizon, typing the site's name, follows each
group's progress, retries the group that failed; the clouds are checked afterwards. A
member, and an admin without ``dr_site_admin``, find no such panel.

Site-a's groups belong to the modules before this one, so the groups moved here are
site-b's: bob's and carol's, each with a VM booted on site-b for the purpose.
"""

from __future__ import annotations

import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from site_recovery.lab.seed import IMAGE, POLL, _network, _volume, connect
from tests.functional.horizon.conftest import (
    TIMEOUT,
    screenshot,
    service,
    sign_in,
    wait_reachable,
)

PANEL = "/admin/site_recovery/"
# owner -> (group, prefix of its VM, network and security group, the VM's address)
GROUPS = {"bob": ("analytics-reports", "reports", "10.31.0.0/24", "10.31.0.11"),
          "carol": ("operations-tools", "tools", "10.32.0.0/24", "10.32.0.11")}
FINISHED = ("completed", "failed", "partially_failed")
WITHIN = 600.0
STATE: dict = {}


def boot_on_site_b(lab, user: str, prefix: str, cidr: str, address: str) -> str:
    """A VM of ``user``'s on site-b booted from a replicated-ssd volume, and the network
    its copy lands on at site-a; the VM's id."""
    site_b = connect(lab.sites["site-b"], user)
    network = _network(site_b, f"{prefix}-net", f"{prefix}-subnet", cidr, dhcp=True)
    _network(connect(lab.sites["site-a"], user), f"dr-{prefix}-net", f"dr-{prefix}-subnet",
             cidr, dhcp=True)
    group = site_b.network.create_security_group(name=f"{prefix}-sg")
    boot = _volume(site_b, f"{prefix}-1-boot", 1, "replicated-ssd",
                   site_b.image.find_image(IMAGE).id)
    port = site_b.network.create_port(name=f"{prefix}-1-port", network_id=network.id,
                                      fixed_ips=[{"ip_address": address}],
                                      security_group_ids=[group.id])
    server = site_b.compute.create_server(
        name=f"{prefix}-1", flavor_id=site_b.compute.find_flavor("dr.small").id,
        networks=[{"port": port.id}],
        block_device_mapping=[{"uuid": boot.id, "source_type": "volume",
                               "destination_type": "volume", "boot_index": 0,
                               "delete_on_termination": False}])
    return site_b.compute.wait_for_server(server, status="ACTIVE", wait=120,
                                          interval=POLL).id


def finished(lab, user: str, site: str, operation_id: str) -> dict:
    deadline = time.monotonic() + WITHIN
    while (operation := service(lab, user, "GET", f"/operations/{operation_id}",
                                site=site).json()["operation"])["status"] not in FINISHED:
        assert time.monotonic() < deadline, f"operation {operation_id} never finished"
        time.sleep(1)
    return operation


def site_operations(lab) -> list[dict]:
    """Site-a's site-scope operations, newest first, as the service reports them."""
    reply = service(lab, "dr-admin", "GET", "/operations?all_projects=true")
    return [op for op in reply.json()["operations"] if op["scope"] == "site"]


@pytest.fixture(scope="module")
def site_b_groups(lab) -> dict[str, str]:
    """Group name -> owner: one protected async group each for bob and carol, primary
    site-b, mapped to site-a's networks and flavors, made through site-b's service."""
    wait_reachable(lab, "site-b")
    made = {}
    for user, (name, prefix, cidr, address) in GROUPS.items():
        server_id = boot_on_site_b(lab, user, prefix, cidr, address)
        created = service(lab, user, "POST", "/protection-groups", site="site-b", json={
            "name": name, "replication_type": "async", "primary_site": "site-b",
            "secondary_site": "site-a", "volume_type": "replicated-ssd"})
        assert created.status_code == 201, created.text
        added = service(lab, user, "POST", f"/protection-groups/{name}/members", site="site-b",
                        json={"server_id": server_id, "server_name": f"{prefix}-1"})
        assert added.status_code == 201, added.text
        for kind, source, target in (("network", f"{prefix}-net", f"dr-{prefix}-net"),
                                     ("flavor", "dr.small", "m1.small")):
            mapped = service(lab, user, "POST", "/resource-mappings", site="site-b", json={
                "kind": kind, "source": source, "target": target, "protection_group": name})
            assert mapped.status_code == 201, mapped.text
        started = service(lab, user, "POST", f"/protection-groups/{name}/protect",
                          site="site-b")
        assert started.status_code == 202, started.text
        protected = finished(lab, user, "site-b", started.json()["operation"]["id"])
        assert protected["status"] == "completed", protected["results"]
        made[name] = user
    return made


def wait_for_text(browser, element_id: str, expected: tuple[str, ...]) -> str:
    """The element's text once it is one of ``expected``, across the page's reloads."""
    return WebDriverWait(browser, WITHIN, poll_frequency=0.5,
                         ignored_exceptions=[StaleElementReferenceException]).until(
        lambda page: (text := page.find_element(By.ID, element_id).text) in expected and text)


def result_rows(browser) -> dict[str, list[str]]:
    """The results table: each group's cells (group, status, step, reason, then its
    recovery point, RPO achieved and timings)."""
    rows = browser.find_elements(By.CSS_SELECTOR, "table#results tbody tr[data-display]")
    return {row.get_attribute("data-display"): [cell.text for cell in
                                                row.find_elements(By.TAG_NAME, "td")]
            for row in rows}


def open_failover_form(browser, base: str):
    """Admin → Disaster Recovery → Site Recovery, both sites listed, and site-b's
    Site Failover action."""
    (link,) = browser.find_elements(By.CSS_SELECTOR, f"a[href='{PANEL}']")
    assert link.get_attribute("textContent").strip() == "Site Recovery"
    browser.get(f"{base}{PANEL}")
    states = {site: browser.find_element(By.ID, f"sites__row__{site}").text
              for site in ("site-a", "site-b")}
    assert "local" in states["site-a"] and "reachable" in states["site-b"], states
    assert not browser.find_elements(By.ID, "sites__row_site-a__action_site_failover")
    browser.find_element(By.ID, "sites__row_site-b__action_site_failover").click()
    WebDriverWait(browser, TIMEOUT).until(
        expected_conditions.visibility_of_element_located((By.ID, "id_confirmation")))


def confirm(browser, typed: str):
    field = browser.find_element(By.ID, "id_confirmation")
    field.clear()
    field.send_keys(typed)
    browser.find_element(By.CSS_SELECTOR, ".modal-footer [type=submit]").click()


@pytest.mark.parametrize("user", ["alice", "admin"])
def test_without_dr_site_admin_there_is_no_site_recovery_panel(lab, browser, user):
    """A member sees no Admin dashboard; an admin sees it without this panel; the URL
    refuses both."""
    base = sign_in(browser, lab, user)
    assert not browser.find_elements(By.CSS_SELECTOR, f"a[href='{PANEL}']")
    browser.get(f"{base}{PANEL}")
    assert not browser.find_elements(By.ID, "sites")
    assert "Site Failover" not in browser.page_source
    assert ("You are not authorized to access this page" in browser.page_source
            or "You do not have the required privileges" in browser.page_source), (
        browser.current_url)
    before = site_operations(lab)
    refused = service(lab, user, "POST", "/sites/site-b/failover",
                      json={"failover_type": "planned"})
    assert refused.status_code == 403, refused.text
    assert site_operations(lab) == before


def test_a_wrong_confirmation_starts_nothing(lab, browser, site_b_groups):
    before = site_operations(lab)
    base = sign_in(browser, lab, "dr-admin")
    open_failover_form(browser, base)
    confirm(browser, "site-a")
    refusal = WebDriverWait(browser, TIMEOUT).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR,
                                                           ".modal .alert-danger")))
    assert "does not match the site's name site-b" in refusal.text, refusal.text
    assert site_operations(lab) == before


def test_a_dr_admin_fails_site_b_over_and_retries_the_group_that_failed(
        lab, browser, site_b_groups):
    """The page follows the operation to its end. Site-a's Cinder refuses one import:
    that group fails naming the step and cause, the other completes; the retry of the
    failed one completes it."""
    base = sign_in(browser, lab, "dr-admin")
    open_failover_form(browser, base)
    lab.cloud_fault("site-a", {"behaviour": "manage_error", "count": 1,
                               "message": "the backend refused"})
    try:
        confirm(browser, "site-b")
        WebDriverWait(browser, TIMEOUT).until(
            expected_conditions.url_contains(f"{PANEL}operations/"))
        first = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
        assert browser.find_element(By.ID, "operation_status").text in ("pending", "running")
        assert wait_for_text(browser, "operation_status", FINISHED) == "partially_failed"
    finally:
        lab.clear_faults()
    rows = result_rows(browser)
    assert set(rows) == set(site_b_groups)
    (failed,) = [row for row in rows.values() if row[1] == "failed"]
    assert failed[2] == "import_volumes" and "could not manage" in failed[3], failed
    assert f"protection group {failed[0]}:" in failed[3], failed
    assert browser.find_element(By.ID, "operation_failed").text == "1"
    screenshot(browser, "site-failover")

    browser.find_element(By.ID, "retry_failed_groups").click()
    WebDriverWait(browser, TIMEOUT).until(
        lambda page: first not in page.current_url and f"{PANEL}operations/" in
        page.current_url)
    assert wait_for_text(browser, "operation_status", FINISHED) == "completed"
    assert browser.find_element(By.ID, "operation_progress").text == "100%"
    assert [row[:2] for row in result_rows(browser).values()] == [[failed[0], "completed"]]
    STATE["operations"] = (first, browser.current_url.rstrip("/").rsplit("/", 1)[-1])


def test_the_groups_run_on_site_a_afterwards(lab, site_b_groups):
    """Checked on the clouds and through the service, not on the page."""
    first, retried = (finished(lab, "dr-admin", "site-a", op)
                      for op in STATE["operations"])
    assert (first["operation_type"], first["site"], first["failover_type"],
            first["total_protection_groups"]) == ("site_failover", "site-b", "planned", 2)
    assert retried["params"]["retry_of"] == first["id"]
    for name, user in site_b_groups.items():
        _, prefix, _, address = GROUPS[user]
        shown = service(lab, user, "GET", f"/protection-groups/{name}").json()[
            "protection_group"]
        assert (shown["primary_site"], shown["status"]) == ("site-a", "failed_over")
        site_a = connect(lab.sites["site-a"], user)
        stack = site_a.orchestration.find_stack(f"dr-{name}")
        assert stack is not None and stack.status == "CREATE_COMPLETE", stack
        recovered = site_a.compute.find_server(f"{prefix}-1")
        assert recovered.status == "ACTIVE" and recovered.flavor.original_name == "m1.small"
        (port,) = site_a.network.ports(device_id=recovered.id)
        assert (port.network_id, port.fixed_ips[0]["ip_address"]) == (
            site_a.network.find_network(f"dr-{prefix}-net").id, address)
        original = connect(lab.sites["site-b"], user).compute.find_server(f"{prefix}-1")
        assert original.status == "SHUTOFF", "a planned failover stops the originals"


def test_the_services_refusal_appears_in_its_own_words(lab, browser, site_b_groups):
    """Site-b is now the primary of no group: the service refuses its failover (409)."""
    refusal = service(lab, "dr-admin", "POST", "/sites/site-b/failover",
                      json={"failover_type": "planned"})
    assert refusal.status_code == 409, refusal.text
    words = refusal.json()["error"]["message"]
    before = site_operations(lab)
    base = sign_in(browser, lab, "dr-admin")
    open_failover_form(browser, base)
    confirm(browser, "site-b")
    shown = WebDriverWait(browser, TIMEOUT).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, ".alert-danger")))
    assert words in shown.text, shown.text
    assert site_operations(lab) == before
