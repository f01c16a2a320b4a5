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
from enum import StrEnum
from functools import cache
from pathlib import Path

from oslo_config import cfg
from oslo_policy import policy

from site_recovery.core.config import InternalConfig

from .errors import Forbidden
from .identity import Caller
from .params import flag

SERVICE_ROLE = "site_recovery_service"
READER = "role:reader or role:member or role:admin"
MEMBER = "role:member or role:admin"

RULES = [
    policy.RuleDefault("protector:read", READER, "List and show groups, mappings, operations"),
    policy.RuleDefault("protector:write", MEMBER,
                       "Create, change, protect and delete groups and mappings"),
    policy.RuleDefault("protector:test_failover", MEMBER, "Run and clean up a DR drill"),
    policy.RuleDefault("protector:failover", MEMBER, "Fail a group over, reprotect it, or "
                       "fail it back"),
    policy.RuleDefault("protector:all_projects", "role:admin", "Act on every project's groups"),
    policy.RuleDefault("protector:site_failover", "role:dr_site_admin",
                       "Fail every group of a site over"),
    policy.RuleDefault("protector:workflow", f"role:{SERVICE_ROLE}",
                       "Report the DR workflows' progress and read what they rebuild"),
    policy.RuleDefault("protector:peer", f"role:{SERVICE_ROLE}",
                       "Push and forward protection-group metadata from the peer site"),
]


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
        conf = cfg.ConfigOpts()
        conf([], project="site-recovery", default_config_files=[], default_config_dirs=[])
        self._enforcer = policy.Enforcer(conf, policy_file=str(policy_file) if policy_file
                                         else None)
        self._enforcer.register_defaults(RULES)
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
