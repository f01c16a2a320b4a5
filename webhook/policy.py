"""Who may do what: oslo.policy rules, defined in code, overridable by a policy file.

Defaults follow the concept document: a project ``member`` manages its own protection
groups and runs drills and failovers on them; a ``reader`` reads; an ``admin`` may act
across projects; site-wide failover needs ``dr_site_admin``; the internal endpoints
(progress from workflows, sync from the peer site) need the ``service`` role. Ownership
is not a policy question: another project's group is simply not found.
"""

from __future__ import annotations

from pathlib import Path

from oslo_config import cfg
from oslo_policy import policy

from .errors import Forbidden
from .identity import Caller
from .params import flag

READER = "role:reader or role:member or role:admin"
MEMBER = "role:member or role:admin"

RULES = [
    policy.RuleDefault("protector:read", READER, "List and show groups, mappings, operations"),
    policy.RuleDefault("protector:write", MEMBER,
                       "Create, change, protect and delete groups and mappings"),
    policy.RuleDefault("protector:test_failover", MEMBER, "Run and clean up a DR drill"),
    policy.RuleDefault("protector:failover", MEMBER, "Fail a group over, or back"),
    policy.RuleDefault("protector:all_projects", "role:admin", "Act on every project's groups"),
    policy.RuleDefault("protector:site_failover", "role:dr_site_admin",
                       "Fail every group of a site over"),
    policy.RuleDefault("protector:internal", "role:service",
                       "Progress reports from workflows, metadata sync from the peer site"),
]


class Policy:
    def __init__(self, policy_file: Path | None = None):
        conf = cfg.ConfigOpts()
        conf([], project="site-recovery", default_config_files=[], default_config_dirs=[])
        self._enforcer = policy.Enforcer(conf, policy_file=str(policy_file) if policy_file
                                         else None)
        self._enforcer.register_defaults(RULES)

    def allowed(self, rule: str, caller: Caller) -> bool:
        credentials = {"roles": sorted(caller.roles), "project_id": caller.project_id,
                       "user_id": caller.user_id}
        return self._enforcer.enforce(rule, {}, credentials)

    def all_projects(self, caller: Caller) -> bool:
        """Whether the request asks for every project (``?all_projects=true``); only
        those allowed may ask."""
        if not flag("all_projects"):
            return False
        self.require("protector:all_projects", caller)
        return True

    def require(self, rule: str, caller: Caller):
        if not self.allowed(rule, caller):
            raise Forbidden(f"{caller.user_name or caller.user_id} (roles: "
                            f"{', '.join(sorted(caller.roles)) or 'none'}) may not "
                            f"{RULE_TEXT[rule]}", rule=rule)


RULE_TEXT = {r.name: r.description[0].lower() + r.description[1:] for r in RULES}
