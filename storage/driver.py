"""Protection groups on replicating arrays, in the vocabulary of disaster recovery.

:class:`StorageDriver` is the one interface the DR engine uses for storage. It is written
once, over :class:`~.base.ArrayClient`; the mock and FlashArray backends only supply the
clients. Every method is idempotent: a rerun after a crash finds what exists and continues.

Async groups are pgroups with the DR array as an allowed target. Sync groups are
ActiveCluster pods stretched to the DR array, holding a pgroup of their own so a recovery
point is one crash-consistent snapshot of all members. Recovery always *copies* a
recovery point into new volumes at the DR array's root (FlashArray copies are metadata
only, so this is instant): stretched pods cannot be promoted, Cinder's Pure driver refuses
to manage volumes inside a pod, and leaving the pod and the replicated snapshots untouched
keeps a drill from disturbing production and a failover from destroying what failback needs.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone

from . import errors
from .base import (
    ArrayClient,
    ArrayHealth,
    Connection,
    MaterialisedVolume,
    ProtectionSpec,
    Purpose,
    RecoveryPoint,
    ReplicationType,
    check_name,
)


def _digest(text: str, length: int) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:length]


def _fit(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters, keeping it unique with a hash suffix."""
    if len(text) <= width:
        return text
    return f"{text[:width - 7]}-{_digest(text, 6)}"


def materialised_prefix(purpose: Purpose, group: str) -> str:
    """Every volume materialised for ``group`` and ``purpose`` starts with this.

    The group's hash comes first and has a fixed width, so one group's prefix is never
    the beginning of another group's names.
    """
    return f"sr-{Purpose(purpose).value}-{_digest(group, 8)}-"


def materialised_name(purpose: Purpose, group: str, source_volume: str) -> str:
    """A DR volume name saying why it exists and whose group it belongs to (<= 63 chars)."""
    head = f"{materialised_prefix(purpose, group)}{group[:16].rstrip('-')}-"   # hash: unique
    return head + _fit(_bare(source_volume), 63 - len(head))


def _bare(volume: str) -> str:
    return volume.split("::", 1)[1] if "::" in volume else volume


def _checked_volumes(volumes: Iterable[str]) -> list[str]:
    volumes = list(volumes)
    for volume in volumes:
        check_name("volume", _bare(volume))
    return volumes


def _ignore_existing(call: Callable, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except errors.PendingEradication:
        raise
    except errors.AlreadyExists:
        return None


class StorageDriver:
    """DR operations for protection groups, over one client per array (by array name)."""

    def __init__(self, clients: Mapping[str, ArrayClient] | Callable[[str], ArrayClient], *,
                 poll_interval: float = 0.2, setup_timeout: float = 60.0,
                 copy_workers: int = 8, clock: Callable[[], datetime] | None = None):
        self._clients = clients
        self.poll_interval = poll_interval
        self.setup_timeout = setup_timeout
        self.copy_workers = copy_workers
        self._clock = clock or (lambda: datetime.now(timezone.utc))

    def client(self, array: str) -> ArrayClient:
        if callable(self._clients):
            return self._clients(array)
        try:
            return self._clients[array]
        except KeyError:
            raise errors.InvalidArgument(f"unknown array {array!r}; configured: "
                                  f"{', '.join(sorted(self._clients))}", obj=array) from None

    # -- health --------------------------------------------------------------------------
    def health(self, array: str) -> ArrayHealth:
        """Whether the array answers, and the state of its replication connections."""
        try:
            client = self.client(array)
            version = client.version()
            connections = tuple(client.connections())
        except errors.ArrayUnreachable as exc:
            return ArrayHealth(array=array, reachable=False, detail=exc.cause)
        return ArrayHealth(array=array, reachable=True, version=version,
                           connections=connections)

    def check_link(self, source: str, target: str, via: str | None = None) -> Connection:
        """The replication connection from ``source`` to ``target``, if connected, as
        ``via`` (either of them; default the source) sees it: a site asks its own array."""
        via = via or source
        other = target if via == source else source
        health = self.health(via)
        if not health.reachable:
            raise errors.ArrayUnreachable(via, health.detail)
        connection = health.connection_to(other)
        if connection is None:
            raise errors.ReplicationLinkDown(source, target, "not configured")
        if not connection.connected:
            raise errors.ReplicationLinkDown(source, target, connection.status)
        return connection

    # -- protection ----------------------------------------------------------------------
    def protect(self, spec: ProtectionSpec, volumes: Iterable[str] = (),
                accept: bool = True) -> list[str]:
        """Make the group replicate to its target and contain ``volumes``.

        Returns the members as the source array names them (sync members live in the pod,
        so they become ``<pod>::<volume>``). ``accept``: also allow the replica on the
        target array (async); without it only the source array is touched, and the
        target's own site calls :meth:`accept`.
        """
        volumes = _checked_volumes(volumes)
        if spec.replication_type is ReplicationType.ASYNC:
            self._protect_async(spec)
            if accept:
                self.accept(spec)
            return self.add_members(spec, volumes)
        source = self.client(spec.source_array)
        self._create_or_reuse(source.create_pod, source.eradicate_pod, spec.name)
        _ignore_existing(source.create_pgroup, spec.sync_pgroup)
        members = self.add_members(spec, volumes)      # cheaper before the pod is stretched
        if spec.target_array not in source.pod_arrays(spec.name):
            _ignore_existing(source.stretch_pod, spec.name, spec.target_array)
        # The workload's array keeps the pod online if the arrays lose each other.
        source.prefer_array(spec.name, spec.source_array)
        return members

    def _create_or_reuse(self, create: Callable, eradicate: Callable, name: str):
        try:
            _ignore_existing(create, name)
        except errors.PendingEradication:
            eradicate(name)
            create(name)

    def _protect_async(self, spec: ProtectionSpec):
        """The source's part: the pgroup, its retention and schedule, its target. Snapshots
        reach the target once the target allows them (:meth:`accept`)."""
        source = self.client(spec.source_array)
        self._create_or_reuse(source.create_pgroup, source.eradicate_pgroup, spec.name)
        source.set_replication(spec.name, interval=spec.replicate_interval,
                               retention=spec.retention_seconds)
        _ignore_existing(source.add_target, spec.name, spec.target_array)
        source.set_replication(spec.name, enabled=True)

    def accept(self, spec: ProtectionSpec):
        """The target's part of an async group: allow its replica (as Cinder's Pure driver
        does), once the source's pgroup names this array. A sync pod needs none."""
        if spec.replication_type is not ReplicationType.ASYNC:
            return
        target = self.client(spec.target_array)
        replica = self._replica_name(spec)
        self._wait_for(lambda: target.pgroup(replica),
                       f"replica {replica} to appear on {spec.target_array}")
        _ignore_existing(target.allow_replica, replica)

    def members(self, spec: ProtectionSpec, via: str | None = None) -> list[str]:
        """The group's member volumes as the source names them, read on ``via`` (default
        the source). On an async target: the members of its newest recovery point; a
        stretched pod's pgroup is on both arrays."""
        via = via or spec.source_array
        if via == spec.source_array or spec.replication_type is ReplicationType.SYNC:
            return list(self.client(via).pgroup(self._pgroup(spec)).volumes)
        newest = self.newest_recovery_point(spec)
        return [source for _, source in _snapshot_members(self.client(via), newest.name,
                                                          lambda member: member)]

    def add_members(self, spec: ProtectionSpec, volumes: Iterable[str]) -> list[str]:
        volumes = _checked_volumes(volumes)
        source = self.client(spec.source_array)
        if spec.replication_type is ReplicationType.SYNC:
            volumes = self._place_in_pod(spec, volumes)
        present = set(self.members(spec))
        missing = [v for v in dict.fromkeys(volumes) if v not in present]
        if missing:
            try:
                source.add_volumes(self._pgroup(spec), missing)
            except errors.AlreadyExists:           # raced with another writer: add one by one
                for volume in missing:
                    _ignore_existing(source.add_volumes, self._pgroup(spec), [volume])
        return self.members(spec)

    def remove_members(self, spec: ProtectionSpec, volumes: Iterable[str]) -> list[str]:
        """Take ``volumes`` out of the group; each volume stays, with its data. A sync
        member also leaves the pod for the array's root, or it would still reach the DR
        array. Returns the members left."""
        source = self.client(spec.source_array)
        named = [self._member_name(spec, v) for v in _checked_volumes(volumes)]
        present = set(self.members(spec))
        leaving = [v for v in named if v in present]
        if leaving:
            source.remove_volumes(self._pgroup(spec), leaving)
        if spec.replication_type is ReplicationType.SYNC:
            in_pod = set(self._pod_volumes(source, spec.name))
            self._each(lambda v: source.move_volume(v, ""), [v for v in named if v in in_pod])
        return self.members(spec)

    def keep_only(self, spec: ProtectionSpec, volumes: Iterable[str]) -> list[str]:
        """Take out of the group every volume that is not one of ``volumes`` (a member
        that left it): what protect does so that the group replicates exactly its
        members' volumes. Returns the members."""
        wanted = {self._member_name(spec, v) for v in _checked_volumes(volumes)}
        held = set(self.members(spec))
        if spec.replication_type is ReplicationType.SYNC:   # one an interrupted run left
            held |= set(self._pod_volumes(self.client(spec.source_array), spec.name))
        return self.remove_members(spec, sorted(held - wanted))

    @staticmethod
    def _member_name(spec: ProtectionSpec, volume: str) -> str:
        """A member as the source array names it (a sync member lives in the pod)."""
        if spec.replication_type is ReplicationType.SYNC:
            return f"{spec.name}::{_bare(volume)}"
        return volume

    @staticmethod
    def _pod_volumes(client: ArrayClient, pod: str) -> list[str]:
        return [v.name for v in client.volumes() if v.name.startswith(f"{pod}::")]

    def unprotect(self, spec: ProtectionSpec) -> list[str]:
        """Stop the group replicating and remove it from its source array; every member
        volume stays, with its data, at the array's root. Returns the volumes let go.

        Async: the pgroup stops sending to the target and is destroyed with its local
        snapshots; what reached the target is the target's own to remove
        (:meth:`release`). Sync: the pod is unstretched (its copy leaves the DR array),
        its volumes move out, and it is destroyed. Destroyed objects wait out the
        array's eradication window. A rerun finds what is gone and goes on."""
        source = self.client(spec.source_array)
        if spec.replication_type is ReplicationType.ASYNC:
            try:
                pgroup = source.pgroup(spec.name)
            except errors.NotFound:
                return []
            source.set_replication(spec.name, enabled=False)
            if spec.target_array in pgroup.targets:
                source.remove_target(spec.name, spec.target_array)
            members = list(pgroup.volumes)
            if members:
                source.remove_volumes(spec.name, members)
            with contextlib.suppress(errors.NotFound):
                source.destroy_pgroup(spec.name)
            return members
        try:
            arrays = source.pod_arrays(spec.name)
        except errors.NotFound:
            return []
        if spec.target_array in arrays:
            source.unstretch_pod(spec.name, spec.target_array)
        members = self._pod_volumes(source, spec.name)
        if members:                        # none: a rerun, its pgroup maybe gone already
            self.remove_members(spec, members)
        with contextlib.suppress(errors.NotFound):
            source.destroy_pgroup(spec.sync_pgroup)
        with contextlib.suppress(errors.NotFound):
            source.destroy_pod(spec.name)
        return [_bare(v) for v in members]

    def release(self, spec: ProtectionSpec) -> bool:
        """The target's part of unprotecting an async group, once its source no longer
        sends: the replica and its recovery points are destroyed (they wait out the
        array's eradication window). A sync pod left the target when it was unstretched.
        Whether there was a replica to remove."""
        if spec.replication_type is not ReplicationType.ASYNC:
            return False
        try:
            self.client(spec.target_array).destroy_pgroup(self._replica_name(spec))
        except errors.NotFound:
            return False
        return True

    def _place_in_pod(self, spec: ProtectionSpec, volumes: list[str]) -> list[str]:
        """Move volumes into the group's pod; returns their names there.

        Purity only lets a volume into a *stretched* pod from a pod stretched to the same
        arrays, so new members of a stretched pod pass together through a short-lived
        helper pod. Each volume is found wherever an interrupted run left it.
        """
        source = self.client(spec.source_array)
        pod = spec.name
        helper = f"{pod[:56]}-join"
        placed = [f"{pod}::{_bare(v)}" for v in volumes]
        there = self._each(lambda name: self._exists(source, name), placed)
        pending = [_bare(v) for v, done in zip(volumes, there, strict=True) if not done]
        if not pending:
            return placed
        if len(source.pod_arrays(pod)) == 1:
            self._each(lambda bare: source.move_volume(bare, pod), pending)
            return placed
        self._create_or_reuse(source.create_pod, source.eradicate_pod, helper)
        in_helper = self._each(lambda bare: self._exists(source, f"{helper}::{bare}"), pending)
        at_root = [b for b, done in zip(pending, in_helper, strict=True) if not done]
        if at_root and spec.target_array in source.pod_arrays(helper):
            source.unstretch_pod(helper, spec.target_array)
        self._each(lambda bare: source.move_volume(bare, helper), at_root)
        if spec.target_array not in source.pod_arrays(helper):
            source.stretch_pod(helper, spec.target_array)
        self._each(lambda bare: source.move_volume(f"{helper}::{bare}", pod), pending)
        source.unstretch_pod(helper, spec.target_array)
        source.destroy_pod(helper)
        source.eradicate_pod(helper)
        return placed

    @staticmethod
    def _exists(client: ArrayClient, volume: str) -> bool:
        try:
            client.volume(volume)
        except errors.NotFound:
            return False
        return True

    def reverse(self, spec: ProtectionSpec, volumes: Iterable[str]) -> ProtectionSpec:
        """Replicate the other way, from the DR array's ``volumes`` back to the old source.

        Both arrays must answer. The returned spec is the group's new direction.
        """
        reversed_spec = spec.reversed()
        self.protect(reversed_spec, volumes)
        return reversed_spec

    # -- recovery points -----------------------------------------------------------------
    def _pgroup(self, spec: ProtectionSpec) -> str:
        return spec.name if spec.replication_type is ReplicationType.ASYNC else spec.sync_pgroup

    @staticmethod
    def _replica_name(spec: ProtectionSpec) -> str:
        return f"{spec.source_array}:{spec.name}"

    def recovery_points(self, spec: ProtectionSpec,
                        from_source: bool = False) -> list[RecoveryPoint]:
        """Recovery points on the target array, newest first (in-flight ones included).
        ``from_source``: as the source array reports its snapshots' transfers to the
        target (the primary's site reads them without the DR array's key)."""
        via = self.client(spec.source_array if from_source else spec.target_array)
        if spec.replication_type is ReplicationType.SYNC:
            point = self._sync_point(spec, via)
            return [point] if point else []
        try:
            if from_source:       # the source names its snapshots as its own; only sent ones
                snapshots = [replace(s, name=f"{spec.source_array}:{s.name}") for s in
                             via.pgroup_snapshots(spec.name)
                             if s.progress is not None]
            else:
                snapshots = via.pgroup_snapshots(self._replica_name(spec))
        except errors.NotFound:
            return []
        points = [(s.created, index, RecoveryPoint(
            name=s.name, group=spec.name, array=spec.target_array, created=s.created,
            completed=s.completed, progress=s.progress or 0.0))
            for index, s in enumerate(snapshots)]
        return [p for _, _, p in sorted(points, key=lambda t: (t[0], t[1]), reverse=True)]

    def _sync_point(self, spec: ProtectionSpec, via: ArrayClient) -> RecoveryPoint | None:
        """A stretched pod's recovery point is its content on the target array: now while
        that side is online, the moment it froze otherwise (either array of the pod says
        so)."""
        try:
            arrays = via.pod_arrays(spec.name)
        except errors.NotFound:
            return None
        mine = arrays.get(spec.target_array)
        if mine is None:
            return None
        now = self._clock()
        at = now if mine.status == "online" else (mine.frozen_at or now)
        return RecoveryPoint(name=spec.sync_pgroup, group=spec.name, array=spec.target_array,
                             created=at, completed=at, progress=1.0)

    def newest_recovery_point(self, spec: ProtectionSpec,
                              from_source: bool = False) -> RecoveryPoint:
        """The newest fully transferred recovery point: what a recovery would use."""
        points = self.recovery_points(spec, from_source)
        usable = [p for p in points if p.fully_transferred]
        if not usable:
            detail = (f"{len(points)} point(s), none fully transferred" if points
                      else "no replicated snapshot")
            raise errors.NoRecoveryPoint(spec.target_array, spec.name, detail)
        return usable[0]

    def point_holds(self, spec: ProtectionSpec, point: RecoveryPoint, volumes: Iterable[str],
                    from_source: bool = False) -> bool:
        """Whether ``point`` holds every one of ``volumes`` (as the source names them): a
        point taken before a member joined cannot recover it. ``from_source``: read on
        the source array. A sync group's point is the pod's live content: it holds every
        member."""
        wanted = set(volumes)
        if spec.replication_type is ReplicationType.SYNC or not wanted:
            return True
        array = spec.source_array if from_source else spec.target_array
        snapshot = point.name.split(":", 1)[1] if from_source else point.name
        try:
            held = _snapshot_members(self.client(array), snapshot, lambda member: member)
        except errors.NoRecoveryPoint:                      # it holds no volume at all
            return False
        return wanted <= {source for _, source in held}

    def rpo_seconds(self, spec: ProtectionSpec) -> float:
        """Data that a recovery now would lose, in seconds (the array's timestamps)."""
        return self.newest_recovery_point(spec).age_seconds(self._clock())

    def replicate_now(self, spec: ProtectionSpec, timeout: float = 300.0,
                      from_source: bool = False) -> RecoveryPoint:
        """Ship the current content to the target and wait until it is fully there
        (``from_source``: as the source reports it, touching the source array only; a
        sync pod is asked on the target otherwise)."""
        if spec.replication_type is ReplicationType.SYNC:
            via = spec.source_array if from_source else spec.target_array
            arrays = self.client(via).pod_arrays(spec.name)
            states = {name: a.status for name, a in arrays.items()}
            if any(state != "online" for state in states.values()) or len(states) < 2:
                raise errors.ReplicationLinkDown(spec.source_array, spec.target_array,
                                          f"pod {spec.name} is not in sync: {states}")
            return self.newest_recovery_point(spec, from_source)
        self.check_link(spec.source_array, spec.target_array)
        source = self.client(spec.source_array)
        suffix = "sr-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")[:-3]   # ms: unique
        local = source.snapshot_pgroup(spec.name, suffix, replicate_now=True)
        wanted = f"{spec.source_array}:{local}"
        deadline = time.monotonic() + timeout
        while True:
            point = next((p for p in self.recovery_points(spec, from_source)
                          if p.name == wanted), None)
            if point is not None and point.fully_transferred:
                return point
            if time.monotonic() >= deadline:
                raise errors.ReplicationTimeout(spec.target_array, wanted, timeout,
                                         point.progress if point else 0.0)
            self.check_link(spec.source_array, spec.target_array)
            time.sleep(self.poll_interval)

    # -- recovery ------------------------------------------------------------------------
    def materialise(self, spec: ProtectionSpec, point: RecoveryPoint, purpose: Purpose,
                    only: Iterable[str] | None = None) -> list[MaterialisedVolume]:
        """New, independent volumes on the target array holding ``point``'s data.

        ``only``: the members to copy, as the point names its sources (default: all), so a
        rerun need not copy again what has already been handed on (renamed) elsewhere.
        """
        purpose = Purpose(purpose)
        wanted = None if only is None else set(only)
        with self._point_members(spec, point, f"sr-{purpose.value}") as members:
            jobs = [(snapshot, source, materialised_name(purpose, spec.name, source))
                    for snapshot, source in members if wanted is None or source in wanted]
            return self._copy_all(spec.target_array, jobs, overwrite=False)

    def restore(self, spec: ProtectionSpec, point: RecoveryPoint,
                onto: Mapping[str, str]) -> list[MaterialisedVolume]:
        """Write ``point``'s data over existing volumes (failback in place).

        ``onto`` maps a member volume (as the point's source names it) to the volume on the
        target array that receives its data.
        """
        with self._point_members(spec, point, "sr-restore") as members:
            by_source = {source: snapshot for snapshot, source in members}
            unknown = set(onto) - set(by_source)
            if unknown:
                raise errors.InvalidArgument(f"{point.name} has no member(s) {sorted(unknown)}",
                                      array=spec.target_array, obj=point.name)
            jobs = [(by_source[source], source, dest) for source, dest in onto.items()]
            return self._copy_all(spec.target_array, jobs, overwrite=True)

    @contextlib.contextmanager
    def _point_members(self, spec: ProtectionSpec, point: RecoveryPoint, suffix: str):
        """(snapshot, source volume) pairs to copy from.

        A sync group's point is the pod's live content, so it is first frozen into a
        crash-consistent snapshot of the pod's pgroup on the DR array; that snapshot is
        discarded once the copies exist. An interrupted run finds it and reuses it.
        """
        if not point.fully_transferred:
            raise errors.NoRecoveryPoint(point.array, spec.name,
                                  f"{point.name} is not fully transferred ({point.progress:.0%})")
        target = self.client(spec.target_array)
        if spec.replication_type is ReplicationType.ASYNC:
            yield _snapshot_members(target, point.name, lambda member: member)
            return
        snapshot = f"{spec.sync_pgroup}.{suffix}"
        try:
            target.pgroup_snapshot(snapshot)
        except errors.NotFound:
            try:
                target.snapshot_pgroup(spec.sync_pgroup, suffix)
            except errors.PendingEradication:     # a run stopped between its two discards
                target.eradicate_pgroup_snapshot(snapshot)
                target.snapshot_pgroup(spec.sync_pgroup, suffix)
        yield _snapshot_members(target, snapshot, lambda member: f"{spec.name}::{member}")
        _discard_pgroup_snapshot(target, snapshot)

    def _copy_all(self, array: str, jobs: list[tuple[str, str, str]],
                  overwrite: bool) -> list[MaterialisedVolume]:
        client = self.client(array)

        def copy(job):
            snapshot, source, dest = job
            try:
                result = client.copy_volume(snapshot, dest, overwrite=overwrite)
            except errors.PendingEradication:
                client.eradicate_volume(dest)
                result = client.copy_volume(snapshot, dest, overwrite=overwrite)
            except errors.AlreadyExists:
                # Made by an earlier, interrupted run, maybe from another (older) point: it
                # now holds this one's, so every volume of the group comes from one moment.
                result = client.copy_volume(snapshot, dest, overwrite=True)
            return MaterialisedVolume(source=source, name=result.name, serial=result.serial,
                                      size=result.size)

        return self._each(copy, jobs)

    def _each(self, work: Callable, items: list) -> list:
        """``work`` on every item, ``copy_workers`` at a time; every item is attempted, then
        the first failure is raised (a rerun finishes the rest, idempotently)."""
        if not items:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.copy_workers, len(items)))) as pool:
            futures = [pool.submit(work, item) for item in items]
        failures = [f.exception() for f in futures if f.exception() is not None]
        if failures:
            raise failures[0]
        return [f.result() for f in futures]

    def cleanup(self, spec: ProtectionSpec, purpose: Purpose, serials: Iterable[str] = (),
                eradicate: bool = False) -> list[str]:
        """Destroy what :meth:`materialise` made for this group and purpose; the array
        eradicates it when its eradication window ends (the last safety net against a
        mistaken or malicious cleanup), or at once with ``eradicate``.

        Volumes are found by their name prefix and, once renamed (Cinder's manage renames
        them), by ``serials``. Nothing else on the array is touched.
        """
        purpose = Purpose(purpose)
        target = self.client(spec.target_array)
        prefix = materialised_prefix(purpose, spec.name)
        serials = set(serials)
        doomed = [v for v in target.volumes(destroyed=True)
                  if (v.name.startswith(prefix) or v.serial in serials)
                  and (eradicate or not v.destroyed)]

        def remove(volume):
            if not volume.destroyed:
                target.destroy_volume(volume.name)
            if eradicate:
                target.eradicate_volume(volume.name)
            return volume.name

        removed = self._each(remove, doomed)
        if spec.replication_type is ReplicationType.SYNC:
            _discard_pgroup_snapshot(target, f"{spec.sync_pgroup}.sr-{purpose.value}")
        return removed

    # -- helpers -------------------------------------------------------------------------
    def _wait_for(self, probe: Callable, what: str):
        deadline = time.monotonic() + self.setup_timeout
        while True:
            try:
                return probe()
            except errors.NotFound:
                if time.monotonic() >= deadline:
                    raise errors.StorageError(f"timed out after {self.setup_timeout:g} s waiting "
                                       f"for {what}") from None
                time.sleep(self.poll_interval)


def _snapshot_members(client: ArrayClient, pgsnap: str,
                      source_of: Callable[[str], str]) -> list[tuple[str, str]]:
    """The (volume snapshot, source volume) pairs of one pgroup snapshot."""
    prefix = f"{pgsnap}."
    try:
        names = client.pgroup_snapshot_volumes(pgsnap)
    except errors.NotFound:
        names = []
    members = [(name, source_of(name[len(prefix):])) for name in names
               if name.startswith(prefix)]
    if not members:
        raise errors.NoRecoveryPoint(client.name, pgsnap, "it holds no volumes")
    return members


def _discard_pgroup_snapshot(client: ArrayClient, name: str):
    """Destroy and eradicate a pgroup snapshot, if it is there (destroyed already: an
    interrupted discard)."""
    with contextlib.suppress(errors.NotFound, errors.PendingEradication):
        client.destroy_pgroup_snapshot(name)
    with contextlib.suppress(errors.NotFound):
        client.eradicate_pgroup_snapshot(name)
