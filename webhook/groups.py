"""``/v1/protection-groups`` and their members; ``/v1/resource-mappings``.

Views stay thin: they check the caller's role, find the object in the caller's project
(another project's object is "not found", never "forbidden"), and hand the change to the
:class:`~.registry.Registry`, which writes it to both sites or to neither.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Blueprint, current_app, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased, object_session

from site_recovery.core.model import (
    TOTAL,
    GroupStatus,
    MappingKind,
    OperationKind,
    Project,
    Status,
)

from . import readiness, schemas, tenancy
from .errors import APIError, Conflict, NotFound, Unavailable
from .identity import Caller, caller
from .lifecycle import Start
from .models import (
    Divergence,
    Member,
    OperationResult,
    ProtectionGroup,
    ReadinessRecord,
    ResourceMapping,
    last_drills,
    newest_recovery_points,
    owned_by,
)
from .params import body, bounded_int, flag
from .peerlink import PeerUnreachable
from .registry import Change, ChangeAction, DocumentKind
from .services import services

bp = Blueprint("groups", __name__, url_prefix="/v1")
GROUP, MAPPING = DocumentKind.PROTECTION_GROUP, DocumentKind.RESOURCE_MAPPING


@dataclass(frozen=True)
class Listed:
    """What a listing reads of each group in its one query, not one query per group."""

    member_count: int
    newest_point: OperationResult | None
    ready: bool | None                  # its last readiness check's verdict, on its DR site
    drill: OperationResult | None       # its last completed drill, on its DR site


def group_view(group: ProtectionGroup, listed: Listed | None = None) -> dict:
    """A group as people see it; ``conflict`` while its two sites' copies diverged."""
    if listed is None:
        session = object_session(group)
        drilled = last_drills((Status.COMPLETED,))
        listed = Listed(len(group.members), _newest_point(session, group.id),
                        session.scalar(select(ReadinessRecord.ready).where(
                            ReadinessRecord.group_id == group.id)),
                        session.scalar(select(OperationResult).join(
                            drilled, drilled.c.id == OperationResult.id).where(
                            drilled.c.group_id == group.id)))
    diverged, point = group.divergence, listed.newest_point
    return {"id": group.id, "name": group.name, "description": group.description,
            "project_name": group.project_name, "project_domain": group.project_domain,
            "replication_type": group.replication_type,
            "primary_site": group.primary_site, "secondary_site": group.secondary_site,
            "volume_type": group.volume_type, "rpo_target_seconds": group.rpo_target_seconds,
            "rto_target_seconds": group.rto_target_seconds, "priority": group.priority,
            "drill_schedule": group.drill_schedule, "drill_network": group.drill_network,
            # What its last completed drill took, from request to end: its RTO, estimated.
            "rto_estimate_seconds": listed.drill and listed.drill.timings.get(TOTAL),
            "status": "conflict" if diverged else group.status, "version": group.version,
            "member_count": listed.member_count,
            "created_at": group.created_at.isoformat(),
            "updated_at": group.updated_at.isoformat(),
            "conflict": diverged and divergence_view(diverged),
            # While it runs on its DR site: its original VMs kept down, where and why.
            "fence": group.fence,
            "last_recovery_point": point and recovery_point_view(point),
            "ready": listed.ready}


def recovery_point_view(result: OperationResult) -> dict:
    """The recovery point an operation's result names, timestamped by the array."""
    return {"name": result.recovery_point, "created_at": result.details.get("point_created"),
            "rpo_achieved_seconds": result.rpo_achieved_seconds,
            "operation_id": result.operation_id}


def _newest_point(session: Session, group_id: str) -> OperationResult | None:
    return session.scalar(select(OperationResult).where(
        OperationResult.group_id == group_id, OperationResult.recovery_point.is_not(None))
        .order_by(OperationResult.id.desc()).limit(1))


def divergence_view(found: Divergence) -> dict:
    """Both copies, as far as people choose between them."""
    def copy(site: str, doc: dict) -> dict:
        return {"site": site, "version": doc["version"], "status": doc.get("status"),
                "primary_site": doc.get("primary_site"), "name": doc.get("name"),
                "member_count": len(doc.get("members", [])),
                "taken_over_by": doc.get("taken_over_by")}
    return {"detected_at": found.detected_at.isoformat(),
            "copies": [copy(services().config.site, found.ours),
                       copy(found.peer_site, found.theirs)]}


def member_view(member: Member) -> dict:
    return {"id": member.id, "server_id": member.server_id, "server_name": member.server_name,
            "position": member.position,
            "captured_at": member.captured_at.isoformat() if member.captured_at else None,
            "boot_tier": member.boot_tier, "gate": member.gate}


def mapping_view(mapping: ResourceMapping) -> dict:
    return {"id": mapping.id, "project_name": mapping.project_name,
            "project_domain": mapping.project_domain,
            "protection_group_id": mapping.group_id, "kind": mapping.kind,
            "source": mapping.source, "target": mapping.target, "version": mapping.version}


def find_group(session: Session, ref: str, who: Caller, all_projects: bool) -> ProtectionGroup:
    """The group ``ref`` (id, or name in the caller's project) that the caller may see."""
    query = select(ProtectionGroup).where(or_(ProtectionGroup.id == ref,
                                              ProtectionGroup.name == ref))
    if not all_projects:
        query = query.where(owned_by(ProtectionGroup, who.project))
    found = session.scalars(query).all()
    exact = [g for g in found if g.id == ref]
    if exact:
        return exact[0]
    if len(found) > 1:
        raise APIError(f"several projects have a protection group named {ref!r}; use its id",
                       status=409, ids=sorted(g.id for g in found))
    if not found:
        raise NotFound(f"protection group {ref!r} not found")
    return found[0]


def find_mapping(session: Session, mapping_id: str, who: Caller,
                 all_projects: bool) -> ResourceMapping:
    mapping = session.get(ResourceMapping, mapping_id)
    if mapping is None or not (all_projects or mapping.project == who.project):
        raise NotFound(f"resource mapping {mapping_id!r} not found")
    return mapping


def _require(rule: str) -> tuple[Caller, bool]:
    who = caller()
    policy = services().policy
    policy.require(rule, who)
    return who, policy.all_projects(who)


def _change(access: tuple[Caller, bool], kind: DocumentKind, ref: str, action: ChangeAction,
            values: dict | None = None, expected_version: int | None = None):
    """``action`` on the group or mapping ``ref`` that the caller (``access``: from
    :func:`_require`) may change; the new document (None: deleted)."""
    who, everyone = access
    find = find_group if kind is GROUP else find_mapping
    site = services()
    with site.sessions() as session:
        target = find(session, ref, who, everyone)
    return site.registry.submit(Change(kind, action, target.id, target.project_name,
                                       values or {}, expected_version,
                                       project_domain=target.project_domain), who.actor)


def _shown(model, object_id: str, view) -> dict:
    with services().sessions() as session:
        return view(session.get(model, object_id))


# -- groups ----------------------------------------------------------------------------------

@bp.get("/protection-groups")
def list_groups():
    who, everyone = _require("protector:read")
    counts = (select(Member.group_id, func.count().label("n")).group_by(Member.group_id)
              .subquery())
    newest, drilled = newest_recovery_points(), last_drills((Status.COMPLETED,))
    drill = aliased(OperationResult)
    query = (select(ProtectionGroup, func.coalesce(counts.c.n, 0), OperationResult,
                    ReadinessRecord.ready, drill)
             .outerjoin(counts, counts.c.group_id == ProtectionGroup.id)
             .outerjoin(newest, newest.c.group_id == ProtectionGroup.id)
             .outerjoin(OperationResult, OperationResult.id == newest.c.id)
             .outerjoin(drilled, drilled.c.group_id == ProtectionGroup.id)
             .outerjoin(drill, drill.id == drilled.c.id)
             .outerjoin(ReadinessRecord, ReadinessRecord.group_id == ProtectionGroup.id)
             .order_by(ProtectionGroup.project_domain, ProtectionGroup.project_name,
                       ProtectionGroup.name))
    if not everyone:
        query = query.where(owned_by(ProtectionGroup, who.project))
    with services().sessions() as session:
        rows = session.execute(query).all()
        return {"protection_groups": [group_view(group, Listed(*listed))
                                      for group, *listed in rows]}


@bp.post("/protection-groups")
def create_group():
    who, _ = _require("protector:write")
    spec = body(schemas.GroupCreate)
    doc = services().registry.submit(Change(
        GROUP, ChangeAction.CREATE, str(uuid.uuid4()), who.project_name,
        {**spec.model_dump(mode="json"), "project_name": who.project_name,
         "project_domain": who.project_domain, "status": GroupStatus.UNPROTECTED},
        project_domain=who.project_domain), who.actor)
    return {"protection_group": _shown(ProtectionGroup, doc.id, group_view)}, 201


@bp.get("/protection-groups/<ref>")
def show_group(ref: str):
    who, everyone = _require("protector:read")
    with services().sessions() as session:
        return {"protection_group": group_view(find_group(session, ref, who, everyone))}


@bp.patch("/protection-groups/<ref>")
def update_group(ref: str):
    access = _require("protector:write")
    change = body(schemas.GroupUpdate)
    doc = _change(access, GROUP, ref, ChangeAction.UPDATE,
                  values=change.changes(), expected_version=change.version)
    return {"protection_group": _shown(ProtectionGroup, doc.id, group_view)}


@bp.delete("/protection-groups/<ref>")
def delete_group(ref: str):
    """Delete a group on both sites. One that may still replicate (any status but
    unprotected) is refused, naming unprotect, unless ``force``: then its record goes and
    its replication stays as it is, as the audit entry says."""
    access = _require("protector:write")
    version = bounded_int("version", None, 1, 2**31)
    values = {"force": True, "replication": "left in place"} if flag("force") else {}
    _change(access, GROUP, ref, ChangeAction.DELETE, values=values, expected_version=version)
    return "", 204


@bp.post("/protection-groups/<ref>/resolve")
def resolve_group(ref: str):
    """Keep one of a diverged group's two copies (``{"keep": "<site>"}``) on both sites."""
    access = _require("protector:failover")
    doc = _change(access, GROUP, ref, ChangeAction.RESOLVE,
                  values=body(schemas.Resolution).model_dump())
    return {"protection_group": _shown(ProtectionGroup, doc.id, group_view)}


# -- members ---------------------------------------------------------------------------------

@bp.get("/protection-groups/<ref>/members")
def list_members(ref: str):
    who, everyone = _require("protector:read")
    with services().sessions() as session:
        group = find_group(session, ref, who, everyone)
        return {"members": [member_view(m) for m in group.members]}


@bp.post("/protection-groups/<ref>/members")
def add_member(ref: str):
    """Add a server of the group's project on its primary site. To a protected group only
    once no operation holds it (409) and its volumes are found to replicate the group's
    way (400 naming each one): then a protect starts, which puts them in replication and
    captures the server; the answer carries that operation."""
    access = _require("protector:write")
    spec = body(schemas.MemberAdd)
    server_id = str(uuid.UUID(spec.server_id))
    site = services()
    with site.sessions() as session:
        group = find_group(session, ref, *access)
    recorded = site.projects.recorded(group.project)
    server = tenancy.member_server(site.tenants, recorded and recorded.project_id,
                                   group.project, group.primary_site, server_id)
    protected = group.status == GroupStatus.PROTECTED
    if protected:
        _refuse_while_busy(group)
        site.references.check_member(group.project, server_id, group.replication_type)
    doc = _change(access, GROUP, ref, ChangeAction.ADD_MEMBER,
                  values={"server_id": server_id,
                          "server_name": spec.server_name or server.name})
    added = next(m for m in doc.members if m.server_id == server_id)
    answer = {"member": _shown(Member, added.id, member_view)}
    return ({**answer, **_follow_replication(group.id, access[0])} if protected else answer,
            201)


@bp.delete("/protection-groups/<ref>/members/<server_id>")
def remove_member(ref: str, server_id: str):
    """Remove a member. From a protected group only on its primary site and while no
    operation holds it (409): then a protect starts that takes the member's volumes out
    of replication (202, with the operation)."""
    try:
        server_id = str(uuid.UUID(server_id))       # as add_member stored it
    except ValueError:
        raise NotFound(f"server {server_id!r} is not a member: not a server id") from None
    access = _require("protector:write")
    site = services()
    with site.sessions() as session:
        group = find_group(session, ref, *access)
    protected = group.status == GroupStatus.PROTECTED
    if protected:
        if group.primary_site != site.config.site:
            raise Conflict(f"protection group {group.name} replicates from "
                           f"{group.primary_site}: remove its members there, where its "
                           "replication follows them", site=group.primary_site)
        _refuse_while_busy(group)
    _change(access, GROUP, ref, ChangeAction.REMOVE_MEMBER, values={"server_id": server_id})
    if not protected:
        return "", 204
    return _follow_replication(group.id, access[0]), 202


@bp.patch("/protection-groups/<ref>/members/<server_id>")
def set_member(ref: str, server_id: str):
    """A member's boot tier and health gate, on both sites: how its next recovery boots
    it (a running recovery keeps what it read when it started)."""
    access = _require("protector:write")
    settings = body(schemas.MemberSettings).model_dump(mode="json", exclude_unset=True)
    try:
        server_id = str(uuid.UUID(server_id))       # as add_member stored it
    except ValueError:
        raise NotFound(f"server {server_id!r} is not a member: not a server id") from None
    doc = _change(access, GROUP, ref, ChangeAction.SET_MEMBER,
                  values={"server_id": server_id, **settings})
    member = next(m for m in doc.members if m.server_id == server_id)
    return {"member": _shown(Member, member.id, member_view)}


def _refuse_while_busy(group: ProtectionGroup):
    """409 before a protected group's members change while an operation holds the group
    on either site: the protect that follows the change could not start."""
    operations = services().operations
    busy = operations.busy_here(OperationKind.PROTECT, [group.id]) or \
        operations.busy_on_peer(OperationKind.PROTECT, [group.id], None)
    if busy:
        held = busy[group.id]
        raise Conflict(f"operation {held['operation_id']} ({held['operation_type']}) is "
                       f"under way on protection group {group.name}; change its members "
                       "once it has ended", operation_id=held["operation_id"])


def _follow_replication(group_id: str, who: Caller) -> dict:
    """Start the protect that brings a protected group's replication to its members (the
    change is made already): the answer's ``operation``. One that cannot start (raced by
    another operation, Mistral away) is said, with the command that starts it later."""
    site = services()
    with site.sessions() as session:
        group = session.get(ProtectionGroup, group_id)
    try:
        started = site.operations.start(Start(OperationKind.PROTECT, [group], who.actor,
                                              who.project))
    except APIError as exc:
        return {"operation": None,
                "protect": f"not started: {exc.message}; its replication follows the "
                           "members once it is: openstack protector protection-group "
                           f"protect {group.name}"}
    # As GET /v1/operations/<id> shows it: that view is the operations blueprint's, whose
    # module imports this one.
    return current_app.view_functions["operations.show_operation"](started.operation_id)


# -- resource mappings -----------------------------------------------------------------------

@bp.get("/resource-mappings")
def list_mappings():
    who, everyone = _require("protector:read")
    query = select(ResourceMapping).order_by(
        ResourceMapping.project_domain, ResourceMapping.project_name, ResourceMapping.kind,
        ResourceMapping.source)
    with services().sessions() as session:
        if request.args.get("protection_group"):
            group = find_group(session, request.args["protection_group"], who, everyone)
            query = query.where(or_(ResourceMapping.group_id == group.id,
                                    ResourceMapping.group_id.is_(None)),
                                owned_by(ResourceMapping, group.project))
        elif not everyone:
            query = query.where(owned_by(ResourceMapping, who.project))
        return {"resource_mappings": [mapping_view(m) for m in session.scalars(query)]}


def _check_target(project: Project, group_id: str | None, kind: str, target: str):
    """A mapping's target must be the project's own (or shared) on each site where what
    it maps recovers: its group's secondary site, or for a project's mapping, those of the
    project's groups (none yet: nothing to check against)."""
    site = services()
    with site.sessions() as session:
        query = select(ProtectionGroup.secondary_site).where(
            ProtectionGroup.id == group_id if group_id else
            owned_by(ProtectionGroup, project))
        sites = set(session.scalars(query))
    tenancy.check_target(site.references, _peer_finds, site.config.site, project,
                         MappingKind(kind), target, sites)


def _peer_finds(params: dict) -> bool:
    """Whether the peer site finds a mapping's target (asked as the peer, through its
    ``/v1/internal/references``)."""
    peer = services().registry.peer
    try:
        reply = peer.request("GET", f"/v1/internal/references?{urlencode(params)}")
    except PeerUnreachable as exc:
        raise Unavailable(f"peer site {services().config.peer.name} did not answer ({exc}): "
                          "a mapping's target there cannot be checked, and the mapping is "
                          "written to both sites; try again once it answers") from None
    if reply.status not in (200, 404):
        message = (reply.body.get("error") or {}).get("message", f"HTTP {reply.status}")
        raise Conflict(f"peer site {services().config.peer.name} could not look the "
                       f"target up: {message}")
    return reply.status == 200


@bp.post("/resource-mappings")
def create_mapping():
    who, everyone = _require("protector:write")
    spec = body(schemas.MappingCreate)
    site = services()
    project, group_id = who.project, None
    if spec.protection_group:
        with site.sessions() as session:
            group = find_group(session, spec.protection_group, who, everyone)
        project, group_id = group.project, group.id
    _check_target(project, group_id, spec.kind, spec.target)
    doc = site.registry.submit(Change(
        MAPPING, ChangeAction.CREATE, str(uuid.uuid4()), project.name,
        {"project_name": project.name, "project_domain": project.domain,
         "group_id": group_id, "kind": spec.kind, "source": spec.source,
         "target": spec.target}, project_domain=project.domain), who.actor)
    return {"resource_mapping": _shown(ResourceMapping, doc.id, mapping_view)}, 201


@bp.get("/resource-mappings/<mapping_id>")
def show_mapping(mapping_id: str):
    who, everyone = _require("protector:read")
    with services().sessions() as session:
        return {"resource_mapping": mapping_view(find_mapping(session, mapping_id, who,
                                                              everyone))}


@bp.patch("/resource-mappings/<mapping_id>")
def update_mapping(mapping_id: str):
    access = _require("protector:write")
    change = body(schemas.MappingUpdate)
    with services().sessions() as session:
        mapping = find_mapping(session, mapping_id, *access)
        project, group_id, kind = mapping.project, mapping.group_id, mapping.kind
    _check_target(project, group_id, kind, change.target)
    doc = _change(access, MAPPING, mapping_id, ChangeAction.UPDATE,
                  {"target": change.target}, change.version)
    return {"resource_mapping": _shown(ResourceMapping, doc.id, mapping_view)}


@bp.post("/resource-mappings/<mapping_id>/resolve")
def resolve_mapping(mapping_id: str):
    """Keep one of a diverged mapping's two copies on both sites."""
    doc = _change(_require("protector:write"), MAPPING, mapping_id, ChangeAction.RESOLVE,
                  values=body(schemas.Resolution).model_dump())
    return {"resource_mapping": _shown(ResourceMapping, doc.id, mapping_view)}


@bp.delete("/resource-mappings/<mapping_id>")
def delete_mapping(mapping_id: str):
    _change(_require("protector:write"), MAPPING, mapping_id, ChangeAction.DELETE)
    return "", 204


# -- readiness (webhook/readiness.py) -----------------------------------------------------

def readiness_view(record: ReadinessRecord) -> dict:
    return {"ready": record.ready, "checked_at": record.checked_at.isoformat(),
            "findings": record.findings}


def _group_here(ref: str) -> tuple[str, str, str]:
    """The group ``ref`` the caller may read, as (id, name, status), on its DR site only:
    elsewhere a 409 names the site that checks it."""
    who, everyone = _require("protector:read")
    here = services().config.site
    with services().sessions() as session:
        group = find_group(session, ref, who, everyone)
        if group.secondary_site != here:
            raise Conflict(f"protection group {group.name} recovers on "
                           f"{group.secondary_site}: its readiness is checked there",
                           site=group.secondary_site)
        return group.id, group.name, group.status


@bp.get("/protection-groups/<ref>/readiness")
def show_readiness(ref: str):
    """The group's last readiness check (null before the first)."""
    group_id, _, _ = _group_here(ref)
    with services().sessions() as session:
        record = session.get(ReadinessRecord, group_id)
        return {"readiness": record and readiness_view(record)}


@bp.post("/protection-groups/<ref>/readiness")
def check_readiness(ref: str):
    """Check the group now (its cloud-side checks ask the DR site's cloud)."""
    group_id, name, status = _group_here(ref)
    if status not in readiness.WATCHED:
        raise Conflict(f"protection group {name} is {status}: readiness is checked while it "
                       "replicates to this site; protect it first")
    return {"readiness": readiness_view(services().readiness.check(group_id))}
