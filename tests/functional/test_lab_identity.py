"""A clouds.yaml with an application credential works in the lab: each site signs in to its
peer with the peer account's application credential, and its service's own account is a
clouds.yaml entry (``keystone.cloud``) that validates callers' tokens.

A lab of its own on ports from 11000 (site-b: 12000), below the kernel's ephemeral range
(32768 up), where a client socket may hold a port the lab wants; unseeded, purged afterwards.
"""

from __future__ import annotations

import pytest
import requests
import yaml
from keystoneauth1.identity import v3

from site_recovery.core.config import load
from site_recovery.core.peer import peer_session
from site_recovery.lab.services import keystone
from site_recovery.webhook.launcher import Launcher, service_session
from site_recovery.webhook.peerlink import PeerLink
from tests.conftest import fresh_lab

PORT_BASE = 11000

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def lab():
    yield from fresh_lab(PORT_BASE, "identity", seeded=False)


def site_config(site):
    return load(site.run_dir / "webhook" / "protector.yaml")


def test_the_peer_link_signs_in_with_an_application_credential(lab):
    for site in lab.sites.values():
        config = site_config(site)
        entries = yaml.safe_load(config.clouds.file.read_text())["clouds"]
        assert entries[config.clouds.peer]["auth_type"] == "v3applicationcredential"
        assert "password" not in entries[config.clouds.peer]["auth"]
        assert isinstance(peer_session(config, timeout=30).auth, v3.ApplicationCredential)
        reply = PeerLink(config).request("GET", "/v1/internal/protection-groups")
        assert reply.status == 200, (site.name, reply.body)
        assert reply.body == {"documents": []}


def test_the_services_own_account_is_a_clouds_yaml_entry_that_checks_tokens(lab):
    """It validates callers' tokens (a 401 names its Keystone) and finds Mistral in its
    catalog, at its entry's region and interface."""
    for site in lab.sites.values():
        config = site_config(site)
        assert config.keystone.cloud == site.name
        url = site.url("webhook", "/v1/protection-groups")
        alice = {"X-Auth-Token": keystone.token(site, "alice")}
        assert requests.get(url, headers=alice, timeout=30,
                            verify=lab.ca_file()).status_code == 200
        refused = requests.get(url, timeout=30, verify=lab.ca_file())
        assert refused.status_code == 401
        assert site.keystone_url in refused.headers["WWW-Authenticate"]
        mistral = Launcher(service_session(config, timeout=30))   # its URL from the catalog
        assert mistral.url == site.url("mistral", "/v2")
        assert mistral.find("00000000-0000-4000-8000-000000000000") is None


def test_provisioning_again_keeps_the_peer_accounts_credential(lab):
    """A rerun finds the credential Keystone holds and keeps it (and its secret)."""
    site = lab.sites["site-b"]
    before = keystone.application_credential_entry(site, keystone.PEER_ACCOUNT, wait=0)
    keystone.provision(site)
    assert keystone.application_credential_entry(site, keystone.PEER_ACCOUNT,
                                                 wait=0) == before
    config = site_config(lab.sites["site-a"])
    assert PeerLink(config).request("GET", "/v1/internal/protection-groups").status == 200
