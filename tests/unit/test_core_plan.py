"""A group's document read into what the DR steps rebuild: captured specs, arrays,
mappings (project-wide, the group's own, a drill's overrides)."""

from __future__ import annotations

import pytest

from site_recovery.core.config import parse
from site_recovery.core.model import FixedIp, Port, SecurityGroup, Server, ServerGroup, Volume
from site_recovery.core.plan import (
    GroupPlan,
    PlanError,
    array_group_name,
    cinder_id_of,
    spec_document,
)
from tests.unit.documents import group_document, mapping_document
from tests.unit.test_core_config import minimal

WEB_SG = SecurityGroup("sg-1", "web-sg", ({"direction": "ingress", "port_range_min": 80},))
WEB_1 = Server("srv-1", "web-1", "m1.small",
               (Port("net-1", (FixedIp("10.0.0.11", "10.0.0.0/24"),), ("sg-1",), "prod-net"),),
               (Volume("vol-1", 0, None, "web-1-boot", "replicated-ssd"),),
               key_name="ecommerce-key", metadata={"tier": "web"}, boot_order=2,
               public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOJLpPHe5WtVAUPiYf+OLeI ops",
               availability_zone="az-a1",
               server_group=ServerGroup("grp-1", "web-spread", "anti-affinity",
                                        {"max_server_per_host": 1}))


def document(members, replication_type="async", group_id="0d6f3c52-9d1e-4a8e-8f0c-1b2a3c4d5e6f"):
    return group_document(id=group_id, name="prod-ecommerce-web", project_name="ecommerce",
                          replication_type=replication_type, primary_site="site-a",
                          secondary_site="site-b", rpo_target_seconds=None, members=members)


def test_a_captured_member_reads_back_as_the_server_capture_saw():
    plan = GroupPlan(document([{"server_id": "srv-1", "server_name": "web-1",
                                "spec": spec_document(WEB_1, {"sg-1": WEB_SG})}]))
    assert plan.servers == [WEB_1]
    assert plan.security_groups == {"sg-1": WEB_SG}
    assert [v.id for v in plan.volumes] == ["vol-1"]


def test_a_tenants_boot_tier_overrides_the_tier_metadata_and_gates_are_read_by_server():
    plan = GroupPlan(document([{"server_id": "srv-1", "server_name": "web-1",
                                "spec": spec_document(WEB_1, {"sg-1": WEB_SG}),
                                "boot_tier": 0, "gate": {"console_marker": "nginx started"}}]))
    (server,) = plan.servers
    assert (WEB_1.boot_order, server.boot_order) == (2, 0)
    assert plan.gates["srv-1"].console_marker == "nginx started"
    assert plan.gates["srv-1"].timeout_seconds == 300


def test_a_member_never_captured_is_named_before_anything_is_built():
    plan = GroupPlan(document([{"server_id": "srv-2", "server_name": "web-2", "spec": None}]))
    with pytest.raises(PlanError, match=r"members \['web-2'\] have not been captured"):
        _ = plan.servers


def test_the_arrays_follow_the_groups_sites_and_its_id(tmp_path):
    config = parse(minimal(tmp_path, arrays=[
        {"name": "pure-a", "site": "site-a", "address": "a:443", "token_file": "/t",
         "cinder_host": "cinder@pure#pure"},
        {"name": "pure-b", "site": "site-b", "address": "b:443",
         "cinder_host": "cinder@pure#pure"}]))
    plan = GroupPlan(document([], "sync"))
    spec = plan.protection(config)
    assert (spec.name, spec.source_array, spec.target_array) == (
        array_group_name(plan.id), "pure-a", "pure-b")
    assert plan.array_source(spec, "abc") == f"{spec.name}::volume-abc-cinder"
    assert cinder_id_of(plan.array_source(spec, "0d6f3c52-9d1e-4a8e-8f0c-1b2a3c4d5e6f")) == \
        "0d6f3c52-9d1e-4a8e-8f0c-1b2a3c4d5e6f"


def mapping(kind, source, target, group_id=None, project="ecommerce"):
    return mapping_document(kind=kind, source=source, target=target, group_id=group_id,
                            project_name=project)


def test_the_groups_own_mapping_wins_over_the_projects_and_a_drills_over_both():
    plan = GroupPlan(document([]))
    raw = plan.mappings([mapping("network", "prod-net", "group-net", plan.id),
                         mapping("network", "prod-net", "project-net"),
                         mapping("flavor", "m1.small", "dr.small"),
                         mapping("flavor", "m1.small", "theirs", project="analytics"),
                         mapping("network", "db-net", "other-group", "another-group")])
    assert raw.network == {"prod-net": "group-net"}
    assert raw.flavor == {"m1.small": "dr.small"}
    assert plan.mappings([mapping("network", "prod-net", "project-net")],
                         {"prod-net": "test-net"}).network == {"prod-net": "test-net"}


def test_mappings_match_captured_ids_or_names_and_resolve_on_the_dr_site():
    plan = GroupPlan(document([]))
    dr_networks = {"dr-prod-net": "dr-net-id"}
    dr_groups = {"dr-web": "dr-sg-id"}
    raw = plan.mappings([mapping("network", "prod-net", "dr-prod-net"),
                         mapping("security_group", "sg-1", "dr-web")])
    resolved = raw.resolve([WEB_1], {"sg-1": WEB_SG}, dr_networks.get, dr_groups.get)
    assert resolved.network == {"net-1": "dr-net-id"}
    assert resolved.security_group == {"sg-1": "dr-sg-id"}


def test_a_mapping_to_a_network_the_dr_site_lacks_is_named():
    raw = GroupPlan(document([])).mappings([mapping("network", "net-1", "nowhere")])
    with pytest.raises(PlanError, match="no network 'nowhere' on the DR site"):
        raw.resolve([WEB_1], {}, lambda ref: None, lambda ref: None)


def test_a_zone_keeps_its_name_where_the_dr_site_has_it_else_its_mapping_or_none():
    app_1 = Server("srv-2", "app-1", "m1.small", (), (), availability_zone="az-shared")
    db_1 = Server("srv-3", "db-1", "m1.small", (), (), availability_zone="az-a2")
    dr_zones = {"az-shared", "az-b1"}
    plan = GroupPlan(document([]))
    unmapped = plan.mappings([]).resolve([WEB_1, app_1, db_1], {}, None, None,
                                         lambda name: name if name in dr_zones else None)
    assert unmapped.availability_zone == {"az-a1": None, "az-a2": None,
                                          "az-shared": "az-shared"}
    mapped = plan.mappings([mapping("availability_zone", "az-a1", "az-b1")]).resolve(
        [WEB_1, app_1], {}, None, None, lambda name: name if name in dr_zones else None)
    assert mapped.availability_zone == {"az-a1": "az-b1", "az-shared": "az-shared"}


def test_a_zone_mapping_to_a_zone_the_dr_site_lacks_is_named():
    raw = GroupPlan(document([])).mappings([mapping("availability_zone", "az-a1", "az-x")])
    with pytest.raises(PlanError, match="availability zone mapping az-a1 -> az-x: no "
                                        "availability zone 'az-x' on the DR site"):
        raw.resolve([WEB_1], {}, None, None, lambda name: None)
