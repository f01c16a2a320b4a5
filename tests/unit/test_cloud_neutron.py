"""Simulated Neutron, as neutronclient and openstacksdk see it (in process)."""

from __future__ import annotations

import pytest

from site_recovery.lab.cloud.testing import Client

NET = "/network/v2.0"


@pytest.fixture
def alice(app):
    return Client(app, "ecommerce")


@pytest.fixture
def network(alice):
    """A /29 network: gateway .1, addresses .2 to .6 to hand out."""
    _, body = alice.post(f"{NET}/networks", {"network": {"name": "private"}})
    net = body["network"]
    status, body = alice.post(f"{NET}/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "10.0.0.0/29", "ip_version": 4}})
    assert status == 201
    assert body["subnet"]["gateway_ip"] == "10.0.0.1"
    assert body["subnet"]["allocation_pools"] == [{"start": "10.0.0.2", "end": "10.0.0.6"}]
    return {**net, "subnet_id": body["subnet"]["id"]}


def port(client, network, **attrs):
    return client.post(f"{NET}/ports", {"port": {"network_id": network["id"], **attrs}})


def test_ports_get_the_first_free_address_or_the_one_asked_for(alice, network):
    assert port(alice, network, fixed_ips=[{"ip_address": "10.0.0.5"}])[1]["port"][
        "fixed_ips"] == [{"subnet_id": network["subnet_id"], "ip_address": "10.0.0.5"}]
    addresses = [port(alice, network)[1]["port"]["fixed_ips"][0]["ip_address"]
                 for _ in range(4)]
    assert addresses == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.6"]
    status, body = port(alice, network)
    assert status == 409
    assert body["NeutronError"]["type"] == "IpAddressGenerationFailure"


def test_a_taken_address_is_a_409_neutronclient_understands(alice, network):
    _, first = port(alice, network, fixed_ips=[{"ip_address": "10.0.0.3"}])
    status, body = port(alice, network, fixed_ips=[{"ip_address": "10.0.0.3"}])
    assert status == 409
    assert body == {"NeutronError": {
        "type": "IpAddressAlreadyAllocated", "detail": "",
        "message": f"IP address 10.0.0.3 already allocated in subnet {network['subnet_id']}"}}
    alice.delete(f"{NET}/ports/{first['port']['id']}")
    assert port(alice, network, fixed_ips=[{"ip_address": "10.0.0.3"}])[0] == 201
    assert port(alice, network, fixed_ips=[{"ip_address": "10.9.9.9"}])[1][
        "NeutronError"]["type"] == "InvalidIpForNetwork"


def test_new_ports_are_down_with_the_default_group_and_a_fresh_mac(alice, network):
    _, body = port(alice, network, **{"binding:vnic_type": "normal"})
    new = body["port"]
    assert new["status"] == "DOWN"
    assert new["mac_address"].startswith("fa:16:3e:")
    assert new["tenant_id"] == new["project_id"] == "ecommerce"
    _, groups = alice.get(f"{NET}/security-groups?name=default")
    assert new["security_groups"] == [groups["security_groups"][0]["id"]]


def test_default_group_appears_on_first_use_with_neutrons_four_rules(alice):
    _, body = alice.get(f"{NET}/security-groups")
    [default] = body["security_groups"]
    assert default["name"] == "default"
    rules = {(r["direction"], r["ethertype"], r["remote_group_id"])
             for r in default["security_group_rules"]}
    assert rules == {("ingress", "IPv4", default["id"]), ("ingress", "IPv6", default["id"]),
                     ("egress", "IPv4", None), ("egress", "IPv6", None)}
    assert alice.get(f"{NET}/security-groups")[1]["security_groups"] == [default]


def test_heat_bulk_rules_create_all_or_nothing(alice):
    _, body = alice.post(f"{NET}/security-groups", {"security_group": {"name": "web"}})
    group = body["security_group"]
    assert [(r["direction"], r["ethertype"]) for r in group["security_group_rules"]] == [
        ("egress", "IPv4"), ("egress", "IPv6")]
    ssh = {"security_group_id": group["id"], "direction": "ingress", "protocol": "tcp",
           "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "0.0.0.0/0"}
    icmp = {"security_group_id": group["id"], "direction": "ingress", "protocol": "icmp"}
    status, body = alice.post(f"{NET}/security-group-rules", {"security_group_rules": [ssh, icmp]})
    assert status == 201
    assert [r["protocol"] for r in body["security_group_rules"]] == ["tcp", "icmp"]
    http = {**ssh, "port_range_min": 80, "port_range_max": 80}
    status, body = alice.post(f"{NET}/security-group-rules", {"security_group_rules": [http, ssh]})
    assert status == 409
    assert body["NeutronError"]["type"] == "SecurityGroupRuleExists"
    rules = alice.get(f"{NET}/security-groups/{group['id']}")[1]["security_group"][
        "security_group_rules"]
    assert len(rules) == 4                       # the bulk with a duplicate added nothing


def test_rule_validation_errors(alice):
    group = alice.post(f"{NET}/security-groups", {"security_group": {"name": "g"}})[1][
        "security_group"]
    base = {"security_group_id": group["id"], "direction": "ingress"}
    cases = [({**base, "port_range_min": 22}, "SecurityGroupProtocolRequiredWithPorts"),
             ({**base, "protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
              "SecurityGroupInvalidPortRange"),
             ({**base, "ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"},
              "SecurityGroupRuleParameterConflict"),
             ({**base, "security_group_id": "nope"}, "SecurityGroupNotFound")]
    for rule, kind in cases:
        status, body = alice.post(f"{NET}/security-group-rules", {"security_group_rule": rule})
        assert status in (400, 404)
        assert body["NeutronError"]["type"] == kind


def test_list_filters_and_fields_as_heat_and_nova_ask(alice, network):
    _, a = port(alice, network, name="a", device_id="vm-1")
    port(alice, network, name="b")
    status, body = alice.get(f"{NET}/networks?name=private&fields=id")
    assert status == 200
    assert body == {"networks": [{"id": network["id"]}]}
    assert [p["name"] for p in alice.get(f"{NET}/ports?device_id=vm-1")[1]["ports"]] == ["a"]
    assert [p["name"] for p in alice.get(
        f"{NET}/ports?network_id={network['id']}&name=b")[1]["ports"]] == ["b"]
    either = alice.get(f"{NET}/ports?device_id=vm-1&device_id=vm-2&fields=name")[1]
    assert either == {"ports": [{"name": "a"}]}
    assert alice.get(f"{NET}/ports?device_id=vm-2")[1] == {"ports": []}
    ip = a["port"]["fixed_ips"][0]["ip_address"]
    found = alice.get(f"{NET}/ports?fixed_ips=ip_address={ip}&fields=id&fields=name")[1]
    assert found == {"ports": [{"id": a["port"]["id"], "name": "a"}]}
    assert alice.get(f"{NET}/ports?colour=red")[1]["NeutronError"]["type"] == "HTTPBadRequest"
    # refused even where the match on a known attribute already left nothing
    status, body = alice.get(f"{NET}/ports?device_id=vm-2&colour=red")
    assert status == 400
    assert body["NeutronError"]["message"] == "colour is invalid attribute for filtering"
    assert alice.get(f"{NET}/ports?device_id=vm-2&status=ACTIVE")[1] == {"ports": []}


def test_projects_see_their_own_resources_and_admins_see_all(app, alice, network):
    bob = Client(app, "analytics")
    admin = Client(app, "admin", "admin")
    _, body = port(alice, network)
    assert bob.get(f"{NET}/networks")[1] == {"networks": []}
    status, body = bob.get(f"{NET}/ports/{body['port']['id']}")
    assert status == 404
    assert body["NeutronError"]["type"] == "PortNotFound"
    assert port(bob, network)[0] == 404
    assert [n["id"] for n in admin.get(f"{NET}/networks")[1]["networks"]] == [network["id"]]


def test_shared_networks_serve_every_project(app, network):
    admin = Client(app, "admin", "admin")
    _, body = admin.post(f"{NET}/networks", {"network": {"name": "public", "shared": True}})
    admin.post(f"{NET}/subnets", {"subnet": {"network_id": body["network"]["id"],
                                             "cidr": "192.0.2.0/24"}})
    bob = Client(app, "analytics")
    assert [n["name"] for n in bob.get(f"{NET}/networks")[1]["networks"]] == ["public"]
    assert port(bob, body["network"])[0] == 201
    assert bob.post(f"{NET}/networks", {"network": {"name": "x", "shared": True}})[0] == 403


def test_in_use_groups_and_networks_are_not_deleted(alice, network):
    group = alice.post(f"{NET}/security-groups", {"security_group": {"name": "g"}})[1][
        "security_group"]
    _, body = port(alice, network, security_groups=[group["id"]], device_id="vm",
                   device_owner="compute:nova")
    status, err = alice.delete(f"{NET}/security-groups/{group['id']}")
    assert (status, err["NeutronError"]["type"]) == (409, "SecurityGroupInUse")
    status, err = alice.delete(f"{NET}/networks/{network['id']}")
    assert (status, err["NeutronError"]["type"]) == (409, "NetworkInUse")
    assert alice.delete(f"{NET}/ports/{body['port']['id']}")[0] == 204
    assert alice.delete(f"{NET}/security-groups/{group['id']}")[0] == 204
    assert alice.delete(f"{NET}/networks/{network['id']}")[0] == 204
    assert alice.get(f"{NET}/subnets/{network['subnet_id']}")[0] == 404


def test_port_update_moves_the_address_and_binding_sets_status(alice, network):
    _, body = port(alice, network)
    port_id = body["port"]["id"]
    status, body = alice.put(f"{NET}/ports/{port_id}", {"port": {
        "fixed_ips": [{"ip_address": "10.0.0.6"}], "device_id": "vm",
        "binding:host_id": "compute-1"}})
    assert status == 200
    assert body["port"]["fixed_ips"][0]["ip_address"] == "10.0.0.6"
    assert body["port"]["status"] == "ACTIVE"
    assert body["port"]["revision_number"] == 1
    assert alice.put(f"{NET}/ports/{port_id}", {"port": {"mac_addr": "x"}})[0] == 400


def test_extensions_list_what_heat_probes(alice):
    _, body = alice.get(f"{NET}/extensions")
    aliases = {e["alias"] for e in body["extensions"]}
    assert {"security-group", "port-security", "binding", "quotas", "extra_dhcp_opt",
            "standard-attr-description", "allowed-address-pairs",
            "subnet_allocation"} <= aliases
