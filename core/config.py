"""The protection service's one configuration file (YAML), checked at start.

A missing or malformed setting stops the service with a message naming the setting, never
its value when it is a secret. Secrets come from files (``*_file``) so the configuration
itself can be shared and logged.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import loading as ks_loading
from openstack import exceptions as sdk_exceptions
from openstack.config import OpenStackConfig
from openstack.config.cloud_region import CloudRegion
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from site_recovery import workbooks

from .model import STEP_TIMEOUT, OperationKind

DEFAULT_DATABASE = "sqlite:////var/lib/site-recovery/protector.db"


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PeerConfig(_Strict):
    """The other site's protection service."""

    name: str = Field(min_length=1, max_length=64)
    url: HttpUrl
    probe_timeout: float = Field(3.0, gt=0, le=60)
    probe_interval: float = Field(10.0, gt=0, le=3600)
    failure_threshold: int = Field(3, ge=1, le=100)   # failures in a row before "unreachable"
    success_threshold: int = Field(2, ge=1, le=100)   # successes in a row before "reachable"
    sync_timeout: float = Field(5.0, gt=0, le=60)     # one metadata push or forward
    ca_file: Path | None = None                       # none: the system's CA bundle

    @field_validator("url")
    @classmethod
    def _service_root(cls, url: HttpUrl) -> HttpUrl:
        """The service's root, given with or without its API version (``.../v1``), as the
        catalog lists it."""
        path = (url.path or "").rstrip("/")
        if path.endswith("/v1"):
            return HttpUrl(str(url).replace(url.path, path[:-3] or "/", 1))
        return url


class KeystoneConfig(_Strict):
    """This site's Keystone, where callers' tokens are validated (keystonemiddleware), and
    the service's own account there (tokens, Mistral): a clouds.yaml entry of
    ``clouds.file`` (``cloud``), or the account's auth_url, username and password_file."""

    cloud: str | None = Field(None, min_length=1)
    # This Keystone as callers reach it (a 401 names it); with ``cloud``, by default the
    # entry's auth_url.
    auth_url: HttpUrl | None = None
    username: str | None = None
    password_file: Path | None = None
    project_name: str = "service"
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    region_name: str = "RegionOne"
    token_cache_time: int = Field(300, ge=-1)
    # The CA bundle for this Keystone and the services its catalog lists (Mistral);
    # none: the system's.
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _one_account(self):
        """The account is the entry's, or given here: never half of each."""
        if self.cloud:
            here = self.model_fields_set & set(_ACCOUNT_FIELDS)
            if here:
                raise ValueError(f"cloud {self.cloud!r} gives the account: leave out "
                                 f"{', '.join(sorted(here))} (they belong in its entry)")
        else:
            missing = [name for name in ("auth_url", "username", "password_file")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"give cloud (a clouds.yaml entry) or "
                                 f"{', '.join(missing)}")
        return self

    def password(self) -> SecretStr:
        return SecretStr(_read_secret(self.password_file, "keystone.password_file"))


# The settings of an account given in ``keystone`` itself rather than as a clouds.yaml entry.
_ACCOUNT_FIELDS = ("username", "password_file", "project_name", "user_domain_name",
                   "project_domain_name", "region_name", "ca_file")


class AccountConfig(_Strict):
    """A Keystone account of this site, by id: what a caller's token must show."""

    user_id: str = Field(min_length=1, max_length=64)
    project_id: str = Field(min_length=1, max_length=64)


class InternalConfig(_Strict):
    """Who may call ``/v1/internal``: this site's DR workflows and the peer site's service,
    each signed in to this site's Keystone as one account holding the
    ``site_recovery_service`` role (the policy's ``protector:workflow`` and
    ``protector:peer``). None: this service's own account (``keystone``), which the
    deploy guide gives both."""

    workflows: AccountConfig | None = None
    peer: AccountConfig | None = None


class MistralConfig(_Strict):
    url: HttpUrl | None = None         # default: the workflowv2 endpoint of the catalog
    timeout: float = Field(10.0, gt=0, le=120)
    # How long a request waits for Mistral to accept an execution before it answers 202
    # with the start under way (see webhook/lifecycle.py), and how many starts run at once.
    start_wait: float = Field(0.05, ge=0, le=60)
    start_workers: int = Field(2, ge=1, le=64)


class CloudsConfig(_Strict):
    """clouds.yaml entries: ``local``, the DR service's account on this site, which the
    workflows act with; ``peer``, the peer account on the peer site's Keystone, which
    holds only the ``site_recovery_service`` role there and opens nothing but the peer's
    protection service (metadata sync and peer steps). Each is read as openstacksdk and
    the openstack CLI read it (:func:`cloud_region`)."""

    file: Path
    local: str
    peer: str

    def region(self, which: Literal["local", "peer"], *,
               project: dict[str, str] | None = None, **options) -> CloudRegion:
        """The entry as a CloudRegion (see :func:`cloud_region`). The local entry must be
        able to sign in to a tenant project: the DR account acts as member there."""
        region = cloud_region(self.file, getattr(self, which), f"clouds.{which}",
                              project=project, **options)
        if which == "local":
            _rescopable(region, f"clouds.local: entry {self.local!r}")
        return region

    def verify(self, which: Literal["local", "peer"]) -> str | bool:
        """How the entry's cloud is verified: its CA bundle (``cacert``), else the
        system's."""
        return self.region(which).get_requests_verify_args()[0]


# The auth options that name the project a connection acts in: a connection scoped to
# another project replaces them all (openstacksdk leaves out an option given as "").
PROJECT_SCOPE = ("project_id", "project_name", "project_domain_id", "project_domain_name")


def cloud_region(file: Path, name: str, setting: str, *,
                 project: dict[str, str] | None = None, **options) -> CloudRegion:
    """clouds.yaml entry ``name`` as openstacksdk and the openstack CLI read it: its
    auth_type and auth options (a password, an application credential...), region_name,
    interface and CA bundle (``cacert``); ``setting`` names it in errors. ``project``:
    scoped to that project (``project_id``, or ``project_name`` and
    ``project_domain_name``) instead of the entry's own; ``options``: settings over the
    entry's (``api_timeout``). A problem is a ConfigError naming the setting, the entry
    and what is wrong, never a secret; an entry that turns TLS verification off is one
    (a DR service does not skip TLS checks)."""
    _require_entry(file, name, setting)
    where = f"{setting}: entry {name!r}"
    if project:
        options["auth"] = {**dict.fromkeys(PROJECT_SCOPE, ""), **project}
    try:
        region = OpenStackConfig(config_files=[str(file)], secure_files=[],
                                 load_envvars=False).get_one(cloud=name, **options)
    except ks_exceptions.MissingRequiredOptions as exc:
        raise ConfigError(f"{where} lacks {', '.join(o.dest for o in exc.options)}") from None
    except ks_exceptions.NoMatchingPlugin as exc:
        raise ConfigError(f"{where}: auth_type {exc.name!r} is no keystoneauth plugin "
                          "installed here") from None
    except (ks_exceptions.OptionError, sdk_exceptions.ConfigException) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except TypeError as exc:            # an option the entry's auth_type does not take
        raise ConfigError(f"{where}: its auth options do not fit its auth_type ({exc}); "
                          "an application credential needs auth_type: "
                          "v3applicationcredential") from None
    auth = region.config["auth"]
    if region.config["auth_type"] in ("password", "v3password"):
        missing = [option for option, given in (
            ("password", auth.get("password")),
            ("username", auth.get("username") or auth.get("user_id"))) if not given]
        if missing:
            raise ConfigError(f"{where} lacks {', '.join(missing)}")
    if region.get_requests_verify_args()[0] is False:
        raise ConfigError(f"{where} turns TLS verification off; give its CA bundle as "
                          "cacert instead")
    return region


def _require_entry(file: Path, name: str, setting: str):
    """An unreadable file, or no entry ``name`` in it, is named (a YAML error's text is
    not: it may quote a secret)."""
    try:
        entry = (yaml.safe_load(Path(file).read_text()) or {})["clouds"][name]
    except OSError as exc:
        raise ConfigError(f"clouds.file: cannot read {file}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise ConfigError(f"clouds.file: {file} is not valid YAML"
                          + (f" (line {line + 1})" if line is not None else "")) from None
    except (KeyError, TypeError):
        entry = None
    if not isinstance(entry, dict):
        raise ConfigError(f"{setting}: no entry {name!r} in {file}")


def _rescopable(region: CloudRegion, where: str):
    """Refuse an entry that cannot sign in to another project than its own."""
    if any(option.startswith("application_credential") for option in region.config["auth"]):
        raise ConfigError(
            f"{where} signs in with an application credential, which is bound to the "
            "project it was made in: the DR account acts as member in each tenant project "
            "it protects, so it needs an auth_type that can sign in to another project "
            "(password, or a federated one such as v3oidcpassword). An application "
            "credential suits clouds.peer and keystone.cloud")
    auth_type = region.config["auth_type"]
    takes = {option.dest for option in ks_loading.get_plugin_loader(auth_type).get_options()}
    if "project_id" not in takes:
        raise ConfigError(f"{where}: auth_type {auth_type!r} cannot sign in to a project, "
                          "and the DR account acts as member in each tenant project it "
                          "protects: use password (or a federated one such as "
                          "v3oidcpassword)")


def _pack_workflow(kind: OperationKind):
    return Field(default_factory=lambda: workbooks.workflow_name(kind))


class WorkflowsConfig(_Strict):
    """The Mistral workflow each operation starts: by default the pack's workflow of the
    operation's name, in the installed version of its runbooks."""

    protect: str = _pack_workflow(OperationKind.PROTECT)
    unprotect: str = _pack_workflow(OperationKind.UNPROTECT)
    test_failover: str = _pack_workflow(OperationKind.TEST_FAILOVER)
    test_cleanup: str = _pack_workflow(OperationKind.TEST_CLEANUP)
    failover: str = _pack_workflow(OperationKind.FAILOVER)
    failback: str = _pack_workflow(OperationKind.FAILBACK)
    site_failover: str = _pack_workflow(OperationKind.SITE_FAILOVER)
    peer_step: str = _pack_workflow(OperationKind.PEER_STEP)
    fence: str = _pack_workflow(OperationKind.FENCE)
    reprotect: str = _pack_workflow(OperationKind.REPROTECT)

    def of(self, kind: OperationKind) -> str:
        return getattr(self, OperationKind(kind).value)


class TlsConfig(_Strict):
    """The service's own certificate and key (PEM files; one file may hold both). None:
    plain HTTP, for a TLS-terminating proxy in front (docs/guides/01-deploy.md)."""

    cert_file: Path
    key_file: Path


class ArrayConfig(_Strict):
    """One FlashArray: its Purity name, which site it serves, how to reach it, and the
    Cinder backend that holds its volumes (``host@backend#pool``, for "manage existing").
    Only this site's array has an API token here: what the site needs of the peer's
    array, the peer's service does with its own."""

    name: str = Field(min_length=1, max_length=63)
    site: str
    address: str
    token_file: Path | None = None
    ca_file: Path | None = None          # none: the system's CA bundle
    cinder_host: str = Field(pattern=r"^[^@#\s]+@[^@#\s]+(#[^@#\s]+)?$")
    connect_timeout: float = Field(5.0, gt=0, le=60)
    read_timeout: float = Field(60.0, gt=0, le=600)
    # 2: REST 2.x through py-pure-client (Purity 6.1 and later, Cinder's Pure driver since
    # 2024.2); 1: REST 1.x through the purestorage SDK, for older Purity.
    rest_version: Literal[1, 2] = 2


class EngineConfig(_Strict):
    """How the DR workflows' actions wait for what they start (seconds)."""

    api_timeout: float = Field(60.0, gt=0, le=600)        # one OpenStack API call
    volume_timeout: float = Field(600.0, gt=0)            # manage/unmanage to settle
    stack_timeout: float = Field(3600.0, gt=0)            # a recovery stack to build
    replicate_timeout: float = Field(900.0, gt=0)         # a planned failover's last copy
    poll_interval: float = Field(1.0, gt=0, le=60)
    concurrency: int = Field(10, ge=1, le=100)            # groups one operation runs at once
    # How often the engine asks this site's array for the newest recovery point of each
    # group replicating here, to judge it against the group's RPO target.
    replication_check_interval: float = Field(60.0, ge=1, le=3600)
    # How often the engine checks that each group replicating here would recover
    # (webhook/readiness.py: mappings, addresses, flavors, the stack, replication, drill).
    readiness_interval: float = Field(900.0, ge=10, le=86400)
    # How often the engine makes this site's Mistral cron triggers match the drill
    # schedules of the groups it drills (a schedule set or changed takes effect then).
    drill_schedule_interval: float = Field(60.0, ge=1, le=3600)
    # When the groups this site runs are captured again (a Mistral cron trigger; cron
    # syntax, UTC), so the DR site can rebuild what runs now.
    capture_schedule: str = Field("*/30 * * * *", pattern=r"^\S+( \S+){4}$")
    # The Cinder group type of each protection group's Cinder group, in the tenant's
    # project on the site the group runs on (its members' volumes, or after a failover its
    # copies). An admin creates it once per site, a consistency group type: group spec
    # consistent_group_snapshot_enabled='<is> True' (protect refuses one without). Cinder's
    # Pure driver then keeps a local pgroup of its own per group, beside the storage
    # layer's pgroup or pod, which alone replicates.
    cinder_group_type: str = Field("site-recovery", min_length=1, max_length=255)
    # What the product removes from an array is destroyed, and eradicated by the array
    # when its eradication window ends: a mistaken (or malicious) cleanup can be undone
    # until then. True: a drill's copies are eradicated at once (they hold nothing that
    # is not still replicated), to free the array's space.
    eradicate_drill_copies: bool = False

    @model_validator(mode="after")
    def _waits_end_before_the_backstop(self):
        """A step may wait for a stack, for volumes and for a replication in a row; their
        own timeouts must fire before Mistral's backstop for the step, so that a step
        that waits too long ends saying what it waited for."""
        waits = self.stack_timeout + self.volume_timeout + self.replicate_timeout
        if waits + 10 * self.api_timeout > STEP_TIMEOUT:
            raise ValueError(f"stack_timeout + volume_timeout + replicate_timeout ({waits:g} "
                             f"s) and ten API calls ({10 * self.api_timeout:g} s) must end "
                             f"within a step's {STEP_TIMEOUT} s")
        return self


class AlertRule(_Strict):
    name: str = Field(min_length=1)
    match: dict[str, str] = Field(min_length=1)      # alert labels that must all be equal
    operation: Literal[OperationKind.TEST_FAILOVER.value, OperationKind.FAILOVER.value,
                       OperationKind.SITE_FAILOVER.value]
    selector: dict[str, str] = Field(default_factory=dict)   # which groups (labels -> PG fields)
    mode: Literal["record", "dry_run", "execute"] = "record"
    min_firing_seconds: int = Field(0, ge=0)

    @field_validator("selector")
    @classmethod
    def _known_fields(cls, selector: dict[str, str]) -> dict[str, str]:
        unknown = set(selector) - set(SELECTABLE)
        if unknown:
            raise ValueError(f"selector fields {sorted(unknown)} unknown; use "
                             f"{', '.join(SELECTABLE)}")
        return selector


# Protection-group fields an alert rule's selector may match (a value "$label" takes the
# alert's label). A project is named by domain and name: a selector that names a project
# but no domain means the Default domain, as the API does.
SELECTABLE = ("name", "project_name", "project_domain", "replication_type", "volume_type",
              "primary_site", "secondary_site")


class MonitoringConfig(_Strict):
    shared_secret_file: Path | None = None
    hmac_secret_file: Path | None = None
    rules: list[AlertRule] = Field(default_factory=list)
    # A signed delivery older than this (its X-Signature-Timestamp) is a replay: refused.
    max_delivery_age_seconds: int = Field(300, ge=10, le=3600)
    # An alert that began longer ago than this starts nothing: so late, a person decides.
    max_alert_age_seconds: int = Field(3600, ge=60, le=7 * 86400)

    def secrets(self) -> tuple[str | None, str | None]:
        """The shared secret and the HMAC key, read from their files."""
        return tuple(_read_secret(path, f"monitoring.{name}") if path else None
                     for name, path in (("shared_secret_file", self.shared_secret_file),
                                        ("hmac_secret_file", self.hmac_secret_file)))

    @model_validator(mode="after")
    def _one_guard(self):
        if self.rules and not (self.shared_secret_file or self.hmac_secret_file):
            raise ValueError("alert rules need shared_secret_file or hmac_secret_file")
        return self


class CoordinationConfig(_Strict):
    """Where the site's engines agree which of them runs the background duties: a tooz
    backend URL (``redis://host:6379``, ``etcd3+http://…``, ``zookeeper://…``). None: the
    service's database (PostgreSQL or MySQL locks; SQLite: a file lock, one host)."""

    backend_url: str | None = Field(None, min_length=1)


class LoggingConfig(_Strict):
    """The services' logs, as oslo.log writes them (one format across OpenStack):
    ``file`` (none: standard error, for the journal), ``debug``, or a Python logging
    configuration file that replaces both (oslo.log's ``log_config_append``)."""

    file: Path | None = None
    debug: bool = False
    config_file: Path | None = None
    format: Literal["text", "json"] = "text"     # json: an object a line, for shippers


class ServiceConfig(_Strict):
    site: str = Field(min_length=1, max_length=64)
    peer: PeerConfig
    database_url: str = DEFAULT_DATABASE
    keystone: KeystoneConfig
    internal: InternalConfig = InternalConfig()
    mistral: MistralConfig = MistralConfig()
    workflows: WorkflowsConfig = Field(default_factory=WorkflowsConfig)
    clouds: CloudsConfig
    arrays: list[ArrayConfig] = Field(default_factory=list)
    engine: EngineConfig = EngineConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    max_body_bytes: int = Field(1 << 20, ge=1024)
    bind: str = Field("127.0.0.1:9090", pattern=r"^[^\s:]+:\d{1,5}$")
    tls: TlsConfig | None = None
    workers: int = Field(2, ge=1, le=64)
    threads: int = Field(16, ge=1, le=256)           # per worker; most of a request is I/O
    policy_file: Path | None = None
    coordination: CoordinationConfig = CoordinationConfig()
    # While this file exists, /healthcheck answers 503: a load balancer drains this host.
    healthcheck_disable_file: Path | None = None
    logging: LoggingConfig = LoggingConfig()

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if value.split(":", 1)[0].split("+", 1)[0] not in ("sqlite", "postgresql", "mysql"):
            raise ValueError("database_url must be sqlite, postgresql or mysql")
        return value

    @model_validator(mode="after")
    def _distinct_sites(self):
        if self.peer.name == self.site:
            raise ValueError(f"peer.name must differ from site ({self.site})")
        return self

    @model_validator(mode="after")
    def _arrays_of_this_pair(self):
        strangers = [a.name for a in self.arrays if a.site not in (self.site, self.peer.name)]
        if strangers:
            raise ValueError(f"arrays {strangers} serve a site other than {self.site} and "
                             f"{self.peer.name}")
        for array in self.arrays:
            if array.site == self.site and array.token_file is None:
                raise ValueError(f"arrays: {array.name} is this site's array and needs its "
                                 "token_file")
            if array.site != self.site and array.token_file is not None:
                raise ValueError(f"arrays: {array.name} is {array.site}'s array: its API "
                                 f"token belongs on {array.site} alone; leave token_file out "
                                 f"(what this site needs of it, {array.site}'s service does)")
        return self

    def service_account(self, **options) -> CloudRegion:
        """This service's own account on this site's Keystone: the clouds.yaml entry
        ``keystone.cloud`` names, else ``keystone``'s auth_url, username and
        password_file (public endpoints). ``options`` as for :func:`cloud_region`."""
        keystone = self.keystone
        if keystone.cloud:
            return cloud_region(self.clouds.file, keystone.cloud, "keystone.cloud", **options)
        return OpenStackConfig(load_yaml_config=False, load_envvars=False).get_one(
            auth_type="v3password", auth={
                "auth_url": str(keystone.auth_url), "username": keystone.username,
                "password": keystone.password().get_secret_value(),
                "project_name": keystone.project_name,
                "user_domain_name": keystone.user_domain_name,
                "project_domain_name": keystone.project_domain_name},
            region_name=keystone.region_name, interface="public",
            **({"cacert": str(keystone.ca_file)} if keystone.ca_file else {}), **options)

    @cached_property
    def peer_verify(self) -> str | bool:
        """How the peer's service is verified: ``peer.ca_file``, else the CA bundle of the
        clouds.yaml entry for the peer's cloud, else the system's (read once)."""
        return str(self.peer.ca_file) if self.peer.ca_file else self.clouds.verify("peer")

    @property
    def sites(self) -> tuple[str, str]:
        return (self.site, self.peer.name)

    def array_of(self, site: str) -> ArrayConfig:
        """The array that holds ``site``'s protected volumes."""
        for array in self.arrays:
            if array.site == site:
                return array
        raise ConfigError(f"arrays: no array is configured for site {site}")


def _read_secret(path: Path, setting: str) -> str:
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{setting}: {path} is empty")
    return value


CONFIG_ENV = "SITE_RECOVERY_CONFIG"
DEFAULT_CONFIG = "/etc/site-recovery/protector.yaml"


def load(path: str | Path) -> ServiceConfig:
    """Read and check the configuration file."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration {path} is not valid YAML: {exc}") from None
    return parse(data, source=str(path))


def parse(data: object, source: str = "configuration") -> ServiceConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of settings")
    try:
        config = ServiceConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'configuration'}: {error['msg']}"
            for error in exc.errors(include_input=False))
        raise ConfigError(f"{source}: {problems}") from None
    for which in ("local", "peer"):
        config.clouds.region(which)
    if config.keystone.cloud:
        config = _with_keystone_url(config, config.service_account())
    config.monitoring.secrets()
    return config


def _with_keystone_url(config: ServiceConfig, account: CloudRegion) -> ServiceConfig:
    """``config`` with ``keystone.auth_url`` (what a 401 names) from the account's entry,
    unless given."""
    if config.keystone.auth_url:
        return config
    try:
        keystone = KeystoneConfig.model_validate({
            **config.keystone.model_dump(exclude_unset=True),
            "auth_url": account.config["auth"].get("auth_url")})
    except ValidationError:
        raise ConfigError(f"keystone.cloud: entry {config.keystone.cloud!r}: its auth_url "
                          "is not a URL") from None
    return config.model_copy(update={"keystone": keystone})
