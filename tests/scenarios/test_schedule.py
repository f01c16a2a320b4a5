"""A drill that runs by itself: bob gives his group a drill schedule and an isolated
network on the DR site; site-b's engine makes it a Mistral cron trigger there, whose run
drills the group onto that network, keeps and checks the drill's report, cleans up and
records that it passed (audit, /metrics). The report it kept still shows the servers'
boot times after the cleanup, and renders as HTML and as a PDF whose first page is drawn
here to an image."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pypdfium2
import pytest

from site_recovery.lab.fleet import seed_fleet
from tests.scenarios.conftest import protected_group, removed, site_a_running
from tests.scenarios.test_dr_story import scraped

GROUP = "orders-sched"
SCREENSHOTS = Path(".screenshots")


@pytest.fixture(scope="module")
def orders(lab, api, cli, clouds):
    """Two VMs of bob's on site-a (10.31.0.0/24), protected async with targets a drill
    meets, and an isolated network on site-b for its scheduled drills; removed after."""
    site_a_running(lab)
    servers = seed_fleet(lab, user="bob", prefix="sched", count=2, cidr="10.31.0.0/24")
    group = protected_group(lab, api, cli, name=GROUP, prefix="sched", servers=servers,
                            rpo_target_seconds=7200, rto_target_seconds=3600)
    dr = clouds("site-b", "bob")
    isolated = dr.network.find_network("sched-drill-net") or \
        dr.network.create_network(name="sched-drill-net")
    if not dr.network.find_subnet("sched-drill-subnet"):
        dr.network.create_subnet(name="sched-drill-subnet", network_id=isolated.id,
                                 ip_version=4, cidr="10.31.0.0/24")
    yield {"group": group, "network": isolated}
    removed(api, GROUP)


def until(what: str, found, within: float, why=lambda: ""):
    deadline = time.monotonic() + within
    while not (value := found()):
        assert time.monotonic() < deadline, f"no {what} within {within:.0f} s{why()}"
        time.sleep(2)
    return value


def scheduled_runs(cli) -> str:
    """For a failure's message: site-b's last run of scheduled_drill and its tasks."""
    cloud = "site-b-site-recovery"
    runs = [e for e in cli(cloud, "workflow", "execution", "list", "-f", "json")
            if e["Workflow name"].endswith(".scheduled_drill")]
    if not runs:
        return "; site-b ran no scheduled_drill"
    shown = cli(cloud, "workflow", "execution", "show", runs[-1]["ID"], "-f", "json")
    lines = [f"{len(runs)} runs; the last {shown['State']}: {shown.get('State info')}"]
    for task in cli(cloud, "task", "execution", "list", runs[-1]["ID"], "-f", "json"):
        detail = cli(cloud, "task", "execution", "show", task["ID"], "-f", "json")
        lines.append(f"  {task['Name']} {task['State']}: {detail.get('State info')}")
    return "; scheduled_drill on site-b: " + "\n".join(lines)


def triggers(cli) -> list[str]:
    return [t["Name"] for t in cli("site-b-site-recovery", "cron", "trigger", "list",
                                   "-f", "json")]


def test_a_scheduled_drill_runs_checks_and_cleans_up_by_itself(lab, orders, api, cli,
                                                               clouds, tmp_path):
    group_id = orders["group"]["id"]
    trigger = f"site_recovery.drill.{group_id}"
    cli("site-a-bob", "protector", "protection-group", "set", GROUP,
        "--drill-schedule", "* * * * *", "--drill-network", "sched-drill-net")
    shown = cli("site-b-bob", "protector", "protection-group", "show", GROUP, "-f", "json")
    assert (shown["drill_schedule"], shown["drill_network"]) == ("* * * * *",
                                                                "sched-drill-net")
    until("cron trigger on site-b", lambda: trigger in triggers(cli), 60)

    def scheduled_drill():
        return next((op for op in api("site-b", "GET", "/operations", user="bob")[
            "operations"] if op["operation_type"] == "test_failover"
            and op["requested_by"].get("user") == "drill schedule"), None)

    drill = until("scheduled drill", scheduled_drill, 150, lambda: scheduled_runs(cli))
    # One run is the story: no second one starts while this one is checked.
    cli("site-a-bob", "protector", "protection-group", "set", GROUP, "--no-drill-schedule")
    assert drill["params"]["network_mapping"] == {"sched-net": "sched-drill-net"}

    def recorded():
        return next((e for e in api("site-b", "GET", f"/audit-log?target={group_id}",
                                    user="bob")["entries"]
                     if e["action"] == "drill.scheduled"), None)

    entry = until("record of the scheduled drill's end", recorded, 420,
                  lambda: scheduled_runs(cli))
    assert entry["reason"] == f"scheduled drill of {GROUP} passed", entry
    assert entry["details"]["drill_operation_id"] == drill["id"]
    cleanup = api.wait_operation("site-b", entry["details"]["cleanup_operation_id"],
                                 user="bob")
    assert cleanup["status"] == "completed"
    assert api.wait_operation("site-b", drill["id"], user="bob")["status"] == "completed"
    until("the trigger's removal", lambda: trigger not in triggers(cli), 60)

    # Cleaned up: nothing of the drill is left on site-b.
    dr = clouds("site-b", "bob")
    assert not [s.name for s in dr.compute.servers() if s.name.startswith("test-sched")]
    assert not [s.name for s in dr.orchestration.stacks() if s.name == f"test-{GROUP}"]
    (passed,) = [value for (name, labels), value in scraped(lab, "site-b").items()
                 if name == "protector_group_last_scheduled_drill_passed"
                 and ("group_id", group_id) in labels]
    assert passed == 1.0

    # The report it kept before the cleanup: every server came up, with its boot time.
    report = json.loads(cli("site-b-bob", "dr", "operation", "report", drill["id"]))
    (group,) = report["protection_groups"]
    assert report["scheduled"] is True and group["status"] == "completed"
    assert sorted(s["name"] for s in group["servers"]) == ["test-sched-1", "test-sched-2"]
    assert all(s["status"] == "ACTIVE" and s["boot_seconds"] is not None
               and s["ready_after_seconds"] >= s["boot_seconds"]
               for s in group["servers"]), group["servers"]
    assert group["rto"]["met"] is True and group["rpo"]["met"] is True
    assert group["production_replication"] == "unaffected"
    assert drill["id"] in [d["operation_id"] for d in group["history"]]

    html = tmp_path / "report.html"
    cli("site-b-bob", "dr", "operation", "report", drill["id"], "--format", "html",
        "--output", str(html))
    page = html.read_text()
    assert "<svg" in page and "test-sched-2" in page and "RPO and RTO over the last" in page
    pdf = tmp_path / "report.pdf"
    cli("site-b-bob", "dr", "operation", "report", drill["id"], "--format", "pdf",
        "--output", str(pdf))
    first = pypdfium2.PdfDocument(str(pdf))[0]
    assert "test-sched-1" in first.get_textpage().get_text_range()
    image = first.render(scale=1.5).to_pil()
    SCREENSHOTS.mkdir(exist_ok=True)
    image.save(SCREENSHOTS / "drill-report.png")
    dark = sum(1 for value in image.convert("L").getdata() if value < 200)
    assert dark > 5000, "the report's first page renders (nearly) blank"
