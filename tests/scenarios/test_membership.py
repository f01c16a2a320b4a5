"""Members follow replication, and unprotect takes it down, on the lab through the public
interfaces (the protection service's API and the ``openstack protector`` CLI), checked on
the clouds and both arrays (issue 16, item 2).

An async group: a member added while it is protected is in its pgroup at once and the next
drill recovers it; a member removed leaves the pgroup and the Cinder group; unprotect
leaves neither array an object of the group and no Cinder group of it on either site. A
sync group: the same through its stretched pod. The steps build on each other, in file
order.
"""

from __future__ import annotations

from site_recovery.core.plan import array_group_name
from site_recovery.core.recovery import cinder_group_description
from site_recovery.lab.fleet import seed_fleet
from tests.scenarios.conftest import protected_group, site_a_running
from tests.scenarios.test_dr_story import volumes_of

ASYNC, SYNC = "members-async", "members-sync"
STATE: dict = {}


def array_objects(lab, site: str, group_id: str) -> list[str]:
    """What ``site``'s array holds of a group, outside its eradication window: pgroups,
    pods, pgroup and volume snapshots, volumes in the pod (all named after the group)."""
    array = lab.fabric.array(lab.sites[site].array_name)
    names = [*(p["name"] for p in array.list_pgroups()),
             *(p["name"] for p in array.list_pods()),
             *(s["name"] for s in array.list_pgroups(snap=True)),
             *(v["name"] for v in array.list_volumes(snap=True)),
             *(v["name"] for v in array.list_volumes())]
    return sorted(n for n in names if array_group_name(group_id) in n)


def cinder_groups(clouds, site: str, group_id: str) -> dict[str, list[str]]:
    """The group's Cinder groups in bob's project on ``site``: their volumes, by id."""
    cinder = clouds(site, "bob").block_storage
    return {g.id: sorted(cinder.get(f"/groups/{g.id}", params={"list_volume": "True"},
                                    microversion="3.25").json()["group"]["volumes"])
            for g in cinder.groups() if g.description == cinder_group_description(group_id)}


def volume_ids(clouds, server_id: str) -> list[str]:
    return sorted(v.id for v in volumes_of(clouds("site-a", "bob"), server_id))


def on_array(volume_id: str, pod: str | None = None) -> str:
    name = f"volume-{volume_id}-cinder"
    return f"{pod}::{name}" if pod else name


def status(api, name: str) -> set[str]:
    return {api(site, "GET", f"/protection-groups/{name}", user="bob")["protection_group"][
        "status"] for site in ("site-a", "site-b")}


def test_a_member_added_to_a_protected_group_replicates_at_once(lab, api, cli, clouds):
    site_a_running(lab)
    servers = seed_fleet(lab, user="bob", prefix="members", count=3, cidr="10.26.0.0/24")
    group = protected_group(lab, api, cli, name=ASYNC, prefix="members",
                            servers={n: servers[n] for n in ("members-1", "members-2")})
    STATE.update(servers=servers, group=group["id"])
    pgroup = array_group_name(group["id"])

    cli("site-a-bob", "protector", "member", "add", ASYNC, servers["members-3"],
        "--server-name", "members-3", "--wait", "-f", "json")
    joined = volume_ids(clouds, servers["members-3"])
    array_a = lab.fabric.array(lab.sites["site-a"].array_name)
    assert {on_array(v) for v in joined} <= set(array_a.get_pgroup(pgroup)["volumes"])
    [held] = cinder_groups(clouds, "site-a", group["id"]).values()
    assert set(joined) <= set(held)
    members = api("site-b", "GET", f"/protection-groups/{ASYNC}/members", user="bob")
    assert {m["server_name"]: bool(m["captured_at"]) for m in members["members"]} == {
        "members-1": True, "members-2": True, "members-3": True}
    # Deleting it while it replicates is refused, naming unprotect.
    refused = api("site-a", "DELETE", f"/protection-groups/{ASYNC}", user="bob", expect=409)
    assert f"openstack protector protection-group unprotect {ASYNC}" in \
        refused["error"]["message"]


def test_the_next_drill_recovers_the_new_member(api, clouds):
    started = api("site-b", "POST", f"/protection-groups/{ASYNC}/test-failover", user="bob",
                  expect=202, json={})["operation"]
    op = api.wait_operation("site-b", started["id"], user="bob")
    assert op["status"] == "completed", op["results"]
    recovered = {s.name for s in clouds("site-b", "bob").compute.servers()}
    assert {"test-members-1", "test-members-2", "test-members-3"} <= recovered
    cleanup = api("site-b", "POST", f"/protection-groups/{ASYNC}/test-cleanup", user="bob",
                  expect=202)["operation"]
    assert api.wait_operation("site-b", cleanup["id"], user="bob")["status"] == "completed"


def test_a_member_removed_leaves_replication_and_keeps_its_volumes(lab, cli, clouds):
    servers, group_id = STATE["servers"], STATE["group"]
    leaving = volume_ids(clouds, servers["members-1"])
    cli("site-a-bob", "protector", "member", "remove", ASYNC, servers["members-1"], "--wait")
    array_a = lab.fabric.array(lab.sites["site-a"].array_name)
    held = set(array_a.get_pgroup(array_group_name(group_id))["volumes"])
    assert not {on_array(v) for v in leaving} & held
    assert {on_array(v) for v in volume_ids(clouds, servers["members-2"])} <= held
    [in_cinder_group] = cinder_groups(clouds, "site-a", group_id).values()
    assert not set(leaving) & set(in_cinder_group)
    for volume in leaving:            # the member's volumes stay, attached, on the array
        assert clouds("site-a", "bob").block_storage.get_volume(volume).status == "in-use"
        assert array_a.get_volume(on_array(volume))["name"] == on_array(volume)


def test_unprotect_leaves_no_object_of_the_group_and_no_cinder_group(lab, api, cli, clouds):
    servers, group_id = STATE["servers"], STATE["group"]
    assert array_objects(lab, "site-b", group_id)          # its replica, before
    op = cli("site-a-bob", "protector", "protection-group", "unprotect", ASYNC, "--wait",
             "-f", "json")
    assert op["status"] == "completed", op["results"]
    for site in ("site-a", "site-b"):
        assert array_objects(lab, site, group_id) == []
        assert cinder_groups(clouds, site, group_id) == {}
    assert status(api, ASYNC) == {"unprotected"}
    array_a = lab.fabric.array(lab.sites["site-a"].array_name)
    for server in servers.values():                       # every volume is still there
        for volume in volume_ids(clouds, server):
            assert array_a.get_volume(on_array(volume))["name"] == on_array(volume)
    api("site-a", "DELETE", f"/protection-groups/{ASYNC}", user="bob", expect=204)


def test_a_sync_groups_pod_follows_its_members_and_unprotect_removes_it(lab, api, cli,
                                                                         clouds):
    servers = seed_fleet(lab, user="bob", prefix="podded", count=2, cidr="10.27.0.0/24",
                         volume_type="replicated-sync")
    group = api("site-a", "POST", "/protection-groups", user="bob", expect=201, json={
        "name": SYNC, "replication_type": "sync", "primary_site": "site-a",
        "secondary_site": "site-b", "volume_type": "replicated-sync"})["protection_group"]
    pod = array_group_name(group["id"])
    api("site-a", "POST", f"/protection-groups/{SYNC}/members", user="bob", expect=201,
        json={"server_id": servers["podded-1"]})
    op = cli("site-a-bob", "protector", "protection-group", "protect", SYNC, "--wait",
             "-f", "json")
    assert op["status"] == "completed", op["results"]

    added = api("site-a", "POST", f"/protection-groups/{SYNC}/members", user="bob",
                expect=201, json={"server_id": servers["podded-2"]})
    assert api.wait_operation("site-a", added["operation"]["id"],
                              user="bob")["status"] == "completed"
    joined = volume_ids(clouds, servers["podded-2"])
    for site in ("site-a", "site-b"):                 # in the pod, so on both arrays
        in_pod = set(lab.fabric.inventory(lab.sites[site].array_name)["volumes"])
        assert {on_array(v, pod) for v in joined} <= in_pod

    removed = api("site-a", "DELETE", f"/protection-groups/{SYNC}/members/"
                  f"{servers['podded-1']}", user="bob", expect=202)
    assert api.wait_operation("site-a", removed["operation"]["id"],
                              user="bob")["status"] == "completed"
    leaving = volume_ids(clouds, servers["podded-1"])
    array_b = set(lab.fabric.inventory(lab.sites["site-b"].array_name)["volumes"])
    assert not {on_array(v, pod) for v in leaving} & array_b
    array_a = set(lab.fabric.inventory(lab.sites["site-a"].array_name)["volumes"])
    assert {on_array(v) for v in leaving} <= array_a          # at the root, kept

    op = cli("site-a-bob", "protector", "protection-group", "unprotect", SYNC, "--wait",
             "-f", "json")
    assert op["status"] == "completed", op["results"]
    for site in ("site-a", "site-b"):
        assert array_objects(lab, site, group["id"]) == []
        assert cinder_groups(clouds, site, group["id"]) == {}
    array_a = set(lab.fabric.inventory(lab.sites["site-a"].array_name)["volumes"])
    assert {on_array(v) for s in servers.values() for v in volume_ids(clouds, s)} <= array_a
    assert status(api, SYNC) == {"unprotected"}
