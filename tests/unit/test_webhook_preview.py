"""Dry runs over HTTP: the same doors as the operation they preview, a plan instead of an
operation, and nothing recorded: no operation, no workflow, no audit entry, no key used."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from site_recovery.core.config import ArrayConfig
from site_recovery.core.plan import spec_document
from site_recovery.webhook.preview import Previews
from site_recovery.webhook.services import EXTENSION, services
from tests.unit.test_core_plan import WEB_1, WEB_SG
from tests.unit.test_core_preview import Points, point
from tests.unit.test_core_readiness import DrSite
from tests.unit.test_webhook_operations import (
    DB,
    DR_ADMIN,
    launcher,
    peer_is,
    protected,
    setup_groups,
)
from tests.unit.test_webhook_operations import WEB as WEB_GROUP
from tests.unit.webhook_sites import ALICE, BOB, RITA, SERVICE

SERVER = "6f1d2b9e-3c1a-4c55-9d0e-0f6a1b2c3d4e"
WEB = dataclasses.replace(WEB_1, id=SERVER)


@pytest.fixture
def dr(sites):
    """site-b, the DR site of web: one captured member, protected; its array holds a
    point a minute old, its cloud a DR network for web's."""
    clients, _ = sites
    dr = setup_groups(sites, WEB_GROUP, DB)
    site_a = clients["site-a"]
    group = site_a.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]
    assert site_a.post("/v1/protection-groups/web/members", json={"server_id": SERVER},
                       headers=ALICE).status_code == 201
    assert site_a.put(f"/v1/internal/protection-groups/{group['id']}/capture", json={
        "specs": {SERVER: spec_document(WEB, {"sg-1": WEB_SG})}},
        headers=SERVICE).status_code == 200
    assert site_a.post("/v1/resource-mappings", json={
        "kind": "network", "source": "prod-net", "target": "dr-net"},
        headers=ALICE).status_code == 201
    protected(sites, "web")
    array = Points(point("fa-a:sr.7", 60), holding=[f"volume-{WEB_1.volumes[0].id}-cinder"])
    previewing(dr, array, DrSite({"dr-net": "10.0.0.0/24"}))
    return dr


def previewing(dr, array, cloud):
    """The site's dry runs read ``array`` and ``cloud``."""
    site = services(dr.application)
    config = site.config.model_copy(update={"arrays": [
        ArrayConfig(name="fa-a", site="site-a", address="fa-a", cinder_host="a@pure#fa-a"),
        ArrayConfig(name="fa-b", site="site-b", address="fa-b", cinder_host="b@pure#fa-b")]})
    dr.application.extensions[EXTENSION] = dataclasses.replace(site, previews=Previews(
        site.sessions, config, lambda: array, lambda where, project: cloud))


def nothing_recorded(dr) -> tuple[list, list]:
    return (dr.get("/v1/operations?all_projects=true", headers=DR_ADMIN).json["operations"],
            launcher(dr).started)


def test_a_drills_dry_run_answers_its_plan_and_starts_nothing(dr):
    audited = dr.get("/v1/audit-log", headers=ALICE).json["entries"]
    headers = {**ALICE, "Idempotency-Key": "drill-1"}
    reply = dr.post("/v1/protection-groups/web/test-failover", headers=headers,
                    json={"dry_run": True, "network_mapping": {"prod-net": "dr-net"}})
    assert reply.status_code == 200, reply.json
    plan = reply.json["plan"]
    assert (plan["dry_run"], plan["operation_type"], plan["recovered_on"], plan["ready"]) == (
        True, "test_failover", "site-b", True)
    (group,) = plan["protection_groups"]
    assert group["recovery_point"]["name"] == "fa-a:sr.7"
    assert group["stack"]["name"] == "test-web"
    assert [(s["name"], [p["ip_address"] for p in s["ports"]]) for s in group["servers"]] \
        == [("test-web-1", ["10.0.0.11"])]
    assert nothing_recorded(dr) == ([], [])
    assert dr.get("/v1/audit-log", headers=ALICE).json["entries"] == audited
    # The key was not spent: the drill itself starts with it.
    assert dr.post("/v1/protection-groups/web/test-failover", headers=headers,
                   json={"network_mapping": {"prod-net": "dr-net"}}).status_code == 202


def test_a_dry_run_is_refused_where_the_operation_would_be_and_leaves_no_trace(dr, sites):
    clients, _ = sites
    audited = dr.get("/v1/audit-log", headers=ALICE).json["entries"]
    unforced = dr.post("/v1/protection-groups/web/failover", headers=ALICE,
                       json={"failover_type": "unplanned", "dry_run": True})
    assert unforced.status_code == 409 and "needs force" in unforced.json["error"]["message"]
    assert dr.post("/v1/protection-groups/web/test-failover", json={"dry_run": True},
                   headers=RITA).status_code == 403
    assert dr.post("/v1/protection-groups/web/test-failover", json={"dry_run": True},
                   headers=BOB).status_code == 404
    elsewhere = clients["site-a"].post("/v1/protection-groups/web/test-failover",
                                       json={"dry_run": True}, headers=ALICE)
    assert elsewhere.status_code == 409 and "recovers on site-b" in elsewhere.json[
        "error"]["message"]
    wrong = dr.post("/v1/protection-groups/web/test-failover", json={"dry_run": "yes"},
                    headers=ALICE)
    assert wrong.status_code == 400 and "dry_run" in wrong.json["error"]["message"]
    assert nothing_recorded(dr) == ([], [])
    assert dr.get("/v1/audit-log", headers=ALICE).json["entries"] == audited


def test_an_unplanned_dry_run_measures_the_loss_to_when_the_peer_was_last_seen(dr):
    peer_is(dr, False)
    plan = dr.post("/v1/protection-groups/web/failover", headers=ALICE, json={
        "failover_type": "unplanned", "force": True, "dry_run": True}).json["plan"]
    (group,) = plan["protection_groups"]
    assert group["stack"]["name"] == "dr-web" and group["servers"][0]["name"] == "web-1"
    point = group["recovery_point"]
    assert point["rpo_seconds"] <= point["age_seconds"]
    assert nothing_recorded(dr) == ([], [])


def test_a_site_failovers_dry_run_plans_each_group_and_names_those_it_would_leave_out(dr):
    peer_is(dr, False)
    reply = dr.post("/v1/sites/site-a/failover", headers=DR_ADMIN, json={
        "failover_type": "unplanned", "force": True, "dry_run": True})
    assert reply.status_code == 200, reply.json
    plan = reply.json["plan"]
    assert [g["protection_group"] for g in plan["protection_groups"]] == ["web"]
    assert plan["skipped"] == {"db": "not protected (status unprotected): it has no "
                                     "replica to recover"}
    assert plan["site"] == "site-a" and plan["ready"]
    assert dr.post("/v1/sites/site-a/failover", headers=ALICE, json={
        "failover_type": "unplanned", "force": True, "dry_run": True}).status_code == 403
    assert nothing_recorded(dr) == ([], [])


def test_what_would_stop_the_recovery_is_in_the_plan(dr):
    late = datetime.now(UTC) - timedelta(seconds=5)
    previewing(dr, Points(dataclasses.replace(point("fa-a:sr.8", 5), created=late)),
               DrSite({}))                       # a point without the member, no dr-net
    plan = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE,
                   json={"dry_run": True}).json["plan"]
    (group,) = plan["protection_groups"]
    assert not plan["ready"]
    assert any("does not hold every member volume" in p for p in group["problems"])
    assert any("no network 'dr-net'" in p for p in group["problems"])
