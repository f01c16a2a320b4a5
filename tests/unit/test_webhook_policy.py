"""The role matrix of the concept document, and an operator's policy file override."""

from __future__ import annotations

import pytest

from site_recovery.webhook.errors import Forbidden
from site_recovery.webhook.identity import Caller
from site_recovery.webhook.policy import Policy


def who(*roles):
    return Caller("u1", "alice", "p1", "ecommerce", frozenset(roles))


MATRIX = {   # rule -> roles allowed (of reader, member, admin, dr_site_admin, service)
    "protector:read": {"reader", "member", "admin"},
    "protector:write": {"member", "admin"},
    "protector:test_failover": {"member", "admin"},
    "protector:failover": {"member", "admin"},
    "protector:all_projects": {"admin"},
    "protector:site_failover": {"dr_site_admin"},
    "protector:internal": {"service"},
}


@pytest.mark.parametrize("rule", sorted(MATRIX))
@pytest.mark.parametrize("role", ["reader", "member", "admin", "dr_site_admin", "service"])
def test_the_default_role_matrix(rule, role):
    assert Policy().allowed(rule, who(role)) is (role in MATRIX[rule])


def test_a_refusal_names_the_caller_the_roles_and_the_action():
    with pytest.raises(Forbidden, match=r"alice \(roles: reader\) may not fail every group"):
        Policy().require("protector:site_failover", who("reader"))


def test_an_operator_policy_file_overrides_a_default(tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"protector:site_failover": "role:admin"\n')
    policy = Policy(policy_file)
    assert policy.allowed("protector:site_failover", who("admin"))
    assert not policy.allowed("protector:site_failover", who("dr_site_admin"))
