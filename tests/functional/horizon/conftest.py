"""One two-site lab with Horizon for every test of the dashboard, on its own ports
(13000..14999, or from HORIZON_PORT_BASE), seeded with the e-commerce tenant; and a real
headless Chromium (Debian's ``chromium`` and ``chromium-driver``, installed by the test set-up:
``tests/install-browser``) driven by selenium.

The modules run in name order on the one lab: ``test_panel`` reads, ``test_project``
protects and drills site-a's groups, ``test_site_failover`` moves site-b's groups, so
none undoes what another relies on.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import requests

from site_recovery.lab.services import keystone
from tests.conftest import fresh_lab

# Two runs at once (say, two developers' modules) each need their own: HORIZON_PORT_BASE.
# Horizon listens on base + 80 and base + 1080, which Chromium must not count among its
# unsafe ports (10080 is one: a base of 9000 shows its error page instead).
PORT_BASE = int(os.environ.get("HORIZON_PORT_BASE", "13000"))
TIMEOUT = 30
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Where the tests leave their screenshots (two of them are kept in docs/images/).
SCREENSHOTS = Path(os.environ.get("SITE_RECOVERY_SCREENSHOTS",
                                  Path(__file__).resolve().parents[3] / ".screenshots"))


@pytest.fixture(scope="package")
def lab():
    yield from fresh_lab(PORT_BASE, "horizon", seeded=True, horizon=True)


def service(lab, user: str, method: str, path: str, site: str = "site-a",
            **kwargs) -> requests.Response:
    """A call to a site's protection service with the user's own token."""
    token = keystone.token(lab.sites[site], user)
    return requests.request(method, lab.sites[site].url("webhook", f"/v1{path}"),
                            headers={"X-Auth-Token": token}, timeout=TIMEOUT,
                            verify=lab.ca_file(), **kwargs)


def wait_reachable(lab, site: str = "site-a", timeout: float = 60.0):
    """Until ``site``'s service sees its peer: a group change is written to both."""
    peer = lab.sites[site].peer
    deadline = time.monotonic() + timeout
    while service(lab, "alice", "GET", f"/sites/{peer}", site=site).json()["site"][
            "state"] != "reachable":
        assert time.monotonic() < deadline, f"{peer} never became reachable from {site}"
        time.sleep(0.5)


@pytest.fixture(scope="package")
def browser():
    """Headless Chromium; skipped, saying why, where the machine has none (in CI, where
    the test set-up installs it, its absence fails)."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        missing = f"no {CHROMIUM} and {CHROMEDRIVER}: run tests/install-browser"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(browser, lab, user: str, site: str = "site-a") -> str:
    """Sign ``user`` in to ``site``'s Horizon through its login form; Horizon's URL."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    base = lab.sites[site].url("horizon")
    # Every cookie of the browser goes, from a blank page: Horizon's pages keep requesting
    # in the background, and a late answer could bring the previous session back (then
    # the login page redirects away, and it is cleared again).
    for _attempt in range(3):
        browser.get("about:blank")
        browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
        browser.get(f"{base}/auth/login/")
        if browser.find_elements(By.ID, "id_domain"):
            break
    else:
        raise AssertionError(f"no login form at {base}/auth/login/: {browser.current_url} "
                             f"{browser.title!r}")
    account = lab.sites[site].account(user)
    for field, value in (("id_domain", account.domain), ("id_username", account.user),
                         ("id_password", account.password)):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    browser.find_element(By.ID, "loginBtn").click()
    WebDriverWait(browser, TIMEOUT).until(expected_conditions.url_contains("/project/"))
    return base


def screenshot(browser, name: str) -> Path:
    """The page as the user sees it, kept as ``<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    return path
