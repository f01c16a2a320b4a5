"""A member's boot tier and health gate, set by the tenant on either site and kept on
both; a group's priority orders a site failover."""

from __future__ import annotations

from tests.unit.test_webhook_operations import DB, DR_ADMIN, WEB, launcher, peer_is, protected
from tests.unit.test_webhook_operations import setup_groups as groups
from tests.unit.test_webhook_workflow_endpoints import SERVER, a_group_with_a_member
from tests.unit.webhook_sites import ALICE, BOB, RITA

MEMBER = f"/v1/protection-groups/prod-ecommerce-web/members/{SERVER}"


def members(client) -> list[dict]:
    return client.get("/v1/protection-groups/prod-ecommerce-web/members",
                      headers=RITA).json["members"]


def test_a_members_tier_and_gate_are_set_on_both_sites_and_unset_with_null(sites):
    clients, _ = sites
    a_group_with_a_member(clients)
    reply = clients["site-b"].patch(MEMBER, headers=ALICE, json={
        "boot_tier": 0, "gate": {"console_marker": "ready to accept connections",
                                 "timeout_seconds": 120}})
    assert reply.status_code == 200, reply.json
    assert (reply.json["member"]["boot_tier"], reply.json["member"]["gate"]) == (
        0, {"console_marker": "ready to accept connections", "timeout_seconds": 120})
    for client in clients.values():
        (member,) = members(client)
        assert member["boot_tier"] == 0 and member["gate"]["timeout_seconds"] == 120
    # Only what is given changes; null unsets.
    assert clients["site-a"].patch(MEMBER, headers=ALICE,
                                   json={"gate": None}).status_code == 200
    for client in clients.values():
        (member,) = members(client)
        assert (member["boot_tier"], member["gate"]) == (0, None)


def test_a_bad_setting_or_caller_is_refused_and_changes_nothing(sites):
    clients, _ = sites
    a_group_with_a_member(clients)
    site_a = clients["site-a"]
    for body, word in (({}, "nothing to change"), ({"boot_tier": 100}, "boot_tier"),
                       ({"gate": {"console_marker": ""}}, "console_marker"),
                       ({"gate": {"console_marker": "x", "timeout_seconds": 0}},
                        "timeout_seconds")):
        reply = site_a.patch(MEMBER, headers=ALICE, json=body)
        assert reply.status_code == 400 and word in reply.json["error"]["message"], body
    assert site_a.patch(MEMBER, headers=RITA, json={"boot_tier": 1}).status_code == 403
    assert site_a.patch(MEMBER, headers=BOB, json={"boot_tier": 1}).status_code == 404
    stranger = "/v1/protection-groups/prod-ecommerce-web/members/" \
               "00000000-0000-4000-8000-000000000001"
    assert site_a.patch(stranger, headers=ALICE, json={"boot_tier": 1}).status_code == 404
    for client in clients.values():
        (member,) = members(client)
        assert (member["boot_tier"], member["gate"]) == (None, None)


def test_a_site_failover_starts_the_higher_priority_groups_first(sites):
    dr = groups(sites, WEB, {**DB, "priority": 500})
    protected(sites, "web", "db")
    peer_is(dr, False)
    reply = dr.post("/v1/sites/site-a/failover", headers=DR_ADMIN,
                    json={"failover_type": "unplanned", "force": True})
    assert reply.status_code == 202, reply.json
    ((_, given),) = launcher(dr).started
    by_id = {g["id"]: g["name"] for g in dr.get("/v1/protection-groups",
                                                 headers=ALICE).json["protection_groups"]}
    assert [by_id[g] for g in given["protection_group_ids"]] == ["db", "web"]
    assert dr.get("/v1/protection-groups/db", headers=ALICE).json[
        "protection_group"]["priority"] == 500
