"""How capture's result is cut into records for the protection service."""

from __future__ import annotations

import json

from site_recovery.core.capture import records


def spec(n: int, size: int = 1000) -> dict:
    return {"server": {"id": f"s{n}", "pad": "x" * size}}


def test_only_what_changed_is_sent_in_records_within_the_budget():
    specs = {f"s{n}": spec(n) for n in range(10)}
    held = {"s0": spec(0), "s1": spec(1, 10), "s9": spec(9)}
    out = records(specs, held, budget=3500)
    sent = [server for changed, _ in out for server in changed]
    assert sorted(sent) == [f"s{n}" for n in range(1, 9)]          # s1 changed, s0/s9 not
    assert all(len(json.dumps(changed)) <= 3500 for changed, _ in out)
    assert [unchanged for _, unchanged in out] == [[]] * (len(out) - 1) + [["s0", "s9"]]


def test_a_capture_that_found_nothing_new_is_one_record_without_specs():
    specs = {f"s{n}": spec(n) for n in range(3)}
    assert records(specs, dict(specs)) == [({}, ["s0", "s1", "s2"])]


def test_a_spec_larger_than_the_budget_still_goes_alone():
    out = records({"big": spec(0, 5000), "small": spec(1, 10)}, {}, budget=1000)
    assert [sorted(changed) for changed, _ in out] == [["big"], ["small"]]
