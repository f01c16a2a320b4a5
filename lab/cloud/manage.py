"""Cinder's manage-existing and unmanage, done to the array as the Pure driver does them.

This is how the DR engine hands recovered array volumes to the DR site's Cinder:
``POST /manageable_volumes`` (3.8+) or the legacy ``POST /os-volume-manage`` answers 202
with a volume in ``managing``; it becomes ``available`` after the create time, its array
volume renamed to ``volume-<id>-cinder``, or ``error_managing`` when the driver refuses:
no such array volume, a volume connected to a host, a volume inside a pod (the 2024.1
driver's rules and messages). ``GET /manageable_volumes[/detail]?host=`` lists the array's
volumes with the driver's ``reason_not_safe``; ``os-unmanage`` renames the array volume to
``<name>-unmanaged`` and forgets the Cinder row. All of it is admin-only, as in Cinder.
"""

from __future__ import annotations

import logging
import math
import re

import flask

from site_recovery.storage.fabric import ArrayDown, PurityError

from . import cinder
from .common import ApiError, body, cloud, truthy
from .faults import take_behaviour
from .identity import require_admin
from .store import Doc, Store, schedule

UNMANAGED_SUFFIX = "-unmanaged"
_CINDER_NAME = re.compile(r"^volume-([0-9a-f-]{36})$")
_CONNECTED = ("PureISCSIDriver manage_existing cannot manage a volume connected to hosts. "
              "Please disconnect this volume from existing hosts before importing")

bp = cinder.blueprint("cinder_manage")
log = logging.getLogger(__name__)


def _check_backend(host: str | None, cluster: str | None):
    """The request must name this site's only backend (``cinder@pure#pure``)."""
    if bool(host) == bool(cluster):
        raise ApiError(400, "One and only one of host and cluster must be set.")
    if cluster:
        raise ApiError(400, f"Cluster '{cluster}' not found")
    if host.split("#")[0] != cloud().config.volume_host.split("#")[0]:
        raise ApiError(400, f"Service '{host}' not found")


def _invalid_ref(ref, reason: str) -> str:
    return f"Manage existing volume failed due to invalid backend reference {ref}: {reason}"


def _take_over(store: Store, doc: Doc, ref) -> tuple[int, str | None]:
    """Rename the array volume to the new Cinder id: its size in GiB, or why not."""
    injected = take_behaviour(store, "manage_error")
    if injected:
        return 0, injected.get("message") or "Injected manage-existing failure."
    name = (ref.get("source-name") or ref.get("name")) if isinstance(ref, dict) else None
    if not name:
        return 0, _invalid_ref(ref, "Must specify source-name or name.")
    if "::" in name:
        return 0, _invalid_ref(ref, "Unable to manage volume in a Pod")
    array = cloud().array
    new_name = cinder.array_name(doc["id"])
    try:
        volume = array.get_volume(name)
        if array.list_volume_private_connections(name):
            return 0, _invalid_ref(ref, _CONNECTED)
        array.rename_volume(name, new_name)
    except ArrayDown as exc:
        return 0, f"The backend array does not answer: {exc}"
    except PurityError as exc:
        if "does not exist" in exc.msg:
            return 0, _invalid_ref(ref, f"Unable to find Purity ref with name={name}")
        return 0, str(exc)
    doc["provider_id"] = new_name
    doc["metadata"].update({"array_volume_name": new_name, "array_name": cloud().config.array})
    return math.ceil(volume["size"] / cinder.GIB), None


@bp.post("/manageable_volumes")
@cinder.since("3.8")
def manage():
    return _manage()


@bp.post("/os-volume-manage")
def manage_legacy():
    return _manage()


def _manage():
    require_admin()
    data = body("volume")
    if not data.get("ref"):
        raise ApiError(400, "Invalid input for field/attribute volume: 'ref' is a required "
                            "property.")
    _check_backend(data.get("host"), data.get("cluster"))
    ref = data["ref"]
    store = cloud().store
    with store.transaction():
        source = ref.get("source-name") if isinstance(ref, dict) else None
        match = _CINDER_NAME.match(source or "")
        if match and store.get("volume", match.group(1)):
            raise ApiError(400, f"Invalid volume: Unable to manage existing volume. Volume "
                                f"{source} already managed.")
        volume_type = cinder.find_type(store, data.get("volume_type"))
        doc = cinder.new_volume(store, size=0, name=data.get("name"), volume_type=volume_type,
                                description=data.get("description"),
                                metadata=data.get("metadata"),
                                availability_zone=data.get("availability_zone"),
                                status="managing", bootable=truthy(data.get("bootable", False)))
        size, reason = _take_over(store, doc, ref)
        due = store.now() + cloud().config.volume_seconds
        if reason:
            log.warning("manage %s as %s failed: %s", ref, doc["id"], reason)
            schedule(doc, due, status="error_managing")
        else:
            schedule(doc, due, status="available", size=size)
        store.put("volume", doc)
        return {"volume": cinder.view(doc)}, 202


@bp.get("/manageable_volumes")
@bp.get("/manageable_volumes/detail")
@cinder.since("3.8")
def manageable():
    return _manageable()


@bp.get("/os-volume-manage")
@bp.get("/os-volume-manage/detail")
def manageable_legacy():
    return _manageable()


def _manageable():
    require_admin()
    args = flask.request.args
    _check_backend(args.get("host"), args.get("cluster"))
    array = cloud().array
    try:
        volumes = array.list_volumes()
        connections = array.list_hosts(all=True)
    except (ArrayDown, PurityError) as exc:
        raise ApiError(500, f"Failed to list manageable volumes: {exc}") from None
    managed = {v["provider_id"]: v["id"] for v in cloud().store.list("volume")
               if v["provider_id"]}
    hosts = {}
    for connection in connections:
        hosts.setdefault(connection["vol"], connection["name"])
    entries = []
    for volume in volumes:
        name = volume["name"]
        reason = (f"Volume connected to host {hosts[name]}." if name in hosts else
                  "Volume already managed." if name in managed else
                  "Volume is in a Pod." if "::" in name else None)
        entries.append({"reference": {"name": name},
                        "size": math.ceil(volume["size"] / cinder.GIB),
                        "safe_to_manage": reason is None, "reason_not_safe": reason,
                        "cinder_id": managed.get(name), "extra_info": None})
    key, _, direction = (args.get("sort") or "").partition(":")
    key = args.get("sort_key") or key or "reference"
    direction = args.get("sort_dir") or direction or "desc"
    entries.sort(key=lambda e: e["size"] if key == "size" else e["reference"]["name"],
                 reverse=direction == "desc")
    entries = entries[args.get("offset", 0, type=int):]
    if "limit" in args:
        entries = entries[:args.get("limit", type=int)]
    if not flask.request.path.endswith("/detail"):
        entries = [{k: e[k] for k in ("reference", "size", "safe_to_manage")} for e in entries]
    return {"manageable-volumes": entries}


def unmanage(store: Store, doc: Doc, args: dict):
    """``os-unmanage``: the array volume stays, renamed ``<name>-unmanaged``."""
    require_admin()
    cinder.check_deletable(doc)
    if doc["provider_id"]:
        name = doc["provider_id"]
        try:
            cloud().array.rename_volume(name, name[:63 - len(UNMANAGED_SUFFIX)] +
                                        UNMANAGED_SUFFIX)
        except PurityError as exc:
            if "does not exist" not in exc.msg:
                raise ApiError(400, f"Invalid volume: the array refused: {exc}") from None
        except ArrayDown as exc:
            log.warning("unmanage %s failed: %s", doc["id"], exc)
            doc.update({"status": "error_unmanaging", "_pending": []})
            store.put("volume", doc)
            return "", 202
    store.delete("volume", doc["id"])
    return "", 202


cinder.ACTIONS["os-unmanage"] = unmanage
