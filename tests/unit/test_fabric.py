"""The simulated arrays behave like FlashArrays where the DR engine depends on it."""

from __future__ import annotations

import pytest

from site_recovery.storage.fabric import ArrayDown, PurityError
from tests.conftest import GIB, make_volumes


def replicate(fabric, pgroup="pg", source="fa-a", target="fa-b"):
    fabric.array(source).set_pgroup(pgroup, addtargetlist=[target])
    fabric.array(target).set_pgroup(f"{source}:{pgroup}", allowed=True)


def transfers(fabric, pgroup="fa-a:pg"):
    return fabric.array("fa-b").get_pgroup(pgroup, snap=True, transfer=True)


def test_destroyed_objects_block_their_name_until_eradicated_or_24h_pass(fabric):
    array = fabric.array("fa-a")
    array.create_volume("v1", "1G")
    array.destroy_volume("v1")
    with pytest.raises(PurityError, match="has been destroyed"):
        array.create_volume("v1", "1G")
    assert 24 * 3600 - 5 < array.list_volumes(pending_only=True)[0]["time_remaining"] <= 24 * 3600
    fabric.advance(24 * 3600 + 1)
    array.create_volume("v1", "1G")
    with pytest.raises(PurityError, match="must be destroyed before"):
        array.eradicate_volume("v1")


def test_copy_needs_overwrite_to_replace_and_then_keeps_the_serial(fabric):
    array = fabric.array("fa-a")
    make_volumes(fabric, "fa-a", ["src", "dst"])
    generation = fabric.write("fa-a", "src")
    serial = array.get_volume("dst")["serial"]
    with pytest.raises(PurityError, match="already exists"):
        array.copy_volume("src", "dst")
    array.copy_volume("src", "dst", overwrite=True)
    assert fabric.generation("fa-a", "dst") == generation
    assert array.get_volume("dst")["serial"] == serial


def test_sizes_are_parsed_and_bad_ones_refused(fabric):
    array = fabric.array("fa-a")
    assert array.create_volume("a", "10G")["size"] == 10 * GIB
    assert array.create_volume("b", 4096)["size"] == 4096
    with pytest.raises(PurityError, match="Invalid volume size"):
        array.create_volume("c", "ten")


def test_a_transfer_waits_for_an_allowed_target_and_pauses_while_the_link_is_down(fabric):
    source = fabric.array("fa-a")
    make_volumes(fabric, "fa-a", ["v1"])
    source.create_pgroup("pg", vollist=["v1"])
    source.set_pgroup("pg", addtargetlist=["fa-b"])
    source.create_pgroup_snapshot("pg", suffix="early", replicate_now=True)
    assert transfers(fabric) == []                          # not allowed yet: nothing sent
    fabric.array("fa-b").set_pgroup("fa-a:pg", allowed=True)
    with pytest.raises(PurityError, match="already allowed on"):
        fabric.array("fa-b").set_pgroup("fa-a:pg", allowed=True)

    fabric.set_transfer_seconds(10)
    fabric.set_link("fa-a", "fa-b", up=False)
    source.create_pgroup_snapshot("pg", suffix="s1", replicate_now=True)
    fabric.advance(60)
    assert transfers(fabric)[0]["progress"] == 0            # link down: no progress
    fabric.set_link("fa-a", "fa-b", up=True)
    fabric.advance(5)
    assert transfers(fabric)[0]["progress"] == pytest.approx(0.5, abs=0.05)
    fabric.advance(6)
    done = transfers(fabric)[0]
    assert done["progress"] == 1 and done["completed"] is not None
    names = [v["name"] for v in fabric.array("fa-b").list_volumes(snap=True)]
    assert names == ["fa-a:pg.s1.v1"]


def test_the_schedule_replicates_and_retention_keeps_the_newest_usable_point(fabric):
    source = fabric.array("fa-a")
    make_volumes(fabric, "fa-a", ["v1"])
    source.create_pgroup("pg", vollist=["v1"])
    replicate(fabric)
    source.set_pgroup("pg", replicate_frequency=60, target_all_for=300, all_for=300)
    source.set_pgroup("pg", replicate_enabled=True)
    for _ in range(10):
        fabric.advance(60)
        transfers(fabric)                       # any call lets the array catch up
    kept = transfers(fabric)
    assert 4 <= len(kept) <= 6                  # ~300 s of 60 s snapshots
    fabric.set_link("fa-a", "fa-b", up=False)
    fabric.advance(3600)
    kept = transfers(fabric)
    usable = [s for s in kept if s["progress"] == 1]
    assert len(usable) == 1                     # the last good point is never expired


def test_a_long_idle_array_takes_one_catch_up_snapshot_not_one_per_interval(fabric):
    source = fabric.array("fa-a")
    make_volumes(fabric, "fa-a", ["v1"])
    source.create_pgroup("pg", vollist=["v1"])
    replicate(fabric)
    source.set_pgroup("pg", replicate_frequency=60, target_all_for=86400)
    source.set_pgroup("pg", replicate_enabled=True)
    fabric.advance(3600)
    assert len(transfers(fabric)) == 1


def test_a_stretched_pod_mirrors_writes_freezes_the_loser_and_resyncs(fabric):
    a = fabric.array("fa-a")
    a.create_pod("p")
    a.create_volume("p::v", "1G")
    a.add_pod("p", "fa-b")
    assert fabric.generation("fa-b", "p::v") == 0
    fabric.write("fa-a", "p::v")
    assert fabric.generation("fa-b", "p::v") == 1

    fabric.set_link("fa-a", "fa-b", up=False)
    from_b = {x["name"]: x["status"] for x in fabric.array("fa-b").get_pod("p")["arrays"]}
    assert from_b == {"fa-a": "unknown", "fa-b": "offline"}
    fabric.write("fa-a", "p::v")
    with pytest.raises(PurityError, match="I/O is suspended"):
        fabric.write("fa-b", "p::v")
    assert fabric.generation("fa-b", "p::v") == 1

    fabric.set_link("fa-a", "fa-b", up=True)
    assert fabric.generation("fa-b", "p::v") == 2
    statuses = {x["status"] for x in a.get_pod("p")["arrays"]}
    assert statuses == {"online"}


def test_the_survivor_keeps_a_pod_online_when_its_peer_array_dies(fabric):
    a = fabric.array("fa-a")
    a.create_pod("p")
    a.add_pod("p", "fa-b")
    fabric.set_array_up("fa-a", False)
    from_b = {x["name"]: x["status"] for x in fabric.array("fa-b").get_pod("p")["arrays"]}
    assert from_b == {"fa-a": "offline", "fa-b": "online"}
    with pytest.raises(ArrayDown):
        a.get_pod("p")


def test_a_volume_enters_a_stretched_pod_only_from_a_pod_stretched_alike(fabric):
    a = fabric.array("fa-a")
    a.create_pod("p")
    a.add_pod("p", "fa-b")
    a.create_volume("v", "1G")
    with pytest.raises(PurityError, match="not stretched to the same arrays"):
        a.move_volume("v", "p")
    a.create_pod("helper")
    assert a.move_volume("v", "helper") == {"name": "helper::v"}
    a.add_pod("helper", "fa-b")
    assert a.move_volume("helper::v", "p") == {"name": "p::v"}
    assert fabric.array("fa-b").get_volume("p::v")["name"] == "p::v"


def test_an_injected_error_hits_only_the_nth_call(fabric):
    array = fabric.array("fa-a")
    fabric.fail_call("fa-a", "create_volume", "Volume limit reached.", nth=2)
    array.create_volume("v1", "1G")
    with pytest.raises(PurityError, match="limit reached"):
        array.create_volume("v2", "1G")
    array.create_volume("v2", "1G")


def test_replica_pgroups_are_read_only_and_targets_need_a_connection(fabric):
    fabric.add_array("fa-c")
    source = fabric.array("fa-a")
    source.create_pgroup("pg")
    with pytest.raises(PurityError, match="is not connected"):
        source.set_pgroup("pg", addtargetlist=["fa-c"])
    replicate(fabric)
    with pytest.raises(PurityError, match="already includes"):
        source.set_pgroup("pg", addtargetlist=["fa-b"])
    with pytest.raises(PurityError, match="Cannot modify a replicated protection group"):
        fabric.array("fa-b").set_pgroup("fa-a:pg", replicate_frequency=60)


def test_a_pgroup_made_again_after_its_replica_was_destroyed_replicates_anew(fabric):
    """Unprotected (the source's pgroup and the target's replica destroyed, waiting out
    their window), then protected again: a new replica, whose snapshots are numbered
    from 1 again beside the destroyed ones."""
    source, target = fabric.array("fa-a"), fabric.array("fa-b")
    make_volumes(fabric, "fa-a", ["v1"])
    source.create_pgroup("pg", vollist=["v1"])
    replicate(fabric)
    source.set_pgroup("pg", replicate_frequency=60, replicate_enabled=True)
    fabric.advance(61)
    assert [s["name"] for s in transfers(fabric)] == ["fa-a:pg.1"]
    source.set_pgroup("pg", remtargetlist=["fa-b"])
    source.destroy_pgroup("pg")
    target.destroy_pgroup("fa-a:pg")
    source.eradicate_pgroup("pg")

    source.create_pgroup("pg", vollist=["v1"])
    replicate(fabric)
    source.set_pgroup("pg", replicate_frequency=60, replicate_enabled=True)
    fabric.advance(61)
    [point] = transfers(fabric)
    assert point["name"] == "fa-a:pg.1" and point["progress"] == 1.0
