"""Simulated Cinder v3 (``/volume/v3/<project>``) over the site's simulated FlashArray.

Every Cinder volume is a real volume of the fabric, named as the Pure driver names it
(``volume-<id>-cinder``, kept as ``provider_id`` and in the ``array_volume_name`` /
``array_name`` metadata), so the DR engine finds on the array what Cinder reports.
Statuses move as on a real cloud and are computed lazily: ``creating`` -> ``available``
(``error`` when the array refuses or is down), ``attaching`` -> ``in-use`` and
``detaching`` -> ``available`` when Nova attaches and detaches. Volume types carry the
Pure driver's extra specs; groups (3.13+) collect volumes. Manage and unmanage live in
:mod:`.manage`. Microversions 3.0-3.71 come from ``OpenStack-API-Version: volume X``.
"""

from __future__ import annotations

import ast
import logging

import flask

from site_recovery.storage.fabric import ArrayDown, PurityError

from . import glance, versions
from .common import (
    ApiError,
    body,
    cloud,
    filter_docs,
    microversion,
    microversions,
    next_links,
    not_found,
    paginate,
    truthy,
    version_string,
)
from .identity import caller, require_admin
from .store import Doc, Store, iso, new_id, schedule

GIB = 1 << 30
DEFAULT_TYPE = "__DEFAULT__"
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")

log = logging.getLogger(__name__)


def blueprint(name: str) -> flask.Blueprint:
    """A blueprint under ``/volume/v3/<project>`` that honours Cinder's microversions."""
    bp = flask.Blueprint(name, __name__, url_prefix="/volume/v3/<project_id>")

    @bp.url_value_preprocessor
    def project_in_url(endpoint, values):
        flask.g.url_project = values.pop("project_id")

    @bp.before_request
    def negotiate():
        if flask.g.url_project != caller().project_id and not caller().is_admin:
            raise ApiError(400, "Malformed request url")
        flask.g.volume_version = microversion("volume", None, versions.VOLUME_MIN,
                                              versions.VOLUME_MAX)

    @bp.after_request
    def version_headers(response):
        if "volume_version" in flask.g:
            response.headers["OpenStack-API-Version"] = \
                f"volume {version_string(flask.g.volume_version)}"
            response.headers["Vary"] = "OpenStack-API-Version"
        return response

    return bp


bp = blueprint("cinder")


at_least, since = microversions("volume_version")


def _store() -> Store:
    return cloud().store


def seed(state):
    """The default volume type every Cinder has."""
    if not any(t["name"] == DEFAULT_TYPE for t in state.store.list("volume_type")):
        state.store.put("volume_type", {"id": new_id(), "name": DEFAULT_TYPE,
                                        "description": "Default Volume Type",
                                        "is_public": True, "extra_specs": {}})


def array_name(volume_id: str) -> str:
    """The Pure driver's name for a Cinder volume on the array."""
    return f"volume-{volume_id}-cinder"


# -- lookups ---------------------------------------------------------------------------------
def find_volume(store: Store, volume_id: str) -> Doc:
    doc = store.get("volume", volume_id)
    if doc is None or not (caller().is_admin or caller().owns(doc)):
        raise not_found("Volume", volume_id)
    return doc


def find_type(store: Store, name_or_id: str | None) -> Doc:
    wanted = name_or_id or DEFAULT_TYPE
    for doc in store.list("volume_type"):
        if wanted in (doc["id"], doc["name"]):
            return doc
    raise ApiError(404, f"Volume type with name {wanted} could not be found.")


def replicated(volume_type: Doc) -> bool:
    """The driver's test: ``replication_enabled`` is ``<is> True``."""
    spec = volume_type["extra_specs"].get("replication_enabled", "").split()
    return len(spec) == 2 and spec[0] == "<is>" and truthy(spec[1])


# -- volumes ---------------------------------------------------------------------------------
def new_volume(store: Store, *, size: int, name: str | None, volume_type: Doc,
               description: str | None = None, metadata: dict | None = None,
               availability_zone: str | None = None, status: str = "creating",
               bootable: bool = False) -> Doc:
    """A volume row owned by the caller (not yet on the array)."""
    config = cloud().config
    now = store.now()
    volume_id = new_id()
    return {"id": volume_id, "name": name, "description": description, "size": size,
            "status": status, "availability_zone": availability_zone or config.availability_zone,
            "created_at": iso(now), "updated_at": iso(now), "attachments": [],
            "volume_type": volume_type["name"], "volume_type_id": volume_type["id"],
            "snapshot_id": None, "source_volid": None, "metadata": dict(metadata or {}),
            "user_id": caller().user_id, "project_id": caller().project_id,
            "bootable": "true" if bootable else "false", "encrypted": False,
            "replication_status": "enabled" if replicated(volume_type) else "disabled",
            "multiattach": False, "group_id": None, "provider_id": None,
            "migration_status": None}


def place_on_array(store: Store, doc: Doc, source: str | None = None) -> Doc:
    """Create (or clone) the array volume; the status settles after the create time."""
    config = cloud().config
    name = array_name(doc["id"])
    due = store.now() + config.volume_seconds
    try:
        if source:
            cloud().array.copy_volume(source, name)
        else:
            cloud().array.create_volume(name, doc["size"] * GIB)
    except (ArrayDown, PurityError) as exc:
        log.warning("volume %s: array refused the create: %s", doc["id"], exc)
        return schedule(doc, due, status="error")
    doc["provider_id"] = name
    doc["metadata"].update({"array_volume_name": name, "array_name": config.array})
    return schedule(doc, due, status="available")


def remove_from_array(doc: Doc):
    """Destroy and eradicate the array volume; one that is already gone is fine."""
    if not doc.get("provider_id"):
        return
    array = cloud().array
    try:
        array.destroy_volume(doc["provider_id"])
    except PurityError as exc:
        if "does not exist" not in exc.msg:
            raise
        return
    array.eradicate_volume(doc["provider_id"])


def delete_volume(store: Store, doc: Doc):
    """Delete a volume and its array volume; ``error_deleting`` if the array refuses."""
    try:
        remove_from_array(doc)
    except (ArrayDown, PurityError) as exc:
        log.warning("volume %s: array refused the delete: %s", doc["id"], exc)
        doc.update({"status": "error_deleting", "_pending": []})
        store.put("volume", doc)
        return
    store.delete("volume", doc["id"])


def attach(store: Store, doc: Doc, server_id: str, device: str, done_at: float) -> Doc:
    """Nova attaches the volume: ``attaching`` now, ``in-use`` at ``done_at``."""
    attachment_id = new_id()
    doc["attachments"] = [{
        "id": doc["id"], "attachment_id": attachment_id, "volume_id": doc["id"],
        "server_id": server_id, "host_name": cloud().config.compute_host, "device": device,
        "attached_at": iso(done_at)}]
    doc.update({"status": "attaching", "updated_at": iso(store.now()), "_pending": []})
    return store.put("volume", schedule(doc, done_at, status="in-use"))


def detach(store: Store, doc: Doc, done_at: float) -> Doc:
    """Nova detaches the volume: ``detaching`` now, ``available`` at ``done_at``."""
    doc.update({"status": "detaching", "updated_at": iso(store.now()), "_pending": []})
    return store.put("volume", schedule(doc, done_at, status="available", attachments=[]))


def view(doc: Doc) -> Doc:
    """A volume as the requested microversion and the caller's role show it."""
    admin = caller().is_admin
    out = {k: v for k, v in doc.items() if not k.startswith("_") and k not in (
        "project_id", "provider_id", "volume_type_id", "group_id", "migration_status")}
    out["links"] = _links("volumes", doc["id"])
    out["os-vol-tenant-attr:tenant_id"] = doc["project_id"]
    out["consistencygroup_id"] = None
    if admin:
        out.update({"os-vol-host-attr:host": cloud().config.volume_host,
                    "os-vol-mig-status-attr:migstat": doc["migration_status"],
                    "os-vol-mig-status-attr:name_id": None})
    if at_least("3.13"):
        out["group_id"] = doc["group_id"]
    if at_least("3.21") and admin:
        out["provider_id"] = doc["provider_id"]
    if at_least("3.48"):
        out.update({"service_uuid": "5b7a4d1e-3c2f-4e5a-9d8b-1a2b3c4d5e6f",
                    "shared_targets": False})
    if at_least("3.61") and admin:
        out["cluster_name"] = None
    if at_least("3.63"):
        out["volume_type_id"] = doc["volume_type_id"]
    if at_least("3.64"):
        out["encryption_key_id"] = None
    if at_least("3.65"):
        out["consumes_quota"] = True
    return out


def _links(collection: str, item_id: str) -> list[dict]:
    base = flask.request.host_url.rstrip("/")
    project = caller().project_id
    return [{"rel": "self", "href": f"{base}/volume/v3/{project}/{collection}/{item_id}"},
            {"rel": "bookmark", "href": f"{base}/volume/{project}/{collection}/{item_id}"}]


def _visible_volumes(store: Store) -> list[Doc]:
    args = flask.request.args
    if caller().is_admin and truthy(args.get("all_tenants", "0")):
        docs = store.list("volume")
        wanted = args.get("project_id") or args.get("tenant_id")
        return [d for d in docs if d["project_id"] == wanted] if wanted else docs
    return store.list("volume", caller().project_id)


def _volume_list(detail: bool):
    store = _store()
    docs = filter_docs(_visible_volumes(store),
                       ["name", "status", "availability_zone", "group_id", "bootable"])
    if "metadata" in flask.request.args:
        wanted = _metadata_filter(flask.request.args["metadata"])
        docs = [d for d in docs if all(d["metadata"].get(k) == v for k, v in wanted.items())]
    if "volume_type" in flask.request.args:
        wanted = flask.request.args["volume_type"]
        docs = [d for d in docs if wanted in (d["volume_type"], d["volume_type_id"])]
    total = len(docs)
    docs.reverse()                              # Cinder lists newest first
    page = paginate(docs, not_found("Marker", flask.request.args.get("marker", "")))
    volumes = [view(d) if detail else {"id": d["id"], "name": d["name"],
                                        "links": _links("volumes", d["id"])} for d in page]
    result = {"volumes": volumes}
    if links := next_links(page):
        result["volumes_links"] = links
    if at_least("3.45") and truthy(flask.request.args.get("with_count", "false")):
        result["count"] = total
    return result


def _metadata_filter(text: str) -> dict:
    """Cinder reads ``?metadata=`` as a Python literal (``ast.literal_eval``), which a JSON
    object of strings also is."""
    try:
        wanted = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        wanted = None
    if not isinstance(wanted, dict):
        raise ApiError(400, f"Invalid filter metadata={text!r}: not a dictionary.")
    return wanted


@bp.get("/volumes")
def list_volumes():
    return _volume_list(detail=False)


@bp.get("/volumes/detail")
def list_volumes_detail():
    return _volume_list(detail=True)


@bp.post("/volumes")
def create_volume():
    data = body("volume")
    store = _store()
    size = data.get("size")
    source = None
    with store.transaction():
        if data.get("source_volid"):
            source = find_volume(store, data["source_volid"])
            size = size or source["size"]
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ApiError(400, f"Invalid input received: Volume size '{size}' must be an "
                                "integer and greater than 0.")
        if data.get("snapshot_id") or data.get("backup_id"):
            raise ApiError(400, "Creating volumes from snapshots or backups is not "
                                "supported by this cloud.")
        if source and size < source["size"]:
            raise ApiError(400, "Invalid input received: Volume size cannot be lesser than "
                                "the source volume size.")
        image = _image(store, data["imageRef"]) if data.get("imageRef") else None
        volume_type = find_type(store, data.get("volume_type") or
                                (source["volume_type_id"] if source else None))
        doc = new_volume(store, size=size, name=data.get("name"), volume_type=volume_type,
                         description=data.get("description"), metadata=data.get("metadata"),
                         availability_zone=data.get("availability_zone"),
                         bootable=bool(image) or bool(source and source["bootable"] == "true"))
        if image:
            doc["volume_image_metadata"] = image_metadata(image)
        if source:
            doc["source_volid"] = source["id"]
        if data.get("group_id"):
            check_group_member(store, find_group(store, data["group_id"]), doc)
            doc["group_id"] = data["group_id"]
        store.put("volume", place_on_array(store, doc, source and source["provider_id"]))
        return {"volume": view(doc)}, 202


def _image(store: Store, image_id: str) -> Doc:
    try:
        image = glance.find_image(store, image_id)
    except ApiError:
        image = None
    if image is None or image["status"] != "active":
        raise ApiError(400, f"Invalid image identifier or unable to access requested image "
                            f"{image_id}.")
    return image


def image_metadata(image: Doc) -> dict:
    """What Cinder copies from the image (``volume_image_metadata``)."""
    return {"image_id": image["id"], "image_name": image["name"],
            "container_format": image["container_format"],
            "disk_format": image["disk_format"], "min_disk": str(image["min_disk"]),
            "min_ram": str(image["min_ram"]), "size": str(image["size"] or 0),
            "checksum": image["checksum"]}


@bp.get("/volumes/<volume_id>")
def show_volume(volume_id):
    return {"volume": view(find_volume(_store(), volume_id))}


@bp.put("/volumes/<volume_id>")
def update_volume(volume_id):
    changes = body("volume")
    store = _store()
    with store.transaction():
        doc = find_volume(store, volume_id)
        for key in ("name", "description", "metadata"):
            if key in changes:
                doc[key] = changes[key]
        doc["updated_at"] = iso(store.now())
        store.put("volume", doc)
        return {"volume": view(doc)}


@bp.delete("/volumes/<volume_id>")
def destroy_volume(volume_id):
    store = _store()
    with store.transaction():
        doc = find_volume(store, volume_id)
        check_deletable(doc)
        delete_volume(store, doc)
    return "", 202


def check_deletable(doc: Doc):
    if doc["status"] not in DELETABLE or doc["attachments"] or doc["group_id"]:
        raise ApiError(400, "Invalid volume: Volume status must be available or error or "
                            "error_restoring or error_extending or error_managing and must "
                            "not be migrating, attached, belong to a group, have snapshots, "
                            "awaiting a transfer, or be disassociated from snapshots after "
                            "volume transfer.")


@bp.post("/volumes/<volume_id>/action")
def volume_action(volume_id):
    data = body()
    if not isinstance(data, dict) or len(data) != 1:
        raise ApiError(400, "There is no such action: the body needs one action.")
    action, args = next(iter(data.items()))
    handler = ACTIONS.get(action)
    if handler is None:
        raise ApiError(400, f"There is no such action: {action}")
    store = _store()
    with store.transaction():
        return handler(store, find_volume(store, volume_id), args or {})


def _set_bootable(store: Store, doc: Doc, args: dict):
    doc["bootable"] = "true" if truthy(args.get("bootable")) else "false"
    store.put("volume", doc)
    return "", 200


def _reset_status(store: Store, doc: Doc, args: dict):
    require_admin()
    doc["status"] = args.get("status", doc["status"])
    if "attach_status" in args and args["attach_status"] == "detached":
        doc["attachments"] = []
    doc["_pending"] = []
    store.put("volume", doc)
    return "", 202


def _force_delete(store: Store, doc: Doc, args: dict):
    require_admin()
    delete_volume(store, doc)
    return "", 202


# Volume actions by name; :mod:`.manage` adds ``os-unmanage``.
ACTIONS = {"os-set_bootable": _set_bootable, "os-reset_status": _reset_status,
           "os-force_delete": _force_delete}


# -- volume metadata -------------------------------------------------------------------------
@bp.get("/volumes/<volume_id>/metadata")
def get_metadata(volume_id):
    return {"metadata": find_volume(_store(), volume_id)["metadata"]}


@bp.post("/volumes/<volume_id>/metadata")
@bp.put("/volumes/<volume_id>/metadata")
def set_metadata(volume_id):
    metadata = body("metadata")
    store = _store()
    with store.transaction():
        doc = find_volume(store, volume_id)
        doc["metadata"] = ({**doc["metadata"], **metadata} if flask.request.method == "POST"
                           else dict(metadata))
        store.put("volume", doc)
        return {"metadata": doc["metadata"]}


@bp.delete("/volumes/<volume_id>/metadata/<key>")
def delete_metadata(volume_id, key):
    store = _store()
    with store.transaction():
        doc = find_volume(store, volume_id)
        if doc["metadata"].pop(key, None) is None:
            raise ApiError(404, f"Volume {volume_id} has no metadata with key {key}.")
        store.put("volume", doc)
    return "", 200


# -- groups (the routes are in :mod:`.cinder_types`) --------------------------------------
def find_group(store: Store, group_id: str) -> Doc:
    doc = store.get("group", group_id)
    if doc is None or not (caller().is_admin or caller().owns(doc)):
        raise ApiError(404, f"Group {group_id} could not be found.")
    return doc


def check_group_member(store: Store, group: Doc, volume: Doc):
    if volume["volume_type_id"] not in group["volume_types"]:
        raise ApiError(400, f"Invalid volume: Volume {volume['id']} cannot be added to group "
                            f"{group['id']} because its volume type is not supported by the "
                            "group.")



# -- small read-only APIs --------------------------------------------------------------------
@bp.get("/os-availability-zone")
def availability_zones():
    return {"availabilityZoneInfo": [{"zoneName": cloud().config.availability_zone,
                                      "zoneState": {"available": True}}]}


@bp.get("/limits")
def limits():
    volumes, gigabytes = _store().totals("volume", caller().project_id, "$.size")
    return {"limits": {"rate": [], "absolute": {
        "maxTotalVolumes": 100, "maxTotalVolumeGigabytes": 10000, "maxTotalSnapshots": 100,
        "maxTotalBackups": 10, "maxTotalBackupGigabytes": 1000,
        "totalVolumesUsed": volumes, "totalGigabytesUsed": gigabytes,
        "totalSnapshotsUsed": 0, "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0}}}
