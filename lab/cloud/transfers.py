"""Cinder's volume transfers: how a volume changes project without an admin in the new one.

The owner asks for a transfer (``POST /volume-transfers``, 3.55+, or the legacy
``/os-volume-transfer``) of an ``available`` volume and is given the auth key once; the
volume waits in ``awaiting-transfer``. Anyone who knows the transfer's id and key accepts
it into their own project, and the volume (its metadata with it) is theirs; the owner may
delete the transfer instead, which makes the volume ``available`` again. Lists and shows
are the owner's project's only (all of them for an admin with ``all_tenants``), and never
show the key, as in Cinder.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import flask

from . import cinder
from .common import ApiError, body, cloud, not_found, truthy
from .identity import caller
from .store import Doc, Store, iso, new_id

bp = cinder.blueprint("cinder_transfers")
COLLECTIONS = ("/volume-transfers", "/os-volume-transfer")


def _digest(transfer_id: str, key: str) -> str:
    return hashlib.sha256(f"{transfer_id}:{key}".encode()).hexdigest()


def _view(doc: Doc, detail: bool = True) -> dict:
    base = flask.request.host_url.rstrip("/")
    project = caller().project_id
    shown = {"id": doc["id"], "name": doc["name"],
             "links": [{"rel": "self", "href": f"{base}/volume/v3/{project}/volume-transfers/"
                                               f"{doc['id']}"}]}
    if detail:
        shown.update(volume_id=doc["volume_id"], created_at=doc["created_at"],
                     no_snapshots=doc["no_snapshots"])
    return shown


def _own_transfer(store: Store, transfer_id: str) -> Doc:
    doc = store.get("transfer", transfer_id)
    if doc is None or not (caller().is_admin or caller().owns(doc)):
        raise not_found("Transfer", transfer_id)
    return doc


def _required(key: str, field: str):
    """``field`` of the request body's ``key`` object, refused as Cinder refuses it."""
    data = body(key)
    value = data.get(field) if isinstance(data, dict) else None
    if not value:
        raise ApiError(400, f"Invalid input for field/attribute {key}: '{field}' is a "
                            "required property.")
    return data, value


def create():
    data, volume_id = _required("transfer", "volume_id")
    store = cloud().store
    with store.transaction():
        volume = cinder.find_volume(store, volume_id)
        if volume["status"] != "available":
            raise ApiError(400, f"Invalid volume: Status of volume must be available, but "
                                f"current status is: {volume['status']}.")
        transfer_id, key = new_id(), secrets.token_hex(8)
        doc = {"id": transfer_id, "name": data.get("name"), "volume_id": volume_id,
               "project_id": volume["project_id"], "created_at": iso(store.now()),
               "no_snapshots": truthy(data.get("no_snapshots", False)),
               "key_digest": _digest(transfer_id, key)}
        store.put("transfer", doc)
        volume["status"] = "awaiting-transfer"
        store.put("volume", volume)
    return {"transfer": {**_view(doc), "auth_key": key}}, 202


def listing(detail: bool):
    store = cloud().store
    if caller().is_admin and truthy(flask.request.args.get("all_tenants", "0")):
        docs = store.list("transfer")
    else:
        docs = store.list("transfer", caller().project_id)
    return {"transfers": [_view(d, detail) for d in docs]}


def show(transfer_id: str):
    return {"transfer": _view(_own_transfer(cloud().store, transfer_id))}


def delete(transfer_id: str):
    store = cloud().store
    with store.transaction():
        doc = _own_transfer(store, transfer_id)
        volume = store.get("volume", doc["volume_id"])
        if volume is not None and volume["status"] == "awaiting-transfer":
            volume["status"] = "available"
            store.put("volume", volume)
        store.delete("transfer", transfer_id)
    return "", 202


def accept(transfer_id: str):
    _, key = _required("accept", "auth_key")
    store = cloud().store
    with store.transaction():
        doc = store.get("transfer", transfer_id)        # any project may accept
        if doc is None:
            raise not_found("Transfer", transfer_id)
        if not hmac.compare_digest(doc["key_digest"], _digest(transfer_id, str(key))):
            raise ApiError(400, f"Invalid auth key: Attempt to transfer {transfer_id} with "
                                "invalid auth key.")
        volume = store.get("volume", doc["volume_id"])
        if volume is None or volume["status"] != "awaiting-transfer":
            raise ApiError(400, f"Invalid volume: transfer {transfer_id} has no volume "
                                "awaiting it.")
        volume.update(project_id=caller().project_id, user_id=caller().user_id,
                      status="available", updated_at=iso(store.now()))
        store.put("volume", volume)
        store.delete("transfer", transfer_id)
    return {"transfer": _view(doc, detail=False) | {"volume_id": volume["id"]}}, 202


for prefix in COLLECTIONS:
    legacy = prefix == COLLECTIONS[1]
    versioned = (lambda view: view) if legacy else cinder.since("3.55")
    tag = "legacy_" if legacy else ""
    bp.add_url_rule(prefix, f"{tag}create", versioned(create), methods=["POST"])
    bp.add_url_rule(prefix, f"{tag}list", versioned(lambda: listing(False)))
    bp.add_url_rule(f"{prefix}/detail", f"{tag}detail", versioned(lambda: listing(True)))
    bp.add_url_rule(f"{prefix}/<transfer_id>", f"{tag}show", versioned(show))
    bp.add_url_rule(f"{prefix}/<transfer_id>", f"{tag}delete", versioned(delete),
                    methods=["DELETE"])
    bp.add_url_rule(f"{prefix}/<transfer_id>/accept", f"{tag}accept", versioned(accept),
                    methods=["POST"])
