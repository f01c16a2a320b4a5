"""``/v1/internal``: the peer site's pushes and forwarded changes, and workflow progress.

Only callers with the ``service`` role (the peer's DR service account, signed in to this
site's Keystone; the workflows' account) reach these endpoints.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request
from sqlalchemy import select

from . import audit, db, schemas
from .errors import Conflict, NotFound
from .identity import caller
from .models import ProtectionGroup
from .params import body, bounded_int
from .registry import KINDS, Change, group_document, receive

bp = Blueprint("internal", __name__, url_prefix="/v1/internal")


def _service():
    who = caller()
    current_app.extensions["policy"].require("protector:internal", who)
    return who


def _receive(who, kind: str, object_id: str, doc: dict | None, expected: int):
    with db.transaction(current_app.extensions["sessions"]) as session:
        stored = receive(session, kind, object_id, doc, expected)
        audit.record_in(session, who.actor, f"{kind}.sync", object_id, "accepted",
                        f"from peer site, version {doc['version'] if doc else 'deleted'}",
                        project_name=(doc or {}).get("project_name"))
    return stored


def _documents(kind: str, project_name: str | None = None):
    _service()
    model, document, _, _ = KINDS[kind]
    query = select(model).order_by(model.id)
    if project_name is not None:
        query = query.where(model.project_name == project_name)
    with current_app.extensions["sessions"]() as session:
        return {"documents": [document(row) for row in session.scalars(query)]}


@bp.get("/protection-groups")
def list_groups():
    """Every group document, for the coordinator to catch up (``Registry.reconcile``)."""
    return _documents("protection_group")


@bp.get("/protection-groups/<object_id>")
def show_group(object_id: str):
    """One group's document, members' captured specs included: what a workflow rebuilds."""
    _service()
    with current_app.extensions["sessions"]() as session:
        group = session.get(ProtectionGroup, object_id)
        if group is None:
            raise NotFound(f"protection group {object_id!r} not found")
        return {"document": group_document(group)}


@bp.put("/protection-groups/<object_id>/capture")
def record_capture(object_id: str):
    """Capture's result, stored on both sites (a change like any other)."""
    return {"document": _workflow_change(object_id, "capture", body(schemas.Capture))}


@bp.put("/protection-groups/<object_id>/state")
def set_state(object_id: str):
    """A group's status and, after a failover, its swapped sites. A failover's outcome is
    recorded here even when the peer site is gone (``Registry.submit_even_alone``)."""
    return {"document": _workflow_change(object_id, "set_state", body(schemas.GroupState),
                                         even_alone=True)}


def _workflow_change(object_id: str, action: str, values, even_alone: bool = False):
    who = _service()
    registry = current_app.extensions["registry"]
    with current_app.extensions["sessions"]() as session:
        group = session.get(ProtectionGroup, object_id)
        if group is None:
            raise NotFound(f"protection group {object_id!r} not found")
        project = group.project_name
    change = Change("protection_group", action, object_id, project,
                    values.model_dump(exclude_none=True))
    submit = registry.submit_even_alone if even_alone else registry.submit
    return submit(change, who.actor)


@bp.get("/resource-mappings")
def list_mappings():
    """Every mapping document, or one project's (``?project_name=``)."""
    return _documents("resource_mapping", request.args.get("project_name"))


@bp.put("/protection-groups/<object_id>")
def push_group(object_id: str):
    who = _service()
    push = body(schemas.GroupPush)          # checked; stored as sent, as the peer holds it
    return {"document": _receive(who, "protection_group", object_id,
                                 request.get_json()["document"], push.expected_version)}


@bp.delete("/protection-groups/<object_id>")
def push_group_deletion(object_id: str):
    _receive(_service(), "protection_group", object_id, None,
             bounded_int("version", 0, 0, 2**31))
    return "", 204


@bp.put("/resource-mappings/<object_id>")
def push_mapping(object_id: str):
    who = _service()
    push = body(schemas.MappingPush)
    return {"document": _receive(who, "resource_mapping", object_id,
                                 request.get_json()["document"], push.expected_version)}


@bp.delete("/resource-mappings/<object_id>")
def push_mapping_deletion(object_id: str):
    _receive(_service(), "resource_mapping", object_id, None,
             bounded_int("version", 0, 0, 2**31))
    return "", 204


@bp.post("/forward")
def forward():
    """A change received by the peer, for this site (its coordinator) to make."""
    _service()
    forwarded = body(schemas.Forwarded)
    registry = current_app.extensions["registry"]
    change = Change.from_dict(forwarded.change.model_dump())
    if registry.coordinator != registry.config.site:
        raise Conflict(f"site {registry.config.site} does not coordinate changes; "
                       f"{registry.coordinator} does")
    return {"document": registry.coordinate(change, forwarded.actor)}
