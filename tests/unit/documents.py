"""Protection-group documents for the tests of the DR engine: what a test names, with
what every document holds around it (members get their ids and positions)."""

from __future__ import annotations

from datetime import UTC, datetime

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC).isoformat()


def group_document(**fields) -> dict:
    members = [{"id": f"member-{i}", "server_name": "", "position": i, "spec": None,
                "captured_at": None, **member}
               for i, member in enumerate(fields.pop("members", []))]
    return {"version": 1, "description": "", "volume_type": "replicated-ssd",
            "rpo_target_seconds": None, "status": "protected", "created_at": NOW,
            "updated_at": NOW, **fields, "members": members}


def mapping_document(**fields) -> dict:
    return {"id": f"mapping-{fields['kind']}-{fields['source']}", "version": 1, **fields}
