"""A dry run's plan: what a recovery would copy, build and address, from what the
recovery itself reads, and what would stop it, every problem at once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from site_recovery.core.model import FixedIp, Port, Purpose, Volume
from site_recovery.core.plan import GroupPlan, array_volume_name, spec_document
from site_recovery.core.preview import point_plan, recovery_plan
from site_recovery.storage.base import ProtectionSpec, RecoveryPoint
from site_recovery.storage.errors import NoRecoveryPoint
from tests.unit.test_core_plan import WEB_1, WEB_SG, document, mapping
from tests.unit.test_core_readiness import DrSite

DB_1 = replace(WEB_1, id="srv-2", name="db-1", boot_order=1, key_name=None,
               public_key=None, server_group=None, availability_zone=None,
               ports=(Port("net-1", (FixedIp("10.0.0.21", "10.0.0.0/24"),), ("sg-1",),
                           "prod-net"),
                      Port("net-2", (FixedIp("10.5.0.9", "10.5.0.0/24"),), (),
                           "backup-net")),
               volumes=(Volume("vol-2", 0, None, "db-1-boot", "replicated-ssd"),
                        Volume("vol-3", None, "/dev/vdb", "db-1-data", "replicated-ssd")))
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def group() -> GroupPlan:
    return GroupPlan(document([
        {"server_id": s.id, "server_name": s.name, "spec": spec_document(s, {"sg-1": WEB_SG})}
        for s in (WEB_1, DB_1)]))


def test_the_plan_names_each_copy_each_address_the_boot_order_and_the_stack():
    plan = recovery_plan(group(), [mapping("network", "prod-net", "dr-net"),
                                   mapping("network", "backup-net", "dr-backup")],
                         DrSite({"dr-net": "10.0.0.0/24", "dr-backup": "10.8.0.0/24"}),
                         Purpose.FAILOVER)
    assert plan["problems"] == []
    assert [(v["server"], v["copy_name"], v["boot"]) for v in plan["volumes"]] == [
        ("db-1", "db-1-boot", True), ("db-1", "db-1-data", False),
        ("web-1", "web-1-boot", True)]
    assert plan["boot_order"] == [{"boot_order": 1, "servers": ["db-1"], "gates": {}},
                                  {"boot_order": 2, "servers": ["web-1"], "gates": {}}]
    db, web = plan["servers"]
    assert [(p["network_name"], p["source_ip"], p["ip_address"], p["address"])
            for p in db["ports"]] == [("dr-net", "10.0.0.21", "10.0.0.21", "kept"),
                                      ("dr-backup", "10.5.0.9", None, "allocated")]
    assert (web["name"], web["key_name"], web["availability_zone"]) == (
        "web-1", "ecommerce-key", "az-a1")
    assert plan["stack"]["name"] == "dr-prod-ecommerce-web"
    resources = {r["name"]: r for r in plan["stack"]["resources"]}
    assert resources["server_1"]["type"] == "OS::Nova::Server"
    assert resources["server_1"]["depends_on"] == ["server_0"]    # web waits for db
    assert {r["type"] for r in resources.values()} >= {
        "OS::Neutron::Port", "OS::Neutron::SecurityGroup", "OS::Nova::KeyPair",
        "OS::Nova::ServerGroup", "OS::Cinder::VolumeAttachment"}


def test_an_ip_rule_moves_an_address_and_a_drill_prefixes_what_it_builds():
    plan = recovery_plan(group(), [mapping("network", "prod-net", "dr-net"),
                                   mapping("network", "backup-net", "dr-backup"),
                                   mapping("ip_rule", "10.5.0.0/24", "10.8.0.0/24")],
                         DrSite({"dr-net": "10.0.0.0/24", "dr-backup": "10.8.0.0/24"}),
                         Purpose.DRILL, network_mapping={"prod-net": "isolated"})
    assert plan["problems"] == ["network mapping prod-net -> isolated: no network "
                                "'isolated' on site-b for project ecommerce"]
    isolated = recovery_plan(group(), [mapping("network", "backup-net", "dr-backup"),
                                       mapping("ip_rule", "10.5.0.0/24", "10.8.0.0/24")],
                             DrSite({"isolated": "192.168.0.0/24",
                                     "dr-backup": "10.8.0.0/24"}),
                             Purpose.DRILL, network_mapping={"prod-net": "isolated"})
    assert isolated["problems"] == []
    assert isolated["stack"]["name"] == "test-prod-ecommerce-web"
    db = isolated["servers"][0]
    assert db["name"] == "test-db-1"
    assert [(p["ip_address"], p["address"]) for p in db["ports"]] == [
        (None, "allocated"), ("10.8.0.9", "moved")]


def test_every_problem_is_named_at_once_and_the_copies_are_still_listed():
    plan = recovery_plan(group(), [mapping("network", "prod-net", "dr-net")],
                         DrSite({"dr-net": "10.0.0.0/24"}), Purpose.FAILOVER)
    assert plan["problems"] == ["server db-1: network backup-net has no mapping to a DR "
                                "network"]
    assert plan["stack"]["resources"] == [] and len(plan["volumes"]) == 3
    uncaptured = recovery_plan(GroupPlan(document([{"server_id": "srv-9",
                                                    "server_name": "app-9", "spec": None}])),
                               [], DrSite({}), Purpose.FAILOVER)
    assert "members ['app-9'] have not been captured" in uncaptured["problems"][0]


class Points:
    """The DR array's recovery points, as the storage driver reads them."""

    def __init__(self, *points: RecoveryPoint, holding=()):
        self.points, self.holding = list(points), set(holding)

    def newest_recovery_point(self, spec):
        usable = [p for p in self.points if p.fully_transferred]
        if not usable:
            raise NoRecoveryPoint(spec.target_array, spec.name, "no replicated snapshot")
        return usable[0]

    def recovery_points(self, spec):
        return self.points

    def point_holds(self, spec, point, volumes):
        return set(volumes) <= self.holding


SPEC = ProtectionSpec("sr-1", "async", "fa-a", "fa-b")
MEMBERS = [array_volume_name("vol-1")]


def point(name: str, age: float, progress: float = 1.0) -> RecoveryPoint:
    created = NOW - timedelta(seconds=age)
    return RecoveryPoint(name, "sr-1", "fa-b", created, created if progress >= 1 else None,
                         progress)


def test_the_point_is_the_newest_transferred_one_its_loss_measured_to_when_the_primary_went():
    array = Points(point("fa-a:sr-1.3", 5, 0.4), point("fa-a:sr-1.2", 60), holding=MEMBERS)
    newest, problems = point_plan(array, SPEC, NOW, members=MEMBERS)
    assert (newest["name"], newest["rpo_seconds"], problems) == ("fa-a:sr-1.2", 60.0, [])
    lost, _ = point_plan(array, SPEC, NOW, lost_at=NOW - timedelta(seconds=45),
                         members=MEMBERS)
    assert (lost["age_seconds"], lost["rpo_seconds"]) == (60.0, 15.0)
    planned, _ = point_plan(array, SPEC, NOW, planned=True, members=MEMBERS)
    assert planned["replicated_at_start"] and planned["rpo_seconds"] == 0.0
    assert planned["newest"]["name"] == "fa-a:sr-1.2"


def test_a_point_that_cannot_recover_the_group_is_a_problem():
    none, problems = point_plan(Points(point("fa-a:sr-1.3", 5, 0.4)), SPEC, NOW,
                                members=MEMBERS)
    assert none is None and "no usable recovery point" in problems[0]
    named, problems = point_plan(Points(point("fa-a:sr-1.3", 5, 0.4)), SPEC, NOW,
                                 name="fa-a:sr-1.3", members=MEMBERS)
    assert named is None and "not fully transferred (40%)" in problems[0]
    early, problems = point_plan(Points(point("fa-a:sr-1.2", 60)), SPEC, NOW,
                                 members=MEMBERS)
    assert early["name"] == "fa-a:sr-1.2" and "does not hold every member" in problems[0]
