"""Readiness, the cloud-side checks: what a failover would find on the DR site as the
tenant's project, each failing check named with what to do."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from openstack import exceptions as sdk_exceptions

from site_recovery.core.plan import GroupPlan, spec_document
from site_recovery.core.readiness import Severity, assess, ready
from tests.unit.test_core_plan import WEB_1, WEB_SG, document, mapping


class DrSite:
    """The DR site's cloud as the tenant's project sees it: networks by name with their
    subnets, security groups, flavors and zones."""

    def __init__(self, networks: dict[str, str], flavors=("m1.small",), instances=10,
                 ports=(500, 12), key_pairs=(100, 1)):
        self.networks = networks                 # name -> CIDR of its one subnet
        self.current_project_id = "id-ecommerce"
        self.network = SimpleNamespace(
            get_quota=lambda project, details=False: SimpleNamespace(
                ports={"limit": ports[0], "used": ports[1], "reserved": 0}),
            find_network=lambda ref, ignore_missing=True: self._named(ref),
            find_security_group=lambda ref, ignore_missing=True: None,
            get_network=lambda network_id: SimpleNamespace(
                id=network_id, name=network_id.removeprefix("id-")),
            subnets=lambda network_id: [SimpleNamespace(
                id=f"subnet-of-{network_id}", network_id=network_id,
                cidr=self.networks[network_id.removeprefix("id-")])])
        self.compute = SimpleNamespace(
            find_flavor=lambda name, ignore_missing=True: (
                SimpleNamespace(id=name, vcpus=2, ram=2048) if name in flavors else None),
            availability_zones=lambda: [SimpleNamespace(name="az-a1",
                                                        state={"available": True})],
            get_limits=lambda: SimpleNamespace(absolute=SimpleNamespace(
                instances=instances, instances_used=3, total_cores=-1, total_cores_used=6,
                total_ram=51200, total_ram_used=6144, keypairs=key_pairs[0])),
            keypairs=lambda: [SimpleNamespace(name=f"key-{n}") for n in range(key_pairs[1])])
        self.block_storage = SimpleNamespace(get_limits=lambda: SimpleNamespace(
            absolute=SimpleNamespace(max_total_volumes=100, total_volumes_used=3)))
        self.validated: list[dict] = []
        self.heat_refuses: str | None = None
        self.orchestration = SimpleNamespace(validate_template=self._validate)

    def _validate(self, template):
        self.validated.append(template)
        if self.heat_refuses:
            raise sdk_exceptions.BadRequestException(details=self.heat_refuses)
        return SimpleNamespace(description=template.get("description"))

    def _named(self, ref):
        return SimpleNamespace(id=f"id-{ref}") if ref in self.networks else None


def plan(members=None) -> GroupPlan:
    return GroupPlan(document(members if members is not None else [
        {"server_id": "srv-1", "server_name": "web-1",
         "spec": spec_document(WEB_1, {"sg-1": WEB_SG})}]))


def checks(findings) -> dict[str, bool]:
    return {f.check: f.ok for f in findings}


def test_a_group_whose_mappings_hold_on_the_dr_site_is_ready():
    findings = assess(plan(), [mapping("network", "prod-net", "dr-net")],
                      DrSite({"dr-net": "10.0.0.0/24"}))
    assert checks(findings) == {"captured": True, "mappings": True, "addresses": True,
                                "flavors": True, "quota": True, "key_pairs": True,
                                "template": True}
    assert ready(findings)


def test_an_unmapped_network_is_named_with_what_to_do():
    findings = assess(plan(), [], DrSite({"dr-net": "10.0.0.0/24"}))
    (mapped,) = [f for f in findings if f.check == "mappings"]
    assert not mapped.ok and "prod-net (of web-1)" in mapped.detail
    assert "map each network" in mapped.remedy and not ready(findings)


def test_a_mapping_to_a_network_the_project_lacks_on_the_dr_site_is_named():
    findings = assess(plan(), [mapping("network", "prod-net", "gone-net")],
                      DrSite({"dr-net": "10.0.0.0/24"}))
    assert [(f.check, f.ok) for f in findings][-1] == ("mappings", False)
    assert "no network 'gone-net'" in findings[-1].detail


def test_a_kept_ip_outside_the_dr_subnet_is_flagged_and_an_ip_rule_clears_it():
    dr = DrSite({"dr-net": "10.9.0.0/24"})
    findings = assess(plan(), [mapping("network", "prod-net", "dr-net")], dr)
    (addresses,) = [f for f in findings if f.check == "addresses"]
    assert not addresses.ok and "web-1 10.0.0.11" in addresses.detail
    moved = assess(plan(), [mapping("network", "prod-net", "dr-net"),
                            mapping("ip_rule", "10.0.0.0/24", "10.9.0.0/24")], dr)
    assert checks(moved)["addresses"]


def test_a_flavor_the_dr_site_lacks_and_an_uncaptured_member_are_named():
    findings = assess(plan(), [mapping("network", "prod-net", "dr-net")],
                      DrSite({"dr-net": "10.0.0.0/24"}, flavors=("dr.small",)))
    (flavors,) = [f for f in findings if f.check == "flavors"]
    assert not flavors.ok and "m1.small" in flavors.detail
    uncaptured = assess(plan([{"server_id": "srv-2", "server_name": "web-2",
                               "spec": None}]), [], DrSite({}))
    assert [(f.check, f.ok, f.severity) for f in uncaptured] == [
        ("captured", False, Severity.ERROR)]
    assert "web-2" in uncaptured[0].detail


def test_a_dr_quota_too_small_for_the_group_is_named_and_unlimited_counts_as_room():
    findings = assess(plan(), [mapping("network", "prod-net", "dr-net")],
                      DrSite({"dr-net": "10.0.0.0/24"}, instances=3))
    (quota,) = [f for f in findings if f.check == "quota"]
    assert not quota.ok and quota.detail == (
        "the project's quota on site-b is short: instances: 1 needed, 0 free")
    assert "raise the project's quota" in quota.remedy and not ready(findings)


def test_ports_and_key_pairs_count_against_the_dr_quota():
    keyed = dataclasses.replace(WEB_1, key_name="alice-key", public_key="ssh-ed25519 AAA")
    group = GroupPlan(document([{"server_id": "srv-1", "server_name": "web-1",
                                 "spec": spec_document(keyed, {"sg-1": WEB_SG})}]))
    findings = assess(group, [mapping("network", "prod-net", "dr-net")],
                      DrSite({"dr-net": "10.0.0.0/24"}, ports=(12, 12), key_pairs=(3, 3)))
    (quota,) = [f for f in findings if f.check == "quota"]
    assert not quota.ok and quota.detail == (
        "the project's quota on site-b is short: ports: 1 needed, 0 free; key pairs: 1 "
        "needed, 0 free")


def test_a_key_pair_capture_could_not_read_is_a_warning():
    unkeyed = dataclasses.replace(WEB_1, key_name="alice-key", public_key=None)
    group = GroupPlan(document([{"server_id": "srv-1", "server_name": "web-1",
                                 "spec": spec_document(unkeyed, {"sg-1": WEB_SG})}]))
    findings = assess(group, [mapping("network", "prod-net", "dr-net")],
                      DrSite({"dr-net": "10.0.0.0/24"}))
    (keys,) = [f for f in findings if f.check == "key_pairs"]
    assert not keys.ok and keys.severity is Severity.WARNING
    assert "web-1 (alice-key)" in keys.detail and ready(findings)


def test_the_dr_sites_heat_validates_the_rendered_stack_and_its_refusal_is_named():
    dr = DrSite({"dr-net": "10.0.0.0/24"})
    assert checks(assess(plan(), [mapping("network", "prod-net", "dr-net")], dr))["template"]
    (sent,) = dr.validated
    assert {r["type"] for r in sent["resources"].values()} >= {"OS::Nova::Server",
                                                                "OS::Neutron::Port"}
    dr.heat_refuses = 'The Resource Type (OS::Nova::Server) could not be found.'
    findings = assess(plan(), [mapping("network", "prod-net", "dr-net")], dr)
    (template,) = [f for f in findings if f.check == "template"]
    assert not template.ok and template.detail == (
        "site-b's Heat refuses the recovery stack: The Resource Type (OS::Nova::Server) "
        "could not be found.")
    assert not ready(findings)
