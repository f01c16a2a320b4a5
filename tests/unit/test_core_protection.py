"""Only volumes that replicate the group's way may join a protection group."""

from __future__ import annotations

import pytest

from site_recovery.core.protection import MemberVolume, Unprotectable, check, replication_of

TYPES = {
    "replicated-ssd": {"replication_enabled": "<is> True", "replication_type": "<in> async"},
    "replicated-sync": {"replication_enabled": "<is> True", "replication_type": "<in> sync"},
    "pure-default": {"replication_enabled": "<is> True"},
    "plain": {"volume_backend_name": "pure"},
}


@pytest.mark.parametrize(("specs", "expected"), [
    (TYPES["replicated-ssd"], "async"), (TYPES["replicated-sync"], "sync"),
    (TYPES["pure-default"], "async"), (TYPES["plain"], None),
    ({"replication_enabled": "<is> False"}, None),
    ({"replication_enabled": "<is> True", "replication_type": "<in> trifecta"}, None),
])
def test_the_replication_a_volume_type_promises(specs, expected):
    assert replication_of(specs) == expected


def volume(server, name, kind):
    return MemberVolume(server, f"id-{name}", name, kind)


def test_volumes_of_the_groups_kind_are_accepted():
    check([volume("web-1", "web-1-boot", "replicated-ssd"),
           volume("app-1", "app-1-data", "pure-default")], TYPES, "async")


def test_every_offending_volume_is_named_with_what_its_type_lacks():
    with pytest.raises(Unprotectable) as refused:
        check([volume("web-1", "web-1-boot", "replicated-ssd"),
               volume("db-1", "db-1-boot", "replicated-sync"),
               volume("app-1", "scratch", "plain"),
               volume("app-1", "old", None)], TYPES, "async")
    message = str(refused.value)
    assert "db-1: volume db-1-boot has volume type 'replicated-sync', which replicates " \
           "sync, not async" in message
    assert "app-1: volume scratch has volume type 'plain', which is not " \
           "replication-enabled" in message
    assert "app-1: volume old has volume type None, which is not replicated" in message
    assert "web-1" not in message
