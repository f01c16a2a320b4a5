"""The array operations over REST 1.x's vocabulary, shared by the ``purestorage`` SDK
(:mod:`.flasharray`) and the SQLite fabric (:mod:`.mock`), which speak it alike.

A backend supplies :meth:`Rest1Client._call`: one REST 1.x operation by the SDK's method
name, with its failures already typed. Everything else is the translation between the
driver's terms and REST 1.x's: ``set_pgroup`` option lists, ``.``-named snapshots taken
for pgroups, ISO-8601 times.
"""

from __future__ import annotations

import abc
from datetime import datetime, timezone
from typing import Any

from .base import ArrayClient, Connection, PgroupSnapshot, PgroupState, PodArray, Volume


def parse_time(value: Any) -> datetime | None:
    """Purity REST 1.x timestamps are ISO-8601 strings ending in Z."""
    if value in (None, ""):
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(timezone.utc)


def _volume(view: dict) -> Volume:
    return Volume(name=view["name"], serial=view["serial"], size=int(view["size"]),
                  destroyed=view.get("time_remaining") is not None)


def _snapshot(view: dict) -> PgroupSnapshot:
    progress = view.get("progress")
    return PgroupSnapshot(name=view["name"], created=parse_time(view["created"]),
                          completed=parse_time(view.get("completed")),
                          progress=None if progress is None else float(progress))


class Rest1Client(ArrayClient):
    """:class:`~.base.ArrayClient` over REST 1.x operations."""

    @abc.abstractmethod
    def _call(self, operation: str, *args, **kwargs) -> Any:
        """One REST 1.x operation (the ``purestorage`` SDK's method name), its failures
        typed."""

    # -- array ---------------------------------------------------------------------------
    def version(self) -> str | None:
        return self._call("get").get("version")

    def connections(self) -> list[Connection]:
        # REST >= 1.17 lists one row per peer, its type a string; older ones a list.
        return [Connection(peer=c["array_name"], status=c.get("status") or
                           ("connected" if c.get("connected") else "disconnected"),
                           types=tuple(c["type"] if isinstance(c["type"], list) else [c["type"]]))
                for c in self._call("list_array_connections")]

    # -- volumes -------------------------------------------------------------------------
    def volume(self, name: str) -> Volume:
        return _volume(self._call("get_volume", name))

    def volumes(self, *, destroyed: bool = False) -> list[Volume]:
        options = {"pending": True} if destroyed else {}      # a flag: present means yes
        return [_volume(v) for v in self._call("list_volumes", **options)]

    def copy_volume(self, source: str, dest: str, overwrite: bool = False) -> Volume:
        return _volume(self._call("copy_volume", source, dest, overwrite=overwrite))

    def move_volume(self, name: str, pod: str):
        self._call("move_volume", name, pod)

    def destroy_volume(self, name: str):
        self._call("destroy_volume", name)

    def eradicate_volume(self, name: str):
        self._call("eradicate_volume", name)

    # -- protection groups ---------------------------------------------------------------
    def create_pgroup(self, name: str):
        self._call("create_pgroup", name)

    def pgroup(self, name: str) -> PgroupState:
        view = self._call("get_pgroup", name)
        return PgroupState(name=view["name"], volumes=tuple(view.get("volumes") or ()),
                           targets={t["name"]: bool(t.get("allowed"))
                                    for t in view.get("targets") or ()})

    def set_replication(self, name: str, *, interval: int | None = None,
                        retention: int | None = None, enabled: bool | None = None):
        # REST 1.x takes retention, schedule and its switch as separate changes.
        if retention is not None:
            self._call("set_pgroup", name, all_for=retention, target_all_for=retention)
        if interval is not None:
            self._call("set_pgroup", name, replicate_frequency=interval)
        if enabled is not None:
            self._call("set_pgroup", name, replicate_enabled=enabled)

    def add_target(self, name: str, array: str):
        self._call("set_pgroup", name, addtargetlist=[array])

    def remove_target(self, name: str, array: str):
        self._call("set_pgroup", name, remtargetlist=[array])

    def allow_replica(self, replica: str):
        self._call("set_pgroup", replica, allowed=True)

    def add_volumes(self, name: str, volumes: list[str]):
        self._call("set_pgroup", name, addvollist=list(volumes))

    def remove_volumes(self, name: str, volumes: list[str]):
        self._call("set_pgroup", name, remvollist=list(volumes))

    def destroy_pgroup(self, name: str):
        self._call("destroy_pgroup", name)

    def eradicate_pgroup(self, name: str):
        self._call("eradicate_pgroup", name)

    # -- protection-group snapshots ------------------------------------------------------
    def snapshot_pgroup(self, name: str, suffix: str, replicate_now: bool = False) -> str:
        options = {"replicate_now": True} if replicate_now else {}
        return self._call("create_pgroup_snapshot", name, suffix=suffix, **options)["name"]

    def pgroup_snapshots(self, name: str) -> list[PgroupSnapshot]:
        return [_snapshot(s) for s in self._call("get_pgroup", name, snap=True, transfer=True)]

    def pgroup_snapshot(self, name: str) -> PgroupSnapshot:
        return _snapshot(self._call("get_pgroup", name))     # a name with '.': a snapshot

    def pgroup_snapshot_volumes(self, name: str) -> list[str]:
        return [s["name"] for s in self._call("get_volume", name, snap=True, pgroup=True)]

    def destroy_pgroup_snapshot(self, name: str):
        self._call("destroy_pgroup", name)

    def eradicate_pgroup_snapshot(self, name: str):
        self._call("eradicate_pgroup", name)

    # -- pods ----------------------------------------------------------------------------
    def create_pod(self, name: str):
        self._call("create_pod", name)

    def pod_arrays(self, name: str) -> dict[str, PodArray]:
        return {a["name"]: PodArray(name=a["name"], status=a["status"],
                                    frozen_at=parse_time(a.get("frozen_at")))
                for a in self._call("get_pod", name)["arrays"]}

    def stretch_pod(self, name: str, array: str):
        self._call("add_pod", name, array)

    def unstretch_pod(self, name: str, array: str):
        self._call("remove_pod", name, array)

    def prefer_array(self, name: str, array: str):
        self._call("set_pod", name, failover_preference=[array])

    def destroy_pod(self, name: str):
        self._call("destroy_pod", name)

    def eradicate_pod(self, name: str):
        self._call("eradicate_pod", name)
