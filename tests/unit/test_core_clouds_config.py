"""clouds.yaml entries as users write them, read through openstacksdk's config: password
or application credential, region, interface, CA bundle; the local entry rescoped to each
tenant project (in any domain); the service's own account as an entry of its own."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from keystoneauth1.identity import v3
from keystonemiddleware import auth_token

from site_recovery.core.clouds import Clouds
from site_recovery.core.config import ConfigError, parse
from site_recovery.core.model import Project
from site_recovery.core.peer import peer_session
from site_recovery.core.recovery import Engine
from site_recovery.webhook.identity import middleware_conf
from site_recovery.webhook.launcher import Launcher, service_session
from site_recovery.webhook.tenancy import TenantClouds
from tests.unit.test_core_config import minimal

APP_SECRET = "app-credential-secret-never-shown"
PASSWORD = "password-never-shown"
SERVICES = {"compute": "nova", "orchestration": "heat", "workflowv2": "mistral",
            "identity": "keystone", "protector": "site-recovery"}


class Keystone:
    """Just enough of a Keystone v3 to sign in: it records each sign-in's identity and
    scope, and its catalog lists every service in RegionOne and RegionTwo, on the public
    and the internal interface, at ``{url}/{region}/{interface}/{service}``."""

    def __init__(self):
        self.sign_ins: list[dict] = []
        keystone = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status: int, body: dict, **headers):
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):                  # version discovery of the auth_url only
                if not self.path.startswith("/v3"):
                    return self._answer(404, {})
                self._answer(200, {"version": {
                    "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
                    "links": [{"rel": "self", "href": f"{keystone.url}/v3/"}],
                    "media-types": [{"base": "application/json",
                                     "type": "application/vnd.openstack.identity-v3+json"}]}})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                keystone.sign_ins.append(body["auth"])
                self._answer(201, keystone.token(body["auth"]), **{"X-Subject-Token": "tok"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def endpoint(self, region: str, interface: str, service_type: str) -> str:
        return f"{self.url}/{region}/{interface}/{service_type}"

    def token(self, auth: dict) -> dict:
        project = auth.get("scope", {}).get("project", {})
        domain = project.get("domain", {})
        return {"token": {
            "methods": auth["identity"]["methods"],
            "issued_at": "2026-01-01T00:00:00.000000Z",
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "user": {"id": "u-site-recovery", "name": "site-recovery",
                     "domain": {"id": "default", "name": "Default"}},
            "project": {"id": project.get("id") or f"id-{project.get('name', 'service')}",
                        "name": project.get("name", "service"),
                        "domain": {"id": domain.get("id", "default"),
                                   "name": domain.get("name", "Default")}},
            "roles": [{"id": "r-member", "name": "member"}],
            "catalog": [{"type": service_type, "name": name, "id": f"s-{name}", "endpoints": [
                {"id": f"{name}-{region}-{interface}", "interface": interface,
                 "region": region, "region_id": region,
                 "url": self.endpoint(region, interface, service_type)}
                for region in ("RegionOne", "RegionTwo") for interface in ("public", "internal")]}
                for service_type, name in SERVICES.items()]}}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keystone():
    server = Keystone()
    yield server
    server.close()


def password_entry(auth_url: str, **settings) -> dict:
    return {"auth": {"auth_url": auth_url, "username": "site-recovery", "password": PASSWORD,
                     "project_name": "service", "user_domain_name": "Default",
                     "project_domain_name": "Default"}, **settings}


def app_credential_entry(auth_url: str, **settings) -> dict:
    return {"auth_type": "v3applicationcredential",
            "auth": {"auth_url": auth_url, "application_credential_id": "ac-1",
                     "application_credential_secret": APP_SECRET}, **settings}


def configure(tmp_path, entries: dict, **overrides):
    """site-a's configuration over a clouds.yaml holding ``entries``: ``site-a`` is the
    local entry, ``site-b`` the peer's (a password entry unless given)."""
    clouds = tmp_path / "clouds.yaml"
    data = minimal(tmp_path, **overrides)
    entries = {"site-b": password_entry("http://127.0.0.1:16000/v3"), **entries}
    clouds.write_text(yaml.safe_dump({"clouds": entries}))
    return parse(data)


def refused(tmp_path, entries: dict, **overrides) -> str:
    with pytest.raises(ConfigError) as caught:
        configure(tmp_path, entries, **overrides)
    message = str(caught.value)
    assert APP_SECRET not in message and PASSWORD not in message
    return message


def test_the_peer_signs_in_with_an_application_credential(tmp_path, keystone):
    config = configure(tmp_path, {"site-a": password_entry(keystone.url + "/v3"),
                                  "site-b": app_credential_entry(keystone.url + "/v3")})
    session = peer_session(config, timeout=5)
    assert isinstance(session.auth, v3.ApplicationCredential)
    session.get_token()
    (sign_in,) = keystone.sign_ins
    assert sign_in["identity"] == {"methods": ["application_credential"],
                                   "application_credential": {"id": "ac-1",
                                                              "secret": APP_SECRET}}


def test_the_local_entry_may_not_be_an_application_credential(tmp_path):
    """The DR account signs in to each tenant project it protects; an application
    credential is bound to its own project."""
    message = refused(tmp_path, {"site-a": app_credential_entry("http://127.0.0.1:15000/v3")})
    assert message.startswith("clouds.local: entry 'site-a' signs in with an application "
                              "credential, which is bound to the project it was made in")
    assert "(password, or a federated one such as v3oidcpassword)" in message


@pytest.mark.parametrize(("entry", "message"), [
    ({"auth": {"auth_url": "http://k/v3", "username": "site-recovery"}},
     "clouds.local: entry 'site-a' lacks password$"),
    ({"auth": {"username": "site-recovery", "password": PASSWORD}},
     "clouds.local: entry 'site-a' lacks auth_url"),
    ({"auth": {"auth_url": "http://k/v3", "application_credential_id": "ac-1",
               "application_credential_secret": APP_SECRET}},
     "its auth options do not fit its auth_type .* needs auth_type: "
     "v3applicationcredential"),
    ({"auth_type": "nosuch", "auth": {"auth_url": "http://k/v3"}},
     "auth_type 'nosuch' is no keystoneauth plugin installed here"),
    ({"auth_type": "admin_token", "auth": {"endpoint": "http://k", "token": PASSWORD}},
     "auth_type 'admin_token' cannot sign in to a project"),
    ({**password_entry("https://k/v3"), "insecure": True},
     "clouds.local: entry 'site-a' turns TLS verification off"),
    ("not an entry", "clouds.local: no entry 'site-a' in"),
])
def test_a_broken_entry_is_named_with_what_is_wrong_never_a_secret(tmp_path, entry, message):
    assert re.search(message, refused(tmp_path, {"site-a": entry}))


def test_an_unreadable_clouds_file_never_shows_its_text(tmp_path):
    data = minimal(tmp_path)
    (tmp_path / "clouds.yaml").write_text(f"clouds:\n  site-a:\n    auth: {{password: "
                                          f"{PASSWORD}\n")
    with pytest.raises(ConfigError, match=r"clouds.file: .*clouds.yaml is not valid YAML "
                                          r"\(line \d+\)$") as caught:
        parse(data)
    assert PASSWORD not in str(caught.value)


def test_every_client_takes_the_entrys_region_interface_and_ca(tmp_path, keystone):
    entry = password_entry(keystone.url + "/v3", region_name="RegionTwo",
                           interface="internal", cacert="/etc/pki/site-a-ca.pem")
    config = configure(tmp_path, {"site-a": entry, "site-b": app_credential_entry(
        keystone.url + "/v3", cacert="/etc/pki/site-b-ca.pem")},
        keystone={"cloud": "site-a"})
    clouds = Clouds(config)
    project = Project("Default", "ecommerce")
    connection = clouds.connect("site-a", project)
    assert connection.endpoint_for("compute") == keystone.endpoint(
        "RegionTwo", "internal", "compute")
    assert clouds.heat("site-a", project).http_client.get_endpoint() == keystone.endpoint(
        "RegionTwo", "internal", "orchestration")
    assert Launcher(service_session(config, timeout=5)).url == keystone.endpoint(
        "RegionTwo", "internal", "workflowv2")
    workflows = Engine.from_config(config).service       # what the actions call
    assert workflows.session.get_endpoint(**workflows.endpoint) == keystone.endpoint(
        "RegionTwo", "internal", "protector")
    assert TenantClouds(config).where == {
        service_type: {"region_name": "RegionTwo", "interface": "internal"}
        for service_type in ("compute", "identity")}
    assert clouds.session("site-a").verify == "/etc/pki/site-a-ca.pem"
    assert peer_session(config, timeout=5).verify == "/etc/pki/site-b-ca.pem"
    assert config.peer_verify == "/etc/pki/site-b-ca.pem"


def test_an_https_mistral_is_verified_with_the_entrys_ca_bundle(tmp_path, keystone):
    bundle = tmp_path / "site-a-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    config = configure(tmp_path, {"site-a": password_entry(
        keystone.url + "/v3", cacert=str(bundle)), "site-b": app_credential_entry(
        keystone.url + "/v3")}, keystone={"cloud": "site-a"})
    launcher = Launcher(service_session(config, timeout=5), "https://mistral.site-a:8989/v2")
    assert launcher._mistral().executions.http_client.ssl_options["verify"] == str(bundle)


def test_a_tenant_project_in_another_domain_is_signed_in_to_by_domain_and_name(
        tmp_path, keystone):
    """The entry's own scope (here by ids) gives way to the tenant's project; the user's
    domain stays the entry's."""
    entry = password_entry(keystone.url + "/v3")
    entry["auth"].update(project_id="id-service", project_domain_id="default")
    del entry["auth"]["project_name"], entry["auth"]["project_domain_name"]
    clouds = Clouds(configure(tmp_path, {"site-a": entry}))
    assert clouds.keystone_project_id(Project("partners", "ecommerce")) == "id-ecommerce"
    clouds.project_ids = {Project("Default", "ecommerce"): "id-recorded"}.get
    clouds.session("site-a", Project("Default", "ecommerce")).get_token()
    by_name, by_id = (sign_in["scope"]["project"] for sign_in in keystone.sign_ins)
    assert by_name == {"name": "ecommerce", "domain": {"name": "partners"}}
    assert by_id == {"id": "id-recorded"}
    for sign_in in keystone.sign_ins:
        assert sign_in["identity"]["password"]["user"] == {
            "name": "site-recovery", "password": PASSWORD, "domain": {"name": "Default"}}


def test_the_services_own_account_may_be_an_application_credential_entry(tmp_path):
    entry = app_credential_entry("https://keystone.site-a.example.com:5000/v3",
                                 region_name="RegionTwo", interface="internal",
                                 cacert="/etc/pki/site-a-ca.pem")
    config = configure(tmp_path, {"site-a": password_entry("http://127.0.0.1:15000/v3"),
                                  "site-a-service": entry},
                       keystone={"cloud": "site-a-service"})
    assert str(config.keystone.auth_url) == "https://keystone.site-a.example.com:5000/v3"
    conf = middleware_conf(config)
    assert {key: conf[key] for key in (
        "www_authenticate_uri", "auth_type", "application_credential_id",
        "application_credential_secret", "interface", "region_name", "cafile", "insecure")
    } == {"www_authenticate_uri": "https://keystone.site-a.example.com:5000/v3",
          "auth_type": "v3applicationcredential", "application_credential_id": "ac-1",
          "application_credential_secret": APP_SECRET, "interface": "internal",
          "region_name": "RegionTwo", "cafile": "/etc/pki/site-a-ca.pem", "insecure": "false"}
    middleware = auth_token.AuthProtocol(lambda environ, start_response: [], conf)
    assert isinstance(middleware._auth, v3.ApplicationCredential)


def test_the_keystone_section_keeps_its_own_account_form(tmp_path):
    config = configure(tmp_path, {"site-a": password_entry("http://127.0.0.1:15000/v3")})
    conf = middleware_conf(config)
    assert (conf["auth_type"], conf["username"], conf["password"], conf["interface"],
            conf["region_name"]) == ("v3password", "site-recovery", "very-secret-password",
                                     "public", "RegionOne")
    middleware = auth_token.AuthProtocol(lambda environ, start_response: [], conf)
    assert isinstance(middleware._auth, v3.Password)


@pytest.mark.parametrize(("section", "message"), [
    ({"cloud": "site-a", "username": "site-recovery"},
     "keystone: Value error, cloud 'site-a' gives the account: leave out username"),
    ({"token_cache_time": 60}, "keystone: Value error, give cloud .* or auth_url, username, "
                               "password_file"),
    ({"cloud": "nowhere"}, "keystone.cloud: no entry 'nowhere' in"),
])
def test_the_keystone_section_names_one_account(tmp_path, section, message):
    assert re.search(message, refused(
        tmp_path, {"site-a": password_entry("http://127.0.0.1:15000/v3")}, keystone=section))


@pytest.mark.parametrize(("rest_version", "client", "module"), [
    (None, "FlashArrayRest2Client", "site_recovery.storage.flasharray_rest2"),
    (2, "FlashArrayRest2Client", "site_recovery.storage.flasharray_rest2"),
    (1, "FlashArrayClient", "site_recovery.storage.flasharray")])
def test_the_arrays_rest_version_chooses_the_sdk_rest_2_by_default(tmp_path, rest_version,
                                                                   client, module):
    token = tmp_path / "fa-a.token"
    token.write_text("array-token\n")
    array = {"name": "fa-a", "site": "site-a", "address": "fa-a.example.com",
             "token_file": str(token), "cinder_host": "cinder@pure#pure",
             **({"rest_version": rest_version} if rest_version else {})}
    config = parse(minimal(tmp_path, arrays=[array, {
        "name": "fa-b", "site": "site-b", "address": "fa-b.example.com",
        "cinder_host": "cinder@pure#pure"}]))
    chosen = Clouds(config).storage().client("fa-a")       # connects on first use only
    assert (type(chosen).__name__, type(chosen).__module__) == (client, module)
    assert "array-token" not in repr(chosen)


def test_an_unknown_rest_version_is_refused_naming_the_field(tmp_path):
    array = {"name": "fa-a", "site": "site-a", "address": "a", "token_file": "/t",
             "cinder_host": "cinder@pure#pure", "rest_version": 3}
    with pytest.raises(ConfigError, match="rest_version"):
        parse(minimal(tmp_path, arrays=[array]))
