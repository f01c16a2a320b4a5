"""``/v1/internal``: the peer site's pushes and forwarded changes, and what the workflows
read and record of a group.

Each endpoint names who may call it: this site's DR workflows, the peer site's service,
or both; each is one configured account holding the ``site_recovery_service`` role
(:meth:`Policy.require_internal`). A push cannot give a group to another project, nor
take its version back (:func:`registry.receive`).
"""

from __future__ import annotations

from functools import partial

from flask import Blueprint, request
from keystoneauth1 import exceptions as ks_exceptions
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from site_recovery.core.config import ConfigError
from site_recovery.core.model import (
    DEFAULT_DOMAIN,
    MappingKind,
    Project,
    Purpose,
)
from site_recovery.core.recovery import imported_volumes

from . import audit, db, schemas
from .errors import APIError, Conflict, NotFound, Unavailable
from .identity import Caller, caller
from .models import ProtectionGroup, owned_by
from .params import body, bounded_int
from .policy import InternalCaller
from .registry import (
    KINDS,
    Change,
    ChangeAction,
    DocumentKind,
    from_summary,
    group_document,
    receive,
    record_divergence,
    without_specs,
)
from .services import services
from .tenancy import unknown_target

bp = Blueprint("internal", __name__, url_prefix="/v1/internal")
GROUP, MAPPING = DocumentKind.PROTECTION_GROUP, DocumentKind.RESOURCE_MAPPING


WORKFLOWS, PEER = InternalCaller.WORKFLOWS, InternalCaller.PEER


def _internal(*allowed: InternalCaller) -> Caller:
    who = caller()
    services().policy.require_internal(who, *allowed)
    return who


def _receive(kind: DocumentKind, object_id: str, push: type[BaseModel] | None):
    """A push from the peer (``push``: its body's model; None: a deletion, at
    ``?version=``): the document stored."""
    who = _internal(PEER)
    push = body(push) if push else None
    doc = push.document if push else None
    expected = push.expected_version if push else bounded_int("version", 0, 0, 2**31)
    with db.transaction(services().sessions) as session:
        stored: BaseModel | None = receive(
            session, kind, object_id, doc, expected, push.expected_clock if push else None,
            push.resolution if push else None, getattr(push, "specs_held", ()))
        audit.record_in(session, who.actor, f"{kind}.sync", object_id, "accepted",
                        f"from peer site, version {doc.version if doc else 'deleted'}",
                        project=doc.project if doc else None)
    return {"document": without_specs(stored)} if stored else ("", 204)


def _documents(kind: DocumentKind, project: Project | None = None):
    _internal(PEER, WORKFLOWS)
    keeping = KINDS[kind]
    query = select(keeping.model).order_by(keeping.model.id)
    if project is not None:
        query = query.where(owned_by(keeping.model, project))
    with services().sessions() as session:
        return {"documents": [keeping.document(row).model_dump(mode="json")
                              for row in session.scalars(query)]}


@bp.get("/protection-groups")
def list_groups():
    """Every group document, for the coordinator to catch up (``Registry.sync``)."""
    return _documents(GROUP)


@bp.get("/protection-groups/<object_id>")
def show_group(object_id: str):
    """One group's document, members' captured specs included: what a workflow rebuilds."""
    _internal(WORKFLOWS)
    with services().sessions() as session:
        group = session.get(ProtectionGroup, object_id)
        if group is None:
            raise NotFound(f"protection group {object_id!r} not found")
        return {"document": group_document(group).model_dump(mode="json")}


@bp.get("/protection-groups/<object_id>/copies")
def copies(object_id: str):
    """The group's copies of one purpose (``?purpose=``) on this site's cloud, copy id by
    the member volume it copies: what a failback on the peer site restores from."""
    _internal(PEER)
    try:
        purpose = Purpose(request.args.get("purpose", ""))
    except ValueError:
        raise APIError("purpose must be one of " + ", ".join(Purpose), field="purpose") \
            from None
    site = services()
    with site.sessions() as session:
        group = session.get(ProtectionGroup, object_id)
        if group is None:
            raise NotFound(f"protection group {object_id!r} not found")
        project = group.project
    conn = site.clouds.connect(site.config.site, project)
    return {"copies": {source: volume.id for source, volume in
                       imported_volumes(conn, object_id, purpose.value).items()}}


@bp.put("/protection-groups/<object_id>/capture")
def record_capture(object_id: str):
    """Capture's result, stored on both sites (a change like any other)."""
    return _workflow_change(object_id, ChangeAction.CAPTURE, body(schemas.Capture))


@bp.put("/protection-groups/<object_id>/state")
def set_state(object_id: str):
    """A group's status and, after a failover, its swapped sites. A failover's outcome is
    recorded here even when the peer site is gone (``Registry.submit_even_alone``)."""
    return _workflow_change(object_id, ChangeAction.SET_STATE, body(schemas.GroupState),
                            even_alone=True)


def _workflow_change(object_id: str, action: ChangeAction, values: schemas.Body,
                     even_alone: bool = False):
    who = _internal(WORKFLOWS)
    registry = services().registry
    with services().sessions() as session:
        group = session.get(ProtectionGroup, object_id)
        if group is None:
            raise NotFound(f"protection group {object_id!r} not found")
        project = group.project
    change = Change(GROUP, action, object_id, project.name,
                    values.model_dump(mode="json", exclude_unset=True),
                    project_domain=project.domain)
    submit = registry.submit_even_alone if even_alone else registry.submit
    return {"document": without_specs(submit(change, who.actor))}


@bp.get("/projects/<domain>/<name>")
def project_id(domain: str, name: str):
    """The id this site recorded for a project that owns a group here (the engine scopes
    to it), recorded now if none was: the one Keystone gives the DR account signing in."""
    _internal(WORKFLOWS)
    project = Project(domain, name)
    _owning_a_group(project)
    try:
        return {"project_id": services().projects.resolve(project)}
    except ConfigError as exc:
        raise Conflict(str(exc)) from None
    except ks_exceptions.ClientException as exc:
        raise Unavailable(f"Keystone on {services().config.site} did not answer: "
                          f"{type(exc).__name__}") from None


def _owning_a_group(project: Project):
    """Only a project that owns a group here is signed in to for the asking account."""
    with services().sessions() as session:
        owner = session.scalar(select(ProtectionGroup.id).where(
            owned_by(ProtectionGroup, project)).limit(1))
    if owner is None:
        raise NotFound(f"project {project} owns no protection group on this site")


@bp.get("/references")
def find_reference():
    """What a mapping's target names on this site, as the project sees it (the peer asks,
    where a mapping written there will recover here): ``?project_domain=``,
    ``?project_name=``, ``?kind=``, ``?ref=``; ``{"id"}``, or 404 naming it."""
    _internal(PEER)
    args = request.args
    try:
        kind = MappingKind(args.get("kind", ""))
    except ValueError:
        raise APIError("kind must be one of " + ", ".join(MappingKind), field="kind") \
            from None
    ref, name = args.get("ref", ""), args.get("project_name", "")
    if not ref or not name:
        raise APIError("project_name and ref are required", field="ref" if name else
                       "project_name")
    project = Project(args.get("project_domain", DEFAULT_DOMAIN), name)
    _owning_a_group(project)
    found = services().references.find(project, kind, ref)
    if found is None:
        raise NotFound(unknown_target(kind, ref, project, services().config.site))
    return {"id": found}


@bp.get("/resource-mappings")
def list_mappings():
    """Every mapping document, or one project's (``?project_name=`` and
    ``?project_domain=``, default the Default domain)."""
    name = request.args.get("project_name")
    return _documents(MAPPING, None if name is None else Project(
        request.args.get("project_domain", DEFAULT_DOMAIN), name))


# The peer's pushes: PUT a group's or a mapping's document, DELETE it at ?version=.
for _kind, _path, _push in ((GROUP, "protection-groups", schemas.GroupPush),
                            (MAPPING, "resource-mappings", schemas.MappingPush)):
    _noun = "group" if _kind is GROUP else "mapping"
    bp.add_url_rule(f"/{_path}/<object_id>", f"push_{_noun}",
                    partial(_receive, _kind, push=_push), methods=["PUT"])
    bp.add_url_rule(f"/{_path}/<object_id>", f"push_{_noun}_deletion",
                    partial(_receive, _kind, push=None), methods=["DELETE"])


@bp.post("/busy")
def busy():
    """Which of these groups an unfinished operation here keeps the peer from starting
    ``operation_type`` on: one operation at a time per group on the pair."""
    _internal(PEER)
    asked = body(schemas.BusyQuery)
    return {"busy": services().operations.busy_here(asked.operation_type, asked.groups)}


@bp.post("/divergences")
def diverged():
    """The peer (the coordinator) found an object's two copies written apart: keep both
    here too, and refuse its changes until one is kept."""
    _internal(PEER)
    found = body(schemas.Divergence)
    keeping = KINDS[found.kind]
    try:
        ours, theirs = (from_summary(found.kind, found.ours),
                        from_summary(found.kind, found.theirs))
    except ValidationError as exc:
        raise APIError(f"a copy is not a {found.kind.noun}: {exc.errors()[0]['msg']}",
                       field="ours") from None
    if ours.id != found.object_id or theirs.id != found.object_id:
        raise APIError("both copies must be of object_id", field="object_id")
    with db.transaction(services().sessions) as session:
        row = session.get(keeping.model, found.object_id)
        if row is None or without_specs(keeping.document(row)) != without_specs(ours):
            raise Conflict(f"this site does not hold that copy of {found.kind.noun} "
                           f"{found.object_id}")
        record_divergence(session, found.kind, services().config.peer.name, ours, theirs)
    return "", 204


@bp.post("/forward")
def forward():
    """A change received by the peer, for this site (its coordinator) to make."""
    _internal(PEER)
    forwarded = body(schemas.Forwarded)
    registry = services().registry
    change = Change.from_dict(forwarded.change.model_dump())
    if registry.coordinator != registry.config.site:
        raise Conflict(f"site {registry.config.site} does not coordinate changes; "
                       f"{registry.coordinator} does")
    after = registry.coordinate(change, forwarded.actor)
    return {"document": after.model_dump(mode="json") if after else None}
