"""Mistral hygiene at scale: a drill of one group of 100 VMs takes a handful of task
executions, and no workflow field comes near Mistral's limits (tasks pass ids, not
documents)."""

from __future__ import annotations

import json

import pytest

from site_recovery.lab.fleet import seed_fleet
from site_recovery.lab.stand_in import mistral
from tests.scenarios.conftest import protected_group, site_a_running

VMS = 100
GROUP = "analytics-fleet"
MAX_TASKS_PER_GROUP = 15
MAX_FIELD_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def fleet(lab, api, cli):
    site_a_running(lab)
    servers = seed_fleet(lab, user="bob", prefix="fleet", count=VMS, cidr="10.30.0.0/23")
    return protected_group(lab, api, cli, name=GROUP, prefix="fleet", servers=servers,
                           within=1200)


def execution_tree(client, root_id: str) -> tuple[list, list]:
    """Every execution under ``root_id`` (itself included) and every task of them."""
    executions = [client.executions.get(root_id)]
    executions += [client.executions.get(e.id) for e in client.executions.list(
        root_execution_id=root_id) if e.id != root_id]
    tasks = [client.tasks.get(t.id) for e in executions
             for t in client.tasks.list(workflow_execution_id=e.id)]
    return executions, tasks


def test_a_drill_of_100_vms_stays_small_in_mistral(lab, fleet, api, clouds):
    started = api("site-b", "POST", f"/protection-groups/{GROUP}/test-failover", user="bob",
                  expect=202, json={})
    op = api.wait_operation("site-b", started["operation"]["id"], user="bob", within=1800)
    assert op["status"] == "completed", [(r["step"], r["reason"]) for r in op["results"]]
    bob_b = clouds("site-b", "bob")
    copies = [s for s in bob_b.compute.servers() if s.name.startswith("test-fleet-")]
    assert len(copies) == VMS and {s.status for s in copies} == {"ACTIVE"}

    client = mistral(lab.sites["site-b"])
    executions, tasks = execution_tree(client, op["mistral_execution_id"])
    assert len(tasks) <= MAX_TASKS_PER_GROUP, [t.name for t in tasks]
    fields = {f"execution {e.id} {name}": getattr(e, name) or ""
              for e in executions for name in ("input", "output", "params")}
    fields.update({f"task {t.name} {name}": getattr(t, name, None) or ""
                   for t in tasks for name in ("published", "result")})
    sizes = {label: len(value if isinstance(value, str) else json.dumps(value))
             for label, value in fields.items()}
    largest = max(sizes, key=sizes.get)
    assert sizes[largest] < MAX_FIELD_BYTES, (largest, sizes[largest])

    cleanup = api("site-b", "POST", f"/protection-groups/{GROUP}/test-cleanup", user="bob",
                  expect=202, json={})
    done = api.wait_operation("site-b", cleanup["operation"]["id"], user="bob", within=1800)
    assert done["status"] == "completed", done
