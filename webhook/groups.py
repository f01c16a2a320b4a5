"""``/v1/protection-groups`` and their members; ``/v1/resource-mappings``.

Views stay thin: they check the caller's role, find the object in the caller's project
(another project's object is "not found", never "forbidden"), and hand the change to the
:class:`~.registry.Registry`, which writes it to both sites or to neither.
"""

from __future__ import annotations

import uuid

from flask import Blueprint, current_app, request
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from . import schemas
from .errors import APIError, NotFound
from .identity import Caller, caller
from .models import Member, ProtectionGroup, ResourceMapping
from .params import body, bounded_int
from .registry import Change

bp = Blueprint("groups", __name__, url_prefix="/v1")


def group_view(group: ProtectionGroup, member_count: int | None = None) -> dict:
    return {"id": group.id, "name": group.name, "description": group.description,
            "project_name": group.project_name, "replication_type": group.replication_type,
            "primary_site": group.primary_site, "secondary_site": group.secondary_site,
            "volume_type": group.volume_type, "rpo_target_seconds": group.rpo_target_seconds,
            "status": group.status, "version": group.version,
            "member_count": len(group.members) if member_count is None else member_count,
            "created_at": group.created_at.isoformat(),
            "updated_at": group.updated_at.isoformat()}


def member_view(member: Member) -> dict:
    return {"id": member.id, "server_id": member.server_id, "server_name": member.server_name,
            "position": member.position,
            "captured_at": member.captured_at.isoformat() if member.captured_at else None}


def mapping_view(mapping: ResourceMapping) -> dict:
    return {"id": mapping.id, "project_name": mapping.project_name,
            "protection_group_id": mapping.group_id, "kind": mapping.kind,
            "source": mapping.source, "target": mapping.target, "version": mapping.version}


def _services():
    extensions = current_app.extensions
    return extensions["sessions"], extensions["policy"], extensions["registry"]


def find_group(session: Session, ref: str, who: Caller, all_projects: bool) -> ProtectionGroup:
    """The group ``ref`` (id, or name in the caller's project) that the caller may see."""
    query = select(ProtectionGroup).where(or_(ProtectionGroup.id == ref,
                                              ProtectionGroup.name == ref))
    if not all_projects:
        query = query.where(ProtectionGroup.project_name == who.project_name)
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


def _require(rule: str) -> tuple[Caller, bool]:
    who = caller()
    policy = current_app.extensions["policy"]
    policy.require(rule, who)
    return who, policy.all_projects(who)


# -- groups ----------------------------------------------------------------------------------

@bp.get("/protection-groups")
def list_groups():
    who, everyone = _require("protector:read")
    sessions = current_app.extensions["sessions"]
    counts = (select(Member.group_id, func.count().label("n")).group_by(Member.group_id)
              .subquery())
    query = (select(ProtectionGroup, func.coalesce(counts.c.n, 0))
             .outerjoin(counts, counts.c.group_id == ProtectionGroup.id)
             .order_by(ProtectionGroup.project_name, ProtectionGroup.name))
    if not everyone:
        query = query.where(ProtectionGroup.project_name == who.project_name)
    with sessions() as session:
        rows = session.execute(query).all()
    return {"protection_groups": [group_view(g, n) for g, n in rows]}


@bp.post("/protection-groups")
def create_group():
    who, _ = _require("protector:write")
    spec = body(schemas.GroupCreate)
    _, _, registry = _services()
    doc = registry.submit(Change("protection_group", "create", str(uuid.uuid4()),
                                 who.project_name,
                                 {**spec.model_dump(), "project_name": who.project_name,
                                  "status": "unprotected"}), who.actor)
    return _show_group(doc["id"]), 201


@bp.get("/protection-groups/<ref>")
def show_group(ref: str):
    who, everyone = _require("protector:read")
    sessions, _, _ = _services()
    with sessions() as session:
        return {"protection_group": group_view(find_group(session, ref, who, everyone))}


def _show_group(group_id: str) -> dict:
    sessions, _, _ = _services()
    with sessions() as session:
        return {"protection_group": group_view(session.get(ProtectionGroup, group_id))}


def _group_change(access: tuple[Caller, bool], ref: str, action: str, values=None,
                  expected_version: int | None = None) -> dict | None:
    who, everyone = access
    sessions, _, registry = _services()
    with sessions() as session:
        group = find_group(session, ref, who, everyone)
    doc = registry.submit(Change("protection_group", action, group.id, group.project_name,
                                 values or {}, expected_version), who.actor)
    return doc


@bp.patch("/protection-groups/<ref>")
def update_group(ref: str):
    access = _require("protector:write")
    change = body(schemas.GroupUpdate)
    doc = _group_change(access, ref, "update", values=change.changes(),
                        expected_version=change.version)
    return _show_group(doc["id"])


@bp.delete("/protection-groups/<ref>")
def delete_group(ref: str):
    access = _require("protector:write")
    version = bounded_int("version", None, 1, 2**31)
    _group_change(access, ref, "delete", expected_version=version)
    return "", 204


# -- members ---------------------------------------------------------------------------------

@bp.get("/protection-groups/<ref>/members")
def list_members(ref: str):
    who, everyone = _require("protector:read")
    sessions, _, _ = _services()
    with sessions() as session:
        group = find_group(session, ref, who, everyone)
        return {"members": [member_view(m) for m in group.members]}


@bp.post("/protection-groups/<ref>/members")
def add_member(ref: str):
    access = _require("protector:write")
    spec = body(schemas.MemberAdd)
    values = {"server_id": str(uuid.UUID(spec.server_id)), "server_name": spec.server_name}
    doc = _group_change(access, ref, "add_member", values=values)
    added = next(m for m in doc["members"] if m["server_id"] == values["server_id"])
    sessions, _, _ = _services()
    with sessions() as session:
        return {"member": member_view(session.get(Member, added["id"]))}, 201


@bp.delete("/protection-groups/<ref>/members/<server_id>")
def remove_member(ref: str, server_id: str):
    try:
        server_id = str(uuid.UUID(server_id))       # as add_member stored it
    except ValueError:
        raise NotFound(f"server {server_id!r} is not a member: not a server id") from None
    _group_change(_require("protector:write"), ref, "remove_member",
                  values={"server_id": server_id})
    return "", 204


# -- resource mappings -----------------------------------------------------------------------

def _find_mapping(session: Session, mapping_id: str, who: Caller,
                  everyone: bool) -> ResourceMapping:
    mapping = session.get(ResourceMapping, mapping_id)
    if mapping is None or not (everyone or mapping.project_name == who.project_name):
        raise NotFound(f"resource mapping {mapping_id!r} not found")
    return mapping


@bp.get("/resource-mappings")
def list_mappings():
    who, everyone = _require("protector:read")
    sessions, _, _ = _services()
    query = select(ResourceMapping).order_by(ResourceMapping.project_name,
                                             ResourceMapping.kind, ResourceMapping.source)
    with sessions() as session:
        if request.args.get("protection_group"):
            group = find_group(session, request.args["protection_group"], who, everyone)
            query = query.where(or_(ResourceMapping.group_id == group.id,
                                    ResourceMapping.group_id.is_(None)),
                                ResourceMapping.project_name == group.project_name)
        elif not everyone:
            query = query.where(ResourceMapping.project_name == who.project_name)
        return {"resource_mappings": [mapping_view(m) for m in session.scalars(query)]}


@bp.post("/resource-mappings")
def create_mapping():
    who, everyone = _require("protector:write")
    spec = body(schemas.MappingCreate)
    sessions, _, registry = _services()
    project, group_id = who.project_name, None
    if spec.protection_group:
        with sessions() as session:
            group = find_group(session, spec.protection_group, who, everyone)
        project, group_id = group.project_name, group.id
    doc = registry.submit(Change("resource_mapping", "create", str(uuid.uuid4()), project,
                                 {"project_name": project, "group_id": group_id,
                                  "kind": spec.kind, "source": spec.source,
                                  "target": spec.target}), who.actor)
    return _show_mapping(doc["id"]), 201


def _show_mapping(mapping_id: str) -> dict:
    sessions, _, _ = _services()
    with sessions() as session:
        return {"resource_mapping": mapping_view(session.get(ResourceMapping, mapping_id))}


@bp.get("/resource-mappings/<mapping_id>")
def show_mapping(mapping_id: str):
    who, everyone = _require("protector:read")
    sessions, _, _ = _services()
    with sessions() as session:
        return {"resource_mapping": mapping_view(_find_mapping(session, mapping_id, who,
                                                               everyone))}


def _mapping_change(access: tuple[Caller, bool], mapping_id: str, action: str, values=None,
                    expected_version: int | None = None) -> dict | None:
    who, everyone = access
    sessions, _, registry = _services()
    with sessions() as session:
        mapping = _find_mapping(session, mapping_id, who, everyone)
    return registry.submit(Change("resource_mapping", action, mapping.id,
                                  mapping.project_name, values or {}, expected_version),
                           who.actor)


@bp.patch("/resource-mappings/<mapping_id>")
def update_mapping(mapping_id: str):
    access = _require("protector:write")
    change = body(schemas.MappingUpdate)
    doc = _mapping_change(access, mapping_id, "update", {"target": change.target},
                          change.version)
    return _show_mapping(doc["id"])


@bp.delete("/resource-mappings/<mapping_id>")
def delete_mapping(mapping_id: str):
    _mapping_change(_require("protector:write"), mapping_id, "delete")
    return "", 204
