"""The policy as an operator reads and checks it with oslo.policy's own tools, run as
commands: the sample file, the effective policy, redundant overrides, a token checked.

Each command runs with HOME set to a directory of the test's, so the only policy file
found (``~/.site-recovery/policy.yaml``) is the one the test writes, if any."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from site_recovery.webhook import groups, internal, operations, sites
from site_recovery.webhook.identity import Caller
from site_recovery.webhook.policy import RULES, Policy

TOOLS = Path(sys.executable).parent     # the venv's, tox's too: where the entry points are
DEFAULTS = {
    "protector:read": "role:reader or role:member or role:admin",
    "protector:write": "role:member or role:admin",
    "protector:test_failover": "role:member or role:admin",
    "protector:failover": "role:member or role:admin",
    "protector:all_projects": "role:admin",
    "protector:site_failover": "role:dr_site_admin",
    "protector:workflow": "role:site_recovery_service",
    "protector:peer": "role:site_recovery_service",
}


def run(tool: str, *args: str, home: Path) -> str:
    done = subprocess.run([str(TOOLS / tool), *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "HOME": str(home)}, check=False)
    assert done.returncode == 0, f"{tool} failed:\n{done.stderr}"
    return done.stdout


def override(home: Path, text: str):
    """An operator's policy file where the service and the tools both find it."""
    (home / ".site-recovery").mkdir()
    (home / ".site-recovery" / "policy.yaml").write_text(text)


def sample_entries(sample: str) -> dict[str, tuple[str, str, list[str], str]]:
    """The sample file's entries by rule: check string, description (unwrapped),
    operations (``METHOD  path``) and intended scope."""
    entries = {}
    for block in sample.strip().split("\n\n"):
        *comments, rule_line = block.splitlines()
        name, check = re.fullmatch(r'#"([^"]+)": "([^"]*)"', rule_line).groups()
        ops = [c[2:] for c in comments if re.match(r"# (GET|POST|PUT|PATCH|DELETE)  /", c)]
        scope = next(c for c in comments if c.startswith("# Intended scope(s): "))
        description = " ".join(c[2:] for c in comments
                               if c[2:] not in ops and c != scope)
        entries[name] = (check, description, ops, scope.split(": ", 1)[1])
    return entries


def test_the_sample_policy_file_documents_every_rule(tmp_path):
    sample = run("oslopolicy-sample-generator", "--namespace", "site-recovery",
                 home=tmp_path)
    entries = sample_entries(sample)
    assert {name: entry[0] for name, entry in entries.items()} == DEFAULTS
    for rule in RULES:
        _, description, ops, scope = entries[rule.name]
        assert description == rule.description
        assert ops == [f"{op['method']}  {op['path']}" for op in rule.operations]
        assert scope == "project"
    assert "POST  /v1/protection-groups/{group}/failover" in entries["protector:failover"][2]
    assert "POST  /v1/sites/{name}/failover" in entries["protector:site_failover"][2]
    assert "GET  /v1/operations?all_projects=true" in entries["protector:all_projects"][2]


def _public_path(path: str) -> str:
    """A route with its placeholders blanked (``<ref>``, ``{group}``) and no query."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path.split("?", 1)[0])


def test_the_documented_operations_are_the_routes_that_check_a_rule():
    """Every route of the blueprints that check a rule is named under one, and nothing
    else is: a new route without its rule in the sample file fails here."""
    app = Flask(__name__)
    for blueprint in (sites.bp, groups.bp, internal.bp, operations.bp):
        app.register_blueprint(blueprint)
    served = {(method, _public_path(rule.rule)) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(op["method"], _public_path(op["path"])) for rule in RULES
                  for op in rule.operations}
    assert documented == served


def test_the_effective_policy_is_the_defaults_with_the_operators_overrides(tmp_path):
    override(tmp_path, '"protector:site_failover": "role:admin"\n'
                       f'"protector:read": "{DEFAULTS["protector:read"]}"\n')
    effective = run("oslopolicy-policy-generator", "--namespace", "site-recovery",
                    home=tmp_path)
    rules = dict(re.fullmatch(r'"([^"]+)": "([^"]*)"', line).groups()
                 for line in effective.splitlines() if line)
    assert rules == {**DEFAULTS, "protector:site_failover": "role:admin"}
    redundant = run("oslopolicy-list-redundant", "--namespace", "site-recovery",
                    home=tmp_path)
    assert redundant.splitlines() == [f'"protector:read": "{DEFAULTS["protector:read"]}"']


def test_the_service_applies_the_override_the_tools_show(tmp_path, monkeypatch):
    """With no ``policy_file`` configured the service reads the file the tools read."""
    override(tmp_path, '"protector:site_failover": "role:admin"\n')
    monkeypatch.setenv("HOME", str(tmp_path))
    admin = Caller("u1", "alice", "p1", "ecommerce", frozenset({"admin"}))
    assert Policy().allowed("protector:site_failover", admin)


def token(tmp_path: Path, role: str) -> Path:
    """A Keystone token body (``GET /v3/auth/tokens``), project-scoped, with one role."""
    path = tmp_path / f"{role}.json"
    path.write_text(json.dumps({"token": {
        "roles": [{"id": f"{role}-id", "name": role}],
        "user": {"id": "u1", "name": "alice", "domain": {"id": "default"}},
        "project": {"id": "p1", "name": "ecommerce", "domain": {"id": "default"}}}}))
    return path


@pytest.fixture
def effective_policy(tmp_path) -> Path:
    path = tmp_path / "policy.yaml"
    run("oslopolicy-policy-generator", "--namespace", "site-recovery",
        "--output-file", str(path), home=tmp_path)
    return path


def check(policy_file: Path, access: Path, *args: str) -> dict[str, str]:
    """``oslopolicy-checker``'s verdicts by rule."""
    out = run("oslopolicy-checker", "--policy", str(policy_file), "--access", str(access),
              *args, home=policy_file.parent)
    return {rule: verdict for verdict, rule in
            (line.split(": ", 1) for line in out.splitlines() if line)}


def test_a_members_token_may_fail_over_and_a_readers_may_not(tmp_path, effective_policy):
    member, reader = token(tmp_path, "member"), token(tmp_path, "reader")
    assert check(effective_policy, member, "--rule", "protector:failover") == {
        "protector:failover": "passed"}
    assert check(effective_policy, reader, "--rule", "protector:failover") == {
        "protector:failover": "failed"}
    assert check(effective_policy, member) == {
        rule: "passed" if "role:member" in default else "failed"
        for rule, default in DEFAULTS.items()}
