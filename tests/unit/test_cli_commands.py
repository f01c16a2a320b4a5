"""The ``openstack protector`` / ``openstack dr`` commands as a user types them: how cliff
finds them, how their options parse, and what they print, over a scripted service."""

from __future__ import annotations

import io
import json
import logging
from types import SimpleNamespace

import pytest
import yaml
from cliff.commandmanager import CommandManager
from osc_lib import exceptions

from site_recovery.cli import progress
from tests.unit.test_cli_client import OPERATION

GROUP = {"id": "pg-1", "name": "prod-ecommerce-db", "description": "", "project_name":
         "ecommerce", "replication_type": "sync", "primary_site": "site-a",
         "secondary_site": "site-b", "volume_type": "replicated-ssd",
         "rpo_target_seconds": None, "status": "active", "version": 1, "member_count": 0,
         "created_at": "2025-01-01T00:00:00", "updated_at": "2025-01-01T00:00:00",
         "last_recovery_point": None, "ready": None}
SITE_FAILOVER = {**OPERATION, "id": "op-9", "operation_type": "site_failover",
                 "scope": "site", "protection_group": None, "site": "cluster1",
                 "total_protection_groups": 5, "failover_type": "unplanned", "force": True,
                 "params": {"failover_type": "unplanned"}}


def run(client, *argv: str, stderr=None):
    """What ``openstack <argv>`` does once osc has authenticated: find, parse, run."""
    manager = CommandManager("openstack.protector.v1")
    factory, name, args = manager.find_command(list(argv))
    app = SimpleNamespace(client_manager=SimpleNamespace(protector=client), stdout=io.StringIO(),
                          stderr=stderr or io.StringIO(), command_manager=manager)
    command = factory(app, None, cmd_name=name)
    parsed = command.get_parser(f"openstack {name}").parse_args(args)
    code = command.run(parsed)
    return SimpleNamespace(name=name, code=code, out=app.stdout.getvalue(),
                           err=app.stderr.getvalue())


def table(out: str) -> dict[str, str]:
    """A ShowOne table as field -> value (multi-line values joined by newlines)."""
    fields: dict[str, str] = {}
    last = None
    for line in out.splitlines():
        if not line.startswith("|") or line.startswith("| Field "):
            continue
        field, value = (cell.strip() for cell in line.strip("|").split("|"))
        if field:
            fields[field], last = value, field
        else:
            fields[last] += "\n" + value
    return fields


def test_every_command_of_the_concept_document_is_registered():
    names = set(CommandManager("openstack.protector.v1").commands)
    assert {"dr test failover", "dr test failover cleanup", "dr failover", "dr failback",
            "dr site failover", "dr operation show", "dr operation list", "dr operation retry",
            "dr operation cancel", "dr operation report",
            "protector protection-group create", "protector protection-group list",
            "protector protection-group show", "protector protection-group set",
            "protector protection-group delete", "protector protection-group protect",
            "protector protection-group readiness",
            "protector member add",
            "protector member list", "protector member remove", "protector mapping create",
            "protector mapping list", "protector mapping show", "protector mapping set",
            "protector mapping delete", "protector site list", "protector site show",
            "protector operation list", "protector operation show",
            "protector audit list"} <= names


def test_drill_and_its_cleanup_are_told_apart(client, service):
    service.reply("POST", "/v1/protection-groups/prod-ecommerce-db/test-cleanup", 202,
                  {"operation": {**OPERATION, "operation_type": "test_cleanup"}})
    service.reply("POST", "/v1/protection-groups/prod-ecommerce-db/test-failover", 202,
                  {"operation": OPERATION})
    service.reply("POST", "/v1/protection-groups/cleanup/test-failover", 202,
                  {"operation": OPERATION})
    assert run(client, "dr", "test", "failover", "cleanup", "prod-ecommerce-db").name == \
        "dr test failover cleanup"
    assert run(client, "dr", "test", "failover", "prod-ecommerce-db", "--no-wait").name == \
        "dr test failover"
    # a group named "cleanup" is drilled after "--"
    assert run(client, "dr", "test", "failover", "--no-wait", "--",
               "cleanup").name == "dr test failover"
    assert [r["path"].rsplit("/", 2)[1:] for r in service.requests] == [
        ["prod-ecommerce-db", "test-cleanup"], ["prod-ecommerce-db", "test-failover"],
        ["cleanup", "test-failover"]]


def test_drill_as_the_concept_document_types_it(client, service, fast_polls):
    """The concept document's command, verbatim: it follows the drill and prints the
    three lines the document shows, on stdout."""
    service.reply("POST", "/v1/protection-groups/prod-ecommerce-db/test-failover", 202,
                  {"operation": OPERATION})
    service.reply("GET", "/v1/operations/op-1", body={"operation": {
        **OPERATION, **DONE, "results": [{**DONE["results"][0], "details": CHECKED}]}})
    result = run(client, "dr", "test", "failover", "prod-ecommerce-db",
                 "--network-mapping", "<prod-net-id>=<dr-test-net-id>", "--all-projects")
    request = service.requests[0]
    assert request["json"] == {"network_mapping": {"<prod-net-id>": "<dr-test-net-id>"}}
    assert request["query"] == {"all_projects": "true"}
    assert result.code == 0
    assert result.out.splitlines() == ["Status: completed",
                                       "Test VMs created with prefix: test-",
                                       "Production replication: unaffected"]


def test_network_mappings_repeat_into_one_mapping(client, service):
    service.reply("POST", "/v1/protection-groups/db/failover", 202, {"operation": OPERATION})
    run(client, "dr", "failover", "db", "--failover-type", "planned",
        "--network-mapping", "a=b", "--network-mapping", " c = d ")
    assert service.requests[0]["json"] == {"failover_type": "planned", "force": False,
                                           "network_mapping": {"a": "b", "c": "d"}}


@pytest.mark.parametrize("value, problem", [
    ("prod-net", "expected <source-network>=<target-network>, got 'prod-net'"),
    ("=dr-net", "expected <source-network>=<target-network>, got '=dr-net'"),
    ("prod-net=", "expected <source-network>=<target-network>, got 'prod-net='"),
])
def test_a_malformed_network_mapping_is_refused_before_any_request(
        client, service, capsys, value, problem):
    with pytest.raises(SystemExit) as caught:
        run(client, "dr", "test", "failover", "db", "--network-mapping", value)
    assert caught.value.code == 2
    assert f"argument --network-mapping: {problem}" in capsys.readouterr().err
    assert service.requests == []


def test_a_network_mapped_twice_is_refused(client, capsys):
    with pytest.raises(SystemExit):
        run(client, "dr", "test", "failover", "db", "--network-mapping", "a=b",
            "--network-mapping", "a=c")
    assert "network 'a' is mapped twice" in capsys.readouterr().err


def test_failover_needs_its_type(client, capsys):
    with pytest.raises(SystemExit):
        run(client, "dr", "failover", "db")
    assert "the following arguments are required: --failover-type" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run(client, "dr", "failover", "db", "--failover-type", "sudden")
    assert "invalid choice: 'sudden'" in capsys.readouterr().err


def test_site_failover_shows_what_the_concept_document_shows(client, service):
    service.reply("POST", "/v1/sites/cluster1/failover", 202, {"operation": SITE_FAILOVER})
    result = run(client, "dr", "site", "failover", "cluster1", "--failover-type", "unplanned",
                 "--force")
    assert service.requests[0]["json"] == {"failover_type": "unplanned", "force": True}
    lines = [line for line in result.out.splitlines() if line.startswith("| ")][1:6]
    assert [" ".join(line.strip("| ").split()) for line in lines] == [
        "operation_type | site_failover", "status | pending", "total_protection_groups | 5",
        "completed_count | 0", "failed_count | 0"]
    shown = table(result.out)
    assert shown["progress"] == "0%"
    assert shown["site"] == "cluster1"
    assert shown["params"] == "failover_type='unplanned'"


RUNNING = {**OPERATION, "status": "running", "total_protection_groups": 5,
           "completed_count": 2, "progress": 40, "mistral_execution_id": "ex-1",
           "results": [
               {"protection_group_id": "pg-1", "protection_group": "prod-ecommerce-db",
                "status": "completed", "step": "create_stack", "reason": None,
                "rpo_achieved_seconds": 0},
               {"protection_group_id": "pg-2", "protection_group": "prod-ecommerce-web",
                "status": "failed", "step": "create_stack", "reason": "quota exceeded",
                "rpo_achieved_seconds": None},
               {"protection_group_id": "pg-3", "protection_group": "prod-ecommerce-cache",
                "status": "running", "step": "import_volumes", "reason": None,
                "rpo_achieved_seconds": None}]}


READINESS = {"ready": False, "checked_at": "2026-12-07T12:00:00+00:00", "findings": [
    {"check": "mappings", "ok": True, "detail": "1 networks, 0 security groups found on "
     "site-b", "remedy": None, "severity": "error"},
    {"check": "addresses", "ok": False, "detail": "no subnet of the mapped DR network holds "
     "web-1 10.0.0.11", "remedy": "add an ip_rule mapping", "severity": "error"},
    {"check": "drill", "ok": False, "detail": "never drilled", "remedy": "run a drill",
     "severity": "warning"}]}


def test_readiness_shows_each_check_and_refresh_checks_now(client, service):
    service.reply("GET", "/v1/protection-groups/web/readiness", body={"readiness": None})
    with pytest.raises(exceptions.CommandError, match="not been checked yet; --refresh"):
        run(client, "protector", "protection-group", "readiness", "web")
    service.reply("POST", "/v1/protection-groups/web/readiness",
                  body={"readiness": READINESS})
    shown = run(client, "protector", "protection-group", "readiness", "web", "--refresh",
                "-f", "json")
    assert [(row["Check"], row["Result"]) for row in json.loads(shown.out)] == [
        ("mappings", "ok"), ("addresses", "error"), ("drill", "warning")]
    assert shown.err.startswith("NOT READY (checked 2026-12-07T12:00:00+00:00)")
    assert [r["method"] for r in service.requests] == ["GET", "POST"]


def test_an_operation_for_people(client, service):
    service.reply("GET", "/v1/operations/op-1", body={"operation": RUNNING})
    shown = table(run(client, "dr", "operation", "show", "op-1").out)
    assert shown["progress"] == "40%"
    assert shown["mistral_execution_id"] == "ex-1"
    assert shown["results"].splitlines() == [
        "prod-ecommerce-db: completed (RPO achieved 0 s)",
        "prod-ecommerce-web: failed at create_stack: quota exceeded",
        "prod-ecommerce-cache: running at import_volumes"]


@pytest.mark.parametrize("fmt, load", [("json", json.loads), ("yaml", yaml.safe_load)])
def test_an_operation_for_programs(client, service, fmt, load):
    service.reply("GET", "/v1/operations/op-1", body={"operation": RUNNING})
    shown = load(run(client, "protector", "operation", "show", "op-1", "-f", fmt).out)
    assert shown["progress"] == 40
    assert shown["status"] == "running"
    assert shown["results"][1]["reason"] == "quota exceeded"


def test_operation_list(client, service):
    service.reply("GET", "/v1/operations", body={"operations": [RUNNING]})
    result = run(client, "dr", "operation", "list", "--status", "running",
                 "--protection-group", "prod-ecommerce-db", "--all-projects",
                 "-c", "Status", "-c", "Progress")
    assert result.out.splitlines()[3].split() == ["|", "running", "|", "40%", "|"]
    assert service.requests[0]["query"] == {"status": "running", "all_projects": "true",
                                            "protection_group": "prod-ecommerce-db"}


def test_a_404_reads_as_the_service_wrote_it(client, service):
    service.reply("GET", "/v1/protection-groups/nope", 404, {"error": {
        "code": 404, "message": "protection group 'nope' not found in project ecommerce",
        "details": {}}})
    with pytest.raises(exceptions.CommandError) as caught:
        run(client, "protector", "protection-group", "show", "nope")
    assert str(caught.value) == \
        "protection group 'nope' not found in project ecommerce (HTTP 404 Not Found)"


def test_create_a_group_as_the_concept_document_types_it(client, service):
    service.reply("POST", "/v1/protection-groups", 201, {"protection_group": GROUP})
    result = run(client, "protector", "protection-group", "create",
                 "--name", "prod-ecommerce-db", "--replication-type", "sync",
                 "--primary-site", "site-a", "--secondary-site", "site-b",
                 "--volume-type", "replicated-ssd", "--rpo-target", "0")
    assert service.requests[0]["json"] == {
        "name": "prod-ecommerce-db", "replication_type": "sync", "primary_site": "site-a",
        "secondary_site": "site-b", "volume_type": "replicated-ssd", "rpo_target_seconds": 0}
    assert table(result.out)["id"] == "pg-1"


def test_group_list_shows_projects_when_it_spans_them(client, service):
    service.reply("GET", "/v1/protection-groups", body={"protection_groups": [GROUP]})
    mine = json.loads(run(client, "protector", "protection-group", "list", "-f", "json").out)
    everyone = json.loads(run(client, "protector", "protection-group", "list",
                              "--all-projects", "-f", "json").out)
    assert "Project" not in mine[0]
    assert everyone[0]["Project"] == "ecommerce"
    assert everyone[0]["Members"] == 0
    assert mine[0]["Ready"] is None                 # not checked here


def test_group_list_says_which_groups_would_not_recover(client, service):
    service.reply("GET", "/v1/protection-groups", body={"protection_groups": [
        {**GROUP, "ready": True}, {**GROUP, "id": "pg-2", "ready": False}]})
    listed = json.loads(run(client, "protector", "protection-group", "list", "-f",
                            "json").out)
    assert [row["Ready"] for row in listed] == [True, False]
    shown = run(client, "protector", "protection-group", "list", "-c", "Ready").out
    assert [line.strip("| ") for line in shown.splitlines()[3:5]] == ["ready", "NOT READY"]


def test_group_set_sends_only_what_changes(client, service):
    service.reply("PATCH", "/v1/protection-groups/db", body={"protection_group": GROUP})
    run(client, "protector", "protection-group", "set", "db", "--rpo-target", "300",
        "--expected-version", "4")
    assert service.requests[0]["json"] == {"rpo_target_seconds": 300, "version": 4}
    with pytest.raises(exceptions.CommandError, match="nothing to change"):
        run(client, "protector", "protection-group", "set", "db", "--expected-version", "4")
    assert len(service.requests) == 1


def test_a_diverged_group_shows_both_copies_and_resolve_keeps_one(client, service):
    copies = [{"site": "site-a", "version": 3, "status": "protected"},
              {"site": "site-b", "version": 3, "status": "failed_over"}]
    service.reply("GET", "/v1/protection-groups/db", body={"protection_group": {
        **GROUP, "status": "conflict", "conflict": {"copies": copies}}})
    shown = table(run(client, "protector", "protection-group", "show", "db").out)
    assert shown["status"] == "conflict" and "failed_over" in shown["conflict"]
    service.reply("POST", "/v1/protection-groups/db/resolve",
                  body={"protection_group": {**GROUP, "version": 4, "conflict": None}})
    kept = run(client, "protector", "protection-group", "resolve", "db", "--keep", "site-b")
    assert table(kept.out)["version"] == "4"
    assert service.requests[-1]["json"] == {"keep": "site-b"}


PROTECT = {**OPERATION, "operation_type": "protect"}


def test_protect_a_group_posts_to_its_protect_and_shows_the_operation(client, service):
    service.reply("POST", "/v1/protection-groups/prod-ecommerce-db/protect", 202,
                  {"operation": PROTECT})
    result = run(client, "protector", "protection-group", "protect", "prod-ecommerce-db",
                 "--all-projects", "--idempotency-key", "protect-db-1")
    assert result.name == "protector protection-group protect"
    (request,) = service.requests
    assert (request["method"], request["path"], request["json"], request["query"]) == (
        "POST", "/v1/protection-groups/prod-ecommerce-db/protect", None,
        {"all_projects": "true"})
    assert request["headers"]["Idempotency-Key"] == "protect-db-1"
    shown = table(result.out)
    assert (result.code, shown["operation_type"], shown["status"]) == (0, "protect",
                                                                       "pending")


def test_protect_waits_like_the_other_operations(client, service, fast_polls):
    service.reply("POST", "/v1/protection-groups/db/protect", 202, {"operation": PROTECT})
    service.reply("GET", "/v1/operations/op-1",
                  body={"operation": {**PROTECT, "status": "running", "progress": 0}})
    service.reply("GET", "/v1/operations/op-1", body={"operation": {**PROTECT, **DONE}})
    result = run(client, "protector", "protection-group", "protect", "db", "--wait")
    assert result.err.splitlines()[:3] == [
        "protect op-1: pending 0% (0/1 groups done, 0 failed)",
        "protect op-1: running 0% (0/1 groups done, 0 failed)",
        "protect op-1: completed 100% (1/1 groups done, 0 failed)"]
    assert not any(line.startswith("Status:") for line in result.err.splitlines())
    assert (result.code, table(result.out)["status"]) == (0, "completed")


def test_protect_on_the_dr_site_says_where_to_run_it(client, service):
    service.reply("POST", "/v1/protection-groups/db/protect", 409, {"error": {
        "code": 409, "message": "protection group db runs on site-a: protect it there",
        "details": {"site": "site-a"}}})
    with pytest.raises(exceptions.CommandError,
                       match=r"^protection group db runs on site-a: protect it there "
                             r"\(HTTP 409 Conflict\)$"):
        run(client, "protector", "protection-group", "protect", "db")


def test_group_delete_tries_every_group(client, service, caplog):
    service.reply("DELETE", "/v1/protection-groups/a", 204)
    service.reply("DELETE", "/v1/protection-groups/c", 204)
    with caplog.at_level(logging.ERROR), \
            pytest.raises(exceptions.CommandError,
                          match="1 of 3 protection groups failed to delete"):
        run(client, "protector", "protection-group", "delete", "a", "b", "c")
    assert [r["path"] for r in service.requests] == [
        "/v1/protection-groups/a", "/v1/protection-groups/b", "/v1/protection-groups/c"]
    assert "Failed to delete protection group b: no route" in caplog.text


def test_members(client, service):
    server = "0b5c3f8e-8f3a-4c1e-9d52-1f1a2b3c4d5e"
    member = {"id": "m-1", "server_id": server, "server_name": "db-1", "position": 1,
              "captured_at": None}
    service.reply("POST", "/v1/protection-groups/db/members", 201, {"member": member})
    service.reply("GET", "/v1/protection-groups/db/members", body={"members": [member]})
    service.reply("DELETE", f"/v1/protection-groups/db/members/{server}", 204)
    run(client, "protector", "member", "add", "db", server, "--server-name", "db-1")
    listed = run(client, "protector", "member", "list", "db", "-f", "value").out
    result = run(client, "protector", "member", "remove", "db", server)
    assert service.requests[0]["json"] == {"server_id": server, "server_name": "db-1"}
    assert listed.split() == ["1", server, "db-1", "None"]
    assert (result.code, result.out) == (0, "")


def test_mapping_kinds_read_as_typed(client, service):
    mapping = {"id": "map-1", "project_name": "ecommerce", "protection_group_id": "pg-1",
               "kind": "security_group", "source": "web-sg", "target": "web-sg-dr",
               "version": 1}
    service.reply("POST", "/v1/resource-mappings", 201, {"resource_mapping": mapping})
    result = run(client, "protector", "mapping", "create", "--kind", "security-group",
                 "--source", "web-sg", "--target", "web-sg-dr",
                 "--protection-group", "prod-ecommerce-web")
    assert service.requests[0]["json"] == {"kind": "security_group", "source": "web-sg",
                                           "target": "web-sg-dr",
                                           "protection_group": "prod-ecommerce-web"}
    assert table(result.out)["kind"] == "security-group"
    service.reply("GET", "/v1/resource-mappings/map-1", body={"resource_mapping": mapping})
    assert json.loads(run(client, "protector", "mapping", "show", "map-1", "-f",
                          "json").out)["kind"] == "security_group"


def test_mapping_list_and_set(client, service):
    service.reply("GET", "/v1/resource-mappings", body={"resource_mappings": []})
    service.reply("PATCH", "/v1/resource-mappings/map-1", body={"resource_mapping": {}})
    run(client, "protector", "mapping", "list", "--protection-group", "db")
    run(client, "protector", "mapping", "set", "map-1", "--target", "net-2")
    assert service.requests[0]["query"] == {"protection_group": "db"}
    assert service.requests[1]["json"] == {"target": "net-2"}



MAPPING = {"id": "map-1", "project_name": "retail", "protection_group_id": "pg-1",
           "kind": "network", "source": "net-1", "target": "net-2", "version": 1}


def test_mapping_commands_reach_every_project(client, service):
    service.reply("GET", "/v1/resource-mappings", body={"resource_mappings": [MAPPING]})
    service.reply("GET", "/v1/resource-mappings/map-1", body={"resource_mapping": MAPPING})
    service.reply("PATCH", "/v1/resource-mappings/map-1", body={"resource_mapping": MAPPING})
    service.reply("DELETE", "/v1/resource-mappings/map-1", 204)
    service.reply("DELETE", "/v1/resource-mappings/map-2", 204)
    listed = json.loads(run(client, "protector", "mapping", "list", "--protection-group", "db",
                            "--all-projects", "-f", "json").out)
    shown = table(run(client, "protector", "mapping", "show", "map-1", "--all-projects").out)
    run(client, "protector", "mapping", "set", "map-1", "--target", "net-3",
        "--all-projects")
    run(client, "protector", "mapping", "delete", "map-1", "map-2", "--all-projects")
    assert [(r["method"], r["path"], r["query"]) for r in service.requests] == [
        ("GET", "/v1/resource-mappings", {"protection_group": "db", "all_projects": "true"}),
        ("GET", "/v1/resource-mappings/map-1", {"all_projects": "true"}),
        ("PATCH", "/v1/resource-mappings/map-1", {"all_projects": "true"}),
        ("DELETE", "/v1/resource-mappings/map-1", {"all_projects": "true"}),
        ("DELETE", "/v1/resource-mappings/map-2", {"all_projects": "true"})]
    assert listed[0]["Project"] == "retail"
    assert shown["project_name"] == "retail"


def test_mapping_list_shows_projects_only_when_it_spans_them(client, service):
    service.reply("GET", "/v1/resource-mappings", body={"resource_mappings": [MAPPING]})
    mine = json.loads(run(client, "protector", "mapping", "list", "-f", "json").out)
    assert "Project" not in mine[0]
    assert service.requests[0]["query"] == {}


@pytest.mark.parametrize("command", ["protector", "dr"])
def test_operation_show_reaches_every_project(client, service, command):
    service.reply("GET", "/v1/operations/op-1", body={"operation": RUNNING})
    shown = table(run(client, command, "operation", "show", "op-1", "--all-projects").out)
    run(client, command, "operation", "show", "op-1")
    assert shown["progress"] == "40%"
    assert [r["query"] for r in service.requests] == [{"all_projects": "true"}, {}]


def test_operation_retry_reaches_every_project(client, service):
    service.reply("POST", "/v1/operations/op-0/retry", 202, {"operation": OPERATION})
    result = run(client, "dr", "operation", "retry", "op-0", "--all-projects")
    run(client, "dr", "operation", "retry", "op-0")
    assert result.code == 0
    assert [r["query"] for r in service.requests] == [{"all_projects": "true"}, {}]


def test_operation_cancel_shows_the_ended_operation(client, service):
    cancelled = {**RUNNING, "status": "failed", "error": "cancelled by alice: what was "
                 "built stays, for a retry or a cleanup to continue from"}
    service.reply("POST", "/v1/operations/op-1/cancel", body={"operation": cancelled})
    result = run(client, "dr", "operation", "cancel", "op-1")
    assert result.code == 0
    assert table(result.out)["error"].startswith("cancelled by alice")
    assert [(r["method"], r["path"]) for r in service.requests] == [
        ("POST", "/v1/operations/op-1/cancel")]


def test_operation_show_wait_re_attaches_to_a_running_operation(client, service, fast_polls):
    service.reply("GET", "/v1/operations/op-1",
                  body={"operation": {**PROTECT, "status": "running", "progress": 0}})
    service.reply("GET", "/v1/operations/op-1", body={"operation": {**PROTECT, **DONE}})
    result = run(client, "dr", "operation", "show", "op-1", "--wait")
    assert "protect op-1: completed 100% (1/1 groups done, 0 failed)" in \
        result.err.splitlines()
    assert (result.code, table(result.out)["status"]) == (0, "completed")


def test_audit_list_reaches_every_project(client, service):
    entry = {"id": 7, "at": "2025-01-01T00:00:00", "action": "protection_group.update",
             "actor": {"user": "bob", "project": "retail", "roles": ["member"]},
             "target": "pg-9", "outcome": "done", "reason": None, "project_name": "retail",
             "details": {}}
    service.reply("GET", "/v1/audit-log", body={"entries": [entry]})
    everyone = json.loads(run(client, "protector", "audit", "list", "--all-projects",
                              "--limit", "5", "-f", "json").out)
    mine = json.loads(run(client, "protector", "audit", "list", "-f", "json").out)
    assert [r["query"] for r in service.requests] == [
        {"all_projects": "true", "limit": "5"}, {}]
    assert everyone[0]["Project"] == "retail"
    assert "Project" not in mine[0]

def test_sites_and_audit(client, service):
    peer = {"name": "site-a", "role": "peer", "url": "https://a", "state": "unreachable",
            "since": "2025-01-01T00:00:00", "last_probe_at": None, "consecutive_failures": 3,
            "last_error": "connection refused"}
    entry = {"id": 6, "at": "2025-01-01T00:00:00", "action": "protection_group.update",
             "actor": {"user": "alice", "project": "ecommerce", "roles": ["member"]},
             "target": "pg-1", "outcome": "refused", "reason": "version 2, not 1",
             "details": {}}
    service.reply("GET", "/v1/sites/site-a", body={"site": peer})
    service.reply("GET", "/v1/audit-log", body={"entries": [entry]})
    assert table(run(client, "protector", "site", "show", "site-a").out)["state"] == \
        "unreachable"
    listed = run(client, "protector", "audit", "list", "--limit", "5", "-c", "Actor").out
    as_json = run(client, "protector", "audit", "list", "-f", "json").out
    assert service.requests[1]["query"] == {"limit": "5"}
    assert listed.splitlines()[3] == "| alice (project ecommerce) |"
    assert json.loads(as_json)[0]["Actor"]["roles"] == ["member"]


class Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture
def fast_polls(monkeypatch):
    monkeypatch.setattr(progress, "POLL_INTERVAL", 0.01)


def script_drill(service, *states):
    service.reply("POST", "/v1/protection-groups/db/test-failover", 202,
                  {"operation": OPERATION})
    for state in states:
        service.reply("GET", "/v1/operations/op-1", body={"operation": {**OPERATION, **state}})


DONE = {"status": "completed", "progress": 100, "completed_count": 1, "results": [
    {"protection_group": "prod-ecommerce-db", "status": "completed", "step": "create_stack",
     "rpo_achieved_seconds": 12}]}


def test_wait_prints_one_line_per_change_off_a_terminal(client, service, fast_polls):
    script_drill(service, {"status": "running", "progress": 0},
                 {"status": "running", "progress": 40}, {"status": "running", "progress": 40},
                 DONE)
    result = run(client, "dr", "test", "failover", "db", "--wait")
    assert result.err.splitlines() == [
        "test_failover op-1: pending 0% (0/1 groups done, 0 failed)",
        "test_failover op-1: running 0% (0/1 groups done, 0 failed)",
        "test_failover op-1: running 40% (0/1 groups done, 0 failed)",
        "test_failover op-1: completed 100% (1/1 groups done, 0 failed)",
        "prod-ecommerce-db: completed (RPO achieved 12 s)"]
    assert (result.code, result.out) == (0, "Status: completed\n")
    assert [r["method"] for r in service.requests] == ["POST"] + ["GET"] * 4


CHECKED = {"test_prefix": "test-", "production_replication": "unaffected"}


def test_a_drill_ends_as_the_concept_document_shows_it(client, service, fast_polls):
    checked = {**DONE, "results": [{**DONE["results"][0], "details": CHECKED}]}
    script_drill(service, {"status": "running", "progress": 40}, checked)
    result = run(client, "dr", "test", "failover", "db", "--wait")
    assert result.out.splitlines() == [
        "Status: completed", "Test VMs created with prefix: test-",
        "Production replication: unaffected"]
    assert result.code == 0 and "Status" not in result.err


def test_a_drill_for_programs_keeps_its_outcome_off_the_json(client, service, fast_polls):
    checked = {**DONE, "results": [{**DONE["results"][0], "details": CHECKED}]}
    script_drill(service, checked)
    result = run(client, "dr", "test", "failover", "db", "--wait", "-f", "json")
    shown = json.loads(result.out)
    assert shown["results"][0]["details"] == CHECKED
    assert "Production replication: unaffected" in result.err


def test_a_drill_of_several_groups_names_each_and_what_was_affected(client, service,
                                                                   fast_polls):
    link_down = "affected: replication link fa-a -> fa-b is down (connection status: connecting)"
    script_drill(service, {
        "status": "partially_failed", "progress": 100, "total_protection_groups": 3,
        "completed_count": 2, "failed_count": 1, "results": [
            {"protection_group": "prod-ecommerce-db", "status": "completed", "details": CHECKED},
            {"protection_group": "prod-ecommerce-web", "status": "completed",
             "details": {**CHECKED, "production_replication": link_down}},
            {"protection_group": "prod-ecommerce-cache", "status": "failed",
             "step": "build_stack", "reason": "quota exceeded"}]})
    result = run(client, "dr", "test", "failover", "db", "--wait")
    lines = result.out.splitlines()
    start = lines.index("Status: partially_failed")
    assert lines[start:start + 5] == [
        "Status: partially_failed",
        "prod-ecommerce-db: Test VMs created with prefix: test-",
        "prod-ecommerce-db: Production replication: unaffected",
        "prod-ecommerce-web: Test VMs created with prefix: test-",
        f"prod-ecommerce-web: Production replication: {link_down}"]
    assert result.code == 1


def test_only_a_drill_ends_with_the_drills_outcome(client, service, fast_polls):
    service.reply("POST", "/v1/protection-groups/db/failover", 202,
                  {"operation": {**OPERATION, "operation_type": "failover"}})
    service.reply("GET", "/v1/operations/op-1",
                  body={"operation": {**OPERATION, **DONE, "operation_type": "failover"}})
    result = run(client, "dr", "failover", "db", "--failover-type", "planned", "--wait")
    assert result.code == 0
    assert not any(line.startswith("Status:") for line in result.err.splitlines())


def test_operation_show_lists_what_each_groups_steps_found(client, service):
    results = [{**RUNNING["results"][0], "details": CHECKED}, *RUNNING["results"][1:]]
    service.reply("GET", "/v1/operations/op-1", body={"operation": {**RUNNING,
                                                                    "results": results}})
    shown = table(run(client, "dr", "operation", "show", "op-1").out)
    assert shown["results"].splitlines() == [
        "prod-ecommerce-db: completed (RPO achieved 0 s)",
        "test_prefix: test-",
        "production_replication: unaffected",
        "prod-ecommerce-web: failed at create_stack: quota exceeded",
        "prod-ecommerce-cache: running at import_volumes"]


def test_wait_draws_a_bar_on_a_terminal(client, service, fast_polls):
    script_drill(service, {"status": "running", "progress": 40}, DONE)
    terminal = Terminal()
    result = run(client, "dr", "test", "failover", "db", "--wait", stderr=terminal)
    drawn = terminal.getvalue()
    assert "━" in drawn
    assert "test_failover completed" in drawn
    assert "100%" in drawn
    assert "prod-ecommerce-db: completed (RPO achieved 12 s)" in drawn
    assert result.code == 0


def test_an_operation_that_failed_for_some_groups_fails_the_command(client, service,
                                                                    fast_polls):
    script_drill(service, {"status": "partially_failed", "progress": 100,
                           "total_protection_groups": 2, "completed_count": 1,
                           "failed_count": 1})
    result = run(client, "dr", "test", "failover", "db", "--wait")
    assert result.code == 1
    assert result.out.splitlines()[0] == "Status: partially_failed"
    assert result.err.splitlines()[-1] == (
        "Operation op-1 partially_failed; retry the failed groups: "
        "openstack dr operation retry op-1")


def test_without_wait_the_accepted_operation_is_shown_at_once(client, service):
    script_drill(service, DONE)
    result = run(client, "dr", "test", "failover", "db", "--no-wait")
    assert (result.code, table(result.out)["status"], result.err) == (0, "pending", "")
    assert len(service.requests) == 1


def test_wait_gives_up_at_its_timeout_and_says_how_to_follow(client, service, fast_polls):
    script_drill(service, {"status": "running", "progress": 40})
    with pytest.raises(exceptions.CommandError,
                       match=r"operation op-1 is still running after 0\.2 s; it goes on "
                             r"without us: follow it with: openstack dr operation show op-1"):
        run(client, "dr", "test", "failover", "db", "--wait", "--timeout", "0.2")


def test_wait_rides_out_a_dropped_poll(client, service, fast_polls):
    script_drill(service, {"status": "running", "progress": 40})
    service.replies[("GET", "/v1/operations/op-1")] += [
        (503, {"error": {"code": 503, "message": "database is busy", "details": {}}}, None,
         "application/json"),
        (200, {"operation": {**OPERATION, **DONE}}, None, "application/json")]
    result = run(client, "dr", "test", "failover", "db", "--wait")
    assert result.code == 0
    assert "Polling failed, trying again: database is busy (HTTP 503 Service Unavailable)" \
        in result.err


def test_wait_stops_at_a_refusal(client, service, fast_polls):
    script_drill(service, {"status": "running", "progress": 40})
    service.replies[("GET", "/v1/operations/op-1")].insert(0, (
        403, {"error": {"code": 403, "message": "alice may not read", "details": {}}}, None,
        "application/json"))
    with pytest.raises(exceptions.CommandError, match="alice may not read"):
        run(client, "dr", "test", "failover", "db", "--wait")


def test_retry_follows_the_new_operation(client, service, fast_polls):
    service.reply("POST", "/v1/operations/op-0/retry", 202, {"operation": OPERATION})
    service.reply("GET", "/v1/operations/op-1", body={"operation": {**OPERATION, **DONE}})
    result = run(client, "dr", "operation", "retry", "op-0", "--wait",
                 "--idempotency-key", "retry-op-0")
    assert service.requests[0]["headers"]["Idempotency-Key"] == "retry-op-0"
    assert (result.code, result.out) == (0, "Status: completed\n")        # a drill's retry


PLAN = {"dry_run": True, "operation_type": "test_failover", "failover_type": None,
        "site": None, "recovered_on": "site-b", "ready": True, "skipped": {},
        "protection_groups": [{
            "protection_group": "web", "protection_group_id": "pg-1",
            "recovery_point": {"name": "fa-a:sr-pg-1.7", "created_at": "2026-12-07T11:59:00",
                               "age_seconds": 60.0, "rpo_seconds": 60.0},
            "stack": {"name": "test-web", "resources": [
                {"name": "port_0_0", "type": "OS::Neutron::Port", "depends_on": []},
                {"name": "server_0", "type": "OS::Nova::Server", "depends_on": []}]},
            "volumes": [{"server": "web-1", "volume_id": "vol-1", "name": "web-1-boot",
                         "copy_name": "test-web-1-boot", "boot": True, "device": None}],
            "servers": [{"name": "test-web-1", "source_id": "srv-1", "flavor": "m1.small",
                         "boot_order": 2, "availability_zone": None, "key_name": None,
                         "ports": [{"source_network": "prod-net", "source_ip": "10.0.0.11",
                                    "network": "n-1", "network_name": "dr-test-net",
                                    "ip_address": "10.0.0.11", "address": "kept"}]}],
            "boot_order": [{"boot_order": 2, "servers": ["test-web-1"]}], "problems": []}]}


def test_a_dry_run_shows_the_plan_and_starts_nothing(client, service):
    service.reply("POST", "/v1/protection-groups/web/test-failover", body={"plan": PLAN})
    shown = run(client, "dr", "test", "failover", "web", "--dry-run",
                "--network-mapping", "prod-net=dr-test-net")
    assert service.requests[0]["json"] == {"network_mapping": {"prod-net": "dr-test-net"},
                                           "dry_run": True}
    assert "Idempotency-Key" not in service.requests[0]["headers"]
    assert shown.code == 0
    assert table(shown.out)["protection_groups"].splitlines() == [     # cells stripped
        "web: stack test-web",
        "recovery point: fa-a:sr-pg-1.7, taken 2026-12-07T11:59:00 (60 s old); data lost: "
        "60 s",
        "volumes to copy: 1", "test-web-1-boot <- vol-1 (web-1, boot)",
        "boot order: 2: test-web-1",
        "server test-web-1 (m1.small): dr-test-net 10.0.0.11 kept",
        "stack resources: 2 (OS::Neutron::Port x1, OS::Nova::Server x1)"]


def test_a_plan_with_a_problem_exits_non_zero_and_json_gets_the_whole_plan(client, service):
    group = {**PLAN["protection_groups"][0], "problems": ["no usable recovery point"],
             "recovery_point": None}
    plan = {**PLAN, "operation_type": "site_failover", "ready": False, "site": "cluster1",
            "protection_groups": [group], "skipped": {"db": "not protected"}}
    service.reply("POST", "/v1/sites/cluster1/failover", body={"plan": plan})
    shown = run(client, "dr", "site", "failover", "cluster1", "--failover-type", "unplanned",
                "--force", "--dry-run", "-f", "json")
    assert service.requests[0]["json"] == {"failover_type": "unplanned", "force": True,
                                           "dry_run": True}
    assert shown.code == 1 and "names 1 problem(s)" in shown.err
    printed = json.loads(shown.out)
    assert printed["protection_groups"] == [group]
    assert printed["skipped"] == {"db": "not protected"}


def test_member_set_sends_the_tier_and_gate_and_shows_the_member(client, service):
    member = {"id": "m-1", "server_id": "srv-1", "server_name": "db-1", "position": 0,
              "captured_at": None, "boot_tier": 0,
              "gate": {"console_marker": "ready", "timeout_seconds": 60}}
    service.reply("PATCH", "/v1/protection-groups/db/members/srv-1", body={"member": member})
    shown = run(client, "protector", "member", "set", "db", "srv-1", "--boot-tier", "0",
                "--gate-console-marker", "ready", "--gate-timeout", "60")
    assert service.requests[0]["json"] == {
        "boot_tier": 0, "gate": {"console_marker": "ready", "timeout_seconds": 60}}
    assert table(shown.out)["gate"] == "console shows 'ready' (60 s)"
    service.reply("PATCH", "/v1/protection-groups/db/members/srv-1", body={"member": member})
    run(client, "protector", "member", "set", "db", "srv-1", "--no-boot-tier", "--no-gate")
    assert service.requests[1]["json"] == {"boot_tier": None, "gate": None}
    with pytest.raises(exceptions.CommandError, match="nothing to change"):
        run(client, "protector", "member", "set", "db", "srv-1")


def test_a_drill_schedule_is_set_cleared_and_never_both(client, service):
    service.reply("PATCH", "/v1/protection-groups/db", body={"protection_group": GROUP})
    run(client, "protector", "protection-group", "set", "db", "--drill-schedule", "0 3 * * 6",
        "--drill-network", "drill-net")
    run(client, "protector", "protection-group", "set", "db", "--no-drill-schedule")
    assert [r["json"] for r in service.requests] == [
        {"drill_schedule": "0 3 * * 6", "drill_network": "drill-net"},
        {"drill_schedule": None}]
    with pytest.raises(exceptions.CommandError, match="contradict"):
        run(client, "protector", "protection-group", "set", "db", "--drill-schedule",
            "0 3 * * 6", "--no-drill-schedule")
    assert len(service.requests) == 2


def test_a_report_is_written_as_asked(client, service, tmp_path):
    report = {"operation_id": "op-1", "protection_groups": []}
    service.reply("GET", "/v1/operations/op-1/report", body={"report": report})
    shown = run(client, "dr", "operation", "report", "op-1")
    assert json.loads(shown.out) == report
    assert service.requests[-1]["query"] == {"format": "json"}

    service.reply("GET", "/v1/operations/op-2/report", raw="%PDF-1.4 ...",
                  content_type="application/pdf")
    written = tmp_path / "op-2.pdf"
    done = run(client, "dr", "operation", "report", "op-2", "--format", "pdf", "--output",
               str(written), "--all-projects")
    assert written.read_bytes() == b"%PDF-1.4 ..."
    assert service.requests[-1]["query"] == {"format": "pdf", "all_projects": "true"}
    assert f"written to {written}" in done.err
