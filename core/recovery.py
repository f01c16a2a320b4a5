"""The DR steps: plain functions the Mistral actions call, one step each.

Each step works on one protection group, on the site where it runs, and is idempotent: it
first finds what an earlier, interrupted run left (volumes by their metadata, stacks by
name, array copies by name or serial) and only does what is missing. Steps pass ids and
small summaries, never documents.

Where things live:

- recovery points, copies and cleanup: the storage layer, on the group's arrays;
- volumes handed to the DR site's Cinder ("manage existing"), tagged with the group, the
  purpose, the source volume and the array serial, in the tenant's project;
- the Heat stack ``test-<group>`` / ``dr-<group>``, in the tenant's project.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import yaml
from heatclient import exc as heat_exc
from openstack import exceptions as sdk_exceptions

from site_recovery.storage.base import Purpose, RecoveryPoint, ReplicationType
from site_recovery.storage.errors import NoRecoveryPoint, StorageError

from . import capture as capturing
from . import operations as rules
from . import protection, stacks
from .clouds import Clouds
from .config import ServiceConfig
from .model import (
    Fence,
    FenceState,
    GroupStatus,
    MappingKind,
    OperationKind,
    PeerStepName,
    PeerStepRequest,
)
from .peer import PeerService, PeerStepFailed, PeerUnreachable
from .plan import GroupPlan, PlanError, array_volume_name, cinder_id_of, spec_document
from .service import SERVICE_TYPE, Protector

TAG_GROUP = "site_recovery_group"
TAG_PURPOSE = "site_recovery_purpose"
TAG_SOURCE = "site_recovery_source"
TAG_SERIAL = "site_recovery_serial"
TAG_POINT = "site_recovery_point"
DEFAULT_TIER_ORDER = ("db", "app", "web")      # data first, the front door last
STACK_DONE = ("CREATE_COMPLETE", "UPDATE_COMPLETE")


class StepFailed(RuntimeError):
    """A step could not finish; the message names the group, what failed and why."""


class PeerAway(StepFailed):
    """The peer's service stopped answering a peer step: asked, or followed."""


@dataclass
class Engine:
    """What every step needs: the configuration, this site's clients and service, the peer
    site's service (what a step needs of the peer's cloud, the peer does: a peer step),
    and the key that makes a step's peer step the same one when the step runs again."""

    config: ServiceConfig
    clouds: Clouds
    service: Protector
    sleep: Callable[[float], None] = time.sleep
    peer: PeerService | None = None
    step_key: str | None = None
    operation_id: str | None = None

    @classmethod
    def from_config(cls, config: ServiceConfig) -> Engine:
        clouds = Clouds(config)
        service = Protector(clouds.session(config.site), timeout=config.engine.api_timeout,
                            endpoint=clouds.endpoint(config.site, SERVICE_TYPE))
        clouds.project_ids = service.project_id       # scope to the ids this site recorded
        return cls(config, clouds, service, peer=PeerService(config))

    def for_step(self, key: str | None, operation_id: str | None = None) -> Engine:
        """This engine for one run of one step (``key``: its Mistral task execution) of
        operation ``operation_id``."""
        return replace(self, step_key=key, operation_id=operation_id)

    @property
    def site(self) -> str:
        return self.config.site

    @property
    def array(self) -> str:
        """This site's array: the only one it holds a key for."""
        return self.config.array_of(self.config.site).name

    def group(self, group_id: str) -> GroupPlan:
        return GroupPlan(self.service.group(group_id))

    def wait(self, what: str, probe: Callable[[], bool], timeout: float):
        """Poll ``probe`` until it is true; StepFailed naming ``what`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() >= deadline:
                raise StepFailed(f"timed out after {timeout:g} s waiting for {what}")
            self.sleep(self.config.engine.poll_interval)


# -- protect (primary site) ------------------------------------------------------------------

def protect(engine: Engine, group_id: str) -> dict:
    """Refuse members whose volumes do not replicate the group's way or sit in another
    Cinder group; else make the group replicate exactly its members' volumes: its Cinder
    group, and its array pgroup (async) or pod (sync), each holding every member volume
    and none of a member that left. Every refusal comes before anything changes."""
    group = engine.group(group_id)
    admin = engine.clouds.connect(group.primary)
    tenant = engine.clouds.connect(group.primary, group.project)
    read, volumes = check_volumes(admin, tenant, group.server_ids,
                                  group.replication_type.value)
    spec = group.protection(engine.config)
    storage = engine.clouds.storage()
    cinder_group = _cinder_group(engine, group, tenant.block_storage, volumes,
                                 read.block_storage)
    wanted = [array_volume_name(v.volume_id) for v in volumes]
    storage.protect(spec, wanted, accept=False)
    members = storage.keep_only(spec, wanted)
    if spec.replication_type is ReplicationType.ASYNC:      # the DR array allows it itself
        _on_peer(engine, group, PeerStepName.ACCEPT_REPLICATION)
    # Protected means recoverable: a point on the DR array holding every member volume
    # (one taken before a member joined cannot recover it).
    try:
        point = storage.newest_recovery_point(spec, from_source=True)
        recoverable = storage.point_holds(spec, point, members, from_source=True)
    except NoRecoveryPoint:
        recoverable = False
    if not recoverable:
        storage.replicate_now(spec, timeout=engine.config.engine.replicate_timeout,
                              from_source=True)
    engine.service.set_state(group.id, status=GroupStatus.PROTECTED)
    return {"protection_group": group.name, "array_group": spec.name,
            "volumes": len(members), "cinder_group": cinder_group}


def check_volumes(admin, tenant, server_ids: list[str], replication_type: str
                  ) -> tuple[_TypesFrom, list[protection.MemberVolume]]:
    """The servers' volumes, seen as ``tenant`` sees them with their types read as
    ``admin``; :class:`~.protection.Unprotectable`, naming each volume, unless every one
    replicates ``replication_type``. Protect's first check, and a member's joining a
    protected group, before it is recorded."""
    read = _TypesFrom(admin, tenant)
    volumes, specs = protection.member_volumes(read, server_ids)
    protection.check(volumes, specs, replication_type)
    return read, volumes


class _TypesFrom:
    """The tenant's view of servers and volumes, with volume types read as admin (Cinder
    shows their replication extra specs to admins only)."""

    def __init__(self, admin, tenant):
        self.compute, self.block_storage = tenant.compute, _Volumes(tenant, admin)


class _Volumes:
    """Keeps what it read: protect needs each volume's Cinder group and each type's id
    too, and should not ask Cinder twice."""

    def __init__(self, tenant, admin):
        self._tenant, self._admin = tenant.block_storage, admin.block_storage
        self.volumes, self.types = {}, {}

    def get_volume(self, volume_id):
        self.volumes[volume_id] = self._tenant.get_volume(volume_id)
        return self.volumes[volume_id]

    def find_type(self, name, ignore_missing=True):
        self.types[name] = self._admin.find_type(name, ignore_missing=ignore_missing)
        return self.types[name]

    def find_group_type(self, name, ignore_missing=True):
        """As admin: Cinder shows a group type's group specs to admins only."""
        return self._admin.find_group_type(name, ignore_missing=ignore_missing)


def _cinder_group(engine: Engine, group: GroupPlan, cinder, volumes,
                  read: _Volumes) -> str | None:
    """The group's Cinder group in the tenant's project on the primary site, made if
    missing and holding every member volume: the tenant-visible record of membership.

    Its group type (``engine.cinder_group_type``) makes it a consistency group
    (:func:`_consistency_group_type`). None while the members have no volumes: Cinder makes
    no group without volume types (one made earlier is emptied)."""
    description = cinder_group_description(group.id)   # its name may change
    listed = {g.id: g for g in cinder.groups()}
    found = next((g for g in listed.values() if g.description == description), None)
    if not volumes:
        if found is not None:
            _hold_only(engine, group, cinder, found.id, set(), read)
        return found.id if found else None
    ours = found.id if found else None
    strays = []
    for volume in volumes:
        other = read.volumes[volume.volume_id].group_id
        if other and other != ours:
            label = f"{listed[other].name} ({other})" if other in listed else other
            strays.append(f"{volume.server}: volume {volume.volume_name or volume.volume_id} "
                          f"is in Cinder group {label}")
    if strays:
        raise StepFailed(f"protection group {group.name}: a volume belongs to one Cinder group "
                         "at most; take these out of theirs first: " + "; ".join(strays))
    group_type = _consistency_group_type(engine, group, read, group.primary)
    type_ids = {read.types[v.volume_type].id for v in volumes}
    if found is None:
        found = cinder.create_group(name=group.name, description=description,
                                    group_type=group_type.id, volume_types=sorted(type_ids))
    else:
        lacking = sorted({v.volume_type for v in volumes
                          if read.types[v.volume_type].id not in found.volume_types})
        if lacking:
            raise StepFailed(f"protection group {group.name}: Cinder group {found.name} "
                             f"({found.id}) was made without volume types {lacking}, and "
                             "Cinder cannot add types to a group; take its volumes out and "
                             "delete it, and protect makes it again")
    _hold_only(engine, group, cinder, found.id, {v.volume_id for v in volumes}, read)
    return found.id


# Cinder's own test of a consistency group's type (volume_utils.is_group_a_cg_snapshot_type).
CONSISTENT_SNAPSHOTS = ("consistent_group_snapshot_enabled", "<is> True")


def _consistency_group_type(engine: Engine, group: GroupPlan, admin_cinder, site: str):
    """The configured Cinder group type (``engine.cinder_group_type``) on ``site``, read as
    an admin: refused, naming the fix, unless it makes consistency groups.

    With such a type Cinder's Pure driver keeps a local pgroup of its own for the group
    (``consisgroup-<id>-cinder``, for consistent group snapshots); replication stays the
    storage layer's pgroup or pod, so a type that also asks the driver to replicate the
    group (consistent_group_replication_enabled) is refused too: it would ship the same
    volumes to the DR array a second time."""
    name = engine.config.engine.cinder_group_type
    key, value = CONSISTENT_SNAPSHOTS
    fix = f"openstack volume group type set --property {key}='{value}' {name}"
    found = admin_cinder.find_group_type(name, ignore_missing=True)
    if found is None:
        raise StepFailed(f"protection group {group.name}: the Cinder group type {name!r} "
                         f"(engine.cinder_group_type) does not exist on {site}; an operator "
                         f"must create it: openstack volume group type create {name} && "
                         f"{fix}")
    specs = found.group_specs or {}
    if specs.get(key) != value:
        raise StepFailed(f"protection group {group.name}: the Cinder group type {name!r} "
                         f"(engine.cinder_group_type) on {site} lacks the group spec "
                         f"{key}='{value}', so its groups are no consistency groups; an "
                         f"operator must set it: {fix}")
    if specs.get("consistent_group_replication_enabled") == value:
        raise StepFailed(f"protection group {group.name}: the Cinder group type {name!r} "
                         f"(engine.cinder_group_type) on {site} has the group spec "
                         "consistent_group_replication_enabled, with which Cinder's driver "
                         "would replicate the group beside Site Recovery; an operator must "
                         "drop it: openstack volume group type set --no-property --property "
                         f"{key}='{value}' {name}")
    return found


def cinder_group_description(group_id: str) -> str:
    """How the group's Cinder groups are found again: by their description, which names
    the protection group's id (their name follows the group's, which may change)."""
    return f"Site Recovery protection group {group_id}"


def _hold_only(engine: Engine, group: GroupPlan, cinder, group_id: str, wanted: set[str],
               read: _Volumes):
    """Make Cinder group ``group_id`` hold exactly the ``wanted`` volumes: member volumes
    join it, those of members that left it leave (the volumes themselves stay)."""
    _wait_group(engine, group, cinder, group_id)
    joining = sorted(v for v in wanted if read.volumes[v].group_id is None)
    leaving = sorted(_volumes_in(cinder, group_id) - wanted)
    if joining or leaving:
        _change_volumes(cinder, group_id, joining=joining, leaving=leaving)
        _wait_group(engine, group, cinder, group_id)


def _change_volumes(cinder, group_id: str, *, joining: Iterable[str] = (),
                    leaving: Iterable[str] = ()):
    """Volumes join or leave Cinder group ``group_id``. Cinder's own request: the
    openstacksdk releases before 4.19, all that Python 3.10 has, drop ``add_volumes`` and
    ``remove_volumes`` from ``update_group`` without a word."""
    changes = {key: ",".join(sorted(ids)) for key, ids in (
        ("add_volumes", joining), ("remove_volumes", leaving)) if ids}
    reply = cinder.put(f"/groups/{group_id}", json={"group": changes}, microversion="3.13")
    sdk_exceptions.raise_from_response(reply)


def _volumes_in(cinder, group_id: str) -> set[str]:
    """The ids of the volumes Cinder group ``group_id`` holds (``list_volume``, 3.25)."""
    reply = cinder.get(f"/groups/{group_id}", params={"list_volume": "True"},
                       microversion="3.25")
    sdk_exceptions.raise_from_response(reply)
    return set(reply.json()["group"].get("volumes") or [])


def _wait_group(engine: Engine, group: GroupPlan, cinder, group_id: str):
    def available() -> bool:
        status = cinder.get_group(group_id).status
        if status.startswith("error"):
            raise StepFailed(f"protection group {group.name}: Cinder group {group_id} went "
                             f"to {status}")
        return status == "available"

    engine.wait(f"Cinder group {group_id} of {group.name} to be available", available,
                engine.config.engine.volume_timeout)


# -- unprotect (primary site; the DR site's share is a peer step) ---------------------------

def unprotect(engine: Engine, group_id: str) -> dict:
    """Stop the group replicating, touching nothing else. On its primary site: every
    volume leaves the group's Cinder group, which is deleted (never a volume), and its
    array pgroup (async) or pod (sync) goes, each volume staying with its data at the
    array's root. Then the DR site removes what reached its array, and its own Cinder
    group of the group unless failover copies are in it (a peer step), and the group is
    unprotected. Destroyed array objects wait out the arrays' eradication window.

    A group that runs on its DR site is refused: its way home is its replication."""
    group = engine.group(group_id)
    try:
        rules.check_group(OperationKind.UNPROTECT, group.name, group.document.status)
    except rules.Refused as exc:
        raise StepFailed(str(exc)) from None
    spec = group.protection(engine.config)
    storage = engine.clouds.storage()
    cinder = engine.clouds.connect(engine.site, group.project).block_storage
    if engine.site != group.primary:                 # the DR site's share
        return {"array_group": spec.name, "replica_removed": storage.release(spec),
                "cinder_group": _remove_cinder_group(engine, group, cinder,
                                                     copies_stay=True)}
    cinder_group = _remove_cinder_group(engine, group, cinder)
    volumes = storage.unprotect(spec)
    _on_peer(engine, group, PeerStepName.UNPROTECT)
    engine.service.set_state(group.id, status=GroupStatus.UNPROTECTED)
    return {"protection_group": group.name, "array_group": spec.name,
            "volumes": len(volumes), "cinder_group": cinder_group}


def _remove_cinder_group(engine: Engine, group: GroupPlan, cinder,
                         copies_stay: bool = False) -> str | None:
    """Delete the group's Cinder group in the tenant's project on this site, after taking
    its volumes out (they stay, outside any group). ``copies_stay``: one that holds volumes
    stays (on the DR site, they are failover copies, and it is theirs). What was done, for
    people; None when there was none."""
    description = cinder_group_description(group.id)
    found = next((g for g in cinder.groups() if g.description == description), None)
    if found is None:
        return None
    if found.status != "deleting":
        held = sorted(_volumes_in(cinder, found.id))
        if held and copies_stay:
            return f"{found.id} kept: it holds {len(held)} failover copies"
        if held:
            _wait_group(engine, group, cinder, found.id)
            _change_volumes(cinder, found.id, leaving=held)
            _wait_group(engine, group, cinder, found.id)
        cinder.delete_group(found.id, delete_volumes=False)

    def gone() -> bool:
        try:
            status = cinder.get_group(found.id).status
        except sdk_exceptions.NotFoundException:
            return True
        if status == "error_deleting":
            raise StepFailed(f"protection group {group.name}: Cinder could not delete its "
                             f"group {found.id} on {engine.site}")
        return False

    engine.wait(f"Cinder group {found.id} of {group.name} to be deleted", gone,
                engine.config.engine.volume_timeout)
    return f"{found.id} deleted"


# -- capture (primary site) ------------------------------------------------------------------

def groups_running_here(engine: Engine) -> list[str]:
    """The protected groups whose primary is this site and that have members: what
    capture keeps up to date for the DR site. (A group failed over here runs as copies of
    its members; it is captured again once it is back home.)"""
    return [doc.id for doc in engine.service.groups()
            if doc.primary_site == engine.config.site and doc.members
            and doc.status is GroupStatus.PROTECTED]


def capture(engine: Engine, group_id: str) -> dict:
    """Record each member as the primary site runs it, on both sites."""
    group = engine.group(group_id)
    tenant = engine.clouds.connect(group.primary, group.project)
    servers, security_groups = capturing.capture(tenant, group.server_ids,
                                                 admin=engine.clouds.connect(group.primary),
                                                 tier_order=DEFAULT_TIER_ORDER)
    specs = {s.id: spec_document(s, security_groups) for s in servers}
    held = {m.server_id: m.spec for m in group.document.members}
    records = capturing.records(specs, held)
    for changed, unchanged in records:
        engine.service.record_capture(group.id, changed, unchanged)
    return {"protection_group": group.name, "servers": len(servers),
            "volumes": sum(len(s.volumes) for s in servers),
            "changed": sum(len(changed) for changed, _ in records)}


# -- recovery point --------------------------------------------------------------------------

def recovery_point(engine: Engine, group_id: str, *, replicate: bool = False,
                   name: str | None = None, purpose: str | None = None,
                   lost_at: str | None = None) -> dict:
    """The point a recovery uses, with the data it loses (achieved RPO), from the arrays'
    own timestamps. ``replicate``: ship the current content first and use that (planned
    failover: RPO 0). ``name``: a particular point, which must be fully transferred.
    ``purpose``: where an earlier attempt left copies for it, a retry continues from their
    point while the array holds it, so every volume comes from one moment.

    ``lost_at`` (ISO 8601): when the primary was lost, for an unplanned failover the last
    moment this site saw its peer answer. The data lost is what the primary wrote between
    the point and then, not the point's age now, which grows with the time people take to
    decide."""
    group = engine.group(group_id)
    spec = group.protection(engine.config)
    storage = engine.clouds.storage()
    # Python 3.10 reads no "Z", which pydantic writes for UTC
    lost = datetime.fromisoformat(lost_at.replace("Z", "+00:00")) if lost_at else None

    def chosen(point: RecoveryPoint, rpo: float | None = None) -> dict:
        if rpo is None:
            rpo = data_lost(point, lost, datetime.now(timezone.utc))
        return {"name": point.name, "point_created": point.created.isoformat(),
                "rpo_seconds": round(rpo, 3),
                **({"primary_lost_at": lost.isoformat()} if lost else {})}

    earlier = _point_of_copies(engine, group, purpose) if purpose and not name else None
    if earlier is not None:
        with contextlib.suppress(NoRecoveryPoint):           # gone: a new point, then
            return chosen(named_point(storage, spec, earlier), 0.0 if replicate else None)
    here_is_source = spec.source_array == engine.array
    if replicate and spec.replication_type is ReplicationType.ASYNC and not here_is_source:
        # The snapshot is the source array's to take: its own site takes it.
        shipped = _on_peer(engine, group, PeerStepName.REPLICATE)
        point, rpo = named_point(storage, spec, shipped["recovery_point"]), 0.0
    elif replicate:
        point = storage.replicate_now(spec, timeout=engine.config.engine.replicate_timeout,
                                      from_source=here_is_source)
        rpo = 0.0
    else:
        return chosen(named_point(storage, spec, name) if name else
                      storage.newest_recovery_point(spec))
    return chosen(point, rpo)


def data_lost(point: RecoveryPoint, lost: datetime | None, now: datetime) -> float:
    """The seconds of writes a recovery from ``point`` loses: to when the primary was lost
    (``lost``), or, while it is not, the point's age ``now``."""
    return max(0.0, (lost - point.created).total_seconds()) if lost else \
        point.age_seconds(now)


def _point_of_copies(engine: Engine, group: GroupPlan, purpose: str) -> str | None:
    """The recovery point the copies an earlier attempt made for ``purpose`` hold, when
    they hold one (None: no copies, or of several points)."""
    points = {(volume.metadata or {}).get(TAG_POINT)
              for conn in (engine.clouds.connect(group.secondary),
                           engine.clouds.connect(group.secondary, group.project))
              for volume in imported_volumes(conn, group.id, Purpose(purpose).value).values()
              if volume.status not in ("error_managing", "error")}
    points.discard(None)
    return points.pop() if len(points) == 1 else None


def named_point(storage, spec, name: str) -> RecoveryPoint:
    for point in storage.recovery_points(spec):
        if point.name == name:
            if not point.fully_transferred:
                raise NoRecoveryPoint(spec.target_array, spec.name,
                                      f"{name} is not fully transferred ({point.progress:.0%})")
            return point
    raise NoRecoveryPoint(spec.target_array, spec.name, f"no recovery point named {name}")


# -- import into the DR site's Cinder --------------------------------------------------------

def imported_volumes(conn, group_id: str, purpose: str) -> dict[str, object]:
    """The DR copies of a group's volumes for ``purpose``, by source volume id. Cinder
    filters them by their tags: a project's other volumes (thousands, in a site failover)
    never cross the wire on each poll."""
    tags = {TAG_GROUP: group_id, TAG_PURPOSE: purpose}
    found = {}
    for volume in conn.block_storage.volumes(details=True, properties=json.dumps(tags)):
        metadata = volume.metadata or {}
        if all(metadata.get(k) == v for k, v in tags.items()):    # a Cinder that ignored it
            found[metadata.get(TAG_SOURCE)] = volume
    return found


def import_volumes(engine: Engine, group_id: str, purpose: str, point_name: str) -> dict:
    """Copy the recovery point's volumes on the DR array and hand them to the DR site's
    Cinder in the tenant's project; waits until every one is available there.

    Cinder's "manage existing" is admin-only, and the DR account holds ``admin`` only in
    its own project: the copies are managed there, then given to the tenant with a volume
    transfer, which the account accepts as a member of the tenant's project."""
    purpose = Purpose(purpose).value
    group = engine.group(group_id)
    tenant = engine.clouds.connect(group.secondary, group.project)
    own = engine.clouds.connect(group.secondary)
    array = engine.config.array_of(group.secondary)
    existing = _copies_of_point(engine, group, own, tenant, purpose, point_name)
    wanted = {v.id: v for v in group.volumes}
    missing = [v for v in wanted.values() if v.id not in existing]
    if missing:
        spec = group.protection(engine.config)
        storage = engine.clouds.storage()
        point = named_point(storage, spec, point_name)
        copies = storage.materialise(spec, point, Purpose(purpose),
                                     only=[group.array_source(spec, v.id) for v in missing])
        for copy in copies:
            source = wanted[cinder_id_of(copy.source)]
            prefix = stacks.COPY_PREFIX[purpose]
            own.block_storage.manage_volume(
                host=array.cinder_host, ref={"source-name": copy.name},
                name=f"{prefix}{source.name or source.id}",
                volume_type=source.volume_type, bootable=source.boot_index == 0,
                description=f"Site Recovery {purpose} copy of {source.id} from {point.name}",
                metadata={TAG_GROUP: group.id, TAG_PURPOSE: purpose, TAG_SOURCE: source.id,
                          TAG_SERIAL: copy.serial, TAG_POINT: point.name})

    def settled() -> bool:
        held = imported_volumes(tenant, group.id, purpose)
        waiting = imported_volumes(own, group.id, purpose)
        failed = [f"{v.name} (copy of {source})" for source, v in (held | waiting).items()
                  if v.status in ("error_managing", "error")]
        if failed:
            raise StepFailed(f"protection group {group.name}: Cinder on {group.secondary} "
                             f"could not manage {', '.join(sorted(failed))}")
        given = [v for v in waiting.values() if v.status in ("available", "awaiting-transfer")]
        for volume in given:
            _give(own, tenant, volume, f"Site Recovery {purpose} copy for {group.name}")
        if given:                       # accepted at once: no need to wait another round
            held = imported_volumes(tenant, group.id, purpose)
        return all(v in held and held[v].status in ("available", "in-use") for v in wanted)

    engine.wait(f"{len(wanted)} volumes of {group.name} to become available on "
                f"{group.secondary}", settled, engine.config.engine.volume_timeout)
    if purpose != Purpose.FAILOVER:
        return {"volumes": len(wanted), "imported": len(missing)}
    return {"volumes": len(wanted), "imported": len(missing),
            "cinder_group": _group_copies(engine, group, tenant, own)}


def _group_copies(engine: Engine, group: GroupPlan, tenant, own) -> str:
    """After a failover the group lives on the DR site: its copies join a Cinder group of
    the configured type in the tenant's project there, as its members did on the primary
    site, found again by the same description on a rerun (:func:`remove_copy` takes them
    out and deletes it)."""
    cinder = tenant.block_storage
    copies = imported_volumes(tenant, group.id, Purpose.FAILOVER.value).values()
    description = cinder_group_description(group.id)
    found = next((g for g in cinder.groups() if g.description == description), None)
    if found is None:
        group_type = _consistency_group_type(engine, group, own.block_storage,
                                             group.secondary)
        type_ids = {cinder.find_type(v.volume_type, ignore_missing=False).id for v in copies}
        found = cinder.create_group(name=group.name, description=description,
                                    group_type=group_type.id, volume_types=sorted(type_ids))
    _wait_group(engine, group, cinder, found.id)
    joining = sorted(v.id for v in copies if not v.group_id)
    if joining:
        _change_volumes(cinder, found.id, joining=joining)
        _wait_group(engine, group, cinder, found.id)
    return found.id


def _ungroup_copies(engine: Engine, group: GroupPlan, tenant, purpose: str):
    """Cinder unmanages no volume of a group: the copies leave the group's Cinder group
    here, which goes with them unless it holds other volumes too."""
    cinder = tenant.block_storage
    description = cinder_group_description(group.id)
    found = next((g for g in cinder.groups() if g.description == description), None)
    if found is None or found.status == "deleting":
        return
    held = _volumes_in(cinder, found.id)
    copies = held & {v.id for v in imported_volumes(tenant, group.id, purpose).values()}
    if held == copies:
        _remove_cinder_group(engine, group, cinder)
    elif copies:
        _wait_group(engine, group, cinder, found.id)
        _change_volumes(cinder, found.id, leaving=copies)
        _wait_group(engine, group, cinder, found.id)


def _copies_of_point(engine: Engine, group: GroupPlan, own, tenant, purpose: str,
                     point_name: str) -> dict:
    """The copies an earlier attempt made that a rerun keeps, by source volume: those of
    ``point_name``. A failed one is deleted; so is one of another recovery point (a retry
    may use a newer one), else the group would come back from two moments, its data and
    its log volumes disagreeing. One of another point that is in use is refused, named."""
    kept, other = {}, []
    for conn in (own, tenant):
        for source, volume in imported_volumes(conn, group.id, purpose).items():
            if volume.status in ("error_managing", "error"):     # a failed earlier attempt
                conn.block_storage.delete_volume(volume, ignore_missing=True)
            elif (volume.metadata or {}).get(TAG_POINT, point_name) != point_name:
                other.append((conn, volume))
            else:
                kept[source] = volume
    attached = sorted(v.name for _, v in other if v.status == "in-use")
    if attached:
        raise StepFailed(f"protection group {group.name}: {', '.join(attached)} on "
                         f"{group.secondary} hold another recovery point than {point_name} "
                         "and are in use: clean the earlier attempt up first")
    grouped: dict[tuple, list[str]] = {}         # Cinder deletes no volume of a group
    for conn, volume in other:
        if volume.group_id:
            grouped.setdefault((conn, volume.group_id), []).append(volume.id)
    for (conn, group_id), ids in grouped.items():   # one update per group, then settled
        _wait_group(engine, group, conn.block_storage, group_id)
        _change_volumes(conn.block_storage, group_id, leaving=ids)
        _wait_group(engine, group, conn.block_storage, group_id)
    for conn, volume in other:
        if volume.status == "awaiting-transfer":
            _withdraw(conn, volume)
        conn.block_storage.delete_volume(volume, ignore_missing=True)
    gone = {v.id for _, v in other}

    def deleted() -> bool:
        return not gone & {v.id for conn in (own, tenant)
                           for v in imported_volumes(conn, group.id, purpose).values()}

    if gone:
        engine.wait(f"{len(gone)} copies of {group.name} from another recovery point to be "
                    "deleted", deleted, engine.config.engine.volume_timeout)
    return kept


def _give(giver, taker, volume, name: str):
    """Move ``volume`` from the giver's project to the taker's with a Cinder volume
    transfer. A transfer an interrupted run left is withdrawn first: its key was shown
    once, to that run."""
    if volume.status == "awaiting-transfer":
        _withdraw(giver, volume)
    transfer = giver.block_storage.create_transfer(volume_id=volume.id, name=name[:255])
    taker.block_storage.accept_transfer(transfer.id, transfer.auth_key)


def _withdraw(owner, volume):
    """Delete the transfers of ``volume`` its owner made (it is ``available`` again)."""
    for stale in owner.block_storage.transfers():
        if stale.volume_id == volume.id:
            owner.block_storage.delete_transfer(stale, ignore_missing=True)


# -- the recovery stack ----------------------------------------------------------------------

def build_stack(engine: Engine, group_id: str, purpose: str,
                network_mapping: dict[str, str] | None = None) -> dict:
    """Create (or finish) the group's stack on the DR site and wait until it is complete."""
    purpose = Purpose(purpose).value
    group = engine.group(group_id)
    dr = engine.clouds.connect(group.secondary, group.project)
    volumes = {source: v.id for source, v in imported_volumes(dr, group.id, purpose).items()}
    mappings = _mappings(engine, group, dr, network_mapping)
    subnets = dr_subnets(dr, mappings)
    heat = engine.clouds.heat(group.secondary, group.project)
    name = stacks.stack_name(purpose, group.name)
    gates, built = group.gates, -1
    ends = stacks.stages(group.servers, gates)
    for boot_until in ends:
        try:
            template = stacks.render(group.name, purpose, group.servers, volumes=volumes,
                                     mappings=mappings, subnets=subnets,
                                     security_groups=group.security_groups,
                                     boot_until=boot_until)
        except stacks.RenderError as exc:
            raise PlanError(str(exc)) from None
        if _build(engine, heat, name, template, group):
            _pass_gates(engine, group, dr, heat, name, purpose,
                        [s for s in group.servers if built < s.boot_order <= boot_until
                         and s.id in gates])
        built = boot_until
    stack = heat.stacks.get(name)
    servers = next((o["output_value"] for o in (stack.outputs or [])
                    if o["output_key"] == "servers"), [])
    return {"stack_id": stack.id, "stack_name": name, "servers": len(servers),
            "availability_zones": _zones_found(group, mappings),
            **({"gates_passed": len(gates)} if gates else {})}


def _build(engine: Engine, heat, name: str, template: str, group: GroupPlan) -> bool:
    """The stack holding ``template``'s resources, made or grown (a failed one retried),
    once complete; False when it already holds more (a later stage, built by an earlier
    run whose gates passed then)."""
    wanted = set(yaml.safe_load(template)["resources"])
    stack = _find_stack(heat, name)
    if stack is None:
        heat.stacks.create(stack_name=name, template=template,
                           tags=f"site-recovery,{group.id}",
                           timeout_mins=max(1, int(engine.config.engine.stack_timeout // 60)))
    else:
        held = set(heat.stacks.template(stack.id).get("resources", {}))
        if held - wanted:
            return False
        if wanted - held or stack.stack_status.endswith("FAILED"):
            heat.stacks.update(stack.id, template=template, existing=False)
    _wait_stack(engine, heat, name, group.name)
    return True


def _pass_gates(engine: Engine, group: GroupPlan, dr, heat, name: str, purpose: str,
                gated: list):
    """Each of ``gated`` (captured servers of the stage just built) shows its gate's
    marker in its recovered server's console log within the gate's time; else StepFailed
    naming it, and the tiers after it are never started."""
    resources = stacks.server_resources(group.servers)
    for server in gated:
        gate = group.gates[server.id]
        recovered = heat.resources.get(name, resources[server.id]).physical_resource_id

        def shown(recovered=recovered, marker=gate.console_marker) -> bool:
            try:
                log = dr.compute.get_server_console_output(recovered).get("output") or ""
            except sdk_exceptions.ConflictException:         # not booted yet
                return False
            return marker in log

        try:
            engine.wait(f"{server.name}'s console to show {gate.console_marker!r}", shown,
                        gate.timeout_seconds)
        except StepFailed:
            later = sorted(f"{stacks.COPY_PREFIX[purpose]}{s.name}" for s in group.servers
                           if s.boot_order > server.boot_order)
            raise StepFailed(
                f"protection group {group.name}: server {stacks.COPY_PREFIX[purpose]}"
                f"{server.name} did not pass its gate: {gate.console_marker!r} not in its "
                f"console log within {gate.timeout_seconds} s"
                + (f"; not started: {', '.join(later)}" if later else "")) from None


def preflight(engine: Engine, group_id: str, network_mapping: dict[str, str] | None = None
              ) -> dict:
    """Before a recovery changes anything: every member captured, and every mapping's
    target found on the DR site as the tenant's project sees it (its own or shared), so a
    reference to another project's network or security group is refused, named, before a
    VM is stopped or a volume copied."""
    group = engine.group(group_id)
    dr = engine.clouds.connect(group.secondary, group.project)
    mappings = _mappings(engine, group, dr, network_mapping)
    _consistency_group_type(engine, group, engine.clouds.connect(group.secondary).block_storage,
                            group.secondary)
    return {"servers": len(group.servers), "networks": len(mappings.network),
            "security_groups": len(mappings.security_group),
            "availability_zones": _zones_found(group, mappings)}


def _mappings(engine: Engine, group: GroupPlan, dr, network_mapping: dict[str, str] | None
              ) -> stacks.Mappings:
    return resolved_mappings(group, engine.service.mappings(group.project), dr,
                             network_mapping)


def resolved_mappings(group: GroupPlan, documents: list, dr,
                      network_mapping: dict[str, str] | None = None) -> stacks.Mappings:
    """The group's mappings (of ``documents``, its project's) with their targets looked up
    on the DR site in the tenant's project (``dr``): never as admin, which would see every
    project's."""
    raw = group.mappings(documents, network_mapping)
    zones = functools.cache(lambda: _zones(dr))             # asked once, if a server has one
    return raw.resolve(group.servers, group.security_groups,
                       lambda ref: _find_id(dr.network.find_network, ref),
                       lambda ref: _find_id(dr.network.find_security_group, ref),
                       lambda name: name if name in zones() else None,
                       where=f"{group.secondary} for project {group.project}")


def dr_subnets(dr, mappings: stacks.Mappings) -> list[stacks.Subnet]:
    """The subnets of the DR networks the group's ports are mapped to."""
    return [stacks.Subnet(s.id, s.network_id, s.cidr) for network in
            set(mappings.network.values()) for s in dr.network.subnets(network_id=network)]


def _zones(conn) -> set[str]:
    """The availability zones of Nova's ``conn`` sees that are up."""
    return {zone.name for zone in conn.compute.availability_zones()
            if (zone.state or {}).get("available")}


def _zones_found(group: GroupPlan, mappings: stacks.Mappings) -> str | None:
    """Where each captured availability zone lands, for people: a zone of the DR site, or
    why none is set (Nova then chooses); None when no member has one."""
    return "; ".join(
        f"{zone} -> {target}" if target else
        f"{zone}: none set ({group.secondary} has no such zone and no availability_zone "
        "mapping names one)" for zone, target in mappings.availability_zone.items()) or None


def find_reference(conn, kind: MappingKind, ref: str) -> str | None:
    """The id of what a mapping's target ``ref`` (a name or an id) names, as ``conn``'s
    project sees it (its own or shared; for flavors, public or its own); None when it sees
    none. An IP rule's target is an address range, no reference: itself."""
    if MappingKind(kind) is MappingKind.AVAILABILITY_ZONE:
        return ref if ref in _zones(conn) else None
    find = {MappingKind.NETWORK: conn.network.find_network,
            MappingKind.SECURITY_GROUP: conn.network.find_security_group,
            MappingKind.FLAVOR: conn.compute.find_flavor}.get(MappingKind(kind))
    return _find_id(find, ref) if find else ref


def _find_id(find, ref: str) -> str | None:
    found = find(ref, ignore_missing=True)
    return found.id if found is not None else None


def _find_stack(heat, name: str, outputs: bool = False):
    """The stack named ``name``, or None; its outputs only when asked for (resolving them
    costs Heat a Nova request per server)."""
    try:
        return heat.stacks.get(name, resolve_outputs=outputs)
    except heat_exc.HTTPNotFound:
        return None


def _wait_stack(engine: Engine, heat, name: str, group: str):
    """Until the stack is complete. Polled without its outputs: resolving them asks Nova
    for every server's addresses, a cost Heat pays on each poll (the caller reads them
    once, at the end)."""
    def done() -> bool:
        stack = heat.stacks.get(name, resolve_outputs=False)
        if stack.stack_status.endswith("FAILED"):
            raise StepFailed(f"protection group {group}: stack {name} "
                             f"{stack.stack_status}: {stack.stack_status_reason}")
        return stack.stack_status in STACK_DONE

    engine.wait(f"stack {name}", done, engine.config.engine.stack_timeout)


# -- after a drill (DR site) -----------------------------------------------------------------

def production_check(engine: Engine, group_id: str, point_name: str) -> dict:
    """After a drill, whether the group still replicates as protect left it: the link from
    the primary's array up, every member volume in its pgroup or pod, and the drill's
    recovery point still on the DR array. The drill itself worked, so what is wrong is
    reported (``production_replication``: ``affected: ...``), never raised; an array that
    does not answer is one such finding."""
    group = engine.group(group_id)
    spec = group.protection(engine.config)
    storage = engine.clouds.storage()
    found = [_finding(lambda: _link_down(storage, spec, engine.array)),
             _finding(lambda: _members_missing(storage, spec, group, engine.array)),
             _finding(lambda: _point_missing(storage, spec, point_name))]
    found = list(dict.fromkeys(f for f in found if f))     # one unreachable array, once
    return {"test_prefix": stacks.COPY_PREFIX[Purpose.DRILL.value],
            "production_replication": "affected: " + "; ".join(found) if found
            else "unaffected"}


def _finding(check: Callable[[], str | None]) -> str | None:
    """What one check found wrong: its text, or the storage error that stopped it."""
    try:
        return check()
    except StorageError as exc:
        return str(exc)


def _link_down(storage, spec, here: str) -> None:
    storage.check_link(spec.source_array, spec.target_array, via=here)  # raises what is down


def _members_missing(storage, spec, group: GroupPlan, here: str) -> str | None:
    """Members that no longer replicate, as this site's array shows them: an async
    group's newest recovery point lacks them, or a sync group's pod does."""
    wanted = [group.array_source(spec, v.id) for v in group.volumes]
    present = set(storage.members(spec, via=here))
    missing = [v for v in wanted if v not in present]
    if not missing:
        return None
    more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
    held = (f"the newest recovery point of {spec.name} on {here} lacks"
            if spec.replication_type is ReplicationType.ASYNC and here != spec.source_array
            else f"{'pgroup' if spec.replication_type is ReplicationType.ASYNC else 'pod'} "
                 f"{spec.name} on {here} no longer holds")
    return f"{held} {missing[0]}{more} ({len(missing)} of {len(wanted)} member volumes)"


def _point_missing(storage, spec, point_name: str) -> str | None:
    """Points are listed newest first, so while the drill's point is there no usable point
    is older than it; retention (24 h) keeps it far longer than a drill runs."""
    points = storage.recovery_points(spec)
    if any(p.name == point_name for p in points):
        return None
    newest = next((p.name for p in points if p.fully_transferred), "none usable")
    return (f"recovery point {point_name}, which the drill used, is gone from "
            f"{spec.target_array} (newest left: {newest})")


# -- cleanup ---------------------------------------------------------------------------------

def remove_copy(engine: Engine, group_id: str, purpose: str, site: str | None = None) -> dict:
    """Delete the group's ``purpose`` stack, unmanage its volumes and destroy them on the
    array: what the drill (or an abandoned failover) made on ``site``, and nothing else.
    The array eradicates them when its window ends; drill copies at once if the operator
    asks (``engine.eradicate_drill_copies``)."""
    purpose = Purpose(purpose).value
    group = engine.group(group_id)
    site = site or group.secondary
    if site != engine.site:
        _on_peer(engine, group, PeerStepName.REMOVE_COPY, purpose=purpose)
        return {"removed_by": site}
    if purpose == Purpose.FAILOVER:
        _ungroup_copies(engine, group, engine.clouds.connect(site, group.project), purpose)
    heat = engine.clouds.heat(site, group.project)
    name = stacks.stack_name(purpose, group.name)
    stack = _find_stack(heat, name)
    if stack is not None:
        if stack.stack_status != "DELETE_IN_PROGRESS":
            heat.stacks.delete(stack.id)

        def gone() -> bool:
            current = _find_stack(heat, name)
            if current is not None and current.stack_status == "DELETE_FAILED":
                raise StepFailed(f"protection group {group.name}: stack {name} could not be "
                                 f"deleted: {current.stack_status_reason}")
            return current is None or current.stack_status == "DELETE_COMPLETE"

        engine.wait(f"stack {name} to be deleted", gone, engine.config.engine.stack_timeout)
    tenant = engine.clouds.connect(site, group.project)
    own = engine.clouds.connect(site)
    volumes = imported_volumes(tenant, group.id, purpose) | imported_volumes(own, group.id,
                                                                             purpose)
    serials = [(v.metadata or {}).get(TAG_SERIAL) for v in volumes.values()]

    def gone() -> bool:
        """Unmanaging is admin-only, so each copy goes back to the DR account's project
        first, as it came (a volume transfer); what failed is deleted where it is."""
        held = imported_volumes(tenant, group.id, purpose)
        for volume in held.values():
            if volume.status in ("error_managing", "error"):
                tenant.block_storage.delete_volume(volume, ignore_missing=True)
            elif volume.status in ("available", "awaiting-transfer"):
                _give(tenant, own, volume, f"Site Recovery {purpose} copy of {group.name}, "
                                           "to unmanage")
        back = imported_volumes(own, group.id, purpose)
        for volume in back.values():
            if volume.status in ("error_managing", "error"):
                own.block_storage.delete_volume(volume, ignore_missing=True)
            elif volume.status == "available":
                own.block_storage.unmanage_volume(volume)
            elif volume.status == "awaiting-transfer":      # an interrupted hand-over
                _withdraw(own, volume)
        return not held and not back

    engine.wait(f"{len(volumes)} {purpose} volumes of {group.name} to leave Cinder", gone,
                engine.config.engine.volume_timeout)
    spec = group.protection(engine.config)
    if site == group.primary:
        spec = spec.reversed()
    eradicate = purpose == Purpose.DRILL and engine.config.engine.eradicate_drill_copies
    storage = engine.clouds.storage()
    removed = storage.cleanup(spec, Purpose(purpose), [s for s in serials if s],
                              eradicate=eradicate)
    ended = []
    if purpose == Purpose.FAILOVER and spec.replication_type is ReplicationType.ASYNC:
        # The pgroup that replicated the copies home (a reprotect's or a failback's) goes
        # with them; the home array removes its replica (resume_replication).
        ended = storage.unprotect(spec.reversed())
    return {"stack_deleted": stack is not None, "volumes": len(volumes),
            "array_volumes": len(removed), "reverse_replication_ended": bool(ended)}


def resume_replication(engine: Engine, group_id: str) -> dict:
    """At home, the failback's last step: this array lets go of what the copies'
    replication home left here (an async group's replica of the DR site's pgroup and its
    recovery points), once the DR site no longer sends it (:func:`remove_copy`), and the
    group's own replication ships the data home holds now to the DR site: protected from
    the moment it is back, not from the next scheduled snapshot."""
    group = engine.group(group_id)
    spec = group.protection(engine.config)
    if spec.source_array != engine.array:
        raise StepFailed(f"protection group {group.name}: {engine.array} is not where it "
                         f"runs ({spec.source_array})")
    storage = engine.clouds.storage()
    released = storage.release(spec.reversed())
    point = storage.replicate_now(spec, timeout=engine.config.engine.replicate_timeout,
                                  from_source=True)
    return {"released": released, "recovery_point": point.name,
            "replicating_to": group.secondary}


# -- failover --------------------------------------------------------------------------------

def stop_servers(engine: Engine, group_id: str, site: str | None = None,
                 copies: bool = False, fence: bool = False) -> dict:
    """Stop a group's VMs on ``site`` (default: its primary) so nothing writes after the
    last replication: the members themselves, or (``copies``) what its failover stack
    runs. Servers already stopped (a rerun) stay as they are. ``fence``: the members are
    locked too, so that they stay down while the group runs elsewhere (:func:`fence`).

    The last replication must be able to follow, so the link it takes, from the group's
    primary to its secondary (a failback's primary is the DR site, so there it leads back
    home), is checked first: a link that is down stops nothing."""
    group = engine.group(group_id)
    site = site or group.primary
    spec = group.protection(engine.config)
    try:
        engine.clouds.storage().check_link(spec.source_array, spec.target_array,
                                           via=engine.array)
    except StorageError as exc:
        raise StepFailed(f"protection group {group.name}: nothing was stopped, the last "
                         f"replication could not follow: {exc}") from None
    if site != engine.site:
        _on_peer(engine, group, PeerStepName.STOP_SERVERS, copies=copies, fence=fence)
        return {"stopped_by": site, "fenced": fence and not copies}
    if fence and not copies:
        return _fence_here(engine, group)
    conn = engine.clouds.connect(site, group.project)
    ids = _copy_ids(engine, group, site) if copies else group.server_ids
    return {"stopped": _stop(engine, group, conn, ids), "servers": len(ids)}


def _stop(engine: Engine, group: GroupPlan, conn, ids: list[str]) -> int:
    """Stop the ACTIVE ones of ``ids`` on this site and wait until they are; how many."""
    stopping = []
    for server_id in ids:
        server = conn.compute.get_server(server_id)
        if server.status == "ACTIVE":
            conn.compute.stop_server(server)
            stopping.append(server_id)

    def stopped() -> bool:
        return all(conn.compute.get_server(s).status in ("SHUTOFF", "ERROR") for s in stopping)

    engine.wait(f"{len(stopping)} servers of {group.name} to stop on {engine.site}",
                stopped, engine.config.engine.stack_timeout)
    return len(stopping)


# -- fencing: a group's original VMs stay down while it runs elsewhere ----------------------

def fence_reason(group_name: str, running_on: str) -> str:
    """What a fenced server's lock says (Nova keeps 255 characters), and the audit too."""
    return (f"Site Recovery: protection group {group_name} runs on {running_on} since its "
            "failover; this original VM stays stopped until the group's failback (or an "
            "administrator unlocks it)")[:255]


def originals_site(group: GroupPlan) -> str:
    """Where the group's own VMs (its members) are: its primary, or once it failed over,
    the site it left."""
    return group.secondary if group.document.status.away else group.primary


def fence(engine: Engine, group_id: str, ask_peer: bool = True,
          returned: bool = False) -> dict:
    """Keep the group's original VMs from running beside its recovery: stopped and locked
    (an admin's lock, which their project cannot lift), by the site they run on.

    An unplanned failover calls it on the DR site before it recovers anything: the old
    primary's service fences them (a peer step) if it answers; if it does not, the result
    says ``fenced: false`` and that site fences them itself when it is back (its fence is
    pending: :meth:`~site_recovery.webhook.lifecycle.Lifecycle.fence_returned`);
    ``ask_peer`` false: the operation began with the peer gone, and a site failover does
    not wait for each group's question to time out. Run on the site that holds them, it
    fences them there and records that they are. ``returned``: run by that site's own
    fence operation, once back, which fences only while the group still runs elsewhere
    with its fence on this site: one that waited while the group came home does nothing."""
    group = engine.group(group_id)
    site = originals_site(group)
    if returned:
        status, waiting = group.document.status, group.document.fence
        if not (status.away and waiting and waiting.site == engine.site):
            return {"fenced": False, "fence": f"nothing to fence: {group.name} is "
                                              f"{status.label}, its primary {group.primary}"}
        return _fence_here(engine, group)
    if site != engine.site and not ask_peer:
        return {"fenced": False, "fence": f"not fenced: peer site {site} was gone when the "
                                          "operation began; it fences its originals itself "
                                          "once it is back"}
    if site != engine.site:
        try:
            found = _on_peer(engine, group, PeerStepName.FENCE)
        except PeerAway as exc:
            return {"fenced": False, "fence": f"not fenced: {exc}; site {site} fences its "
                                              "originals itself once it is back"}
        return {"fenced": True, "fence": (found.get("details") or {}).get("fence")
                or f"originals stopped and locked on {site}"}
    return _fence_here(engine, group)


def _fence_here(engine: Engine, group: GroupPlan) -> dict:
    """Lock the members on this site (as admin: their project may not unlock them, nor
    start them while locked), then stop those still running; then the group's fence says
    they are, if it was waiting for this site."""
    reason = fence_reason(group.name, group.primary if engine.site != group.primary
                          else group.secondary)
    admin = engine.clouds.connect(engine.site)
    present = []
    for server_id in group.server_ids:
        server = admin.compute.find_server(server_id, ignore_missing=True)
        if server is None:
            continue                                # deleted meanwhile: nothing to keep down
        if not server.is_locked or server.locked_reason != reason:    # an owner's lock
            admin.compute.lock_server(server, locked_reason=reason)   # would not hold
        present.append(server_id)
    stopped = _stop(engine, group, admin, present)
    fenced = group.document.fence
    if fenced is not None and fenced.site == engine.site and \
            fenced.state is not FenceState.FENCED:
        engine.service.set_state(group.id, fence=fenced.model_copy(update={
            "state": FenceState.FENCED, "since": datetime.now(timezone.utc)}))
    return {"fenced": True, "servers": len(present), "stopped": stopped,
            "fence": f"{len(present)} servers stopped and locked on {engine.site}"}


def start_servers(engine: Engine, group_id: str) -> dict:
    """Start the members on the group's primary site (failback: the workload is home)."""
    group = engine.group(group_id)
    conn = engine.clouds.connect(group.primary, group.project)
    _unlock_fenced(engine, group)
    starting = []
    for server_id in group.server_ids:
        server = conn.compute.get_server(server_id)
        if server.status == "SHUTOFF":
            conn.compute.start_server(server)
            starting.append(server_id)

    def active() -> bool:
        states = {s: conn.compute.get_server(s).status for s in starting}
        broken = sorted(s for s, state in states.items() if state == "ERROR")
        if broken:
            raise StepFailed(f"protection group {group.name}: servers {broken} went to ERROR "
                             f"while starting on {group.primary}")
        return all(state == "ACTIVE" for state in states.values())

    engine.wait(f"{len(starting)} servers of {group.name} to start on {group.primary}",
                active, engine.config.engine.stack_timeout)
    return {"started": len(starting), "servers": len(group.server_ids)}


def _locked(engine: Engine, group: GroupPlan, home: str, running_on: str) -> tuple[list, list]:
    """The members locked on ``home``: those the fence locked (for ``running_on``), and
    those someone else did."""
    admin = engine.clouds.connect(home)
    ours = fence_reason(group.name, running_on)
    locked = [server for server in (admin.compute.find_server(s, ignore_missing=True)
                                    for s in group.server_ids)
              if server is not None and server.is_locked]
    return ([s for s in locked if s.locked_reason == ours],
            [s for s in locked if s.locked_reason != ours])


def _refuse_foreign_locks(engine: Engine, group: GroupPlan, home: str, running_on: str):
    """A member someone else locked is theirs to unlock, and a failback could not start
    it: refused, naming each, before the failback writes over anything."""
    _, foreign = _locked(engine, group, home, running_on)
    if foreign:
        names = "; ".join(f"{s.name} ({s.locked_reason or 'no reason given'})"
                          for s in foreign)
        raise StepFailed(f"protection group {group.name}: members locked by someone else "
                         f"on {home}: {names}; unlock them and retry")


def _unlock_fenced(engine: Engine, group: GroupPlan):
    """Lift the fence's locks (the members are home again); a member someone else locked
    is refused, named, and nothing is lifted."""
    _refuse_foreign_locks(engine, group, group.primary, group.secondary)
    ours, _ = _locked(engine, group, group.primary, running_on=group.secondary)
    admin = engine.clouds.connect(group.primary)
    for server in ours:
        admin.compute.unlock_server(server)


def _copy_ids(engine: Engine, group: GroupPlan, site: str) -> list[str]:
    stack = _find_stack(engine.clouds.heat(site, group.project),
                        stacks.stack_name(Purpose.FAILOVER, group.name), outputs=True)
    if stack is None:
        return []
    servers = next((o["output_value"] for o in (stack.outputs or [])
                    if o["output_key"] == "servers"), None) or []
    return [s["id"] for s in servers if s.get("id")]


# -- failback --------------------------------------------------------------------------------

def reverse_replication(engine: Engine, group_id: str) -> dict:
    """Make the failover copies replicate back to the group's original site: the copies'
    site protects them on its array (a peer step, from home), and the home array allows
    them in. Runs while the copy is the primary; both arrays must answer."""
    group = engine.group(group_id)
    spec = group.protection(engine.config)
    if group.primary != engine.site:               # the copies are the peer's
        _on_peer(engine, group, PeerStepName.REVERSE_REPLICATION)
        engine.clouds.storage().accept(spec)        # and this array allows them in
        return {"array_group": spec.name, "reversed_by": group.primary}
    copies = failover_copies(engine, group)
    missing = sorted(v.id for v in group.volumes if v.id not in copies)
    if missing:
        raise StepFailed(f"protection group {group.name}: no failover copy of volumes "
                         f"{missing} on {group.primary}; nothing to fail back")
    members = engine.clouds.storage().protect(
        spec, [array_volume_name(copy) for copy in copies.values()], accept=False)
    return {"array_group": spec.name, "volumes": len(members)}


def reprotect(engine: Engine, group_id: str) -> dict:
    """On the site a failover moved the group to, once the old site is back: its copies
    replicate home (this array protects them, the home array allows them in, and a first
    recovery point reaches it), so the workload is protected again where it runs and its
    failback is a planned move home from a point that is already there. Its original VMs
    stay fenced: the failback writes the copies over their volumes and starts them."""
    group = engine.group(group_id)
    status = group.document.status
    if not status.away or group.primary != engine.site:
        raise StepFailed(f"protection group {group.name} is {status} with {group.primary} "
                         f"its primary: only a group failed over to {engine.site} is "
                         "reprotected here")
    reversed_ = reverse_replication(engine, group_id)
    spec = group.protection(engine.config)
    if spec.replication_type is ReplicationType.ASYNC:      # the home array allows it itself
        _on_peer(engine, group, PeerStepName.ACCEPT_REPLICATION)
    storage = engine.clouds.storage()
    try:
        point = storage.newest_recovery_point(spec, from_source=True)
    except NoRecoveryPoint:
        point = storage.replicate_now(spec, timeout=engine.config.engine.replicate_timeout,
                                      from_source=True)
    if status is not GroupStatus.REPROTECTED:
        engine.service.set_state(group.id, status=GroupStatus.REPROTECTED)
    return {"array_group": spec.name, "volumes": reversed_["volumes"],
            "replicating_to": group.secondary, "recovery_point": point.name}


def accept_replication(engine: Engine, group_id: str) -> dict:
    """On the group's DR site: this array allows the group's replica in (an async
    group's source names it as a target; allowing is the target's own decision)."""
    group = engine.group(group_id)
    spec = group.protection(engine.config)
    if spec.target_array != engine.array:
        raise StepFailed(f"protection group {group.name}: {engine.array} is not its DR "
                         f"array ({spec.target_array})")
    engine.clouds.storage().accept(spec)
    return {"array_group": spec.name}


def failover_copies(engine: Engine, group: GroupPlan) -> dict[str, str]:
    """The group's failover copies on its primary site (the site it failed over to): the
    copy's volume id by the member volume it copies; the peer's service tells its own."""
    if group.primary != engine.site:
        try:
            return engine.peer.copies(group.id, Purpose.FAILOVER.value)
        except PeerStepFailed as exc:
            raise StepFailed(f"protection group {group.name}: {exc}") from None
    conn = engine.clouds.connect(group.primary, group.project)
    return {source: volume.id for source, volume in
            imported_volumes(conn, group.id, Purpose.FAILOVER.value).items()}


def _on_peer(engine: Engine, group: GroupPlan, step: PeerStepName, **arguments) -> dict:
    """Have the peer site run ``step`` of ``group`` on its own cloud, with its own keys,
    and wait for it: what it found. The step's key makes a rerun find the same one."""
    if not engine.step_key:
        raise StepFailed(f"protection group {group.name}: {step.label} on the peer site "
                         "runs only inside a workflow")
    try:
        return engine.peer.run_step(PeerStepRequest(
            protection_group_id=group.id, step=step, key=engine.step_key,
            requested_by={"site": engine.site, "group": group.name,
                          **({"operation": engine.operation_id} if engine.operation_id
                             else {})}, **arguments),
            timeout=engine.config.engine.stack_timeout + engine.config.engine.volume_timeout)
    except PeerUnreachable as exc:
        raise PeerAway(f"protection group {group.name}: {exc}") from None
    except PeerStepFailed as exc:
        raise StepFailed(f"protection group {group.name}: {exc}") from None


def restore_in_place(engine: Engine, group_id: str, point_name: str) -> dict:
    """Write the recovery point over the members' own volumes on the original site, so the
    original VMs come back with their ids, ports and addresses."""
    group = engine.group(group_id)
    _refuse_foreign_locks(engine, group, group.secondary, group.primary)
    spec = group.protection(engine.config)          # from the copy back to home
    home = engine.clouds.connect(group.secondary, group.project)
    copies = failover_copies(engine, group)
    gone = sorted(source for source in copies
                  if home.block_storage.find_volume(source, ignore_missing=True) is None)
    if gone:
        raise StepFailed(f"protection group {group.name}: volumes {gone} no longer exist on "
                         f"{group.secondary}; failback restores in place and needs them")
    storage = engine.clouds.storage()
    point = named_point(storage, spec, point_name)
    restored = storage.restore(spec, point, {group.array_source(spec, copy):
                                             group.array_source(spec, source)
                                             for source, copy in copies.items()})
    return {"restored": len(restored), "recovery_point": point.name}


def take_over(engine: Engine, group_id: str, site: str,
              status: GroupStatus = GroupStatus.FAILED_OVER, fenced: bool = False) -> dict:
    """Record that ``site`` now runs the group: it becomes the primary, the old primary the
    secondary (``status``: failed_over, or protected once back home). Recorded on this site
    even when the old primary is gone. A failover records the group's fence on the site it
    left (``fenced``: its original VMs are stopped and locked already; else that site
    fences them when it is back); coming home lifts it."""
    group, status = engine.group(group_id), GroupStatus(status)
    if group.primary == site:
        return {"primary_site": site, "changed": False}
    away = status.away
    engine.service.set_state(
        group.id, status=status, primary_site=site, secondary_site=group.primary,
        fence=Fence(site=group.primary, reason=fence_reason(group.name, site),
                    state=FenceState.FENCED if fenced else FenceState.PENDING,
                    since=datetime.now(timezone.utc)) if away else None)
    return {"primary_site": site, "changed": True,
            **({"fence": f"originals on {group.primary} "
                         f"{'stopped and locked' if fenced else 'fenced when it is back'}"}
               if away else {})}
