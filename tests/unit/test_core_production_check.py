"""After a drill, the check that production replication is as protect left it: reported
as the drill's finding, never a failure, through the mock storage driver."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from site_recovery.core import recovery
from site_recovery.core.plan import array_volume_name
from tests.conftest import make_volumes
from tests.unit.documents import group_document

ARRAYS = {"site-a": "fa-a", "site-b": "fa-b"}
VOLUME_IDS = ("6f1d2b9e-3c1a-4c55-9d0e-0f6a1b2c3d4e", "7a2e3c0f-4d2b-4d66-8e1f-1a7b2c3d4e5f")


def drilled(fabric, mock, replication="async"):
    """A protected group with one recovery point on the DR array, as a drill leaves it;
    the engine reaches the arrays through the mock storage driver."""
    server = {"id": "s-1", "name": "db-1", "flavor": "m1.large", "ports": [],
              "volumes": [{"id": v, "boot_index": 0 if i == 0 else None}
                          for i, v in enumerate(VOLUME_IDS)]}
    document = group_document(id="0d6f3c52-9d1e-4a8e-8f0c-1b2a3c4d5e6f",
                              name="prod-ecommerce-db", project_name="ecommerce",
                              primary_site="site-a", secondary_site="site-b",
                              replication_type=replication, rpo_target_seconds=300,
                              members=[{"server_id": "s-1", "server_name": "db-1",
                                        "spec": {"version": 1, "server": server}}])
    config = SimpleNamespace(site="site-b",             # a drill runs on the DR site
                             array_of=lambda site: SimpleNamespace(name=ARRAYS[site]))
    engine = recovery.Engine(config, SimpleNamespace(storage=lambda: mock),
                             SimpleNamespace(group=lambda group_id: document))
    spec = engine.group(document["id"]).protection(config)
    mock.protect(spec, make_volumes(fabric, "fa-a", [array_volume_name(v) for v in VOLUME_IDS]))
    point = mock.replicate_now(spec, timeout=5)
    return engine, document["id"], spec, point.name


@pytest.mark.parametrize("replication", ["async", "sync"])
def test_a_drill_that_left_production_alone_says_so(fabric, mock, replication):
    engine, group, _, point = drilled(fabric, mock, replication)
    assert recovery.production_check(engine, group, point) == {
        "test_prefix": "test-", "production_replication": "unaffected"}


def test_a_replication_link_down_after_a_drill_is_reported_not_raised(fabric, mock):
    engine, group, _, point = drilled(fabric, mock)
    fabric.set_link("fa-a", "fa-b", up=False)
    found = recovery.production_check(engine, group, point)
    assert found["test_prefix"] == "test-"
    assert found["production_replication"] == (
        "affected: replication link fa-a -> fa-b is down (connection status: connecting)")


def test_an_unreachable_primary_array_is_seen_from_the_dr_array_as_its_link_down(fabric,
                                                                                  mock):
    """The DR site asks its own array (it holds no key to the primary's): the primary
    gone is the link from it down, said once."""
    engine, group, _, point = drilled(fabric, mock)
    fabric.set_array_up("fa-a", False)
    found = recovery.production_check(engine, group, point)["production_replication"]
    assert found.startswith("affected: replication link fa-a -> fa-b is down")
    assert found.count("fa-a -> fa-b") == 1


def test_a_member_volume_no_longer_replicated_is_named(fabric, mock):
    """Taken out of the pgroup, a volume is missing from the next recovery point, which
    is what the DR array shows."""
    engine, group, spec, point = drilled(fabric, mock)
    mock.remove_members(spec, [array_volume_name(VOLUME_IDS[1])])
    mock.replicate_now(spec, timeout=5)
    assert recovery.production_check(engine, group, point)["production_replication"] == (
        f"affected: the newest recovery point of {spec.name} on fa-b lacks "
        f"{array_volume_name(VOLUME_IDS[1])} (1 of 2 member volumes)")


def test_the_drills_recovery_point_gone_from_the_dr_array_is_reported(fabric, mock):
    engine, group, spec, point = drilled(fabric, mock)
    newer = mock.replicate_now(spec, timeout=5)
    fabric.array("fa-b").destroy_pgroup(point)
    assert recovery.production_check(engine, group, point)["production_replication"] == (
        f"affected: recovery point {point}, which the drill used, is gone from fa-b "
        f"(newest left: {newer.name})")
