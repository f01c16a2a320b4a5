"""Replication follows the members, and unprotect takes it down: protect and unprotect
against the simulated cloud (through openstacksdk) and the mock arrays."""

from __future__ import annotations

from dataclasses import replace

import pytest

from site_recovery.core import recovery
from site_recovery.core.config import parse
from site_recovery.core.model import GroupStatus
from tests.unit import test_core_recovery
from tests.unit.test_core_config import minimal
from tests.unit.test_core_recovery import GROUP_ID, VOLUMES, advance, cinder_groups

lab = test_core_recovery.lab           # site-a with web-1 and web-2 in group prod-web
PGROUP = f"sr-{GROUP_ID}"


class DrSite:
    """Site-b's service as protect and unprotect ask it: its array allows the group's
    replica in; its share of an unprotect runs as site-b's own step would."""

    def __init__(self, engine):
        self.engine, self.asked = engine, []

    def run_step(self, request, timeout):
        self.asked.append(request.step.value)
        if request.step == "accept_replication":
            plan = recovery.GroupPlan(self.engine.service.group(request.protection_group_id))
            self.engine.clouds.storage().accept(plan.protection(self.engine.config))
            return {}
        assert request.step == "unprotect", request
        return recovery.unprotect(self.engine, request.protection_group_id)


@pytest.fixture
def site(lab, tmp_path):
    """``lab`` whose peer is site-b's engine (its own configuration, the same clouds)."""
    config_b = parse(minimal(tmp_path, site="site-b",
                             peer={"name": "site-a", "url": "http://127.0.0.1:15010"},
                             clouds={"file": str(tmp_path / "clouds.yaml"), "local": "site-b",
                                     "peer": "site-a"},
                             arrays=[{"name": "fa-a", "site": "site-a", "address": "fa-a",
                                      "cinder_host": "cinder@pure#pure"},
                                     {"name": "fa-b", "site": "site-b", "address": "fa-b",
                                      "token_file": str(tmp_path / "token"),
                                      "cinder_host": "cinder@pure#pure"}]))
    dr = DrSite(replace(lab.engine, config=config_b, peer=None, step_key=None))
    lab.engine = replace(lab.engine, peer=dr)
    lab.dr = dr
    return lab


def boot(lab, name: str) -> tuple[str, str]:
    """A new VM of the tenant booted from a replicated volume: (server id, volume id)."""
    volume = lab.alice.post(f"{VOLUMES}/volumes", {"volume": {
        "size": 1, "name": f"{name}-boot", "volume_type": "replicated-ssd"}})[1]["volume"]
    advance(lab.admin)
    _, body = lab.alice.post("/compute/v2.1/servers", {"server": {
        "name": name, "flavorRef": "1", "networks": "none",
        "block_device_mapping_v2": [{"source_type": "volume", "destination_type": "volume",
                                     "boot_index": 0, "uuid": volume["id"]}]}})
    advance(lab.admin)
    return body["server"]["id"], volume["id"]


def pgroup_members(lab) -> list[str]:
    return sorted(lab.fabric.array("fa-a").get_pgroup(PGROUP)["volumes"])


def array_name(volume_id: str) -> str:
    return f"volume-{volume_id}-cinder"


def test_protect_brings_replication_to_exactly_the_members(site):
    recovery.protect(site.engine, GROUP_ID)
    first = site.fabric.array("fa-b").get_pgroup(f"fa-a:{PGROUP}", snap=True)
    server, volume = boot(site, "web-3")
    site.service.document["members"].append({"server_id": server, "server_name": "web-3"})

    recovery.protect(site.engine, GROUP_ID)
    assert pgroup_members(site) == sorted(array_name(v) for v in (*site.volumes.values(),
                                                                  volume))
    [group] = cinder_groups(site.alice)
    assert volume in group["volumes"]
    # The point protect leaves holds the new member: a recovery finds it there.
    storage = site.engine.clouds.storage()
    spec = site.engine.group(GROUP_ID).protection(site.engine.config)
    newest = storage.newest_recovery_point(spec)
    assert newest.name not in {s["name"] for s in first}
    assert storage.point_holds(spec, newest, [array_name(volume)])

    site.service.document["members"] = [m for m in site.service.document["members"]
                                         if m["server_name"] != "web-1"]
    recovery.protect(site.engine, GROUP_ID)
    assert pgroup_members(site) == sorted(array_name(v) for v in (site.volumes["web-2"],
                                                                  volume))
    [group] = cinder_groups(site.alice)
    assert sorted(group["volumes"]) == sorted([site.volumes["web-2"], volume])
    web_1 = site.alice.get(f"{VOLUMES}/volumes/{site.volumes['web-1']}")[1]["volume"]
    assert (web_1["status"], web_1["group_id"]) == ("in-use", None)      # left alone

    site.service.document["members"] = []           # the last one leaves too
    recovery.protect(site.engine, GROUP_ID)
    assert pgroup_members(site) == []
    assert [g["volumes"] for g in cinder_groups(site.alice)] == [[]]


def test_unprotect_removes_the_cinder_group_and_both_arrays_objects_and_no_volume(site):
    recovery.protect(site.engine, GROUP_ID)
    volumes_before = site.alice.get(f"{VOLUMES}/volumes/detail")[1]["volumes"]

    result = recovery.unprotect(site.engine, GROUP_ID)
    assert site.dr.asked == ["accept_replication", "unprotect"]
    assert (result["volumes"], result["array_group"]) == (2, PGROUP)
    assert result["cinder_group"].endswith(" deleted")
    assert cinder_groups(site.alice) == []
    assert site.service.states[-1] == {"status": GroupStatus.UNPROTECTED}
    for array in ("fa-a", "fa-b"):
        handle = site.fabric.array(array)
        assert [p["name"] for p in handle.list_pgroups()] == []
        assert [s["name"] for s in handle.list_volumes(snap=True)] == []
    volumes_after = site.alice.get(f"{VOLUMES}/volumes/detail")[1]["volumes"]
    assert {v["id"]: v["status"] for v in volumes_after} == \
        {v["id"]: v["status"] for v in volumes_before}
    assert {v["group_id"] for v in volumes_after} == {None}

    again = recovery.unprotect(site.engine, GROUP_ID)            # a rerun finds it done
    assert (again["volumes"], again["cinder_group"]) == (0, None)

    recovery.protect(site.engine, GROUP_ID)                        # and protect again
    assert pgroup_members(site) == sorted(array_name(v) for v in site.volumes.values())


def test_a_failed_over_group_is_not_unprotected(site):
    recovery.protect(site.engine, GROUP_ID)
    site.service.document["status"] = "failed_over"
    with pytest.raises(recovery.StepFailed, match=r"prod-web is failed over: .* fail it back"):
        recovery.unprotect(site.engine, GROUP_ID)
    assert pgroup_members(site) == sorted(array_name(v) for v in site.volumes.values())
