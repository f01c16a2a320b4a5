"""The Heat template that rebuilds a protection group: what lands where on the DR site."""

from __future__ import annotations

import pytest
import yaml

from site_recovery.core.model import FixedIp, Port, SecurityGroup, Server, ServerGroup, Volume
from site_recovery.core.stacks import (
    Mappings,
    RenderError,
    Subnet,
    address,
    render,
    server_resources,
    stack_name,
    stages,
)

WEB_SG = SecurityGroup("sg-web", "web-sg", (
    {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 443,
     "port_range_max": 443, "remote_ip_prefix": "0.0.0.0/0"},))
APP_SG = SecurityGroup("sg-app", "app-sg", (
    {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 8080,
     "port_range_max": 8080, "remote_group_id": "sg-web"},
    {"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22,
     "port_range_max": 22, "remote_group_id": "sg-elsewhere"}))
SUBNETS = [Subnet("sub-prod", "dr-prod-net", "10.0.0.0/24"),
           Subnet("sub-db", "dr-db-net", "10.1.1.0/24")]
MAPPINGS = Mappings(network={"prod-net": "dr-prod-net", "db-net": "dr-db-net"},
                    flavor={"m1.small": "dr.small"},
                    ip_rule={"10.0.1.0/24": "10.1.1.0/24"})


def server(name, network="prod-net", ip="10.0.0.11", cidr="10.0.0.0/24", sgs=("sg-web",),
           order=0, data=False, **extra):
    volumes = (Volume(f"{name}-boot", 0),) + ((Volume(f"{name}-data", None, "/dev/vdb"),)
                                              if data else ())
    return Server(f"id-{name}", name, extra.pop("flavor", "m1.small"),
                  (Port(network, (FixedIp(ip, cidr),), sgs),), volumes, boot_order=order,
                  **extra)


def rendered(servers, purpose="drill", mappings=MAPPINGS, **options) -> dict:
    volumes = {v.id: f"dr-{v.id}" for s in servers for v in s.volumes}
    text = render("prod-ecommerce", purpose, servers, volumes=volumes, mappings=mappings,
                  subnets=SUBNETS, security_groups={"sg-web": WEB_SG, "sg-app": APP_SG},
                  **options)
    return yaml.safe_load(text)


def of_type(template, kind):
    return {name: r for name, r in template["resources"].items() if r["type"] == kind}


def test_a_drill_is_test_prefixed_and_a_failover_keeps_production_names():
    assert stack_name("drill", "prod-ecommerce-db") == "test-prod-ecommerce-db"
    assert stack_name("failover", "prod-ecommerce-db") == "dr-prod-ecommerce-db"
    (drill,) = of_type(rendered([server("web-1")]), "OS::Nova::Server").values()
    assert drill["properties"]["name"] == "test-web-1"
    (failover,) = of_type(rendered([server("web-1")], "failover"),
                          "OS::Nova::Server").values()
    assert failover["properties"]["name"] == "web-1"


def test_servers_boot_from_the_dr_copies_with_mapped_flavors_and_their_metadata():
    template = rendered([server("web-1", metadata={"tier": "web"}),
                         server("app-1", flavor="m1.medium", data=True)])
    servers = {r["properties"]["name"]: r["properties"]
               for r in of_type(template, "OS::Nova::Server").values()}
    assert servers["test-web-1"]["flavor"] == "dr.small"
    assert servers["test-app-1"]["flavor"] == "m1.medium"          # unmapped: same name
    assert servers["test-web-1"]["metadata"] == {"tier": "web",
                                                 "site_recovery_source": "id-web-1"}
    assert servers["test-web-1"]["block_device_mapping_v2"] == [
        {"boot_index": 0, "volume_id": "dr-web-1-boot", "delete_on_termination": False}]
    (attachment,) = of_type(template, "OS::Cinder::VolumeAttachment").values()
    assert attachment["properties"]["volume_id"] == "dr-app-1-data"
    assert attachment["properties"]["mountpoint"] == "/dev/vdb"


@pytest.mark.parametrize(("ip", "cidr", "expected"), [
    ("10.0.0.11", "10.0.0.0/24", {"subnet": "sub-prod", "ip_address": "10.0.0.11"}),
    ("10.0.1.31", "10.0.1.0/24", {"subnet": "sub-db", "ip_address": "10.1.1.31"}),
    ("172.16.0.5", "172.16.0.0/24", None),
])
def test_a_fixed_ip_is_kept_re_addressed_by_the_ip_rules_or_left_to_neutron(ip, cidr,
                                                                             expected):
    assert address(FixedIp(ip, cidr), SUBNETS, MAPPINGS.ip_rule) == expected


def test_an_ip_rule_written_loosely_still_applies():
    assert address(FixedIp("10.0.1.31", "10.0.1.0/24"), SUBNETS,
                   {"10.0.1.1/24": "10.1.1.1/24"}) == {"subnet": "sub-db",
                                                       "ip_address": "10.1.1.31"}


def test_ports_land_on_mapped_networks_with_their_addresses():
    template = rendered([server("db-1", network="db-net", ip="10.0.1.31",
                                cidr="10.0.1.0/24")])
    (port,) = of_type(template, "OS::Neutron::Port").values()
    assert port["properties"]["network"] == "dr-db-net"
    assert port["properties"]["fixed_ips"] == [{"subnet": "sub-db", "ip_address": "10.1.1.31"}]


def test_security_groups_are_recreated_with_rules_pointing_at_their_copies():
    template = rendered([server("web-1"), server("app-1", sgs=("sg-app",))])
    groups = {r["properties"]["name"]: (name, r["properties"]["rules"])
              for name, r in of_type(template, "OS::Neutron::SecurityGroup").items()}
    web_resource, web_rules = groups["test-web-sg"]
    assert web_rules[0]["port_range_min"] == 443
    _, app_rules = groups["test-app-sg"]
    # The rule from web-sg points at the copy; the one from a group outside is dropped.
    assert app_rules == [{"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                          "port_range_min": 8080, "port_range_max": 8080,
                          "remote_mode": "remote_group_id",
                          "remote_group_id": {"get_resource": web_resource}}]


def test_a_mapped_security_group_is_used_not_recreated():
    mappings = Mappings(network=MAPPINGS.network, security_group={"sg-web": "dr-sg-web"})
    template = rendered([server("web-1")], mappings=mappings)
    assert of_type(template, "OS::Neutron::SecurityGroup") == {}
    (port,) = of_type(template, "OS::Neutron::Port").values()
    assert port["properties"]["security_groups"] == ["dr-sg-web"]


def test_servers_boot_tier_by_tier():
    template = rendered([server("db-1", order=0), server("app-1", order=1),
                         server("app-2", order=1), server("web-1", order=2)])
    servers = {r["properties"]["name"]: (name, r.get("depends_on", []))
               for name, r in of_type(template, "OS::Nova::Server").items()}
    db, _ = servers["test-db-1"]
    assert servers["test-db-1"][1] == []
    assert servers["test-app-1"][1] == servers["test-app-2"][1] == [db]
    assert sorted(servers["test-web-1"][1]) == sorted(
        [servers["test-app-1"][0], servers["test-app-2"][0]])


def test_outputs_list_each_recovered_vm_with_its_source():
    outputs = rendered([server("web-1"), server("web-2")])["outputs"]["servers"]["value"]
    assert [(o["name"], o["source_id"]) for o in outputs] == [
        ("test-web-1", "id-web-1"), ("test-web-2", "id-web-2")]
    assert all(o["addresses"]["get_attr"][1] == "addresses" for o in outputs)


def test_names_a_tenant_typed_stay_data_in_the_yaml():
    tricky = server('web"1: {x}', metadata={"note": "a: b\n- c"})
    (props,) = [r["properties"] for r in
                of_type(rendered([tricky]), "OS::Nova::Server").values()]
    assert props["name"] == 'test-web"1: {x}' and props["metadata"]["note"] == "a: b\n- c"


@pytest.mark.parametrize(("servers", "mappings", "says"), [
    ([server("web-1", network="lost-net")], MAPPINGS, "network lost-net has no mapping"),
    ([server("web-1", sgs=("sg-unknown",))], MAPPINGS, "neither mapped nor captured"),
    ([], MAPPINGS, "no captured server"),
])
def test_what_cannot_be_rebuilt_is_named(servers, mappings, says):
    with pytest.raises(RenderError, match=says):
        rendered(servers, mappings=mappings)


def test_a_volume_without_a_dr_copy_is_named():
    with pytest.raises(RenderError, match=r"web-1: no DR copy of volumes \['web-1-boot'\]"):
        render("g", "drill", [server("web-1")], volumes={}, mappings=MAPPINGS,
               subnets=SUBNETS, security_groups={"sg-web": WEB_SG})


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOJLpPHe5WtVAUPiYf+OLeI/mXrCWVBwW6l72rsqa49P"


def server_properties(template) -> dict[str, dict]:
    return {r["properties"]["name"]: r["properties"]
            for r in of_type(template, "OS::Nova::Server").values()}


def test_a_key_pair_comes_back_from_its_public_key_under_a_name_no_other_stack_has():
    template = rendered([server("web-1", key_name="ecommerce-key", public_key=KEY),
                         server("web-2", key_name="ecommerce-key", public_key=KEY),
                         server("app-1"),
                         server("db-1", key_name="deleted-since", public_key=None)])
    ((resource, key),) = of_type(template, "OS::Nova::KeyPair").items()
    assert key["properties"]["public_key"] == KEY
    # Owned by the DR account, for every tenant: the stack's id makes the name unique.
    assert key["properties"]["name"] == {"list_join": ["-", [
        "test-prod-ecommerce-ecommerce-key", {"get_param": "OS::stack_id"}]]}
    servers = server_properties(template)
    assert servers["test-web-1"]["key_name"] == servers["test-web-2"]["key_name"] == \
        {"get_resource": resource}
    assert "key_name" not in servers["test-app-1"]
    assert "key_name" not in servers["test-db-1"]       # its public key was not captured


def test_two_users_keys_of_one_name_both_come_back():
    template = rendered([server("web-1", key_name="ops", public_key=KEY),
                         server("web-2", key_name="ops", public_key=KEY + " other")],
                        purpose="failover")
    names = sorted(k["properties"]["name"]["list_join"][1][0]
                   for k in of_type(template, "OS::Nova::KeyPair").values())
    assert names == ["dr-prod-ecommerce-ops-1", "dr-prod-ecommerce-ops-2"]
    keys = {s["key_name"]["get_resource"] for s in server_properties(template).values()}
    assert len(keys) == 2


def test_a_key_pair_name_keeps_to_what_heat_may_create():
    """Heat creates key pairs at compute 2.1: letters, digits, spaces, '_' and '-'."""
    servers = [server("web-1", key_name="ops@team.a", public_key=KEY)]
    text = render("prod.ecommerce", "failover", servers,
                  volumes={v.id: f"dr-{v.id}" for s in servers for v in s.volumes},
                  mappings=MAPPINGS, subnets=SUBNETS,
                  security_groups={"sg-web": WEB_SG, "sg-app": APP_SG})
    ((_, key),) = of_type(yaml.safe_load(text), "OS::Nova::KeyPair").items()
    assert key["properties"]["name"]["list_join"][1][0] == "dr-prod-ecommerce-ops-team-a"


def test_servers_keep_their_availability_zone_as_the_mappings_resolved_it():
    mappings = Mappings(network=MAPPINGS.network,
                        availability_zone={"az-a1": "az-b1", "az-gone": None})
    template = rendered([server("web-1", availability_zone="az-a1"),
                         server("web-2", availability_zone="az-gone"), server("app-1")],
                        mappings=mappings)
    servers = server_properties(template)
    assert servers["test-web-1"]["availability_zone"] == "az-b1"
    assert "availability_zone" not in servers["test-web-2"]      # Nova chooses
    assert "availability_zone" not in servers["test-app-1"]


def test_a_server_group_comes_back_with_its_policy_holding_the_members_that_shared_it():
    spread = ServerGroup("sg-1", "web-spread", "anti-affinity", {"max_server_per_host": 1})
    together = ServerGroup("sg-2", "db-pair", "affinity")
    template = rendered([server("web-1", server_group=spread),
                         server("web-2", server_group=spread),
                         server("db-1", server_group=together), server("app-1")],
                        purpose="failover")
    groups = {r["properties"]["name"]: (name, r["properties"])
              for name, r in of_type(template, "OS::Nova::ServerGroup").items()}
    assert groups["web-spread"][1] == {"name": "web-spread", "policies": ["anti-affinity"],
                                       "rules": {"max_server_per_host": 1}}
    assert groups["db-pair"][1] == {"name": "db-pair", "policies": ["affinity"]}
    servers = server_properties(template)
    hint = {"group": {"get_resource": groups["web-spread"][0]}}
    assert servers["web-1"]["scheduler_hints"] == servers["web-2"]["scheduler_hints"] == hint
    assert servers["db-1"]["scheduler_hints"] == {
        "group": {"get_resource": groups["db-pair"][0]}}
    assert "scheduler_hints" not in servers["app-1"]
    drill = rendered([server("web-1", server_group=spread)])
    (copy,) = of_type(drill, "OS::Nova::ServerGroup").values()
    assert copy["properties"]["name"] == "test-web-spread"


def test_a_gated_tier_ends_a_stage_and_each_stage_adds_to_the_last_without_renaming():
    db = server("db-1", sgs=("sg-app",), order=0, data=True)
    app = server("app-1", order=1, key_name="ops", public_key="ssh-ed25519 AAAA ops")
    web = server("web-1", ip="10.0.0.12", order=2)
    servers = [web, app, db]
    assert stages(servers, []) == [2]                      # nothing gated: one stack create
    assert stages(servers, [db.id]) == [0, 2]
    assert stages(servers, [db.id, web.id]) == [0, 2]      # the last tier's gate ends it
    assert stages(servers, [app.id]) == [1, 2]
    assert server_resources(servers) == {db.id: "server_0", app.id: "server_1",
                                         web.id: "server_2"}

    first = rendered(servers, "failover", boot_until=0)["resources"]
    whole = rendered(servers, "failover", boot_until=2)["resources"]
    assert sorted(n for n, r in first.items() if r["type"] == "OS::Nova::Server") == [
        "server_0"]
    assert "volume_0_1" in first and "port_1_0" not in first
    # Security groups and key pairs are there from the first stage, as they will stay.
    assert {"key_0", "sg_0", "sg_1"} <= set(first)
    assert {n: r for n, r in whole.items() if n in first} == first
    assert sorted(set(whole) - set(first)) == ["port_1_0", "port_2_0", "server_1",
                                               "server_2"]
