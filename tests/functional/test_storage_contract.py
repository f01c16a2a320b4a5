"""The storage driver contract, proven against every backend.

``mock`` runs the DR driver over the SQLite fabric in process; ``flasharray`` runs it over
the real ``purestorage`` SDK (REST 1.x), ``flasharray_rest2`` over the real
``py-pure-client`` SDK (REST 2.x), both over HTTPS and the lab's REST simulator serving
the same fabric. Every test states behaviour a DR operator relies on, and every backend
must show it.
"""

from __future__ import annotations

import socket
import time

import pytest

from site_recovery.lab import flasharray_sim
from site_recovery.lab.flasharray_sim import SimulatorServer
from site_recovery.storage.base import ArrayEndpoint, ProtectionSpec, Purpose
from site_recovery.storage.driver import materialised_prefix
from site_recovery.storage.errors import (
    AlreadyExists,
    ArrayOperationFailed,
    ArrayUnreachable,
    InvalidArgument,
    NoRecoveryPoint,
    NotFound,
    ReplicationLinkDown,
    ReplicationTimeout,
)
from site_recovery.storage.fabric.records import PURITY_VERSION
from site_recovery.storage.flasharray import flasharray_driver
from site_recovery.storage.flasharray_rest2 import flasharray_rest2_driver
from tests.conftest import make_volumes

DRIVER_OPTIONS = {"poll_interval": 0.02, "setup_timeout": 5.0}
# The backends that reach the arrays over HTTPS, by fixture param.
OVER_HTTPS = {"flasharray": flasharray_driver, "flasharray_rest2": flasharray_rest2_driver}


def endpoint(fabric, server):
    return ArrayEndpoint(server.array, server.address, fabric.api_token(server.array),
                         server.cert_file)


@pytest.fixture(params=["mock", *OVER_HTTPS])
def driver(request, fabric, mock):
    if request.param == "mock":
        yield mock
        return
    servers = [SimulatorServer(fabric, name).start() for name in ("fa-a", "fa-b")]
    try:
        yield OVER_HTTPS[request.param]([endpoint(fabric, s) for s in servers],
                                        connect_timeout=2.0, read_timeout=10.0,
                                        **DRIVER_OPTIONS)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(params=["mock", *OVER_HTTPS])
def own_keys(request, fabric, mock):
    """Each site's driver, holding only its own array's key; the mock driver reaches both
    arrays, and stands for both."""
    if request.param == "mock":
        yield mock, mock
        return
    servers = [SimulatorServer(fabric, name).start() for name in ("fa-a", "fa-b")]
    try:
        yield tuple(OVER_HTTPS[request.param]([endpoint(fabric, s)], connect_timeout=2.0,
                                              read_timeout=10.0, **DRIVER_OPTIONS)
                    for s in servers)
    finally:
        for server in servers:
            server.stop()


def async_spec(name="web", **kw):
    return ProtectionSpec(name, "async", "fa-a", "fa-b", **kw)


def sync_spec(name="db"):
    return ProtectionSpec(name, "sync", "fa-a", "fa-b")


def everything(fabric):
    return {array: fabric.inventory(array) for array in ("fa-a", "fa-b")}


# -- protect ---------------------------------------------------------------------------------
def test_protect_async_replicates_to_an_allowed_target_and_is_idempotent(driver, fabric):
    volumes = make_volumes(fabric, "fa-a", ["web-1", "web-2"])
    assert driver.protect(async_spec(replicate_interval=600), volumes) == volumes
    before = everything(fabric)
    assert driver.protect(async_spec(replicate_interval=600), volumes) == volumes
    assert everything(fabric) == before

    source = fabric.array("fa-a")
    assert source.get_pgroup("web")["targets"] == [{"name": "fa-b", "allowed": True}]
    schedule = source.get_pgroup("web", schedule=True)
    assert schedule["replicate_enabled"] and schedule["replicate_frequency"] == 600
    replica = fabric.array("fa-b").get_pgroup("fa-a:web")
    assert replica["volumes"] == ["fa-a:web-1", "fa-a:web-2"]


def test_each_site_protects_and_recovers_with_its_own_arrays_key_alone(own_keys, fabric):
    """The primary's site sets the group up and ships a point, reading the transfer from
    its own array; the DR site allows the replica in, sees the same point and the link,
    and recovers from it; neither touches the other's array."""
    primary, dr = own_keys
    spec = async_spec()
    volumes = make_volumes(fabric, "fa-a", ["web-1", "web-2"])
    assert primary.protect(spec, volumes, accept=False) == volumes
    assert fabric.array("fa-a").get_pgroup("web")["targets"] == [{"name": "fa-b",
                                                                   "allowed": False}]
    dr.accept(spec)
    dr.accept(spec)                                       # a rerun changes nothing
    assert fabric.array("fa-a").get_pgroup("web")["targets"] == [{"name": "fa-b",
                                                                   "allowed": True}]
    shipped = primary.replicate_now(spec, timeout=5, from_source=True)
    assert shipped.fully_transferred and shipped.name.startswith("fa-a:web.")
    assert primary.newest_recovery_point(spec, from_source=True).name == shipped.name
    assert dr.newest_recovery_point(spec).name == shipped.name
    assert dr.check_link("fa-a", "fa-b", via="fa-b").connected
    assert sorted(dr.members(spec, via="fa-b")) == volumes
    fabric.set_link("fa-a", "fa-b", up=False)
    with pytest.raises(ReplicationLinkDown):
        dr.check_link("fa-a", "fa-b", via="fa-b")


def test_protect_sync_stretches_a_pod_holding_the_members(driver, fabric):
    make_volumes(fabric, "fa-a", ["db-1", "db-2", "db-3"])
    assert driver.protect(sync_spec(), ["db-1", "db-2"]) == ["db::db-1", "db::db-2"]
    pod = fabric.array("fa-b").get_pod("db")
    assert {a["name"]: a["status"] for a in pod["arrays"]} == {"fa-a": "online",
                                                               "fa-b": "online"}
    assert pod["failover_preference"] == ["fa-a"]
    # A member added to the already stretched pod arrives through a helper pod,
    # which is gone afterwards; a write to a member reaches the DR array.
    assert driver.add_members(sync_spec(), ["db-3"]) == ["db::db-1", "db::db-2", "db::db-3"]
    assert everything(fabric)["fa-a"]["pods"] == ["db"]
    generation = fabric.write("fa-a", "db::db-3")
    assert fabric.generation("fa-b", "db::db-3") == generation


def test_remove_member_leaves_the_volume_in_place(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1", "web-2"])
    driver.protect(async_spec(), ["web-1", "web-2"])
    assert driver.remove_members(async_spec(), ["web-2"]) == ["web-1"]
    assert fabric.array("fa-a").get_volume("web-2")["name"] == "web-2"


# -- members follow the group; unprotect -----------------------------------------------------
def live_objects(fabric, array: str, group: str) -> list[str]:
    """What ``array`` holds of ``group`` outside its eradication window: pgroups, pods,
    their snapshots, and volumes inside the pod."""
    handle = fabric.array(array)
    names = [*(p["name"] for p in handle.list_pgroups()), *(p["name"] for p in
                                                            handle.list_pods()),
             *(s["name"] for s in handle.list_pgroups(snap=True)),
             *(s["name"] for s in handle.list_volumes(snap=True)),
             *(v["name"] for v in handle.list_volumes())]
    return sorted(n for n in names if n == group or n.startswith((f"{group}.", f"{group}::"))
                  or f":{group}" in n)


@pytest.mark.parametrize("spec", [async_spec(), sync_spec("web")], ids=["async", "sync"])
def test_keep_only_takes_out_the_volumes_of_members_that_left(driver, fabric, spec):
    make_volumes(fabric, "fa-a", ["web-1", "web-2", "web-3"])
    driver.protect(spec, ["web-1", "web-2", "web-3"])
    kept = driver.keep_only(spec, ["web-1", "web-3"])
    before = everything(fabric)
    assert driver.keep_only(spec, ["web-1", "web-3"]) == kept      # a rerun changes nothing
    assert everything(fabric) == before
    # web-2 is back at the array's root, with its data, and no longer reaches fa-b.
    assert fabric.array("fa-a").get_volume("web-2")["name"] == "web-2"
    if spec.replication_type == "sync":
        assert kept == ["web::web-1", "web::web-3"]
        assert "web::web-2" not in everything(fabric)["fa-b"]["volumes"]
        generation = fabric.write("fa-a", "web::web-3")
        assert fabric.generation("fa-b", "web::web-3") == generation
    else:
        assert kept == ["web-1", "web-3"]
        point = driver.replicate_now(spec, timeout=5)
        assert not driver.point_holds(spec, point, ["web-2"])


def test_a_point_taken_before_a_member_joined_does_not_hold_it(own_keys, fabric):
    primary, dr = own_keys
    spec = async_spec()
    make_volumes(fabric, "fa-a", ["web-1", "web-2"])
    primary.protect(spec, ["web-1"], accept=False)
    dr.accept(spec)
    before = primary.replicate_now(spec, timeout=5, from_source=True)
    primary.protect(spec, ["web-1", "web-2"], accept=False)
    assert primary.point_holds(spec, before, ["web-1"], from_source=True)
    assert not primary.point_holds(spec, before, ["web-1", "web-2"], from_source=True)
    assert not dr.point_holds(spec, dr.newest_recovery_point(spec), ["web-1", "web-2"])
    after = primary.replicate_now(spec, timeout=5, from_source=True)
    assert primary.point_holds(spec, after, ["web-1", "web-2"], from_source=True)
    assert dr.point_holds(spec, dr.newest_recovery_point(spec), ["web-1", "web-2"])


def test_unprotect_async_leaves_neither_array_an_object_of_the_group(own_keys, fabric):
    """The source stops sending and removes its pgroup, then the target its replica, each
    with its own key; the volumes stay, and the group can be protected again."""
    primary, dr = own_keys
    spec = async_spec()
    make_volumes(fabric, "fa-a", ["web-1", "web-2", "other"])
    primary.protect(spec, ["web-1", "web-2"], accept=False)
    dr.accept(spec)
    primary.replicate_now(spec, timeout=5, from_source=True)
    generation = fabric.write("fa-a", "web-1")

    assert primary.unprotect(spec) == ["web-1", "web-2"]
    assert dr.release(spec)
    assert (primary.unprotect(spec), dr.release(spec)) == ([], False)      # a rerun
    assert live_objects(fabric, "fa-a", "web") == []
    assert live_objects(fabric, "fa-b", "web") == []
    assert everything(fabric)["fa-a"]["volumes"] == ["other", "web-1", "web-2"]
    assert fabric.generation("fa-a", "web-1") == generation
    # Destroyed, not eradicated: the arrays' window stays the last safety net.
    assert "fa-a:web" in everything(fabric)["fa-b"]["pgroups"]

    primary.protect(spec, ["web-1"], accept=False)      # protected again, from scratch
    dr.accept(spec)
    point = primary.replicate_now(spec, timeout=5, from_source=True)
    assert dr.newest_recovery_point(spec).name == point.name
    assert dr.point_holds(spec, dr.newest_recovery_point(spec), ["web-1"])


def test_unprotect_sync_unstretches_and_destroys_the_pod_leaving_its_volumes(driver, fabric):
    spec = sync_spec()
    make_volumes(fabric, "fa-a", ["db-1", "db-2"])
    driver.protect(spec, ["db-1", "db-2"])
    generation = fabric.write("fa-a", "db::db-1")

    assert driver.unprotect(spec) == ["db-1", "db-2"]
    assert (driver.unprotect(spec), driver.release(spec)) == ([], False)
    assert live_objects(fabric, "fa-a", "db") == []
    assert live_objects(fabric, "fa-b", "db") == []
    assert everything(fabric)["fa-a"]["volumes"] == ["db-1", "db-2"]
    assert everything(fabric)["fa-b"]["volumes"] == []
    assert fabric.generation("fa-a", "db-1") == generation

    assert driver.protect(spec, ["db-2"]) == ["db::db-2"]      # protected again
    assert {a["name"] for a in fabric.array("fa-b").get_pod("db")["arrays"]} == {"fa-a",
                                                                                 "fa-b"}


# -- recovery points and RPO ---------------------------------------------------------------
def test_replicate_now_yields_the_newest_recovery_point_and_its_rpo(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1"])
    spec = async_spec()
    driver.protect(spec, ["web-1"])
    with pytest.raises(NoRecoveryPoint, match="fa-b has no usable recovery point for web"):
        driver.newest_recovery_point(spec)

    first = driver.replicate_now(spec, timeout=5)
    time.sleep(1.0)    # Purity timestamps have one-second resolution
    second = driver.replicate_now(spec, timeout=5)
    assert second.fully_transferred and second.array == "fa-b"
    assert second.name.startswith("fa-a:web.")
    assert [p.name for p in driver.recovery_points(spec)] == [second.name, first.name]
    assert driver.newest_recovery_point(spec) == second
    assert 0 <= driver.rpo_seconds(spec) < 5


def test_a_point_still_in_transfer_is_listed_but_not_used(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1"])
    spec = async_spec()
    driver.protect(spec, ["web-1"])
    done = driver.replicate_now(spec, timeout=5)
    fabric.set_transfer_seconds(3600)
    fabric.array("fa-a").create_pgroup_snapshot("web", suffix="late", replicate_now=True)
    points = driver.recovery_points(spec)
    assert [p.name for p in points] == ["fa-a:web.late", done.name]
    assert points[0].progress < 1 and not points[0].fully_transferred
    assert driver.newest_recovery_point(spec) == done
    with pytest.raises(NoRecoveryPoint, match="not fully transferred"):
        driver.materialise(spec, points[0], Purpose.DRILL)


def test_scheduled_replication_keeps_the_rpo_within_the_interval(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1"])
    spec = async_spec(replicate_interval=1)
    driver.protect(spec, ["web-1"])
    time.sleep(2.2)
    assert len(driver.recovery_points(spec)) >= 1
    assert driver.rpo_seconds(spec) < 3


def test_sync_rpo_is_zero_while_stretched_and_grows_once_the_dr_side_freezes(driver, fabric):
    make_volumes(fabric, "fa-a", ["db-1"])
    spec = sync_spec()
    driver.protect(spec, ["db-1"])
    assert driver.rpo_seconds(spec) < 0.5
    fabric.set_link("fa-a", "fa-b", up=False)
    time.sleep(1.5)
    assert driver.rpo_seconds(spec) >= 1
    with pytest.raises(ReplicationLinkDown, match="pod db is not in sync"):
        driver.replicate_now(spec)


# -- materialise and cleanup -----------------------------------------------------------------
def test_drill_volumes_hold_the_recovery_point_not_newer_writes(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1", "web-2"])
    spec = async_spec()
    driver.protect(spec, ["web-1", "web-2"])
    fabric.write("fa-a", "web-1")
    replicated = fabric.write("fa-a", "web-1")
    point = driver.replicate_now(spec, timeout=5)
    fabric.write("fa-a", "web-1")              # after the recovery point

    drill = driver.materialise(spec, point, Purpose.DRILL)
    by_source = {m.source: m for m in drill}
    assert sorted(by_source) == ["web-1", "web-2"]
    assert fabric.generation("fa-b", by_source["web-1"].name) == replicated
    assert fabric.generation("fa-b", by_source["web-2"].name) == 0
    assert all(m.name.startswith(materialised_prefix(Purpose.DRILL, "web")) for m in drill)
    assert all("drill" in m.name and "web" in m.name and len(m.name) <= 63 for m in drill)
    # Rerun after a crash: the same volumes, nothing duplicated.
    volumes = everything(fabric)["fa-b"]["volumes"]
    assert driver.materialise(spec, point, Purpose.DRILL) == drill
    assert everything(fabric)["fa-b"]["volumes"] == volumes


def test_a_rerun_from_a_newer_point_copies_every_volume_from_that_point(driver, fabric):
    """A retry may recover from a newer point than the attempt it continues: a copy that
    attempt left on the array now holds the newer point too, so a database's data and
    log volumes come back from one moment."""
    make_volumes(fabric, "fa-a", ["web-1", "web-2"])
    spec = async_spec()
    driver.protect(spec, ["web-1", "web-2"])
    fabric.write("fa-a", "web-1")
    older = driver.replicate_now(spec, timeout=5)
    driver.materialise(spec, older, Purpose.FAILOVER, only=["web-1"])   # then it stopped
    newer_data, newer_log = fabric.write("fa-a", "web-1"), fabric.write("fa-a", "web-2")
    time.sleep(0.01)                                     # a point's name is to the ms
    newer = driver.replicate_now(spec, timeout=5)
    copies = driver.materialise(spec, newer, Purpose.FAILOVER)
    assert {m.source: fabric.generation("fa-b", m.name) for m in copies} == {
        "web-1": newer_data, "web-2": newer_log}


def test_sync_failover_copies_the_pod_content_and_leaves_the_pod_alone(driver, fabric):
    make_volumes(fabric, "fa-a", ["db-1", "db-2"])
    spec = sync_spec()
    driver.protect(spec, ["db-1", "db-2"])
    written = fabric.write("fa-a", "db::db-2")
    before = everything(fabric)
    copies = driver.materialise(spec, driver.newest_recovery_point(spec), Purpose.FAILOVER)
    assert {m.source: fabric.generation("fa-b", m.name) for m in copies} == {
        "db::db-1": 0, "db::db-2": written}
    assert all("::" not in m.name for m in copies)     # at the root: Cinder can manage them
    after = everything(fabric)
    assert after["fa-b"]["pgroup_snapshots"] == before["fa-b"]["pgroup_snapshots"]
    assert after["fa-b"]["pods"] == ["db"]
    assert len(after["fa-b"]["volumes"]) == len(before["fa-b"]["volumes"]) + 2


def test_a_sync_recovery_stopped_mid_discard_leaves_nothing_in_the_way(driver, fabric):
    """A run that destroyed its temporary pod snapshot but died before eradicating it:
    the next run takes the name back and recovers, and leaves no snapshot behind."""
    make_volumes(fabric, "fa-a", ["db-1"])
    spec = sync_spec()
    driver.protect(spec, ["db-1"])
    before = everything(fabric)
    target = driver.client("fa-b")
    target.snapshot_pgroup(spec.sync_pgroup, "sr-drill")
    target.destroy_pgroup_snapshot(f"{spec.sync_pgroup}.sr-drill")
    copies = driver.materialise(spec, driver.newest_recovery_point(spec), Purpose.DRILL)
    assert [m.source for m in copies] == ["db::db-1"]
    assert everything(fabric)["fa-b"]["pgroup_snapshots"] == before["fa-b"]["pgroup_snapshots"]


def test_sync_recovery_after_the_link_fails_uses_the_frozen_content(driver, fabric):
    make_volumes(fabric, "fa-a", ["db-1"])
    spec = sync_spec()
    driver.protect(spec, ["db-1"])
    frozen = fabric.write("fa-a", "db::db-1")
    fabric.set_link("fa-a", "fa-b", up=False)
    fabric.write("fa-a", "db::db-1")          # the primary keeps the pod and goes on
    copies = driver.materialise(spec, driver.newest_recovery_point(spec), Purpose.FAILOVER)
    assert fabric.generation("fa-b", copies[0].name) == frozen


def test_drill_cleanup_leaves_the_arrays_exactly_as_before(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1", "web-2", "app-1", "db-1"])
    make_volumes(fabric, "fa-b", ["unrelated"])
    web, app, db = async_spec("web"), async_spec("app"), sync_spec("db")
    driver.protect(web, ["web-1", "web-2"])
    driver.protect(app, ["app-1"])
    driver.protect(db, ["db-1"])
    web_point, app_point = driver.replicate_now(web, 5), driver.replicate_now(app, 5)
    app_drill = driver.materialise(app, app_point, Purpose.DRILL)
    web_failover = driver.materialise(web, web_point, Purpose.FAILOVER)
    before = everything(fabric)

    drill = driver.materialise(web, web_point, Purpose.DRILL)
    db_drill = driver.materialise(db, driver.newest_recovery_point(db), Purpose.DRILL)
    # Cinder's manage renames a volume; cleanup still finds it by its serial.
    fabric.array("fa-b").rename_volume(drill[0].name, "volume-4f1c-cinder")
    removed = driver.cleanup(web, Purpose.DRILL, serials=[drill[0].serial])
    assert sorted(removed) == sorted(["volume-4f1c-cinder", drill[1].name])
    assert driver.cleanup(db, Purpose.DRILL) == [db_drill[0].name]
    # Destroyed, not eradicated: the array's window stays the last safety net.
    after = everything(fabric)
    assert sorted(after["fa-b"]["destroyed_volumes"]) == sorted([*removed, db_drill[0].name])
    after["fa-b"]["destroyed_volumes"] = before["fa-b"]["destroyed_volumes"]
    assert after == before
    assert driver.cleanup(web, Purpose.DRILL) == []          # nothing left, nothing touched
    for kept in (*app_drill, *web_failover):
        assert fabric.array("fa-b").get_volume(kept.name)["serial"] == kept.serial
    # Asked to, it eradicates them at once (what is already destroyed too).
    assert sorted(driver.cleanup(web, Purpose.DRILL, serials=[drill[0].serial],
                                 eradicate=True)) == sorted(removed)
    assert everything(fabric)["fa-b"]["destroyed_volumes"] == [db_drill[0].name]


# -- failback ------------------------------------------------------------------------------
def test_reverse_replication_carries_dr_writes_home_in_place(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1", "web-2"])
    spec = async_spec()
    driver.protect(spec, ["web-1", "web-2"])
    failover = driver.materialise(spec, driver.replicate_now(spec, 5), Purpose.FAILOVER)
    dr_generation = fabric.write("fa-b", failover[0].name)      # the workload runs at DR

    back = driver.reverse(spec, [m.name for m in failover])
    assert (back.source_array, back.target_array) == ("fa-b", "fa-a")
    point = driver.replicate_now(back, timeout=5)
    assert point.array == "fa-a" and point.name.startswith("fa-b:web.")
    restored = driver.restore(back, point, {m.name: m.source for m in failover})
    assert [m.name for m in restored] == ["web-1", "web-2"]
    assert fabric.generation("fa-a", "web-1") == dr_generation
    assert fabric.array("fa-a").get_volume("web-1")["serial"] == restored[0].serial
    with pytest.raises(InvalidArgument, match="no member"):
        driver.restore(back, point, {"nope": "web-1"})


def test_sync_failback_rejoins_the_pod_and_restores_the_original_volumes(driver, fabric):
    make_volumes(fabric, "fa-a", ["db-1"])
    spec = sync_spec()
    driver.protect(spec, ["db-1"])
    fabric.set_array_up("fa-a", False)                          # site A is lost
    (copy,) = driver.materialise(spec, driver.newest_recovery_point(spec), Purpose.FAILOVER)
    dr_generation = fabric.write("fa-b", copy.name) + 1
    fabric.write("fa-b", copy.name)
    fabric.set_array_up("fa-a", True)                           # site A is back

    back = driver.reverse(spec, [copy.name])
    assert driver.members(back) == ["db::db-1", f"db::{copy.name}"]
    assert fabric.array("fa-b").get_pod("db")["failover_preference"] == ["fa-b"]
    point = driver.replicate_now(back)
    driver.restore(back, point, {f"db::{copy.name}": "db::db-1"})
    assert fabric.generation("fa-a", "db::db-1") == dr_generation
    assert everything(fabric)["fa-a"]["pods"] == ["db"]         # the helper pod is gone


# -- health and typed errors -----------------------------------------------------------------
def test_health_reports_reachability_and_the_replication_link(driver, fabric):
    health = driver.health("fa-a")
    assert health.reachable and health.connection_to("fa-b").connected
    fabric.set_link("fa-a", "fa-b", up=False)
    assert not driver.health("fa-a").connection_to("fa-b").connected
    fabric.set_array_up("fa-b", False)
    down = driver.health("fa-b")
    assert not down.reachable and down.detail


def test_an_unreachable_array_raises_a_typed_error_naming_it(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1"])
    fabric.set_array_up("fa-b", False)
    with pytest.raises(ArrayUnreachable, match="array fa-b is unreachable") as caught:
        driver.protect(async_spec(), ["web-1"])
    assert caught.value.array == "fa-b"


def test_a_link_down_refuses_replication_and_stalls_transfers(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1"])
    spec = async_spec()
    driver.protect(spec, ["web-1"])
    fabric.set_link("fa-a", "fa-b", up=False)
    with pytest.raises(ReplicationLinkDown, match="fa-a -> fa-b is down"):
        driver.replicate_now(spec)


def test_a_transfer_that_does_not_finish_in_time_raises_a_timeout(driver, fabric):
    make_volumes(fabric, "fa-a", ["web-1"])
    spec = async_spec()
    driver.protect(spec, ["web-1"])
    fabric.set_transfer_seconds(3600)
    with pytest.raises(ReplicationTimeout, match=r"did not complete within 0.3 s"):
        driver.replicate_now(spec, timeout=0.3)


def test_array_errors_are_typed_and_name_array_and_object(driver, fabric):
    client = driver.client("fa-a")
    with pytest.raises(NotFound, match=r"fa-a.*missing-vol.*does not exist") as caught:
        client.volume("missing-vol")
    assert (caught.value.array, caught.value.obj) == ("fa-a", "missing-vol")
    client.create_pgroup("twice")
    with pytest.raises(AlreadyExists, match="already exists"):
        client.create_pgroup("twice")


def test_bad_input_is_refused_before_anything_changes(driver, fabric):
    before = everything(fabric)
    with pytest.raises(InvalidArgument, match="invalid protection group name"):
        ProtectionSpec("bad name!", "async", "fa-a", "fa-b")
    with pytest.raises(InvalidArgument, match="source and target array are both fa-a"):
        ProtectionSpec("web", "async", "fa-a", "fa-a")
    with pytest.raises(ValueError):
        ProtectionSpec("web", "semi-sync", "fa-a", "fa-b")
    with pytest.raises(InvalidArgument, match="invalid volume name"):
        driver.protect(async_spec(), ["-bad-"])
    assert everything(fabric) == before


def test_a_failing_copy_names_the_array_and_a_rerun_completes_without_duplicates(driver, fabric):
    make_volumes(fabric, "fa-a", [f"web-{i}" for i in range(6)])
    spec = async_spec()
    driver.protect(spec, [f"web-{i}" for i in range(6)])
    point = driver.replicate_now(spec, timeout=5)
    fabric.fail_call("fa-b", "copy_volume", "Volume limit reached.", nth=3)
    with pytest.raises(ArrayOperationFailed, match=r"array fa-b refused.*limit reached"):
        driver.materialise(spec, point, Purpose.FAILOVER)
    copies = driver.materialise(spec, point, Purpose.FAILOVER)
    assert len(copies) == 6
    prefix = materialised_prefix(Purpose.FAILOVER, "web")
    assert len([v for v in everything(fabric)["fa-b"]["volumes"] if v.startswith(prefix)]) == 6


# -- timeouts --------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", OVER_HTTPS)
def test_a_closed_port_is_unreachable_within_the_timeout(fabric, backend):
    with socket.socket() as probe:          # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    driver = OVER_HTTPS[backend]([ArrayEndpoint("fa-a", f"127.0.0.1:{port}", "token")],
                                 connect_timeout=2.0, read_timeout=2.0)
    started = time.monotonic()
    with pytest.raises(ArrayUnreachable, match="array fa-a is unreachable"):
        driver.client("fa-a").version()
    assert time.monotonic() - started < 2.0 + 1.0


@pytest.mark.parametrize("backend", OVER_HTTPS)
def test_a_silent_array_is_unreachable_within_the_read_timeout(fabric, backend):
    server = SimulatorServer(fabric, "fa-a").start()
    try:
        driver = OVER_HTTPS[backend]([endpoint(fabric, server)],
                                     connect_timeout=1.0, read_timeout=1.0)
        driver.client("fa-a").version()
        fabric.add_latency("fa-a", 5.0)
        started = time.monotonic()
        with pytest.raises(ArrayUnreachable, match="fa-a"):
            driver.client("fa-a").volumes()
        assert time.monotonic() - started < 1.0 + 1.0
    finally:
        fabric.clear_faults()
        server.stop()


@pytest.mark.parametrize("backend", OVER_HTTPS)
def test_an_expired_session_is_renewed_without_the_caller_noticing(fabric, backend):
    """An engine idle longer than the array's session lifetime goes on working."""
    server = SimulatorServer(fabric, "fa-a", session_ttl=0.5).start()
    try:
        client = OVER_HTTPS[backend]([endpoint(fabric, server)]).client("fa-a")
        assert client.version() == PURITY_VERSION
        time.sleep(1.0)
        assert [c.peer for c in client.connections()] == ["fa-b"]
    finally:
        server.stop()


@pytest.mark.parametrize("backend", OVER_HTTPS)
def test_a_wrong_api_token_is_refused_and_never_shown(fabric, backend):
    server = SimulatorServer(fabric, "fa-a").start()
    try:
        wrong = ArrayEndpoint("fa-a", server.address, "not-the-token-4f1c", server.cert_file)
        client = OVER_HTTPS[backend]([wrong]).client("fa-a")
        with pytest.raises(ArrayOperationFailed, match="array fa-a refused") as caught:
            client.version()
        assert "not-the-token-4f1c" not in f"{caught.value} {client!r}"
    finally:
        server.stop()


def test_mock_latency_beyond_the_timeout_is_unreachable_too(fabric):
    from site_recovery.storage.mock import mock_driver

    driver = mock_driver(fabric, timeout=0.5)
    fabric.add_latency("fa-a", 5.0, operation="list_volumes")
    started = time.monotonic()
    with pytest.raises(ArrayUnreachable, match=r"no answer within 0.5 s"):
        driver.client("fa-a").volumes()
    assert time.monotonic() - started < 0.5 + 1.0


def test_an_array_offering_rest_older_than_2_4_is_refused_naming_rest_version_1(
        fabric, monkeypatch):
    """Purity before 6.1 offers REST 2.0-2.3 at most, without calls the REST 2.x backend
    makes: it says which setting reaches that array, and REST 1.x does."""
    monkeypatch.setattr(flasharray_sim, "API_VERSIONS",
                        [v for v in flasharray_sim.API_VERSIONS if v != "2.4"])
    server = SimulatorServer(fabric, "fa-a").start()
    try:
        rest2 = flasharray_rest2_driver([endpoint(fabric, server)], connect_timeout=2.0,
                                        read_timeout=5.0)
        with pytest.raises(ArrayOperationFailed, match=r"offers REST 2\.3 at most.*"
                                                       r"rest_version to 1"):
            rest2.client("fa-a").version()
        rest1 = flasharray_driver([endpoint(fabric, server)], connect_timeout=2.0,
                                  read_timeout=5.0)
        assert rest1.client("fa-a").version() == PURITY_VERSION
    finally:
        server.stop()
