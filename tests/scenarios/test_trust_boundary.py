"""The trust boundary tried as an attacker would, on the lab (real Keystone, real Mistral,
the pack's actions installed): each attack is refused, and both clouds, both arrays and
both sites' records are exactly as they were (see docs/security.md for the threat model).

The target: a protected group of bob's (project analytics). The attackers: alice, a
member of another project, running the pack's actions herself or pointing her own group at
bob's resources; heat's account, which holds ``admin`` and ``service`` like every service
account of a cloud; and whoever replays or revives an alert.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from importlib import metadata

import pytest
import requests
import yaml
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from mistralclient.api import client as mistral_client

from site_recovery.lab.fleet import seed_fleet
from site_recovery.lab.layout import TENANT_PROJECTS
from site_recovery.lab.services import keystone
from tests.scenarios.conftest import protected_group, site_a_running
from tests.scenarios.test_dr_story import inventory

GROUP = "analytics-attacked"
REFERRER = "ecommerce-referrer"
# Whatever a tenant would need to pass (names and values chosen to do harm).
HARMFUL = {
    "protect": {},
    "unprotect": {},
    "capture": {},
    "stop_servers": {"site": "site-a"},
    "fence": {},
    "reprotect": {},
    "resume_replication": {},
    "start_servers": {},
    "reverse_replication": {},
    "accept_replication": {},
    "restore_in_place": {"point": "x"},
    "preflight": {},
    "recovery_point": {"replicate": True},
    "import_volumes": {"purpose": "failover", "point": "x"},
    "build_stack": {"purpose": "failover"},
    "production_check": {"point": "x"},
    "remove_copy": {"purpose": "failover", "site": "site-a"},
    "take_over": {"site": "site-b"},
    "finish_group": {"steps": []},
}
# A scheduled drill's steps name no group: the service reads it from the run's input.
WITHOUT_GROUP = {"report": {"operation_id": None, "status": "failed", "reason": "fake"},
                 "groups_running_here": {}, "start_scheduled": {"kind": "test_failover"},
                 "scheduled_operation": {"operation_id": "x"},
                 "verify_scheduled": {"operation_id": "x"}, "finish_scheduled": {"steps": []}}


@pytest.fixture(scope="module")
def victim(lab, api, cli):
    site_a_running(lab)
    existing = api("site-a", "GET", f"/protection-groups/{GROUP}", user="bob")
    if "protection_group" in existing:            # a kept lab, attacked before
        return existing["protection_group"]
    servers = seed_fleet(lab, user="bob", prefix="atk", count=1, cidr="10.22.0.0/24")
    return protected_group(lab, api, cli, name=GROUP, prefix="atk", servers=servers)


@pytest.fixture(scope="module")
def alices_group(lab, api, cli):
    """A protected group of alice's own, on network ``ref-net`` with security group
    ``ref-sg``, mapped to her ``dr-ref-net`` on site-b."""
    site_a_running(lab)
    existing = api("site-a", "GET", f"/protection-groups/{REFERRER}")
    if "protection_group" in existing:
        return existing["protection_group"]
    servers = seed_fleet(lab, user="alice", prefix="ref", count=1, cidr="10.23.0.0/24")
    return protected_group(lab, api, cli, name=REFERRER, prefix="ref", servers=servers,
                           user="alice")


def mistral_as(lab, site: str, user: str):
    session = ks_session.Session(auth=v3.Password(**lab.sites[site].auth(user)), timeout=60)
    return mistral_client.client(mistral_url=lab.sites[site].url("mistral", "/v2"),
                                 session=session)


def records(api) -> dict:
    """Both sites' groups and operations, as an admin sees them."""
    return {site: (api(site, "GET", "/protection-groups?all_projects=true", user="admin"),
                   api(site, "GET", "/operations?all_projects=true", user="admin"))
            for site in ("site-a", "site-b")}


def everything(lab, api, clouds) -> dict:
    return {"clouds_and_arrays": inventory(lab, clouds), "records": records(api)}


def harmful_inputs(group_id: str) -> dict[str, dict]:
    return {**{name: {"group_id": group_id, **given} for name, given in HARMFUL.items()},
            **WITHOUT_GROUP}


def test_the_attack_covers_every_action_the_pack_installs():
    installed = {e.name.removeprefix("site_recovery.")
                 for e in metadata.entry_points(group="mistral.actions")
                 if e.name.startswith("site_recovery.")}
    assert installed - {"health"} == set(HARMFUL) | set(WITHOUT_GROUP)


def test_a_tenant_running_each_action_ad_hoc_is_refused_and_nothing_changes(
        lab, api, clouds, victim):
    before = everything(lab, api, clouds)
    mistral = mistral_as(lab, "site-a", "alice")
    for action, given in harmful_inputs(victim["id"]).items():
        ran = mistral.action_executions.create(f"site_recovery.{action}", given,
                                               save_result=True, run_sync=True)
        assert ran.state == "ERROR", (action, ran.output)
        assert "refused, nothing done" in ran.output, (action, ran.output)
    # The health check is the one action anyone may run: it holds no key.
    health = mistral.action_executions.create("site_recovery.health", {"echo": "x"},
                                              save_result=True, run_sync=True)
    assert health.state == "SUCCESS"
    assert everything(lab, api, clouds) == before


def test_a_tenants_own_workflow_calling_the_actions_is_refused_and_nothing_changes(
        lab, api, clouds, victim):
    before = everything(lab, api, clouds)
    mistral = mistral_as(lab, "site-a", "alice")
    tasks = {action: {"action": f"site_recovery.{action}", **({"input": given} if given
                                                             else {})}
             for action, given in harmful_inputs(victim["id"]).items()}
    definition = yaml.safe_dump({"version": "2.0", "alice.borrow": {"tasks": tasks}},
                                sort_keys=False)
    (workflow,) = mistral.workflows.create(definition)
    try:
        execution = mistral.executions.create(workflow.name, workflow_input={})
        deadline = time.monotonic() + 300
        while mistral.executions.get(execution.id).state in ("IDLE", "RUNNING"):
            assert time.monotonic() < deadline, "the tenant's workflow never ended"
            time.sleep(1)
        ended = {t.name: (t.state, t.state_info or "")
                 for t in mistral.tasks.list(workflow_execution_id=execution.id)}
        assert set(ended) == set(tasks)
        for action, (state, info) in ended.items():
            assert state == "ERROR", (action, state, info)
            assert "refused, nothing done" in info, (action, info)
            assert "is not one of the DR service's" in info, (action, info)
    finally:
        mistral.executions.delete(execution.id, force=True)
        mistral.workflows.delete(workflow.name)
    assert everything(lab, api, clouds) == before


def test_another_services_account_cannot_push_forward_or_report(lab, api, clouds, victim):
    """heat's account: ``admin`` and ``service`` in the service project, on both sites."""
    before = everything(lab, api, clouds)
    document = api("site-b", "GET", f"/internal/protection-groups/{victim['id']}",
                   user="site-recovery")["document"]
    hijacked = {**document, "project_name": "admin", "primary_site": "site-b",
                "secondary_site": "site-a", "version": document["version"] + 1}
    operations = api("site-a", "GET", "/operations?all_projects=true",
                     user="admin")["operations"]
    execution = next(o["mistral_execution_id"] for o in operations
                     if o["mistral_execution_id"])
    for site in ("site-a", "site-b"):
        token = keystone.token(lab.sites[site], "heat")
        for method, path, body in (
                ("PUT", f"/internal/protection-groups/{victim['id']}",
                 {"document": hijacked, "expected_version": document["version"]}),
                ("POST", "/internal/forward", {"change": {
                    "kind": "protection_group", "action": "update",
                    "object_id": victim["id"], "project_name": "analytics",
                    "values": {"description": "owned"},
                    "expected_version": document["version"]},
                    "actor": {"user": "bob"}}),
                ("POST", f"/internal/executions/{execution}/progress",
                 {"status": "failed", "reason": "fake"}),
                ("PUT", f"/internal/protection-groups/{victim['id']}/state",
                 {"status": "failed_over", "primary_site": "site-b",
                  "secondary_site": "site-a"}),
                ("GET", "/internal/protection-groups", None)):
            reply = requests.request(method, lab.sites[site].url("webhook", f"/v1{path}"),
                                     json=body, headers={"X-Auth-Token": token}, timeout=30,
                                     verify=lab.ca_file())
            assert reply.status_code == 403, (site, method, path, reply.text)
            assert "heat" in reply.json()["error"]["message"]
    assert everything(lab, api, clouds) == before


def test_a_same_named_project_in_another_domain_reaches_nothing_of_alices(lab, api, clouds):
    """mallory: a member of ``ecommerce`` in domain ``partners``, alice's project's name.
    Real Keystone tokens; every try is not found, and nothing changes."""
    site_a_running(lab)
    name = "ecommerce-guarded"
    if "protection_group" not in api("site-a", "GET", f"/protection-groups/{name}"):
        api("site-a", "POST", "/protection-groups", expect=201, json={
            "name": name, "replication_type": "async", "primary_site": "site-a",
            "secondary_site": "site-b", "volume_type": "replicated-ssd"})
    before = everything(lab, api, clouds)
    for site, method, path, body in (
            ("site-a", "GET", f"/protection-groups/{name}", None),
            ("site-a", "PATCH", f"/protection-groups/{name}", {"description": "mine"}),
            ("site-a", "DELETE", f"/protection-groups/{name}", None),
            ("site-a", "POST", f"/protection-groups/{name}/protect", {}),
            ("site-b", "POST", f"/protection-groups/{name}/test-failover", {}),
            ("site-b", "POST", f"/protection-groups/{name}/failover",
             {"failover_type": "unplanned", "force": True})):
        token = keystone.token(lab.sites[site], "mallory")
        reply = requests.request(method, lab.sites[site].url("webhook", f"/v1{path}"),
                                 json=body, headers={"X-Auth-Token": token}, timeout=30,
                                 verify=lab.ca_file())
        assert reply.status_code == 404, (site, method, path, reply.text)
    for listing, key in (("/protection-groups", "protection_groups"),
                         ("/operations", "operations"), ("/audit-log", "entries")):
        assert api("site-a", "GET", listing, user="mallory")[key] == [], listing
    assert everything(lab, api, clouds) == before


def test_a_project_created_again_under_an_old_name_reaches_nothing_of_the_old_ones(
        lab, api, clouds):
    """A project deleted and created again under its name is another tenant: Keystone
    gives it another id, and site-a holds the one it recorded when the name first called.
    Real Keystone tokens; every try is refused, saying why, and nothing changes."""
    site_a_running(lab)
    site = lab.sites["site-a"]
    name, password = f"phoenix-{uuid.uuid4().hex[:6]}", "phoenix-pass"
    admin = {"X-Auth-Token": keystone.token(site, "admin")}

    def identity(method, path, **kwargs):
        reply = requests.request(method, f"{site.keystone_url}{path}", headers=admin,
                                 timeout=30, **kwargs)
        reply.raise_for_status()
        return reply.json() if reply.content else {}

    owner = identity("POST", "/users", json={"user": {
        "name": name, "password": password, "domain_id": "default"}})["user"]
    (member,) = identity("GET", "/roles", params={"name": "member"})["roles"]

    def project_again() -> str:
        for old in identity("GET", "/projects", params={"name": name})["projects"]:
            identity("PATCH", f"/projects/{old['id']}", json={"project": {"enabled": False}})
            identity("DELETE", f"/projects/{old['id']}")
        project = identity("POST", "/projects", json={"project": {
            "name": name, "domain_id": "default"}})["project"]
        identity("PUT", f"/projects/{project['id']}/users/{owner['id']}/roles/{member['id']}")
        return project["id"]

    def as_owner(method, path, body=None):
        token = requests.post(f"{site.keystone_url}/auth/tokens", timeout=30, json={
            "auth": {"identity": {"methods": ["password"], "password": {"user": {
                "name": name, "password": password, "domain": {"id": "default"}}}},
                "scope": {"project": {"name": name, "domain": {"id": "default"}}}}})
        return requests.request(method, site.url("webhook", f"/v1{path}"), json=body,
                                headers={"X-Auth-Token": token.headers["X-Subject-Token"]},
                                timeout=30, verify=lab.ca_file())

    first = project_again()
    group = {"name": f"{name}-app", "replication_type": "async", "primary_site": "site-a",
             "secondary_site": "site-b", "volume_type": "replicated-ssd"}
    created = as_owner("POST", "/protection-groups", group)
    assert created.status_code == 201, created.text
    group_id = created.json()["protection_group"]["id"]
    assert project_again() != first
    before = everything(lab, api, clouds)
    for method, path, body in (
            ("GET", "/protection-groups", None),
            ("GET", f"/protection-groups/{group_id}", None),
            ("PATCH", f"/protection-groups/{group_id}", {"description": "mine now"}),
            ("DELETE", f"/protection-groups/{group_id}", None),
            ("POST", "/protection-groups", {**group, "name": f"{name}-other"})):
        reply = as_owner(method, path, body)
        assert reply.status_code == 403, (method, path, reply.text)
        assert f"project {name} on site-a is not the project whose protection groups" in \
            reply.json()["error"]["message"]
    assert everything(lab, api, clouds) == before
    api("site-a", "DELETE", f"/protection-groups/{group_id}?all_projects=true", user="admin",
        expect=204)


def test_the_dr_account_holds_no_admin_role_in_tenant_projects(lab):
    """What the rest of the suite, the story and the guides run with: ``member`` in the
    tenants' projects, ``admin`` in its own project only."""
    for site in lab.sites.values():
        token = {"X-Auth-Token": keystone.token(site, "admin")}

        def get(path, site=site, token=token, **params):
            reply = requests.get(f"{site.keystone_url}{path}", params=params, headers=token,
                                 timeout=30)
            reply.raise_for_status()
            return reply.json()

        (user,) = get("/users", name="site-recovery")["users"]
        held = {(a["scope"]["project"]["name"], a["role"]["name"])
                for a in get("/role_assignments", include_names="true",
                             **{"user.id": user["id"]})["role_assignments"]
                if "project" in a["scope"]}
        for project in TENANT_PROJECTS:
            assert (project, "member") in held, (site.name, held)
            assert (project, "admin") not in held, (site.name, held)
        assert ("service", "admin") in held, (site.name, held)


def test_a_sites_keys_to_its_peer_open_only_the_peers_protection_service(lab):
    """Each site's configuration names, for its peer, only the peer account: it holds
    ``site_recovery_service`` in the peer's service project and no other role anywhere,
    so it reaches no cloud (the role matrix shows it refused everywhere else)."""
    for site in lab.sites.values():
        peer = lab.sites[site.peer]
        here = site.run_dir / "webhook"
        entries = yaml.safe_load((here / "clouds.yaml").read_text())["clouds"]
        assert entries[peer.name]["auth"]["username"] == "site-recovery-peer"
        assert entries[site.name]["auth"]["username"] == "site-recovery"
        token = {"X-Auth-Token": keystone.token(peer, "admin")}
        user = requests.get(f"{peer.keystone_url}/users", params={"name": "site-recovery-peer"},
                            headers=token, timeout=30).json()["users"][0]
        assignments = requests.get(f"{peer.keystone_url}/role_assignments", params={
            "user.id": user["id"], "include_names": "true"}, headers=token,
            timeout=30).json()["role_assignments"]
        assert {(a["scope"]["project"]["name"], a["role"]["name"]) for a in assignments} == \
            {("service", "site_recovery_service")}


def test_another_projects_server_is_refused_as_a_member(lab, api, clouds, victim,
                                                         alices_group):
    """bob's server, by id, into alice's group: refused naming it, by alice and by an
    admin (whose token shows every project's servers); nothing changes anywhere."""
    bobs_server = clouds("site-a", "bob").compute.find_server("atk-1").id
    before = everything(lab, api, clouds)
    for user, query in (("alice", ""), ("admin", "?all_projects=true")):
        reply = api("site-a", "POST", f"/protection-groups/{alices_group['id']}/members"
                    f"{query}", user=user, expect=400, json={"server_id": bobs_server})
        assert f"server {bobs_server} is not a server of project ecommerce on site-a" in \
            reply["error"]["message"], user
    assert everything(lab, api, clouds) == before


def test_a_mapping_to_another_projects_network_or_security_group_changes_nothing(
        lab, api, clouds, victim, alices_group):
    """alice maps her group's network, then her security group, to bob's on site-b: each
    mapping is refused when she writes it on site-a (site-b looks the target up in her
    project), naming it. A drill's own network mapping to bob's network fails in the
    drill's preflight, before anything is copied or built."""
    bob = clouds("site-b", "bob")
    bobs_network = bob.network.find_network("dr-atk-net").id
    bobs_group = bob.network.find_security_group("atk-dr-sg", ignore_missing=True) or \
        bob.network.create_security_group(name="atk-dr-sg")
    before = everything(lab, api, clouds)
    for kind, source, target in (("network", "ref-net", bobs_network),
                                 ("security_group", "ref-sg", bobs_group.id)):
        refused = api("site-a", "POST", "/resource-mappings", expect=400, json={
            "kind": kind, "source": source, "target": target,
            "protection_group": REFERRER})
        noun = kind.replace("_", " ")
        assert f"{noun} '{target}' is not a {noun} of project ecommerce on site-b" in \
            refused["error"]["message"], refused
    assert everything(lab, api, clouds) == before
    started = api("site-b", "POST", f"/protection-groups/{REFERRER}/test-failover",
                  expect=202, json={"network_mapping": {"ref-net": bobs_network}})
    op = api.wait_operation("site-b", started["operation"]["id"])
    (result,) = op["results"]
    assert (op["status"], result["step"]) == ("failed", "preflight"), op
    assert f"no network '{bobs_network}' on site-b for project ecommerce" in \
        result["reason"], result
    assert inventory(lab, clouds) == before["clouds_and_arrays"]


def test_a_replayed_and_a_stale_alert_decide_nothing_new_and_change_nothing(lab, api,
                                                                           clouds):
    """Site-b's receiver, with its real secret: a delivery sent again is a duplicate, an
    alert that began two hours ago is stale, for good; nothing anywhere changes."""
    site = lab.sites["site-b"]
    secret = (site.run_dir / "webhook" / "alert.secret").read_text().strip()

    def deliver(fingerprint: str, began: datetime) -> list[str]:
        reply = requests.post(site.url("webhook", "/v1/alerts/alertmanager"), json={
            "version": "4", "status": "firing", "receiver": "site-recovery",
            "alerts": [{"status": "firing", "fingerprint": fingerprint,
                        "labels": {"alertname": "SiteDown", "site": "site-a"},
                        "startsAt": began.isoformat()}]},
            headers={"Authorization": f"Bearer {secret}"}, timeout=30,
            verify=lab.ca_file())
        assert reply.status_code == 200, reply.text
        return [d["action"] for d in reply.json()["decisions"]]

    before = everything(lab, api, clouds)
    fingerprint, fresh = f"replayed-{time.time_ns()}", datetime.now(UTC) - timedelta(minutes=5)
    assert deliver(fingerprint, fresh) == ["record"]          # the rule's mode: record
    assert deliver(fingerprint, fresh) == ["duplicate"]
    old = f"stale-{time.time_ns()}", datetime.now(UTC) - timedelta(hours=2)
    assert deliver(*old) == ["stale"]
    assert deliver(*old) == ["duplicate"]                       # remembered, for good
    assert everything(lab, api, clouds) == before
