"""Where everything of a lab site lives: ports, URLs, directories, accounts, catalog.

One :class:`SiteLayout` per site; every lab component reads its addresses and accounts from
here, so the supervisor, the services and the tests agree without passing them around.
The lab's passwords are fixed and public: it runs on loopback, for tests and demos only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
REGION = "RegionOne"
DEFAULT_PORT_BASE = 15000          # site-a 15000.., site-b 16000..
SITES = ("site-a", "site-b")

# Offsets from a site's port base.
# Served over TLS with the lab's own certificate (Supervisor.ca_file): the protection
# service (as production should; its clients are given the lab's CA).
TLS_SERVICES = frozenset({"webhook"})
PORTS = {"keystone": 0, "cloud": 1, "heat": 4, "heat_cfn": 5, "mistral": 9, "webhook": 10,
         "array": 43, "horizon": 80}


@dataclass(frozen=True)
class Account:
    user: str
    password: str
    project: str
    roles: tuple[str, ...]
    domain: str = "Default"


# Accounts every site has. Tenant projects carry the same names on both sites (a protection
# group's project is matched by name), but their ids differ: the Keystones are independent.
ACCOUNTS = (
    Account("admin", "admin-pass", "admin", ("admin",)),
    Account("dr-admin", "dr-admin-pass", "admin", ("admin", "dr_site_admin")),
    Account("site-recovery", "site-recovery-pass", "service",
            ("admin", "service", "site_recovery_service")),
    # What the other site signs in with here: the peer account, which opens this site's
    # protection service (its /v1/internal API) and nothing else.
    Account("site-recovery-peer", "site-recovery-peer-pass", "service",
            ("site_recovery_service",)),
    Account("heat", "heat-pass", "service", ("admin", "service")),
    Account("mistral", "mistral-pass", "service", ("admin", "service")),
    Account("cloud", "cloud-pass", "service", ("service",)),
    Account("alice", "alice-pass", "ecommerce", ("member", "heat_stack_owner")),
    Account("rita", "rita-pass", "ecommerce", ("reader",)),
    Account("bob", "bob-pass", "analytics", ("member", "heat_stack_owner")),
    # The operations team's own project: its groups are the ones a drill alert names.
    Account("carol", "carol-pass", "operations", ("member", "heat_stack_owner")),
    # Another tenant whose project has alice's project's name, in another domain.
    Account("mallory", "mallory-pass", "ecommerce", ("member", "heat_stack_owner"),
            domain="partners"),
)
# The DR service builds a tenant's recovered workload in the tenant's own project, so it
# holds a role there (the operator grants it when a project is protected; see docs/):
# ``member``, never ``admin``, which would let it see and touch every project's resources.
# Its ``admin`` role is in its own project only, for what Cinder keeps to admins (manage,
# unmanage, volume types' replication specs).
DR_SERVICE_TENANT_ROLE = "member"
TENANT_PROJECTS = ("ecommerce", "analytics", "operations")
ROLES = ("admin", "member", "reader", "service", "dr_site_admin", "site_recovery_service",
         "heat_stack_owner", "heat_stack_user")
PROJECTS = ("admin", "service", "ecommerce", "analytics", "operations")
HEAT_DOMAIN = "heat"
TENANT_DOMAINS = ("partners",)
HEAT_DOMAIN_ADMIN = Account("heat_domain_admin", "heat-domain-pass", "", ("admin",),
                            domain=HEAT_DOMAIN)


def lab_home() -> Path:
    """The lab's files: shared venvs, and one run directory per lab instance."""
    return Path(os.environ.get("SITE_RECOVERY_LAB_HOME",
                               Path.home() / ".cache" / "site-recovery" / "lab"))


@dataclass(frozen=True)
class SiteLayout:
    name: str                  # "site-a"
    port_base: int
    home: Path                 # lab home (venvs/ is shared by every site and lab instance)
    run_name: str = "default"  # several labs (say, tests and a demo) may share one home

    @classmethod
    def for_site(cls, name: str, *, port_base: int = DEFAULT_PORT_BASE,
                 home: Path | None = None, run_name: str = "default") -> SiteLayout:
        index = SITES.index(name)
        return cls(name, port_base + 1000 * index, home or lab_home(), run_name)

    # -- places ------------------------------------------------------------------------------
    @property
    def venvs(self) -> Path:
        return self.home / "venvs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run" / self.run_name / self.name

    def service_dir(self, service: str) -> Path:
        path = self.run_dir / service
        path.mkdir(parents=True, exist_ok=True)
        return path

    def port(self, service: str) -> int:
        return self.port_base + PORTS[service]

    def url(self, service: str, path: str = "") -> str:
        scheme = "https" if service in TLS_SERVICES else "http"
        return f"{scheme}://{HOST}:{self.port(service)}{path}"

    # -- identity ----------------------------------------------------------------------------
    @property
    def keystone_url(self) -> str:
        return self.url("keystone", "/v3")

    @property
    def array_name(self) -> str:
        return f"pure-{self.name}"

    @property
    def peer(self) -> str:
        return next(s for s in SITES if s != self.name)

    def account(self, user: str) -> Account:
        return next(a for a in ACCOUNTS if a.user == user)

    def catalog(self) -> dict[str, str]:
        """Service type -> endpoint URL (public, internal and admin alike)."""
        return {
            "identity": self.keystone_url,
            "compute": self.url("cloud", "/compute/v2.1"),
            "network": self.url("cloud", "/network"),
            "volumev3": self.url("cloud", "/volume/v3/%(project_id)s"),
            "block-storage": self.url("cloud", "/volume/v3/%(project_id)s"),
            "image": self.url("cloud", "/image"),
            "orchestration": self.url("heat", "/v1/%(tenant_id)s"),
            "cloudformation": self.url("heat_cfn", "/v1"),
            "workflowv2": self.url("mistral", "/v2"),
            "protector": self.url("webhook", "/v1"),
        }

    def auth(self, user: str) -> dict[str, str]:
        """keystoneauth password-plugin arguments for a lab account."""
        account = self.account(user)
        return {"auth_url": self.keystone_url, "username": account.user,
                "password": account.password, "project_name": account.project,
                "user_domain_name": account.domain, "project_domain_name": account.domain}
