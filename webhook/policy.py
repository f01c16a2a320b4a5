"""Who may do what: oslo.policy rules, defined in code, overridable by a policy file.

Defaults follow the concept document: a project ``member`` manages its own protection
groups and runs drills and failovers on them; a ``reader`` reads; an ``admin`` may act
across projects; site-wide failover needs ``dr_site_admin``. Ownership is not a policy
question: another project's group is simply not found.

The internal endpoints (what the workflows read and report, what the peer site pushes)
need the dedicated ``site_recovery_service`` role *and* the configured account
(``internal`` in the configuration): every service account of a cloud holds the generic
``service`` role, and none of them is the DR engine or the peer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

from oslo_config import cfg
from oslo_policy import policy

from site_recovery.core.config import InternalConfig
from site_recovery.core.model import StrEnum

from .errors import Forbidden
from .identity import Caller
from .params import flag

SERVICE_ROLE = "site_recovery_service"
READER = "role:reader or role:member or role:admin"
MEMBER = "role:member or role:admin"


def _routes(*routes: str) -> list[dict[str, str]]:
    """oslo.policy's ``operations`` from routes written ``"METHOD /path"``, as
    docs/api.md names them."""
    return [dict(zip(("method", "path"), route.split(" ", 1), strict=True))
            for route in routes]


# The operations a rule guards: what the sample policy file shows under each rule. An
# operation's retry and cancel are its kind's rule's (``operations.RULE``).
RETRY_AND_CANCEL = ("POST /v1/operations/{id}/retry", "POST /v1/operations/{id}/cancel")
READ_ROUTES = (
    "GET /v1/sites", "GET /v1/sites/{name}",
    "GET /v1/protection-groups", "GET /v1/protection-groups/{group}",
    "GET /v1/protection-groups/{group}/members",
    "GET /v1/protection-groups/{group}/readiness",
    "POST /v1/protection-groups/{group}/readiness",
    "GET /v1/resource-mappings", "GET /v1/resource-mappings/{id}",
    "GET /v1/operations", "GET /v1/operations/{id}", "GET /v1/operations/{id}/report",
    "GET /v1/audit-log")
WRITE_ROUTES = (
    "POST /v1/protection-groups", "PATCH /v1/protection-groups/{group}",
    "DELETE /v1/protection-groups/{group}",
    "POST /v1/protection-groups/{group}/members",
    "DELETE /v1/protection-groups/{group}/members/{server_id}",
    "PATCH /v1/protection-groups/{group}/members/{server_id}",
    "POST /v1/protection-groups/{group}/protect",
    "POST /v1/protection-groups/{group}/unprotect",
    "POST /v1/resource-mappings", "PATCH /v1/resource-mappings/{id}",
    "DELETE /v1/resource-mappings/{id}", "POST /v1/resource-mappings/{id}/resolve",
    *RETRY_AND_CANCEL)
DRILL_ROUTES = ("POST /v1/protection-groups/{group}/test-failover",
                "POST /v1/protection-groups/{group}/test-cleanup", *RETRY_AND_CANCEL)
FAILOVER_ROUTES = ("POST /v1/protection-groups/{group}/failover",
                   "POST /v1/protection-groups/{group}/reprotect",
                   "POST /v1/protection-groups/{group}/failback",
                   "POST /v1/protection-groups/{group}/resolve", *RETRY_AND_CANCEL)
SITE_FAILOVER_ROUTES = ("POST /v1/sites/{name}/failover", *RETRY_AND_CANCEL)
# Every project-scoped route but these finds what it acts on in the caller's project, or,
# asked with ?all_projects=true by a caller that may, in every project.
NOT_BY_PROJECT = {"GET /v1/sites", "GET /v1/sites/{name}", "POST /v1/protection-groups"}
ALL_PROJECTS_ROUTES = tuple(
    f"{route}?all_projects=true"
    for route in dict.fromkeys(READ_ROUTES + WRITE_ROUTES + DRILL_ROUTES + FAILOVER_ROUTES)
    if route not in NOT_BY_PROJECT)
WORKFLOW_ROUTES = (
    "POST /v1/internal/executions/{execution_id}/progress",
    "GET /v1/internal/protection-groups", "GET /v1/internal/protection-groups/{id}",
    "PUT /v1/internal/protection-groups/{id}/capture",
    "PUT /v1/internal/protection-groups/{id}/state",
    "GET /v1/internal/resource-mappings", "GET /v1/internal/projects/{domain}/{name}",
    "POST /v1/internal/scheduled-drills/{execution_id}/operations",
    "GET /v1/internal/scheduled-drills/{execution_id}/operations/{id}",
    "POST /v1/internal/scheduled-drills/{execution_id}/operations/{id}/verification",
    "POST /v1/internal/scheduled-drills/{execution_id}/outcome")
PEER_ROUTES = (
    "GET /v1/internal/protection-groups", "PUT /v1/internal/protection-groups/{id}",
    "DELETE /v1/internal/protection-groups/{id}",
    "GET /v1/internal/protection-groups/{id}/copies",
    "GET /v1/internal/resource-mappings", "PUT /v1/internal/resource-mappings/{id}",
    "DELETE /v1/internal/resource-mappings/{id}",
    "GET /v1/internal/references", "POST /v1/internal/busy", "POST /v1/internal/divergences",
    "POST /v1/internal/forward", "POST /v1/internal/peer-steps",
    "GET /v1/internal/operations/{id}")

# Each description also ends a refusal: "<caller> may not <description>".
RULES = [
    policy.DocumentedRuleDefault(
        "protector:read", READER,
        "List and show protection groups, their members, resource mappings, operations, "
        "sites and the audit log", _routes(*READ_ROUTES), scope_types=["project"]),
    policy.DocumentedRuleDefault(
        "protector:write", MEMBER,
        "Create, change, protect, unprotect and delete protection groups, their members "
        "and resource mappings, and retry or cancel a protect or an unprotect",
        _routes(*WRITE_ROUTES), scope_types=["project"]),
    policy.DocumentedRuleDefault(
        "protector:test_failover", MEMBER,
        "Run and clean up a DR drill, and retry or cancel one", _routes(*DRILL_ROUTES),
        scope_types=["project"]),
    policy.DocumentedRuleDefault(
        "protector:failover", MEMBER,
        "Fail a group over, reprotect it, fail it back or keep one copy of a diverged "
        "group, and retry or cancel such an operation", _routes(*FAILOVER_ROUTES),
        scope_types=["project"]),
    policy.DocumentedRuleDefault(
        "protector:all_projects", "role:admin",
        "Act on every project's groups, mappings, operations and audit entries "
        "(?all_projects=true; asked by anyone else, it means the caller's own project)",
        _routes(*ALL_PROJECTS_ROUTES), scope_types=["project"]),
    policy.DocumentedRuleDefault(
        "protector:site_failover", "role:dr_site_admin",
        "Fail every group of a site over, and retry or cancel that",
        _routes(*SITE_FAILOVER_ROUTES), scope_types=["project"]),
    policy.DocumentedRuleDefault(
        "protector:workflow", f"role:{SERVICE_ROLE}",
        "Report the DR workflows' progress and read and record what they rebuild (the "
        "configured workflows account only: internal.workflows)",
        _routes(*WORKFLOW_ROUTES), scope_types=["project"]),
    policy.DocumentedRuleDefault(
        "protector:peer", f"role:{SERVICE_ROLE}",
        "Push, forward and read protection-group metadata from the peer site and ask its "
        "steps of this site (the configured peer account only: internal.peer)",
        _routes(*PEER_ROUTES), scope_types=["project"]),
]


def list_rules() -> list[policy.DocumentedRuleDefault]:
    """The defaults, for the ``oslo.policy.policies`` entry point: what
    ``oslopolicy-sample-generator --namespace site-recovery`` prints."""
    return RULES


def get_enforcer() -> policy.Enforcer:
    """For the ``oslo.policy.enforcer`` entry point (``oslopolicy-policy-generator``,
    ``oslopolicy-list-redundant``): the enforcer of a service whose configuration names no
    ``policy_file``, so the tools read the overrides it reads."""
    return _enforcer(None)


def _enforcer(policy_file: Path | None) -> policy.Enforcer:
    """The defaults, overridden by ``policy_file``, or when None by the ``policy.yaml``
    oslo.policy finds itself (in ``~/.site-recovery/``, ``~/``, ``/etc/site-recovery/``,
    ``/etc/``). No command line and no oslo configuration file: the service's own
    configuration says the rest."""
    conf = cfg.ConfigOpts()
    conf([], project="site-recovery", default_config_files=[], default_config_dirs=[])
    enforcer = policy.Enforcer(conf, policy_file=str(policy_file) if policy_file else None)
    enforcer.register_defaults(RULES)
    return enforcer


def _searched_once(enforcer: policy.Enforcer) -> policy.Enforcer:
    """``enforcer``, its rules loaded, where oslo.policy searches its places for a policy
    file and a ``policy.d`` on every check (a stat of each place each time, which a
    loaded service pays on every request). A file or directory found now is still read
    again when it changes; one created later is read from the next start."""
    conf = enforcer.conf
    dirs = [found for path in conf.oslo_policy.policy_dirs if (found := conf.find_file(path))]
    conf.set_override("policy_dirs", dirs, group="oslo_policy")
    enforcer.load_rules()
    if not enforcer.policy_path and not dirs:
        enforcer.use_conf = False                # the defaults alone: nothing to watch
    return enforcer


class InternalCaller(StrEnum):
    """Who calls ``/v1/internal``; each is one configured account."""

    WORKFLOWS = "workflow"
    PEER = "peer"

    @property
    def rule(self) -> str:
        return f"protector:{self.value}"

    @property
    def described(self) -> str:
        return ("this site's DR workflows" if self is InternalCaller.WORKFLOWS
                else "the peer site's protection service")


class Policy:
    def __init__(self, policy_file: Path | None = None,
                 internal: InternalConfig | None = None,
                 own_account: Callable[[], tuple[str, str]] | None = None):
        """``own_account``: this service's user and project ids, asked once, when an
        internal caller is first checked against an account the configuration leaves to
        it."""
        self._enforcer = _searched_once(_enforcer(policy_file))
        self._internal = internal or InternalConfig()
        self._own_account = cache(own_account) if own_account else None

    def allowed(self, rule: str, caller: Caller) -> bool:
        credentials = {"roles": sorted(caller.roles), "project_id": caller.project_id,
                       "user_id": caller.user_id}
        return self._enforcer.enforce(rule, {}, credentials)

    def all_projects(self, caller: Caller) -> bool:
        """Whether the request reaches every project: it asks (``?all_projects=true``)
        and the caller may. Asked by another caller, it means the projects that caller
        sees, its own (as the concept document's tenant types it), never a refusal."""
        return flag("all_projects") and self.allowed("protector:all_projects", caller)

    def require(self, rule: str, caller: Caller):
        if not self.allowed(rule, caller):
            raise Forbidden(f"{caller.user_name or caller.user_id} (roles: "
                            f"{', '.join(sorted(caller.roles)) or 'none'}) may not "
                            f"{RULE_TEXT[rule]}", rule=rule)


    def require_internal(self, caller: Caller, *allowed: InternalCaller) -> InternalCaller:
        """The internal caller ``caller`` is, among ``allowed``: its role and its account
        must both match; anyone else is refused, named."""
        for which in allowed:
            if self.allowed(which.rule, caller) and \
                    (caller.user_id, caller.project_id) == self._account(which):
                return which
        raise Forbidden(f"{caller.user_name or caller.user_id} (project "
                        f"{caller.project_name or caller.project_id}, roles: "
                        f"{', '.join(sorted(caller.roles)) or 'none'}) is not "
                        f"{' or '.join(w.described for w in allowed)}",
                        rule=allowed[0].rule)

    def _account(self, which: InternalCaller) -> tuple[str, str] | None:
        configured = getattr(self._internal, "workflows" if which is InternalCaller.WORKFLOWS
                             else "peer")
        if configured is not None:
            return configured.user_id, configured.project_id
        return self._own_account() if self._own_account else None


RULE_TEXT = {r.name: r.description[0].lower() + r.description[1:] for r in RULES}
