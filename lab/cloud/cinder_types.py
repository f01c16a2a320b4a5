"""Simulated Cinder, part two: volume types with the Pure driver's extra specs, group
types and groups (3.11 / 3.13+).

Only admins create types and see every extra spec (``replication_enabled``,
``replication_type``, ``volume_backend_name``); others see the user-visible ones, as in
Cinder, and no group type's group specs. A group holds volumes whose types it lists. A
group whose type has ``consistent_group_snapshot_enabled='<is> True'`` is a consistency
group, which Pure's driver backs with a pgroup of its own on the array,
``consisgroup-<group id>-cinder``, holding the group's volumes (made with the group,
updated with its members, destroyed and eradicated with it). For a group of sync types the
driver puts that pgroup in its ``cinder-pod``, which this cloud does not keep (its sync
volumes start at the array's root), so such a group has no array object here.
"""

from __future__ import annotations

import logging

import flask

from site_recovery.storage.fabric import ArrayDown, PurityError

from .cinder import (
    at_least,
    blueprint,
    check_group_member,
    delete_volume,
    find_group,
    find_type,
    find_volume,
    since,
)
from .common import ApiError, body, cloud, filter_docs, truthy
from .identity import caller, require_admin
from .store import Doc, Store, iso, new_id, schedule

USER_VISIBLE_SPECS = ("multiattach", "RESKEY:availability_zones", "replication_enabled")
CONSISTENT_SNAPSHOTS = ("consistent_group_snapshot_enabled", "<is> True")

log = logging.getLogger(__name__)

bp = blueprint("cinder_types")


def _store() -> Store:
    return cloud().store


def type_view(doc: Doc) -> Doc:
    specs = doc["extra_specs"] if caller().is_admin else {
        k: v for k, v in doc["extra_specs"].items() if k in USER_VISIBLE_SPECS}
    return {"id": doc["id"], "name": doc["name"], "description": doc["description"],
            "is_public": doc["is_public"], "os-volume-type-access:is_public": doc["is_public"],
            "qos_specs_id": None, "extra_specs": specs}



# -- volume types ----------------------------------------------------------------------------
@bp.get("/types")
def list_types():
    docs = [d for d in _store().list("volume_type") if d["is_public"] or caller().is_admin]
    return {"volume_types": [type_view(d) for d in filter_docs(docs, ["name"])]}


@bp.get("/types/<type_id>")
def show_type(type_id):
    if type_id == "default":
        return {"volume_type": type_view(find_type(_store(), None))}
    return {"volume_type": type_view(_type_by_id(_store(), type_id))}


def _type_by_id(store: Store, type_id: str) -> Doc:
    doc = store.get("volume_type", type_id)
    if doc is None:
        raise ApiError(404, f"Volume type {type_id} could not be found.")
    return doc


@bp.post("/types")
def create_type():
    require_admin()
    data = body("volume_type")
    store = _store()
    with store.transaction():
        if not data.get("name"):
            raise ApiError(400, "Volume type name can not be empty.")
        if any(t["name"] == data["name"] for t in store.list("volume_type")):
            raise ApiError(409, f"Volume Type {data['name']} already exists.")
        doc = {"id": new_id(), "name": data["name"], "description": data.get("description"),
               "is_public": data.get("os-volume-type-access:is_public",
                                     data.get("is_public", True)),
               "extra_specs": {k: str(v) for k, v in (data.get("extra_specs") or {}).items()}}
        store.put("volume_type", doc)
        return {"volume_type": type_view(doc)}


@bp.put("/types/<type_id>")
def update_type(type_id):
    require_admin()
    data = body("volume_type")
    store = _store()
    with store.transaction():
        doc = _type_by_id(store, type_id)
        doc.update({k: data[k] for k in ("name", "description", "is_public") if k in data})
        store.put("volume_type", doc)
        return {"volume_type": type_view(doc)}


@bp.delete("/types/<type_id>")
def delete_type(type_id):
    require_admin()
    store = _store()
    with store.transaction():
        _type_by_id(store, type_id)
        if any(v["volume_type_id"] == type_id for v in store.list("volume")):
            raise ApiError(400, "Target volume type is still in use.")
        store.delete("volume_type", type_id)
    return "", 202


@bp.get("/types/<type_id>/extra_specs")
def get_extra_specs(type_id):
    return {"extra_specs": type_view(_type_by_id(_store(), type_id))["extra_specs"]}


@bp.post("/types/<type_id>/extra_specs")
def set_extra_specs(type_id):
    require_admin()
    specs = {k: str(v) for k, v in body("extra_specs").items()}
    store = _store()
    with store.transaction():
        doc = _type_by_id(store, type_id)
        doc["extra_specs"].update(specs)
        store.put("volume_type", doc)
    return {"extra_specs": specs}


@bp.get("/types/<type_id>/extra_specs/<key>")
def get_extra_spec(type_id, key):
    specs = type_view(_type_by_id(_store(), type_id))["extra_specs"]
    if key not in specs:
        raise ApiError(404, f"Volume Type {type_id} has no extra specs with key {key}.")
    return {key: specs[key]}


@bp.put("/types/<type_id>/extra_specs/<key>")
def put_extra_spec(type_id, key):
    require_admin()
    data = body()
    if key not in data:
        raise ApiError(400, "Request body and URI mismatch")
    store = _store()
    with store.transaction():
        doc = _type_by_id(store, type_id)
        doc["extra_specs"][key] = str(data[key])
        store.put("volume_type", doc)
    return {key: str(data[key])}


@bp.delete("/types/<type_id>/extra_specs/<key>")
def delete_extra_spec(type_id, key):
    require_admin()
    store = _store()
    with store.transaction():
        doc = _type_by_id(store, type_id)
        if doc["extra_specs"].pop(key, None) is None:
            raise ApiError(404, f"Volume Type {type_id} has no extra specs with key {key}.")
        store.put("volume_type", doc)
    return "", 202


# -- group types and groups (3.11 / 3.13) ----------------------------------------------------
def _group_type(store: Store, name_or_id: str) -> Doc:
    for doc in store.list("group_type"):
        if name_or_id in (doc["id"], doc["name"]):
            return doc
    raise ApiError(404, f"Group type {name_or_id} could not be found.")


def group_type_view(doc: Doc) -> Doc:
    """Group specs are shown to admins only (``group:access_group_types_specs``)."""
    return doc if caller().is_admin else {k: v for k, v in doc.items() if k != "group_specs"}


@bp.get("/group_types")
@since("3.11")
def list_group_types():
    return {"group_types": [group_type_view(d) for d in _store().list("group_type")]}


@bp.get("/group_types/<type_id>")
@since("3.11")
def show_group_type(type_id):
    return {"group_type": group_type_view(_group_type(_store(), type_id))}


@bp.post("/group_types")
@since("3.11")
def create_group_type():
    require_admin()
    data = body("group_type")
    store = _store()
    with store.transaction():
        if any(t["name"] == data.get("name") for t in store.list("group_type")):
            raise ApiError(409, f"Group Type {data.get('name')} already exists.")
        doc = {"id": new_id(), "name": data.get("name"), "description": data.get("description"),
               "is_public": data.get("is_public", True),
               "group_specs": {k: str(v) for k, v in (data.get("group_specs") or {}).items()}}
        store.put("group_type", doc)
        return {"group_type": doc}


@bp.delete("/group_types/<type_id>")
@since("3.11")
def delete_group_type(type_id):
    require_admin()
    store = _store()
    with store.transaction():
        doc = _group_type(store, type_id)
        if any(g["group_type"] == doc["id"] for g in store.list("group")):
            raise ApiError(400, f"Group Type {type_id} deletion is not allowed with groups "
                                "present with the type.")
        store.delete("group_type", doc["id"])
    return "", 202


@bp.post("/group_types/<type_id>/group_specs")
@since("3.11")
def set_group_specs(type_id):
    require_admin()
    specs = {k: str(v) for k, v in body("group_specs").items()}
    store = _store()
    with store.transaction():
        doc = _group_type(store, type_id)
        doc["group_specs"].update(specs)
        store.put("group_type", doc)
    return {"group_specs": specs}


@bp.get("/group_types/<type_id>/group_specs")
@since("3.11")
def get_group_specs(type_id):
    return {"group_specs": _group_type(_store(), type_id)["group_specs"]}


def _array_pgroup(store: Store, group: Doc) -> str | None:
    """The pgroup Pure's driver keeps for a consistency group; None for a generic group
    (the driver leaves those to Cinder) or one of sync types (see the module's doc)."""
    group_type = store.get("group_type", group["group_type"]) or {}
    key, value = CONSISTENT_SNAPSHOTS
    if (group_type.get("group_specs") or {}).get(key) != value:
        return None
    for type_id in group["volume_types"]:
        spec = (store.get("volume_type", type_id) or {}).get("extra_specs", {})
        if spec.get("replication_type", "").split()[-1:] in (["sync"], ["trisync"]):
            return None
    return f"consisgroup-{group['id']}-cinder"


def _on_array(group: Doc, change, failed: str = "error") -> bool:
    """Apply ``change`` to the array; False, and the group in status ``failed`` as the
    driver's failure leaves it, when the array refuses or is down."""
    try:
        change(cloud().array)
    except (ArrayDown, PurityError) as exc:
        log.warning("group %s: the array refused: %s", group["id"], exc)
        group["status"] = failed
        return False
    return True


def _group_view(store: Store, doc: Doc) -> Doc:
    out = {k: v for k, v in doc.items() if not k.startswith("_") and k != "user_id"}
    if not at_least("3.58"):
        out.pop("project_id")
    if truthy(flask.request.args.get("list_volume", "false")) and at_least("3.25"):
        out["volumes"] = [v["id"] for v in store.list("volume") if v["group_id"] == doc["id"]]
    return out


@bp.get("/groups")
@bp.get("/groups/detail")
@since("3.13")
def list_groups():
    store = _store()
    if caller().is_admin and truthy(flask.request.args.get("all_tenants", "0")):
        docs = store.list("group")
    else:
        docs = store.list("group", caller().project_id)
    if flask.request.path.endswith("/detail"):
        return {"groups": [_group_view(store, d) for d in docs]}
    return {"groups": [{"id": d["id"], "name": d["name"]} for d in docs]}


@bp.get("/groups/<group_id>")
@since("3.13")
def show_group(group_id):
    store = _store()
    return {"group": _group_view(store, find_group(store, group_id))}


@bp.post("/groups")
@since("3.13")
def create_group():
    data = body("group")
    store = _store()
    with store.transaction():
        if not data.get("group_type") or not data.get("volume_types"):
            raise ApiError(400, "Missing required element 'group_type' or 'volume_types' in "
                                "request body.")
        group_type = _group_type(store, data["group_type"])
        type_ids = [find_type(store, t)["id"] for t in data["volume_types"]]
        now = store.now()
        doc = {"id": new_id(), "name": data.get("name"), "description": data.get("description"),
               "status": "creating", "availability_zone": data.get("availability_zone") or
               cloud().config.availability_zone, "created_at": iso(now),
               "group_type": group_type["id"], "volume_types": type_ids,
               "group_snapshot_id": None, "source_group_id": None,
               "replication_status": "disabled", "project_id": caller().project_id,
               "user_id": caller().user_id}
        pgroup = _array_pgroup(store, doc)
        if pgroup is None or _on_array(doc, lambda array: array.create_pgroup(pgroup)):
            schedule(doc, now + cloud().config.volume_seconds, status="available")
        store.put("group", doc)
        return {"group": {"id": doc["id"], "name": doc["name"]}}, 202


@bp.put("/groups/<group_id>")
@since("3.13")
def update_group(group_id):
    data = body("group")
    store = _store()
    with store.transaction():
        group = find_group(store, group_id)
        if group["status"] != "available":
            raise ApiError(400, f"Invalid group: Group {group_id} status must be available, "
                                f"but current status is: {group['status']}.")
        group.update({k: data[k] for k in ("name", "description") if k in data})
        joining, leaving = [], []
        for volume_id in filter(None, (data.get("add_volumes") or "").split(",")):
            volume = find_volume(store, volume_id.strip())
            if volume["group_id"] or volume["status"] not in ("available", "in-use"):
                raise ApiError(400, f"Invalid volume: Volume {volume['id']} is not in a valid "
                                    "state or already belongs to a group.")
            check_group_member(store, group, volume)
            joining.append(volume)
        for volume_id in filter(None, (data.get("remove_volumes") or "").split(",")):
            volume = find_volume(store, volume_id.strip())
            if volume["group_id"] != group_id:
                raise ApiError(400, f"Invalid volume: Volume {volume['id']} is not in group "
                                    f"{group_id}.")
            leaving.append(volume)
        pgroup = _array_pgroup(store, group)
        if pgroup is None or _on_array(group, lambda array: _set_members(
                array, pgroup, joining, leaving)):
            for volume in joining + leaving:
                volume["group_id"] = group_id if volume in joining else None
                store.put("volume", volume)
        store.put("group", group)
    return "", 202


def _set_members(array, pgroup: str, joining: list[Doc], leaving: list[Doc]):
    """The driver's ``set_pgroup(addvollist / remvollist)``; a volume that already left the
    pgroup (destroyed on the array) is fine."""
    names = {key: [v["provider_id"] for v in docs if v["provider_id"]]
             for key, docs in (("addvollist", joining), ("remvollist", leaving))}
    if names["addvollist"]:
        array.set_pgroup(pgroup, addvollist=names["addvollist"])
    for name in names["remvollist"]:
        try:
            array.set_pgroup(pgroup, remvollist=[name])
        except PurityError as exc:
            if "does not belong" not in exc.msg and "does not exist" not in exc.msg:
                raise


@bp.post("/groups/<group_id>/action")
@since("3.13")
def group_action(group_id):
    data = body()
    if "delete" not in data:
        raise ApiError(400, f"There is no such action: {', '.join(data) or 'none'}")
    store = _store()
    with store.transaction():
        group = find_group(store, group_id)
        members = [v for v in store.list("volume") if v["group_id"] == group_id]
        if members and not truthy((data["delete"] or {}).get("delete-volumes", False)):
            raise ApiError(400, f"Invalid group: Group {group_id} still contains volumes. The "
                                "delete-volumes flag is required to delete it.")
        for volume in members:
            if volume["attachments"]:
                raise ApiError(400, f"Invalid volume: Volume {volume['id']} is attached.")
            delete_volume(store, volume)
        pgroup = _array_pgroup(store, group)
        if pgroup and not _on_array(group, lambda array: _destroy(array, pgroup),
                                    failed="error_deleting"):
            store.put("group", group)
        else:
            store.delete("group", group["id"])
    return "", 202


def _destroy(array, pgroup: str):
    """The driver's delete: destroy, then eradicate (``pure_eradicate_on_delete``); one
    already gone is fine."""
    for step in (array.destroy_pgroup, array.eradicate_pgroup):
        try:
            step(pgroup)
        except PurityError as exc:
            if "does not exist" not in exc.msg and "has been destroyed" not in exc.msg:
                raise
