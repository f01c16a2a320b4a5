"""Decisions inside the DR steps that need no cloud to check."""

from __future__ import annotations

from types import SimpleNamespace

from site_recovery.core import recovery
from site_recovery.core.stacks import Server


class Keypairs:
    def __init__(self, *names):
        self.names = set(names)

    def find_keypair(self, name, ignore_missing=True):
        return SimpleNamespace(name=name) if name in self.names else None


def test_a_key_pair_the_dr_site_lacks_is_left_out_and_the_rest_kept():
    servers = [Server("1", "web-1", "m1.small", (), (), key_name="ecommerce-key"),
               Server("2", "db-1", "m1.large", (), (), key_name="dba-key"),
               Server("3", "app-1", "m1.medium", (), (), key_name=None)]
    conn = SimpleNamespace(compute=Keypairs("dba-key"))
    kept = recovery._usable_keys(conn, servers)
    assert [s.key_name for s in kept] == [None, "dba-key", None]
    assert [s.name for s in kept] == ["web-1", "db-1", "app-1"]


def test_copies_are_recognised_by_their_tags_only_for_their_group_and_purpose():
    def volume(group, purpose, source, status="available"):
        return SimpleNamespace(status=status, name=source, metadata={
            recovery.TAG_GROUP: group, recovery.TAG_PURPOSE: purpose,
            recovery.TAG_SOURCE: source})

    listed = [volume("g1", "drill", "v1"), volume("g1", "failover", "v2"),
              volume("g2", "drill", "v3"), SimpleNamespace(status="available", name="x",
                                                           metadata={})]
    conn = SimpleNamespace(block_storage=SimpleNamespace(volumes=lambda details: listed))
    assert set(recovery.imported_volumes(conn, "g1", "drill")) == {"v1"}
    assert set(recovery.imported_volumes(conn, "g1", "failover")) == {"v2"}
