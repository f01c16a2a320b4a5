"""The role matrix of the concept document, and an operator's policy file override."""

from __future__ import annotations

import os
import time

import pytest

from site_recovery.core.config import InternalConfig
from site_recovery.webhook.errors import Forbidden
from site_recovery.webhook.identity import Caller
from site_recovery.webhook.policy import InternalCaller, Policy

WORKFLOWS, PEER = InternalCaller.WORKFLOWS, InternalCaller.PEER


def who(*roles, user="u1", project="p1"):
    return Caller(user, "alice", project, "ecommerce", frozenset(roles))


ROLES = ["reader", "member", "admin", "dr_site_admin", "service", "site_recovery_service"]
MATRIX = {   # rule -> roles allowed
    "protector:read": {"reader", "member", "admin"},
    "protector:write": {"member", "admin"},
    "protector:test_failover": {"member", "admin"},
    "protector:failover": {"member", "admin"},
    "protector:all_projects": {"admin"},
    "protector:site_failover": {"dr_site_admin"},
    "protector:workflow": {"site_recovery_service"},
    "protector:peer": {"site_recovery_service"},
}


@pytest.mark.parametrize("rule", sorted(MATRIX))
@pytest.mark.parametrize("role", ROLES)
def test_the_default_role_matrix(rule, role):
    assert Policy().allowed(rule, who(role)) is (role in MATRIX[rule])


def pinned(**accounts):
    """A policy whose internal callers are configured accounts; unconfigured ones are
    the service's own (user sr, project svc)."""
    return Policy(internal=InternalConfig.model_validate(accounts),
                  own_account=lambda: ("sr", "svc"))


@pytest.mark.parametrize("role", ROLES)
def test_no_role_but_the_dedicated_one_makes_an_account_internal(role):
    """nova's, cinder's or heat's account has ``service`` (and often ``admin``): none of
    them is the DR engine or the peer, even signed in to the service's own project."""
    caller = who(role, user="sr", project="svc")
    if role == "site_recovery_service":
        assert pinned().require_internal(caller, WORKFLOWS) is WORKFLOWS
        return
    with pytest.raises(Forbidden, match="is not this site's DR workflows"):
        pinned().require_internal(caller, WORKFLOWS)


def test_the_dedicated_role_on_another_account_is_refused_and_each_caller_is_its_own():
    policy = pinned(peer={"user_id": "peer-user", "project_id": "svc"})
    role = "site_recovery_service"
    with pytest.raises(Forbidden, match="the peer site's protection service"):
        policy.require_internal(who(role, user="heat", project="svc"), PEER)
    with pytest.raises(Forbidden):
        policy.require_internal(who(role, user="sr", project="svc"), PEER)
    with pytest.raises(Forbidden):       # the right user, scoped to another project
        policy.require_internal(who(role, user="peer-user", project="p1"), PEER)
    assert policy.require_internal(who(role, user="peer-user", project="svc"),
                                   WORKFLOWS, PEER) is PEER
    with pytest.raises(Forbidden):       # the peer is not the workflows
        policy.require_internal(who(role, user="peer-user", project="svc"), WORKFLOWS)


def test_a_refusal_names_the_caller_the_roles_and_the_action():
    with pytest.raises(Forbidden, match=r"alice \(roles: reader\) may not fail every group"):
        Policy().require("protector:site_failover", who("reader"))


def test_an_operator_policy_file_overrides_a_default(tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"protector:site_failover": "role:admin"\n')
    policy = Policy(policy_file)
    assert policy.allowed("protector:site_failover", who("admin"))
    assert not policy.allowed("protector:site_failover", who("dr_site_admin"))


def test_a_changed_policy_file_applies_without_a_restart(tmp_path):
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"protector:site_failover": "role:admin"\n')
    policy = Policy(policy_file)
    assert not policy.allowed("protector:site_failover", who("dr_site_admin"))
    policy_file.write_text('"protector:site_failover": "role:dr_site_admin"\n')
    os.utime(policy_file, (time.time() + 5, time.time() + 5))   # a later modification
    assert policy.allowed("protector:site_failover", who("dr_site_admin"))
    assert not policy.allowed("protector:site_failover", who("admin"))


def test_overrides_in_a_policy_d_beside_the_service_apply(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    overrides = tmp_path / ".site-recovery" / "policy.d"
    overrides.mkdir(parents=True)
    (overrides / "site-failover.yaml").write_text('"protector:site_failover": "role:admin"\n')
    policy = Policy()
    assert policy.allowed("protector:site_failover", who("admin"))
    assert not policy.allowed("protector:site_failover", who("dr_site_admin"))
