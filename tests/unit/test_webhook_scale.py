"""Metadata at scale: a group of 120 VMs with typical captured specs (about 15 KB each:
the concept document's VMs with their security groups' rules) is captured in records
under the service's body limit and kept on both sites; a capture that finds nothing new
moves only the members' capture time, and the audit log keeps what changed, never the
whole documents. (bench/capture.py measures 100 and 500 VMs on the lab.)"""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from site_recovery.core import capture as capturing
from site_recovery.core.model import FixedIp, Port, SecurityGroup, Server, Volume
from site_recovery.core.plan import spec_document
from site_recovery.webhook.models import AuditEntry
from site_recovery.webhook.services import services
from tests.unit.webhook_sites import ALICE, SERVICE

WEB = {"name": "fleet", "replication_type": "async", "primary_site": "site-a",
       "secondary_site": "site-b", "volume_type": "replicated-ssd"}
VMS = 120


def typical_spec(server_id: str, n: int) -> dict:
    rules = tuple({"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
                   "port_range_min": port, "port_range_max": port,
                   "remote_ip_prefix": f"10.{k}.0.0/16"}
                  for k, port in enumerate(range(8000, 8040)))
    groups = {f"sg-{k}": SecurityGroup(f"sg-{k}", f"tier-{k}", rules) for k in range(3)}
    server = Server(server_id, f"vm-{n}", "m1.small",
                    (Port("net-1", (FixedIp(f"10.0.{n // 250}.{n % 250 + 2}", "10.0.0.0/16"),),
                          tuple(groups), "app-net"),),
                    (Volume(f"vol-{n}-root", 0, None, f"vm-{n}-root", "replicated-ssd"),
                     Volume(f"vol-{n}-data", None, "/dev/vdb", f"vm-{n}-data",
                            "replicated-ssd")),
                    metadata={"tier": "app", "owner": "ecommerce"})
    return spec_document(server, groups)


def audit_bytes(client) -> int:
    with services(client.application).sessions() as session:
        return sum(len(json.dumps(e.details)) + len(e.reason or "")
                   for e in session.scalars(select(AuditEntry)))


def stored_specs(client, group: str) -> dict:
    doc = client.get(f"/v1/internal/protection-groups/{group}", headers=SERVICE).json
    return {m["server_id"]: m["spec"] for m in doc["document"]["members"]}


def record(client, group: str, specs: dict, held: dict) -> int:
    """Capture's records, as the workflow sends them; how many."""
    records = capturing.records(specs, held)
    for changed, unchanged in records:
        reply = client.put(f"/v1/internal/protection-groups/{group}/capture",
                           json={"specs": changed, "unchanged": unchanged}, headers=SERVICE)
        assert reply.status_code == 200, reply.json
    return len(records)


@pytest.fixture
def fleet(sites):
    clients, links = sites
    group = clients["site-a"].post("/v1/protection-groups", json=WEB,
                                   headers=ALICE).json["protection_group"]["id"]
    servers = [str(uuid.UUID(int=n + 1)) for n in range(VMS)]
    for n, server in enumerate(servers):
        reply = clients["site-a"].post("/v1/protection-groups/fleet/members", headers=ALICE,
                                       json={"server_id": server, "server_name": f"vm-{n}"})
        assert reply.status_code == 201, reply.json
    return clients, links, group, {s: typical_spec(s, n) for n, s in enumerate(servers)}


def test_a_group_of_vms_is_captured_under_the_body_limit_on_both_sites(fleet):
    clients, _, group, specs = fleet
    whole = len(json.dumps({"specs": specs}))
    limit = services(clients["site-b"].application).config.max_body_bytes
    assert whole > limit                  # one record of it all would be refused (413)
    assert record(clients["site-b"], group, specs, {}) > whole // capturing.RECORD_BYTES
    for client in clients.values():
        assert stored_specs(client, group) == specs


def test_an_unchanged_capture_moves_and_keeps_little(fleet):
    clients, links, group, specs = fleet
    record(clients["site-a"], group, specs, {})
    pushed = []
    link = links["site-a"]
    request = link.request
    link.request = lambda method, path, body=None: (
        pushed.append(len(json.dumps(body or {}))), request(method, path, body))[1]
    before = {site: audit_bytes(c) for site, c in clients.items()}
    held = stored_specs(clients["site-a"], group)
    assert record(clients["site-a"], group, specs, held) == 1
    grown = {site: audit_bytes(c) - before[site] for site, c in clients.items()}
    assert all(0 < size < 10_000 for size in grown.values()), grown
    assert max(pushed) < 40_000, pushed           # the members' times, not their specs
    for client in clients.values():
        assert stored_specs(client, group) == specs


def test_one_changed_vm_sends_its_spec_only_and_the_audit_names_it(fleet):
    clients, links, group, specs = fleet
    record(clients["site-a"], group, specs, {})
    held = stored_specs(clients["site-a"], group)
    moved = next(iter(specs))
    specs[moved] = {**specs[moved], "server": {**specs[moved]["server"], "flavor": "m1.large"}}
    pushed = []
    link = links["site-a"]
    request = link.request
    link.request = lambda method, path, body=None: (
        pushed.append(body or {}), request(method, path, body))[1]
    record(clients["site-a"], group, specs, held)
    (push,) = [b for b in pushed if "document" in b]
    sent = [m for m in push["document"]["members"] if m["spec"] is not None]
    assert [m["server_id"] for m in sent] == [moved]
    assert len(push["specs_held"]) == VMS - 1
    assert stored_specs(clients["site-b"], group)[moved]["server"]["flavor"] == "m1.large"
    with services(clients["site-a"].application).sessions() as session:
        entry = session.scalar(select(AuditEntry).where(
            AuditEntry.action == "protection_group.capture").order_by(AuditEntry.id.desc()))
        assert entry.details == {"changed": [moved], "unchanged": VMS - 1}


def test_a_push_whose_held_specs_this_site_lacks_is_refused(fleet):
    clients, _, group, _ = fleet
    doc = clients["site-b"].get(f"/v1/internal/protection-groups/{group}",
                                headers=SERVICE).json["document"]
    member = doc["members"][0]["id"]
    reply = clients["site-b"].put(f"/v1/internal/protection-groups/{group}", headers=SERVICE,
                                  json={"document": {**doc, "version": doc["version"] + 1},
                                        "expected_version": doc["version"],
                                        "expected_clock": doc["clock"],
                                        "specs_held": [member]})
    assert reply.status_code == 409 and "no captured spec" in reply.json["error"]["message"]
