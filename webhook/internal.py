"""``/v1/internal``: the peer site's pushes and forwarded changes, and workflow progress.

Only callers with the ``service`` role (the peer's DR service account, signed in to this
site's Keystone; the workflows' account) reach these endpoints.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request
from sqlalchemy import select

from . import audit, db, schemas
from .errors import Conflict
from .identity import caller
from .params import body, bounded_int
from .registry import KINDS, Change, receive

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


def _documents(kind: str):
    _service()
    model, document, _, _ = KINDS[kind]
    with current_app.extensions["sessions"]() as session:
        return {"documents": [document(row) for row in session.scalars(
            select(model).order_by(model.id))]}


@bp.get("/protection-groups")
def list_groups():
    """Every group document, for the coordinator to catch up (``Registry.reconcile``)."""
    return _documents("protection_group")


@bp.get("/resource-mappings")
def list_mappings():
    return _documents("resource_mapping")


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
