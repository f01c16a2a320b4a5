"""A group's ``last_recovery_point``: the newest recovery point an operation of the group
recorded on this site, as the dashboard's groups table shows it; a listing reads it for
every group in one query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from site_recovery.webhook.services import services
from tests.unit.test_webhook_metrics import protected_group
from tests.unit.webhook_sites import ALICE, report

SITES = {"replication_type": "async", "primary_site": "site-a", "secondary_site": "site-b",
         "volume_type": "replicated-ssd"}


def protected(clients, name: str) -> str:
    """Group ``name`` of alice's project, protected from site-a to site-b; its id."""
    return protected_group(clients, {"name": name, **SITES})


def drill(dr, name: str, group_id: str, **reported) -> str:
    """A drill of group ``name`` on its DR site, whose workflow reports the group's end."""
    started = dr.post(f"/v1/protection-groups/{name}/test-failover", headers=ALICE)
    assert started.status_code == 202, started.json
    op_id = started.json["operation"]["id"]
    assert report(dr, op_id, protection_group_id=group_id, **reported).status_code == 200
    return op_id


def listed(client) -> dict[str, dict]:
    reply = client.get("/v1/protection-groups", headers=ALICE)
    assert reply.status_code == 200, reply.json
    return {group["name"]: group for group in reply.json["protection_groups"]}


def test_the_newest_recovery_point_a_drill_recorded_is_the_groups(sites):
    clients, _ = sites
    dr = clients["site-b"]
    group_id = protected(clients, "web")
    assert listed(dr)["web"]["last_recovery_point"] is None           # never drilled

    older = datetime.now(UTC) - timedelta(minutes=30)
    drill(dr, "web", group_id, status="completed", recovery_point="pg-web.1",
          rpo_achieved_seconds=90.0, details={"point_created": older.isoformat()})
    newer = datetime.now(UTC) - timedelta(minutes=4)
    second = drill(dr, "web", group_id, status="completed", recovery_point="pg-web.2",
                   rpo_achieved_seconds=12.5, details={"point_created": newer.isoformat()})
    expected = {"name": "pg-web.2", "created_at": newer.isoformat(),
                "rpo_achieved_seconds": 12.5, "operation_id": second}
    assert listed(dr)["web"]["last_recovery_point"] == expected
    shown = dr.get("/v1/protection-groups/web", headers=ALICE).json["protection_group"]
    assert shown["last_recovery_point"] == expected

    # A drill that failed before it reached a recovery point leaves the newest one shown.
    drill(dr, "web", group_id, status="failed", step="preflight", reason="the array is away")
    assert listed(dr)["web"]["last_recovery_point"] == expected
    # The primary site ran none of these operations: it has recorded no recovery point.
    assert listed(clients["site-a"])["web"]["last_recovery_point"] is None


def test_a_listing_reads_every_groups_recovery_point_in_the_same_queries(sites):
    """As many statements for three drilled groups as for one: none per group."""
    clients, _ = sites
    dr = clients["site-b"]

    def statements_listing() -> int:
        engine, counted = services(dr.application).engine, []
        count = lambda *args: counted.append(1)            # noqa: E731
        event.listen(engine, "before_cursor_execute", count)
        try:
            listed(dr)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        return len(counted)

    for number, name in enumerate(("web", "app", "db"), start=1):
        group_id = protected(clients, name)
        drill(dr, name, group_id, status="completed", recovery_point=f"pg-{name}.1",
              rpo_achieved_seconds=float(number),
              details={"point_created": datetime.now(UTC).isoformat()})
        if number == 1:
            for_one = statements_listing()
    assert statements_listing() == for_one
    assert {name: group["last_recovery_point"]["rpo_achieved_seconds"]
            for name, group in listed(dr).items()} == {"web": 1.0, "app": 2.0, "db": 3.0}
