"""The service's side of the trust boundary, two linked sites in process: which Mistral
executions may act, which accounts are the workflows and the peer, what a push may not do.
The lab's attack suite (tests/scenarios/test_trust_boundary.py) tries the same with real
Keystone and Mistral."""

from __future__ import annotations

import threading
import time
import uuid
from types import SimpleNamespace

import yaml

from site_recovery import workbooks
from site_recovery.core.clouds import Clouds
from site_recovery.core.model import Project
from site_recovery.webhook import commands, projects
from site_recovery.webhook.launcher import Root
from site_recovery.webhook.services import services
from tests.unit.test_webhook_operations import WEB, launcher, setup_groups
from tests.unit.webhook_sites import (
    ADMIN,
    ALICE,
    BOB,
    RITA,
    SERVICE,
    execution_of,
    held,
    report,
    user,
)

HEAT = {**user("heat", "service", "admin", "service"), "X-Project-Id": "svc"}


def a_drill(sites) -> tuple:
    dr = setup_groups(sites)
    op = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json["operation"]
    return dr, op, op["results"][0]["protection_group_id"]


def test_a_tenants_own_workflow_may_not_act_nor_report(sites):
    """A tenant runs ``site_recovery.*`` from a workflow of its own: Mistral records the
    execution in the tenant's project, and the service refuses it, naming it."""
    dr, op, group = a_drill(sites)
    launcher(dr).roots["tenant-exec"] = Root("tenant-exec", "id-ecommerce",
                                             "my.own.workflow", {"operation_id": op["id"]})
    reply = report(dr, op["id"], execution="tenant-exec", protection_group_id=group,
                   status="completed")
    assert reply.status_code == 403
    assert "execution tenant-exec is not one of the DR service's" in reply.json["error"][
        "message"]
    assert held(dr, op["id"])["status"] == "pending", "nothing was recorded"


def test_an_execution_mistral_does_not_show_the_service_may_not_act(sites):
    dr, op, group = a_drill(sites)
    reply = report(dr, op["id"], execution="made-up", protection_group_id=group,
                   status="failed", reason="fake")
    assert reply.status_code == 403
    assert held(dr, op["id"])["results"][0]["status"] == "pending"


def test_an_execution_may_report_only_for_its_own_operation_and_groups(sites):
    dr, op, _ = a_drill(sites)
    other = dr.post("/v1/protection-groups", json={**WEB, "name": "app",
                                                   "primary_site": "site-b",
                                                   "secondary_site": "site-a"},
                    headers=ALICE)
    assert other.status_code == 201
    execution = execution_of(dr, op["id"])
    claims_another = dr.post(f"/v1/internal/executions/{execution}/progress", json={
        "operation_id": "another-op", "status": "running"}, headers=SERVICE)
    assert claims_another.status_code == 403
    assert f"runs operation {op['id']}, not another-op" in claims_another.json["error"][
        "message"]
    not_its_group = report(dr, op["id"], protection_group_id=other.json[
        "protection_group"]["id"], status="completed")
    assert not_its_group.status_code == 404
    assert held(dr, op["id"])["status"] == "pending"


def test_a_finished_operation_takes_no_more_steps(sites):
    dr, op, group = a_drill(sites)
    assert report(dr, op["id"], protection_group_id=group, status="completed").status_code \
        == 200
    assert held(dr, op["id"])["status"] == "completed"
    step = report(dr, op["id"], protection_group_id=group, status="running", step="x")
    assert step.status_code == 409


def test_another_service_account_is_neither_the_workflows_nor_the_peer(sites):
    """heat's account, with ``admin`` and ``service`` in the service project."""
    dr, op, group = a_drill(sites)
    execution = execution_of(dr, op["id"])
    for method, path, body in (
            ("POST", f"/v1/internal/executions/{execution}/progress",
             {"protection_group_id": group, "status": "failed", "reason": "fake"}),
            ("GET", f"/v1/internal/protection-groups/{group}", None),
            ("GET", "/v1/internal/protection-groups", None),
            ("PUT", f"/v1/internal/protection-groups/{group}/state", {"status": "protected"}),
            ("POST", "/v1/internal/forward", {"change": {}, "actor": {}}),
            ("DELETE", f"/v1/internal/protection-groups/{group}?version=1", None)):
        reply = dr.open(path, method=method, json=body, headers=HEAT)
        assert reply.status_code == 403, (method, path, reply.json)
        assert "heat" in reply.json["error"]["message"]
    assert held(dr, op["id"])["results"][0]["status"] == "pending"
    assert dr.get("/v1/protection-groups/web", headers=RITA).json["protection_group"][
        "version"] == 1


def test_a_workflow_started_in_mistral_directly_is_recorded_once_as_an_operation(sites):
    """The DR account's ``openstack workflow execution create site_recovery.dr.v1.protect``:
    its actions all ask at once; one operation is recorded, and each finds it."""
    clients, _ = sites
    setup_groups(sites)
    primary = clients["site-a"]
    group = primary.get("/v1/protection-groups/web", headers=RITA).json[
        "protection_group"]["id"]
    launcher(primary).roots["direct"] = Root(
        "direct", "svc", workbooks.workflow_name("protect"),
        {"protection_group_ids": [group], "operation_id": None})
    answers = []

    def act():
        answers.append(report(primary, "", execution="direct", protection_group_id=group,
                              status="running", step="protect"))

    threads = [threading.Thread(target=act) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 4, [a.json for a in answers]
    (op_id,) = {a.json["operation_id"] for a in answers}
    operations = primary.get("/v1/operations", headers=RITA).json["operations"]
    assert [(o["id"], o["operation_type"], o["mistral_execution_id"], o["status"])
            for o in operations] == [(op_id, "protect", "direct", "running")]
    assert operations[0]["requested_by"]["execution"] == "direct"


def test_the_pack_capture_acts_without_an_operation_and_other_workflows_do_not(sites):
    clients, _ = sites
    setup_groups(sites)
    primary = clients["site-a"]
    roots = launcher(primary).roots
    roots["cron"] = Root("cron", "svc", workbooks.workflow_name("capture_site"), {})
    roots["mine"] = Root("mine", "svc", "somebody.else", {})
    captured = report(primary, "", execution="cron", status="running")
    assert (captured.status_code, captured.json) == (200, {"operation_id": None})
    assert primary.get("/v1/operations", headers=RITA).json["operations"] == []
    other = report(primary, "", execution="mine", status="running")
    assert other.status_code == 403
    assert "runs somebody.else, which is none of the pack's operations" in other.json[
        "error"]["message"]


def test_a_push_cannot_give_a_group_to_another_project_nor_take_its_version_back(sites):
    clients, _ = sites
    setup_groups(sites)
    peer = clients["site-b"]
    group = peer.get("/v1/protection-groups/web", headers=RITA).json["protection_group"]
    document = peer.get(f"/v1/internal/protection-groups/{group['id']}",
                        headers=SERVICE).json["document"]
    path = f"/v1/internal/protection-groups/{group['id']}"
    stolen = peer.put(path, headers=SERVICE, json={
        "document": {**document, "project_name": "analytics", "version": 2},
        "expected_version": 1})
    assert stolen.status_code == 403 and "cannot give it to another project" in stolen.json[
        "error"]["message"]
    backwards = peer.put(path, headers=SERVICE, json={
        "document": {**document, "description": "older", "version": 1},
        "expected_version": 1})
    assert backwards.status_code == 400 and "moves it forward" in backwards.json["error"][
        "message"]
    assert peer.get(path, headers=SERVICE).json["document"] == document


def test_a_same_named_project_in_another_domain_owns_nothing_of_this_one(sites):
    """Keystone makes a project's name unique only within its domain: ``ecommerce`` of
    domain ``partners`` is another tenant."""
    clients, _ = sites
    dr, op, _ = a_drill(sites)
    primary = clients["site-a"]
    stranger = {**user("mallory", "ecommerce", "member", "admin"),
                "X-Project-Domain-Name": "partners"}
    mapping = primary.post("/v1/resource-mappings", headers=ALICE, json={
        "kind": "flavor", "source": "m1.small", "target": "dr.small"})
    assert mapping.status_code == 201
    before = {site: client.get("/v1/protection-groups/web", headers=RITA).json
              for site, client in clients.items()}
    for method, path, body in (
            ("GET", "/v1/protection-groups/web", None),
            ("PATCH", "/v1/protection-groups/web", {"description": "mine now"}),
            ("POST", "/v1/protection-groups/web/members",
             {"server_id": "6f1d2b9e-3c1a-4c55-9d0e-0f6a1b2c3d4e"}),
            ("DELETE", "/v1/protection-groups/web", None),
            ("GET", f"/v1/resource-mappings/{mapping.json['resource_mapping']['id']}", None),
            ("GET", f"/v1/operations/{op['id']}", None)):
        reply = primary.open(path, method=method, json=body, headers=stranger)
        assert reply.status_code == 404, (method, path, reply.json)
    assert dr.post("/v1/protection-groups/web/failover", headers=stranger, json={
        "failover_type": "unplanned", "force": True}).status_code == 404
    for listing, key in (("/v1/protection-groups", "protection_groups"),
                         ("/v1/resource-mappings", "resource_mappings"),
                         ("/v1/operations", "operations"), ("/v1/audit-log", "entries")):
        assert primary.get(listing, headers=stranger).json[key] == [], listing
    # Its own group of the same name is its own, on both sites.
    mine = primary.post("/v1/protection-groups", headers=stranger, json={
        **WEB, "description": "partners' web"})
    assert mine.status_code == 201, mine.json
    assert mine.json["protection_group"]["project_domain"] == "partners"
    assert [g["project_domain"] for g in dr.get(
        "/v1/protection-groups", headers=stranger).json["protection_groups"]] == ["partners"]
    assert {site: client.get("/v1/protection-groups/web", headers=RITA).json
            for site, client in clients.items()} == before


def _members(clients) -> dict:
    return {site: [m["server_id"] for m in client.get(
        "/v1/protection-groups/web/members", headers=RITA).json["members"]]
        for site, client in clients.items()}


def test_a_group_takes_only_its_own_projects_servers_checked_on_its_primary_site(sites):
    """Nova, asked with the caller's token, decides: another project's server (which an
    admin's token would show) is refused, named, and neither site changes."""
    clients, _ = sites
    setup_groups(sites)
    nova = services(clients["site-a"].application).tenants
    bobs, alices = str(uuid.uuid4()), str(uuid.uuid4())
    nova.elsewhere[bobs] = "id-analytics"
    group_path = "/v1/protection-groups/web/members"
    versions = [c.get("/v1/protection-groups/web", headers=RITA).json["protection_group"][
        "version"] for c in clients.values()]

    refused = clients["site-a"].post(group_path, json={"server_id": bobs}, headers=ALICE)
    assert refused.status_code == 400
    assert f"server {bobs} is not a server of project ecommerce on site-a" in \
        refused.json["error"]["message"]
    as_admin = clients["site-a"].post(f"{group_path}?all_projects=true",
                                      json={"server_id": bobs}, headers=ADMIN)
    assert as_admin.status_code == 400, "an admin's token shows it, but it is not alice's"
    elsewhere = clients["site-b"].post(group_path, json={"server_id": alices}, headers=ALICE)
    assert elsewhere.status_code == 409 and "add its members there" in \
        elsewhere.json["error"]["message"]
    assert _members(clients) == {"site-a": [], "site-b": []}
    assert [c.get("/v1/protection-groups/web", headers=RITA).json["protection_group"][
        "version"] for c in clients.values()] == versions

    added = clients["site-a"].post(group_path, json={"server_id": alices}, headers=ALICE)
    assert added.status_code == 201
    assert added.json["member"]["server_name"] == f"vm-{alices[:8]}", "Nova's name"
    assert _members(clients) == {"site-a": [alices], "site-b": [alices]}


def test_a_project_created_again_under_an_old_name_is_another_tenant(sites, tmp_path,
                                                                    monkeypatch):
    """Each site records the id Keystone gives a project the first time it meets it: a
    project deleted and created again under the same name (another id) is refused on both
    sites before any view runs, named, and nothing changes; once a cloud admin has the
    site forget the old record, the name is the newcomer's there."""
    clients, _ = sites
    dr, op, _ = a_drill(sites)
    newcomer = {**ALICE, "X-Project-Id": "id-ecommerce-created-again"}
    before = {site: client.get("/v1/protection-groups/web", headers=RITA).json
              for site, client in clients.items()}
    for site, client in clients.items():
        for method, path, body in (
                ("GET", "/v1/protection-groups", None),
                ("GET", f"/v1/operations/{op['id']}", None),
                ("PATCH", "/v1/protection-groups/web", {"description": "mine now"}),
                ("POST", "/v1/protection-groups", {**WEB, "name": "another"}),
                ("DELETE", "/v1/protection-groups/web", None),
                ("POST", "/v1/protection-groups/web/failover",
                 {"failover_type": "unplanned", "force": True})):
            reply = client.open(path, method=method, json=body, headers=newcomer)
            assert reply.status_code == 403, (site, method, path, reply.json)
            assert f"project ecommerce on {site} is not the project whose protection " \
                   "groups" in reply.json["error"]["message"]
    assert {site: client.get("/v1/protection-groups/web", headers=RITA).json
            for site, client in clients.items()} == before
    assert len(launcher(dr).started) == 1, "only the drill"

    config = services(clients["site-a"].application).config
    path = tmp_path / "protector.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    assert commands.main(["--config", str(path), "forget-project", "ecommerce"]) == 0
    assert commands.main(["--config", str(path), "forget-project", "ecommerce"]) == 1
    mine = clients["site-a"].get("/v1/protection-groups", headers=newcomer)
    assert [g["name"] for g in mine.json["protection_groups"]] == ["web"]
    # The API process trusted the old id's last match for a minute at most (as long as
    # keystonemiddleware trusts a validated token): after that, the old id is refused.
    assert clients["site-a"].get("/v1/protection-groups", headers=ALICE).status_code == 200
    later = time.monotonic() + projects.CONFIRMED_FOR + 1
    monkeypatch.setattr(projects, "time", SimpleNamespace(monotonic=lambda: later))
    assert clients["site-a"].get("/v1/protection-groups", headers=ALICE).status_code == 403
    assert clients["site-b"].get("/v1/protection-groups", headers=newcomer).status_code == 403


def test_the_engine_scopes_to_the_project_id_its_site_recorded(sites):
    """The workflows ask their site for a group's project id (recorded on first meeting,
    else the one Keystone gives the DR account signing in); a project that owns no group
    there, and every caller but the workflows' account, get nothing."""
    clients, _ = sites
    dr = setup_groups(sites)
    primary = clients["site-a"]
    assert primary.get("/v1/internal/projects/Default/ecommerce", headers=SERVICE).json == {
        "project_id": "id-ecommerce"}, "recorded when alice created the group"
    signed_in = []
    projects = services(dr.application).projects
    projects._keystone_project_id = lambda project: signed_in.append(project) or "id-b"
    for _ in range(2):
        assert dr.get("/v1/internal/projects/Default/ecommerce", headers=SERVICE).json == {
            "project_id": "id-b"}
    assert signed_in == [("Default", "ecommerce")], "Keystone asked once, then recorded"
    assert dr.get("/v1/protection-groups", headers=ALICE).status_code == 403, \
        "site-b's Keystone calls it id-b: a token naming another id is another project"
    assert primary.get("/v1/internal/projects/Default/analytics",
                       headers=SERVICE).status_code == 404
    for stranger in (HEAT, ALICE, ADMIN):
        assert primary.get("/v1/internal/projects/Default/ecommerce",
                           headers=stranger).status_code == 403

    clouds = Clouds(services(dr.application).config, project_ids=projects.resolve)
    auth = clouds._auth("site-b", Project("Default", "ecommerce"))
    assert auth["project_id"] == "id-b" and "project_name" not in auth
    unrecorded = Clouds(services(dr.application).config)._auth(
        "site-b", Project("partners", "ecommerce"))
    assert (unrecorded["project_name"], unrecorded["project_domain_name"]) == (
        "ecommerce", "partners") and "project_id" not in unrecorded


def test_a_mapping_target_is_checked_where_its_group_recovers(sites):
    """A group's mapping written on its primary is checked on its DR site (the peer,
    through its internal API), a project's mapping on the DR site of each of its groups:
    another project's network or security group there is refused, named, and neither site
    stores anything. A project with no group yet has nowhere to check."""
    clients, _ = sites
    setup_groups(sites)
    services(clients["site-b"].application).references.elsewhere.update(
        {"bobs-net", "bobs-sg"})

    def mappings() -> dict:
        return {site: client.get("/v1/resource-mappings", headers=RITA).json[
            "resource_mappings"] for site, client in clients.items()}

    before = mappings()
    for site, given in (
            ("site-a", {"kind": "network", "source": "prod-net", "target": "bobs-net",
                        "protection_group": "web"}),
            ("site-b", {"kind": "security_group", "source": "web-sg", "target": "bobs-sg"})):
        reply = clients[site].post("/v1/resource-mappings", json=given, headers=ALICE)
        assert reply.status_code == 400, (site, reply.json)
        noun = given["kind"].replace("_", " ")
        assert f"{noun} '{given['target']}' is not a {noun} of project ecommerce on " \
               "site-b" in reply.json["error"]["message"]
    assert mappings() == before
    made = clients["site-a"].post("/v1/resource-mappings", headers=ALICE, json={
        "kind": "network", "source": "prod-net", "target": "dr-prod-net",
        "protection_group": "web"})
    assert made.status_code == 201
    mapping = made.json["resource_mapping"]
    moved = clients["site-a"].patch(f"/v1/resource-mappings/{mapping['id']}",
                                    json={"target": "bobs-net"}, headers=ALICE)
    assert moved.status_code == 400
    assert clients["site-b"].get(f"/v1/resource-mappings/{mapping['id']}", headers=RITA).json[
        "resource_mapping"]["target"] == "dr-prod-net"
    nothing_yet = clients["site-a"].post("/v1/resource-mappings", headers=BOB, json={
        "kind": "network", "source": "x-net", "target": "bobs-net"})
    assert nothing_yet.status_code == 201, "bob's project has no group to recover yet"
    assert clients["site-b"].get("/v1/internal/references?project_name=ecommerce&kind="
                                 "network&ref=bobs-net", headers=ALICE).status_code == 403
