"""Recovery reports over HTTP: what a drill got back against its group's targets, its
servers' boot times as Heat recorded them, its last drills as a chart, in JSON, HTML and
a PDF that renders; kept once the drill ended, so its cleanup loses nothing of it."""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from types import SimpleNamespace

import pypdfium2
import pytest
from heatclient import exc as heat_exc
from openstack import exceptions as sdk_exceptions

from site_recovery.webhook import db
from site_recovery.webhook.models import Operation, ProtectionGroup
from site_recovery.webhook.reports import Reports
from site_recovery.webhook.services import EXTENSION, services
from tests.unit.test_webhook_preview import dr  # noqa: F401 (the fixture)
from tests.unit.webhook_sites import ALICE, BOB, RITA, report


class DrCloud:
    """The DR site's cloud as a report reads it: Heat's resources by stack name, and
    Nova's servers by id."""

    def __init__(self):
        self.stacks: dict[str, list] = {}
        self.servers: dict[str, SimpleNamespace] = {}
        self.asked: list[str] = []
        self.resources = SimpleNamespace(list=self._resources)
        self.compute = SimpleNamespace(get_server=self._server)

    def _resources(self, name):
        self.asked.append(name)
        if name not in self.stacks:
            raise heat_exc.HTTPNotFound(f"stack {name} not found")
        return self.stacks[name]

    def _server(self, server_id):
        if server_id not in self.servers:
            raise sdk_exceptions.NotFoundException(f"server {server_id} not found")
        return self.servers[server_id]

    def booted(self, stack: str, resource: str, created: str, launched: str | None,
               status: str = "ACTIVE"):
        """A server of ``stack``, made at ``created`` and ACTIVE at ``launched``."""
        server_id = f"id-of-{resource}"
        self.stacks.setdefault(stack, []).append(SimpleNamespace(
            resource_name=resource, resource_type="OS::Nova::Server",
            physical_resource_id=server_id, resource_status="CREATE_COMPLETE"))
        self.servers[server_id] = SimpleNamespace(status=status, created_at=created,
                                                  launched_at=launched)


def reading_heat(client) -> DrCloud:
    """The site's reports (and its scheduled drills' checks) read this cloud."""
    site = services(client.application)
    found = DrCloud()
    made = Reports(site.sessions, site.config, SimpleNamespace(
        heat=lambda where, project: found, connect=lambda where, project: found))
    site.schedules.reports = made
    client.application.extensions[EXTENSION] = dataclasses.replace(site, reports=made)
    return found


@pytest.fixture
def heat(dr):  # noqa: F811 (the fixture imported above)
    return reading_heat(dr)


def drilled(dr, group_id: str, *, ago: float, **reported) -> str:  # noqa: F811
    started = dr.post("/v1/protection-groups/web/test-failover", headers=ALICE)
    assert started.status_code == 202, started.json
    op_id = started.json["operation"]["id"]
    with db.transaction(services(dr.application).sessions) as session:
        session.get(Operation, op_id).created_at -= timedelta(seconds=ago)
    assert report(dr, op_id, protection_group_id=group_id, **reported).status_code == 200
    return op_id


def cleaned_up(dr, group_id: str):  # noqa: F811
    """As after the drill's cleanup: the group drillable again."""
    with db.transaction(services(dr.application).sessions) as session:
        session.get(ProtectionGroup, group_id).status = "protected"


def group_id_of(dr) -> str:  # noqa: F811
    return dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]["id"]


def test_a_drills_report_judges_its_targets_and_shows_boot_times_and_history(dr, heat):  # noqa: F811
    group_id = group_id_of(dr)
    with db.transaction(services(dr.application).sessions) as session:
        group = session.get(ProtectionGroup, group_id)
        group.rpo_target_seconds, group.rto_target_seconds = 300, 60
    earlier = drilled(dr, group_id, ago=40, status="completed", recovery_point="fa-a:sr.6",
                      rpo_achieved_seconds=120.0)
    cleaned_up(dr, group_id)
    heat.booted("test-web", "server_0", "2026-12-08T01:00:10Z", "2026-12-08T01:00:22Z")
    heat.stacks["test-web"].append(SimpleNamespace(
        resource_name="port_0_0", resource_type="OS::Neutron::Port",
        physical_resource_id="port-1", resource_status="CREATE_COMPLETE"))
    op_id = drilled(dr, group_id, ago=95, status="completed", recovery_point="fa-a:sr.7",
                    rpo_achieved_seconds=61.0, timings={"import_volumes": 30.0},
                    details={"production_replication": "unaffected"})

    reply = dr.get(f"/v1/operations/{op_id}/report", headers=RITA)
    assert reply.status_code == 200, reply.json
    made = reply.json["report"]
    assert (made["operation_id"], made["operation_type"], made["status"], made["site"]) == (
        op_id, "test_failover", "completed", "site-b")
    (group,) = made["protection_groups"]
    assert group["recovery_point"] == "fa-a:sr.7"
    assert group["rpo"] == {"seconds": 61.0, "target_seconds": 300, "met": True}
    assert group["rto"]["target_seconds"] == 60 and group["rto"]["met"] is False
    assert 95 <= group["rto"]["seconds"] < 105
    assert group["phases"] == {"import_volumes": 30.0}
    assert group["production_replication"] == "unaffected"
    (server,) = group["servers"]
    assert server["name"] == "test-web-1" and server["status"] == "ACTIVE"
    assert server["boot_seconds"] == 12.0
    assert [d["operation_id"] for d in group["history"]] == [earlier, op_id]   # oldest first
    assert heat.asked == ["test-web"]

    page = dr.get(f"/v1/operations/{op_id}/report?format=html", headers=RITA)
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "<svg" in text and "test-web-1" in text and "fa-a:sr.7" in text
    assert "target 60 s, missed" in text and "target 300 s, met" in text

    document = dr.get(f"/v1/operations/{op_id}/report?format=pdf", headers=RITA)
    assert document.status_code == 200 and document.mimetype == "application/pdf"
    first = pypdfium2.PdfDocument(io.BytesIO(document.data))[0]
    assert "test-web-1" in first.get_textpage().get_text_range()
    image = first.render(scale=1).to_pil().convert("L")
    inked = sum(1 for value in image.getdata() if value < 200)
    assert inked > 2000, "the PDF's first page renders blank"


def test_the_report_is_kept_once_the_drill_ended_and_outlives_its_stack(dr, heat):  # noqa: F811
    group_id = group_id_of(dr)
    heat.booted("test-web", "server_0", "2026-12-08T01:00:10Z", "2026-12-08T01:00:20Z")
    op_id = drilled(dr, group_id, ago=30, status="completed")
    assert services(dr.application).reports.keep_ended() == 1        # the engine's duty
    del heat.stacks["test-web"]                                       # the cleanup
    (group,) = dr.get(f"/v1/operations/{op_id}/report", headers=ALICE).json[
        "report"]["protection_groups"]
    assert group["servers"][0]["boot_seconds"] == 10.0 and group["servers_note"] is None
    assert services(dr.application).reports.keep_ended() == 0        # kept once


def test_a_report_made_after_the_cleanup_says_why_it_has_no_boot_times(dr, heat):  # noqa: F811
    op_id = drilled(dr, group_id_of(dr), ago=30, status="failed", step="build_stack",
                    reason="build_stack: quota")
    (group,) = dr.get(f"/v1/operations/{op_id}/report", headers=ALICE).json[
        "report"]["protection_groups"]
    assert group["status"] == "failed" and group["reason"] == "build_stack: quota"
    assert group["servers"][0]["boot_seconds"] is None
    assert "stack test-web is gone" in group["servers_note"]


def test_what_is_refused(dr, heat):  # noqa: F811
    op_id = drilled(dr, group_id_of(dr), ago=5, status="completed")
    bad = dr.get(f"/v1/operations/{op_id}/report?format=docx", headers=ALICE)
    assert bad.status_code == 400 and "format must be one of json, html, pdf" in \
        bad.json["error"]["message"]
    assert dr.get(f"/v1/operations/{op_id}/report", headers=BOB).status_code == 404
    cleanup = dr.post("/v1/protection-groups/web/test-cleanup", headers=ALICE).json[
        "operation"]["id"]
    refused = dr.get(f"/v1/operations/{cleanup}/report", headers=ALICE)
    assert refused.status_code == 409 and "reports are made of what recovers" in \
        refused.json["error"]["message"]
    assert heat.asked == []                     # nothing was read for a refusal
