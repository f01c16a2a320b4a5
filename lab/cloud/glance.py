"""Simulated Glance v2 (``/image/v2``): image records without image data.

Nothing in the simulation reads image data, so an image created with its disk and
container formats is ``active`` at once (the lab registers images without uploading
any); one created without them stays ``queued`` until data arrives. Data may be uploaded
once (``PUT /images/<id>/file``, as openstacksdk does right after creating): it is
measured (size, checksums) and dropped. The JSON schema is served because glanceclient
validates created images against it (warlock), so every key shown is declared there.
"""

from __future__ import annotations

import hashlib

import flask

from .common import ApiError, body, cloud, matches, truthy
from .identity import caller, require_admin
from .store import Doc, Store, iso, new_id

bp = flask.Blueprint("glance", __name__, url_prefix="/image/v2")

DISK_FORMATS = ["ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso",
                "ploop"]
CONTAINER_FORMATS = ["ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"]
READ_ONLY = {"status", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
             "created_at", "updated_at", "self", "file", "schema", "direct_url", "locations",
             "stores"}
_UUID = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
_NULLABLE_STRING = {"type": ["null", "string"]}
IMAGE_SCHEMA = {
    "name": "image",
    "properties": {
        "id": {"type": "string", "pattern": _UUID},
        "name": {"type": ["null", "string"], "maxLength": 255},
        "status": {"type": "string", "readOnly": True,
                   "enum": ["queued", "saving", "active", "killed", "deleted", "uploading",
                            "importing", "pending_delete", "deactivated"]},
        "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128},
        "owner": {"type": ["null", "string"], "maxLength": 255},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "container_format": {"type": ["null", "string"], "enum": [None, *CONTAINER_FORMATS]},
        "disk_format": {"type": ["null", "string"], "enum": [None, *DISK_FORMATS]},
        "created_at": {"type": "string", "readOnly": True},
        "updated_at": {"type": "string", "readOnly": True},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
        "min_ram": {"type": "integer"},
        "min_disk": {"type": "integer"},
        "self": {"type": "string", "readOnly": True},
        "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
        "direct_url": {"type": "string", "readOnly": True},
        "locations": {"type": "array", "items": {"type": "object"}},
        "kernel_id": {**_NULLABLE_STRING, "pattern": _UUID, "is_base": False},
        "ramdisk_id": {**_NULLABLE_STRING, "pattern": _UUID, "is_base": False},
        "instance_uuid": {"type": "string", "is_base": False},
        "architecture": {"type": "string", "is_base": False},
        "os_distro": {"type": "string", "is_base": False},
        "os_version": {"type": "string", "is_base": False},
        "description": {"type": "string", "is_base": False},
    },
    "additionalProperties": {"type": "string"},
    "links": [{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"},
              {"rel": "describedby", "href": "{schema}"}],
}


def _store() -> Store:
    return cloud().store


def _visible(doc: Doc) -> bool:
    return caller().is_admin or caller().owns(doc) or doc["visibility"] in ("public",
                                                                            "community")


def find_image(store: Store, image_id: str) -> Doc:
    doc = store.get("image", image_id)
    if doc is None or not _visible(doc):
        raise ApiError(404, f"No image found with ID {image_id}")
    return doc


def view(doc: Doc) -> Doc:
    out = {k: v for k, v in doc.items() if not k.startswith("_") and k != "project_id"}
    out.update({"self": f"/v2/images/{doc['id']}", "file": f"/v2/images/{doc['id']}/file",
                "schema": "/v2/schemas/image"})
    return out


def _check_properties(changes: dict):
    for key, value in changes.items():
        if key in READ_ONLY:
            raise ApiError(403, f"Attribute '{key}' is read-only.")
        if key == "visibility" and value == "public":
            require_admin()
        if key == "disk_format" and value not in (None, *DISK_FORMATS):
            raise ApiError(400, f"Invalid value '{value}' for disk_format.")
        if key == "container_format" and value not in (None, *CONTAINER_FORMATS):
            raise ApiError(400, f"Invalid value '{value}' for container_format.")


@bp.get("/schemas/image")
def image_schema():
    return IMAGE_SCHEMA


@bp.get("/schemas/images")
def images_schema():
    return {"name": "images",
            "properties": {"images": {"type": "array", "items": IMAGE_SCHEMA},
                           "schema": {"type": "string"}, "first": {"type": "string"},
                           "next": {"type": "string"}},
            "links": [{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"},
                      {"rel": "describedby", "href": "{schema}"}]}


@bp.post("/images")
def create_image():
    data = body()
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    _check_properties(data)
    store = _store()
    with store.transaction():
        image_id = data.pop("id", None) or new_id()
        if store.get("image", image_id):
            raise ApiError(409, f"Image with identifier {image_id} already exists!")
        now = iso(store.now())
        formats = data.get("disk_format") and data.get("container_format")
        doc = {"id": image_id, "name": data.pop("name", None),
               "status": "active" if formats else "queued",
               "visibility": data.pop("visibility", "shared"),
               "protected": bool(data.pop("protected", False)),
               "os_hidden": bool(data.pop("os_hidden", False)), "checksum": None,
               "os_hash_algo": None, "os_hash_value": None,
               "owner": caller().project_id, "project_id": caller().project_id,
               "size": None, "virtual_size": None,
               "container_format": data.pop("container_format", None),
               "disk_format": data.pop("disk_format", None), "created_at": now,
               "updated_at": now, "tags": list(data.pop("tags", [])),
               "min_ram": int(data.pop("min_ram", 0)), "min_disk": int(data.pop("min_disk", 0))}
        doc.update({k: str(v) for k, v in data.items()})
        store.put("image", doc)
    response = flask.jsonify(view(doc))
    response.status_code = 201
    response.headers["Location"] = f"{flask.request.host_url.rstrip('/')}/image/v2/images/" \
                                   f"{image_id}"
    return response


@bp.get("/images")
def list_images():
    args = flask.request.args
    docs = [d for d in _store().list("image") if _visible(d)]
    if "visibility" in args:
        docs = [d for d in docs if d["visibility"] == args["visibility"]]
    else:
        docs = [d for d in docs if d["visibility"] != "community" or caller().owns(d)]
    if not truthy(args.get("os_hidden", "false")):
        docs = [d for d in docs if not d["os_hidden"]]
    for key in ("name", "status", "owner", "disk_format", "container_format", "id"):
        if key in args:
            docs = [d for d in docs if matches(d.get(key), args.getlist(key))]
    for tag in args.getlist("tag"):
        docs = [d for d in docs if tag in d["tags"]]
    key = args.get("sort_key", "created_at")
    docs.sort(key=lambda d: (str(d.get(key)), d["id"]), reverse=args.get("sort_dir") != "asc")
    if "marker" in args:
        ids = [d["id"] for d in docs]
        if args["marker"] not in ids:
            raise ApiError(400, f"marker [{args['marker']}] not found")
        docs = docs[ids.index(args["marker"]) + 1:]
    limit = min(args.get("limit", 25, type=int), 1000)
    page = docs[:limit]
    result = {"images": [view(d) for d in page], "schema": "/v2/schemas/images",
              "first": "/v2/images"}
    if len(docs) > limit:
        query = "&".join(f"{k}={v}" for k, v in args.items(multi=True) if k != "marker")
        result["next"] = f"/v2/images?marker={page[-1]['id']}" + (f"&{query}" if query else "")
    return result


@bp.get("/images/<image_id>")
def show_image(image_id):
    return view(find_image(_store(), image_id))


def _owned(store: Store, image_id: str) -> Doc:
    doc = find_image(store, image_id)
    if not (caller().is_admin or caller().owns(doc)):
        raise ApiError(403, f"You are not permitted to modify image {image_id}.")
    return doc


@bp.delete("/images/<image_id>")
def delete_image(image_id):
    store = _store()
    with store.transaction():
        doc = _owned(store, image_id)
        if doc["protected"]:
            raise ApiError(403, f"Image {image_id} is protected and cannot be deleted.")
        store.delete("image", image_id)
    return "", 204


@bp.patch("/images/<image_id>")
def update_image(image_id):
    operations = body()
    if not isinstance(operations, list):
        raise ApiError(400, "Expected a JSON patch: a list of operations.")
    store = _store()
    with store.transaction():
        doc = _owned(store, image_id)
        for op in operations:
            key = str(op.get("path", "")).lstrip("/")
            if op.get("op") in ("add", "replace"):
                _check_properties({key: op.get("value")})
                doc[key] = op.get("value")
            elif op.get("op") == "remove":
                if key in IMAGE_SCHEMA["properties"] or key not in doc:
                    raise ApiError(409, f"Property {key} does not exist or cannot be removed.")
                del doc[key]
            else:
                raise ApiError(400, f"Unsupported JSON patch operation {op.get('op')!r}.")
        doc["updated_at"] = iso(store.now())
        store.put("image", doc)
        return view(doc)


@bp.put("/images/<image_id>/file")
def upload_image(image_id):
    data = flask.request.get_data()
    store = _store()
    with store.transaction():
        doc = _owned(store, image_id)
        if doc["size"] is not None or doc["status"] not in ("queued", "active"):
            raise ApiError(409, f"Image status transition from {doc['status']} to saving is "
                                "not allowed")
        if not doc["disk_format"] or not doc["container_format"]:
            raise ApiError(400, "Properties disk_format, container_format must be set prior "
                                "to saving data.")
        doc.update({"status": "active", "size": len(data), "virtual_size": len(data),
                    "checksum": hashlib.md5(data, usedforsecurity=False).hexdigest(),
                    "os_hash_algo": "sha512", "os_hash_value": hashlib.sha512(data).hexdigest(),
                    "updated_at": iso(store.now())})
        store.put("image", doc)
    return "", 204


@bp.put("/images/<image_id>/tags/<tag>")
def add_tag(image_id, tag):
    store = _store()
    with store.transaction():
        doc = _owned(store, image_id)
        if tag not in doc["tags"]:
            doc["tags"].append(tag)
            store.put("image", doc)
    return "", 204


@bp.delete("/images/<image_id>/tags/<tag>")
def delete_tag(image_id, tag):
    store = _store()
    with store.transaction():
        doc = _owned(store, image_id)
        if tag not in doc["tags"]:
            raise ApiError(404, f"Tag {tag} not found on image {image_id}.")
        doc["tags"].remove(tag)
        store.put("image", doc)
    return "", 204
