"""What a site asks of its peer's cloud, it asks of the peer's service: a peer step, run
by the peer's own Mistral with the peer's own keys (two linked sites in process)."""

from __future__ import annotations

from tests.unit.test_webhook_operations import launcher, setup_groups
from tests.unit.test_webhook_trust import HEAT
from tests.unit.webhook_sites import ALICE, SERVICE, held


def group_id(client) -> str:
    return client.get("/v1/protection-groups/web", headers=ALICE).json[
        "protection_group"]["id"]


def ask(client, headers=SERVICE, **fields):
    return client.post("/v1/internal/peer-steps", json=fields, headers=headers)


def test_a_peer_step_is_an_operation_of_this_sites_run_by_its_own_mistral(sites):
    """site-b's planned failover stops web's VMs on site-a: site-a runs it."""
    clients, _ = sites
    setup_groups(sites)
    primary = clients["site-a"]
    asked = ask(primary, protection_group_id=group_id(primary), step="stop_servers",
                key="task-1.0", requested_by={"operation": "op-on-b"})
    assert asked.status_code == 202, asked.json
    op = asked.json["operation"]
    assert (op["operation_type"], op["protection_group"]) == ("peer_step", "web")
    (workflow, given) = launcher(primary).started[-1]
    assert workflow.endswith(".peer_step")
    assert given["params"] == {"step": "stop_servers",
                               "arguments": {"site": "site-a", "copies": False,
                                             "fence": False},
                               "requested_by": {"operation": "op-on-b", "site": "site-b"}}
    again = ask(primary, protection_group_id=group_id(primary), step="stop_servers",
                key="task-1.0")
    assert (again.status_code, again.json["operation"]["id"]) == (200, op["id"])
    assert len(launcher(primary).started) == 1, "asked again, nothing more started"
    shown = primary.get(f"/v1/internal/operations/{op['id']}", headers=SERVICE)
    assert shown.json["operation"]["id"] == op["id"]
    assert held(primary, op["id"])["requested_by"]["site"] == "site-b"
    retried = primary.post(f"/v1/operations/{op['id']}/retry", headers=ALICE)
    assert retried.status_code == 409
    assert "retry that site's operation op-on-b" in retried.json["error"]["message"]


def test_a_peer_step_is_asked_by_the_peer_only_and_checked_before_anything_starts(sites):
    clients, _ = sites
    setup_groups(sites)
    primary = clients["site-a"]
    group = group_id(primary)
    for headers in (ALICE, HEAT):
        refused = ask(primary, headers, protection_group_id=group, step="stop_servers",
                      key="k")
        assert refused.status_code == 403, refused.json
    wrong = [({"protection_group_id": group, "step": "delete_everything", "key": "k"}, 400),
             ({"protection_group_id": group, "step": "remove_copy", "key": "k"}, 400),
             ({"protection_group_id": group, "step": "stop_servers", "key": "a b"}, 400),
             ({"protection_group_id": "nope", "step": "stop_servers", "key": "k"}, 404)]
    for fields, status in wrong:
        assert ask(primary, **fields).status_code == status, fields
    assert launcher(primary).started == []
    assert primary.get("/v1/operations?all_projects=true",
                       headers={**ALICE, "X-Roles": "admin"}).json["operations"] == []


def test_only_peer_steps_are_shown_to_the_peer(sites):
    dr = setup_groups(sites)
    drill = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE).json["operation"]
    assert dr.get(f"/v1/internal/operations/{drill['id']}", headers=SERVICE).status_code == 404
