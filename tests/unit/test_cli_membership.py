"""Members that follow replication, unprotect, and deleting a protected group, as a user
types them: what is sent, what is printed, and when the command fails."""

from __future__ import annotations

import pytest
from cliff.commandmanager import CommandManager
from osc_lib import exceptions

from site_recovery.cli import progress
from tests.unit.test_cli_client import OPERATION
from tests.unit.test_cli_commands import DONE, run, table

SERVER = "0b5c3f8e-8f3a-4c1e-9d52-1f1a2b3c4d5e"
MEMBER = {"id": "m-1", "server_id": SERVER, "server_name": "db-2", "position": 1,
          "captured_at": None}
PROTECT = {**OPERATION, "operation_type": "protect"}


@pytest.fixture
def fast_polls(monkeypatch):
    monkeypatch.setattr(progress, "POLL_INTERVAL", 0.01)


def test_unprotect_is_a_command_of_the_group():
    assert "protector protection-group unprotect" in \
        CommandManager("openstack.protector.v1").commands


def test_unprotect_posts_to_its_route_and_follows_it(client, service, fast_polls):
    unprotect = {**OPERATION, "operation_type": "unprotect"}
    service.reply("POST", "/v1/protection-groups/db/unprotect", 202, {"operation": unprotect})
    service.reply("GET", "/v1/operations/op-1", body={"operation": {**unprotect, **DONE}})
    result = run(client, "protector", "protection-group", "unprotect", "db", "--wait")
    assert (service.requests[0]["method"], service.requests[0]["path"]) == (
        "POST", "/v1/protection-groups/db/unprotect")
    assert "Idempotency-Key" in service.requests[0]["headers"]
    assert (result.code, table(result.out)["status"]) == (0, "completed")
    assert result.err.splitlines()[-2] == \
        "unprotect op-1: completed 100% (1/1 groups done, 0 failed)"


def test_a_member_added_to_a_protected_group_is_protected_and_followed(client, service,
                                                                       fast_polls):
    service.reply("POST", "/v1/protection-groups/db/members", 201,
                  {"member": MEMBER, "operation": PROTECT})
    service.reply("GET", "/v1/operations/op-1",
                  body={"operation": {**PROTECT, "status": "running", "progress": 50}})
    service.reply("GET", "/v1/operations/op-1", body={"operation": {**PROTECT, **DONE}})
    result = run(client, "protector", "member", "add", "db", SERVER, "--wait")
    assert (result.code, table(result.out)["server_name"]) == (0, "db-2")
    assert result.err.splitlines()[-2] == \
        "protect op-1: completed 100% (1/1 groups done, 0 failed)"


def test_without_wait_the_protect_is_named_and_a_failed_one_fails_the_command(
        client, service, fast_polls):
    service.reply("POST", "/v1/protection-groups/db/members", 201,
                  {"member": MEMBER, "operation": PROTECT})
    started = run(client, "protector", "member", "add", "db", SERVER)
    assert started.code == 0
    assert "openstack protector operation show op-1 --wait" in started.err

    service.reply("DELETE", f"/v1/protection-groups/db/members/{SERVER}", 202,
                  {"operation": PROTECT})
    service.reply("GET", "/v1/operations/op-1", body={"operation": {
        **PROTECT, "status": "failed", "failed_count": 1, "results": [
            {"protection_group": "db", "status": "failed", "step": "protect",
             "reason": "the link is down"}]}})
    removed = run(client, "protector", "member", "remove", "db", SERVER, "--wait")
    assert removed.code == 1
    assert "db: failed at protect: the link is down" in removed.err
    assert "openstack protector operation retry op-1" in removed.err


def test_a_protect_that_could_not_start_is_said_and_fails_the_command(client, service):
    service.reply("POST", "/v1/protection-groups/db/members", 201, {
        "member": MEMBER, "operation": None,
        "protect": "not started: Mistral is unreachable; ... protect db"})
    result = run(client, "protector", "member", "add", "db", SERVER)
    assert result.code == 1
    assert result.err == "Protect not started: Mistral is unreachable; ... protect db\n"


def test_a_member_of_an_unprotected_group_changes_alone(client, service):
    service.reply("POST", "/v1/protection-groups/db/members", 201, {"member": MEMBER})
    service.reply("DELETE", f"/v1/protection-groups/db/members/{SERVER}", 204)
    assert run(client, "protector", "member", "add", "db", SERVER).err == ""
    assert run(client, "protector", "member", "remove", "db", SERVER).code == 0


def test_delete_sends_force_only_when_asked(client, service):
    service.reply("DELETE", "/v1/protection-groups/db", 409, {"error": {
        "code": 409, "message": "protection group db is protected: ... unprotect it first: "
                               "openstack protector protection-group unprotect db"}})
    service.reply("DELETE", "/v1/protection-groups/db", 204)
    with pytest.raises(exceptions.CommandError, match="1 of 1 protection groups"):
        run(client, "protector", "protection-group", "delete", "db")
    run(client, "protector", "protection-group", "delete", "db", "--force")
    assert [r["query"] for r in service.requests] == [{}, {"force": "true"}]
