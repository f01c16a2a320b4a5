"""Rules of the storage layer that need no array: names, error mapping, value checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from site_recovery.storage.base import ArrayEndpoint, Purpose, RecoveryPoint
from site_recovery.storage.driver import materialised_name, materialised_prefix
from site_recovery.storage.errors import (
    AlreadyExists,
    ArrayOperationFailed,
    NotFound,
    PendingEradication,
    from_purity,
)

PURITY_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@pytest.mark.parametrize(("message", "kind"), [
    ("Volume does not exist.", NotFound),
    ("Volume has been destroyed.", PendingEradication),
    ("Volume already exists.", AlreadyExists),
    ("Volume already belongs to protection group pg.", AlreadyExists),
    ("Protection group already includes fa-b.", AlreadyExists),
    ("Protection group already allowed on fa-b.", AlreadyExists),
    ("Volume limit reached.", ArrayOperationFailed),
])
def test_purity_messages_become_typed_errors_naming_array_and_object(message, kind):
    error = from_purity("fa-b", "vol-7", message)
    assert type(error) is kind
    assert str(error) == f"array fa-b refused the operation on vol-7: {message}"


@pytest.mark.parametrize("group", ["web", "prod-ecommerce-database-tier-with-a-long-name"])
@pytest.mark.parametrize("volume", ["v1", "volume-0f3c1a2b-cd41-4e2a-9c1d-8f0e6b7a5d43-cinder",
                                    "cinder-pod::volume-0f3c1a2b-cd41-4e2a-9c1d-8f0e6b7a5d43"])
@pytest.mark.parametrize("purpose", list(Purpose))
def test_materialised_names_are_valid_purity_names_that_say_why_and_whose(group, volume, purpose):
    name = materialised_name(purpose, group, volume)
    assert PURITY_NAME.match(name), name
    assert name.startswith(f"sr-{purpose.value}-")
    assert group[:9] in name
    assert name == materialised_name(purpose, group, volume)      # deterministic: idempotent


def test_one_groups_prefix_never_covers_another_groups_volumes():
    groups = ["web", "web-2", "web-20", "we", "app"]
    for group in groups:
        for other in groups:
            if other != group:
                name = materialised_name(Purpose.DRILL, other, "v1")
                assert not name.startswith(materialised_prefix(Purpose.DRILL, group))


def test_long_member_names_stay_distinct_after_shortening():
    a = materialised_name(Purpose.DRILL, "web", "volume-0f3c1a2b-cd41-4e2a-9c1d-000000000001")
    b = materialised_name(Purpose.DRILL, "web", "volume-0f3c1a2b-cd41-4e2a-9c1d-000000000002")
    assert a != b


def test_a_recovery_point_is_usable_only_when_fully_transferred():
    created = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    point = RecoveryPoint("fa-a:pg.1", "pg", "fa-b", created, None, 0.99)
    assert not point.fully_transferred
    done = RecoveryPoint("fa-a:pg.1", "pg", "fa-b", created, created, 1.0)
    assert done.fully_transferred
    assert done.age_seconds(created + timedelta(seconds=42)) == 42


def test_an_endpoint_never_shows_its_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cr3t-token\n")
    endpoint = ArrayEndpoint.from_token_file("fa-a", "10.0.0.1", token_file)
    assert endpoint.api_token == "s3cr3t-token"
    assert "s3cr3t" not in repr(endpoint)
    token_file.write_text("")
    with pytest.raises(ValueError, match="API token file for array fa-a is empty"):
        ArrayEndpoint.from_token_file("fa-a", "10.0.0.1", token_file)
