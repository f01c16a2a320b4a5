"""Real Horizon on the two-site lab, with the dashboard plugin: a user signs in as in a
browser (the login form's CSRF token, its hidden region, the domain field) and the
Protection Groups panel shows what the protection service reports for the user's project,
its refusals in its own words.

The package's lab (conftest.py); these tests read through plain HTTP, as a browser would.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
import requests

from tests.functional.horizon.conftest import TIMEOUT, service, wait_reachable

PANEL = "/project/protection_groups/"


@pytest.fixture(scope="module")
def groups(lab) -> list[str]:
    """Two groups of alice's project, made through the service once the peer answers
    (a change is written to both sites)."""
    wait_reachable(lab)
    made = []
    for name in ("web-tier", "db-tier"):
        reply = service(lab, "alice", "POST", "/protection-groups", json={
            "name": name, "replication_type": "async", "primary_site": "site-a",
            "secondary_site": "site-b", "volume_type": "replicated-ssd"})
        assert reply.status_code == 201, reply.text
        made.append(reply.json()["protection_group"]["id"])
    yield made
    for group in made:
        service(lab, "alice", "DELETE", f"/protection-groups/{group}")


class _FormFields(HTMLParser):
    """The login form's inputs with their values: the CSRF token and the hidden region."""

    def __init__(self):
        super().__init__()
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if tag == "input" and found.get("name"):
            self.fields[found["name"]] = found.get("value") or ""


def signed_in(lab, user: str, site: str = "site-a") -> tuple[requests.Session, str]:
    """A session signed in to the site's Horizon as a lab account, and Horizon's URL."""
    base = lab.sites[site].url("horizon")
    session = requests.Session()
    login = session.get(f"{base}/auth/login/", timeout=TIMEOUT)
    login.raise_for_status()
    form = _FormFields()
    form.feed(login.text)
    assert {"csrfmiddlewaretoken", "region", "domain"} <= form.fields.keys(), form.fields
    account = lab.sites[site].account(user)
    landed = session.post(f"{base}/auth/login/", timeout=TIMEOUT,
                          headers={"Referer": f"{base}/auth/login/"},
                          data={**form.fields, "domain": account.domain,
                                "username": account.user, "password": account.password})
    assert landed.status_code == 200 and landed.url == f"{base}/project/", (
        f"{user} did not get in: {landed.url}")
    return session, base


def listed(page: str) -> set[str]:
    """The ids of the protection groups table's rows."""
    return set(re.findall(r'id="protection_groups__row__([^"]+)"', page))


def error_messages(page: str) -> list[str]:
    return [html.unescape(text) for text in
            re.findall(r"<strong>Error: </strong>([^<]*)", page)]


def test_the_login_page_comes_with_its_compressed_styles(lab):
    """Compressed once, offline, when the venv was made; served beside the pages."""
    base = lab.sites["site-b"].url("horizon")
    login = requests.get(f"{base}/auth/login/", timeout=TIMEOUT)
    sheets = re.findall(r'href="(/static/dashboard/css/[^"]+\.css)"', login.text)
    assert sheets, "no compressed stylesheet on the login page"
    for sheet in sheets:
        served = requests.get(f"{base}{sheet}", timeout=TIMEOUT)
        assert served.status_code == 200 and served.headers["Content-Type"].startswith(
            "text/css"), sheet


@pytest.mark.parametrize("user", ["alice", "rita"])
def test_panel_lists_the_groups_the_service_reports_for_the_project(lab, groups, user):
    """A member and a reader of the project see its groups, no more and no fewer."""
    reported = service(lab, user, "GET", "/protection-groups").json()["protection_groups"]
    assert set(groups) <= {group["id"] for group in reported}
    session, base = signed_in(lab, user)
    page = session.get(f"{base}{PANEL}", timeout=TIMEOUT)
    assert page.status_code == 200
    assert "Disaster Recovery" in page.text and "Protection Groups" in page.text
    assert listed(page.text) == {group["id"] for group in reported}
    assert not error_messages(page.text)
    for group in reported:
        assert f'data-display="{group["name"]}"' in page.text


def test_another_domains_project_of_the_same_name_sees_none(lab, groups):
    """mallory's project is also called ecommerce, in the partners domain: another
    tenant, signed in through the login form's domain field."""
    reported = service(lab, "mallory", "GET", "/protection-groups").json()["protection_groups"]
    assert not {group["id"] for group in reported} & set(groups)
    session, base = signed_in(lab, "mallory")
    page = session.get(f"{base}{PANEL}", timeout=TIMEOUT)
    assert page.status_code == 200 and "Protection Groups" in page.text
    assert not error_messages(page.text)
    assert listed(page.text) == {group["id"] for group in reported}


def test_detail_shows_the_group(lab, groups):
    session, base = signed_in(lab, "alice")
    page = session.get(f"{base}{PANEL}{groups[0]}/", timeout=TIMEOUT)
    assert page.status_code == 200
    assert "web-tier" in page.text and "replicated-ssd" in page.text
    assert "Default/ecommerce" in page.text


def test_the_services_refusal_appears_in_its_own_words(lab, groups):
    refusal = service(lab, "alice", "GET", "/protection-groups/no-such-group")
    assert refusal.status_code == 404
    words = refusal.json()["error"]["message"]
    session, base = signed_in(lab, "alice")
    page = session.get(f"{base}{PANEL}no-such-group/", timeout=TIMEOUT)
    assert page.status_code == 200 and page.url == f"{base}{PANEL}"
    assert any(words in message for message in error_messages(page.text)), (
        error_messages(page.text))


def test_an_unreachable_service_is_an_error_message_not_a_broken_page(lab, groups):
    """Site-a's protection service stops, and starts again afterwards."""
    session, base = signed_in(lab, "alice")
    lab.service_down("site-a", "webhook", progress=lambda line: None)
    try:
        page = session.get(f"{base}{PANEL}", timeout=TIMEOUT)
    finally:
        lab.up(sites=["site-a"], progress=lambda line: None)
    assert page.status_code == 200
    assert not listed(page.text)
    assert any("cannot reach the protection service" in message
               for message in error_messages(page.text)), error_messages(page.text)
