"""Real Keystone for a lab site: SQLite, fernet tokens, served by gunicorn.

Tuned for a test lab as measured in the reference: the in-process cache on (otherwise
~450 SQL queries per validation) and bcrypt cost 4 (otherwise 0.3 s per password check).
One gunicorn worker with threads, so role changes are never hidden by another worker's
cache. Keystone parses ``sys.argv`` itself, so gunicorn takes no arguments and reads
``gunicorn.conf.py`` from its working directory.
"""

from __future__ import annotations

import json
import os
import time

import requests

from ..layout import (
    ACCOUNTS,
    DR_SERVICE_TENANT_ROLE,
    HEAT_DOMAIN,
    HEAT_DOMAIN_ADMIN,
    PROJECTS,
    REGION,
    ROLES,
    TENANT_DOMAINS,
    TENANT_PROJECTS,
    SiteLayout,
)
from . import venvs
from .base import ServiceSpec, run_once, service_env

TIMEOUT = 30

_CONF = """\
[DEFAULT]
debug = false
log_file = {dir}/keystone.log

[database]
connection = sqlite:///{dir}/keystone.db

[token]
provider = fernet
expiration = 14400

[fernet_tokens]
key_repository = {dir}/fernet-keys/
max_active_keys = 3

[fernet_receipts]
key_repository = {dir}/fernet-keys/

[credential]
key_repository = {dir}/credential-keys/

[cache]
enabled = true
backend = dogpile.cache.memory

[identity]
# bcrypt cost 4: a lab, not production. Must be set before bootstrap hashes passwords.
password_hash_rounds = 4
"""

_GUNICORN = """\
wsgi_app = "keystone.wsgi.api:application"
bind = "127.0.0.1:{port}"
workers = 1
threads = 8
worker_class = "gthread"
timeout = 120
accesslog = "{dir}/access.log"
errorlog = "{dir}/gunicorn.log"
"""


def prepare(site: SiteLayout) -> ServiceSpec:
    """Venv, configuration, database and bootstrap (each once); the process to run."""
    venv = venvs.ensure(site.venvs, "keystone")
    here = site.service_dir("keystone")
    conf = here / "keystone.conf"
    conf.write_text(_CONF.format(dir=here))
    (here / "gunicorn.conf.py").write_text(_GUNICORN.format(port=site.port("keystone"), dir=here))
    env = {**service_env(venv), "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    manage = [str(venv / "bin" / "keystone-manage"), "--config-file", str(conf)]
    admin = site.account("admin")
    run_once(here / ".bootstrapped", site.keystone_url, [
        [*manage, "fernet_setup", "--keystone-user", "root", "--keystone-group", "root"],
        [*manage, "credential_setup", "--keystone-user", "root", "--keystone-group", "root"],
        [*manage, "db_sync"],
        [*manage, "bootstrap", "--bootstrap-password", admin.password,
         "--bootstrap-username", admin.user, "--bootstrap-project-name", admin.project,
         "--bootstrap-role-name", "admin", "--bootstrap-service-name", "keystone",
         "--bootstrap-region-id", REGION,
         *(arg for kind in ("admin", "public", "internal")
           for arg in (f"--bootstrap-{kind}-url", site.keystone_url))],
    ], here / "keystone-manage.log", env)
    for keys in ("fernet-keys", "credential-keys"):     # else "world readable" warnings
        (here / keys).chmod(0o700)
    return ServiceSpec("keystone", (str(venv / "bin" / "gunicorn"),), here,
                       here / "gunicorn.log", site.keystone_url, env, port=site.port("keystone"))


def token(site: SiteLayout, user: str = "admin") -> str:
    """A project-scoped token for a lab account."""
    account = site.account(user)
    domain = {"name": account.domain}
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": account.user, "password": account.password, "domain": domain}}},
        "scope": {"project": {"name": account.project, "domain": domain}}}}
    reply = requests.post(f"{site.keystone_url}/auth/tokens", json=body, timeout=TIMEOUT)
    reply.raise_for_status()
    return reply.headers["X-Subject-Token"]


class _Admin:
    """Keystone's REST API with the admin's token: just what provisioning needs."""

    def __init__(self, site: SiteLayout):
        self.url = site.keystone_url
        self.session = requests.Session()
        self.session.headers["X-Auth-Token"] = token(site)

    def call(self, method: str, path: str, ok: tuple[int, ...] = (), **kwargs) -> dict:
        """One request; a status in ``ok`` is no error (and gives an empty answer)."""
        reply = self.session.request(method, f"{self.url}{path}", timeout=TIMEOUT, **kwargs)
        if reply.status_code in ok:
            return {}
        reply.raise_for_status()
        return reply.json() if reply.content else {}

    def ensure(self, collection: str, key: str, body: dict, **filters) -> dict:
        """Find one ``collection`` item by ``filters``, or create it from ``body``."""
        found = self.call("GET", f"/{collection}", params=filters)[collection]
        if found:
            return found[0]
        return self.call("POST", f"/{collection}", json={key: body})[key]


def account_ids(site: SiteLayout, user: str) -> dict[str, str]:
    """A lab account's user and project ids in ``site``'s Keystone: what a service pins
    as the account that may call it (``internal.peer``)."""
    api = _Admin(site)
    account = site.account(user)
    (found,) = api.call("GET", "/users", params={"name": user, "domain_id": "default"})[
        "users"]
    (project,) = api.call("GET", "/projects", params={"name": account.project,
                                                      "domain_id": "default"})["projects"]
    return {"user_id": found["id"], "project_id": project["id"]}


def provision(site: SiteLayout):
    """Roles, projects, users, the Heat domain, the site's catalog and the peer account's
    application credential (idempotent)."""
    api = _Admin(site)
    default = "default"
    roles = {r: api.ensure("roles", "role", {"name": r}, name=r)["id"] for r in ROLES}
    domains = {"Default": default, **{
        d: api.ensure("domains", "domain", {"name": d}, name=d)["id"] for d in TENANT_DOMAINS}}
    projects = {("Default", p): api.ensure("projects", "project",
                                           {"name": p, "domain_id": default},
                                           name=p, domain_id=default)["id"] for p in PROJECTS}
    for account in ACCOUNTS:
        domain = domains[account.domain]
        project = projects.get((account.domain, account.project)) or api.ensure(
            "projects", "project", {"name": account.project, "domain_id": domain},
            name=account.project, domain_id=domain)["id"]
        projects[account.domain, account.project] = project
        user = api.ensure("users", "user", {"name": account.user, "domain_id": domain,
                                            "password": account.password},
                          name=account.user, domain_id=domain)
        for role in account.roles:
            api.call("PUT", f"/projects/{project}/users/{user['id']}/roles/{roles[role]}")
    service_user = api.ensure("users", "user", {}, name="site-recovery", domain_id=default)
    for project in TENANT_PROJECTS:
        grants = f"/projects/{projects['Default', project]}/users/{service_user['id']}/roles"
        api.call("PUT", f"{grants}/{roles[DR_SERVICE_TENANT_ROLE]}")
        if DR_SERVICE_TENANT_ROLE != "admin":           # a lab provisioned before kept it
            api.call("DELETE", f"{grants}/{roles['admin']}", ok=(404,))
    domain = api.ensure("domains", "domain", {"name": HEAT_DOMAIN}, name=HEAT_DOMAIN)
    heat_admin = api.ensure("users", "user", {"name": HEAT_DOMAIN_ADMIN.user,
                                              "domain_id": domain["id"],
                                              "password": HEAT_DOMAIN_ADMIN.password},
                            name=HEAT_DOMAIN_ADMIN.user, domain_id=domain["id"])
    api.call("PUT", f"/domains/{domain['id']}/users/{heat_admin['id']}/roles/{roles['admin']}")
    _application_credential(site, PEER_ACCOUNT)
    for service_type, url in site.catalog().items():
        if service_type == "identity":
            continue                                   # bootstrap registered Keystone itself
        service = api.ensure("services", "service", {"type": service_type,
                                                     "name": service_type}, type=service_type)
        existing = {e["interface"]: e for e in api.call(
            "GET", "/endpoints", params={"service_id": service["id"]})["endpoints"]}
        for interface in ("public", "internal", "admin"):
            endpoint = existing.get(interface)
            if endpoint is None:
                api.call("POST", "/endpoints", json={"endpoint": {
                    "service_id": service["id"], "interface": interface, "url": url,
                    "region_id": REGION}})
            elif endpoint["url"] != url:
                api.call("PATCH", f"/endpoints/{endpoint['id']}", json={"endpoint": {"url": url}})


# The account the other site signs in with, by an application credential of its own.
PEER_ACCOUNT = "site-recovery-peer"
CREDENTIAL_NAME = "site-recovery-lab"


def _kept_credential(site: SiteLayout, user: str):
    return site.service_dir("keystone") / f"{user}.application-credential.json"


def _application_credential(site: SiteLayout, user: str):
    """Give ``user`` an application credential of the lab's name on ``site``'s Keystone,
    made with its own token (so bound to its own project and roles), and keep its id and
    secret beside Keystone's database. The kept one is left as it is while Keystone holds
    it; otherwise one of that name is deleted and made again (a secret is shown only
    when made)."""
    kept = _kept_credential(site, user)
    own = requests.Session()
    own.headers["X-Auth-Token"] = token(site, user)
    url = f"{site.keystone_url}/users/{account_ids(site, user)['user_id']}/application_credentials"
    reply = own.get(url, params={"name": CREDENTIAL_NAME}, timeout=TIMEOUT)
    reply.raise_for_status()
    held = [found["id"] for found in reply.json()["application_credentials"]]
    if kept.exists() and json.loads(kept.read_text())["id"] in held:
        return
    for stale in held:
        own.delete(f"{url}/{stale}", timeout=TIMEOUT).raise_for_status()
    reply = own.post(url, timeout=TIMEOUT, json={"application_credential": {
        "name": CREDENTIAL_NAME, "description": "the lab's peer site signs in with it"}})
    reply.raise_for_status()
    made = reply.json()["application_credential"]
    written = kept.with_name(f".{kept.name}.{os.getpid()}")
    written.write_text(json.dumps({"id": made["id"], "secret": made["secret"]}))
    written.chmod(0o600)
    written.replace(kept)


def application_credential_entry(site: SiteLayout, user: str, wait: float) -> dict:
    """The clouds.yaml ``auth`` of ``user``'s application credential on ``site``, by name
    and user as an operator may write it, once :func:`provision` has made it there
    (waiting up to ``wait`` seconds: the sites are provisioned side by side)."""
    kept = _kept_credential(site, user)
    deadline = time.monotonic() + wait
    while not kept.exists():
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{site.name}'s Keystone holds no application credential for "
                               f"{user} after {wait:g} s: bring {site.name} up too")
        time.sleep(0.5)
    account = site.account(user)
    return {"auth_url": site.keystone_url, "application_credential_name": CREDENTIAL_NAME,
            "application_credential_secret": json.loads(kept.read_text())["secret"],
            "username": account.user, "user_domain_name": account.domain}
