"""Simulated Nova, part two: servers, their interfaces and their volume attachments.

A server is a row whose build ends after the configured build time (computed from its
timestamps when read): BUILD -> ACTIVE, or ERROR with a ``fault`` when the lab asked for
failed builds. Creating one really creates or binds Neutron ports (``networks`` with
``port``, ``uuid``/``fixed_ip``, ``auto`` or ``none``) and attaches Cinder volumes
(``block_device_mapping_v2``, boot from volume included), so ``addresses``, port status and
volume status move together as clients expect. Deleting it deletes the ports Nova made,
unbinds those it was given and detaches its volumes.
"""

from __future__ import annotations

import hashlib

import flask

from . import cinder, glance, neutron
from .common import (
    ApiError,
    body,
    cloud,
    name_filter,
    next_links,
    paginate,
    truthy,
)
from .faults import take_behaviour
from .identity import caller, require_admin
from .nova_extras import (
    at_least,
    blueprint,
    embedded_flavor,
    find_flavor,
    find_group,
    find_keypair,
    link,
)
from .store import Doc, Store, iso, new_id, schedule

bp = blueprint("nova")

RUNNING, SHUTDOWN, NOSTATE = 1, 4, 0
ACTIVE = {"status": "ACTIVE", "vm_state": "active", "task_state": None, "power_state": RUNNING}
BUILD_FAULT = "No valid host was found. There are not enough hosts available."


def _store() -> Store:
    return cloud().store


def find_server(store: Store, server_id: str) -> Doc:
    """A server of the caller's project (any, for an admin); 404 otherwise, never 403."""
    doc = store.get("server", server_id)
    if doc is None or not (caller().is_admin or caller().owns(doc)):
        raise ApiError(404, f"Instance {server_id} could not be found.")
    return doc


def _conflict(doc: Doc, action: str) -> ApiError:
    return ApiError(409, f"Cannot '{action}' instance {doc['id']} while it is in vm_state "
                         f"{doc['vm_state']}")


# -- views -----------------------------------------------------------------------------------
def _addresses(store: Store, ports: list[Doc]) -> dict:
    out: dict[str, list] = {}
    for port in ports:
        network = store.get("network", port["network_id"])
        for ip in port["fixed_ips"]:
            out.setdefault(network["name"] if network else port["network_id"], []).append({
                "version": 6 if ":" in ip["ip_address"] else 4, "addr": ip["ip_address"],
                "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": port["mac_address"]})
    return out


def _security_groups(store: Store, doc: Doc, ports: list[Doc]) -> list[dict]:
    names = [g["name"] for p in ports for gid in p["security_groups"]
             if (g := store.get("security_group", gid))] if ports else doc["security_groups"]
    return [{"name": n} for n in dict.fromkeys(names)]


def view(store: Store, doc: Doc) -> Doc:
    """A server body as the requested microversion and the caller's role show it."""
    admin = caller().is_admin
    ports = neutron.ports_of(store, doc["id"])
    flavor = store.get("flavor", doc["flavor_id"]) or doc["flavor"]
    config = cloud().config
    out = {
        "id": doc["id"], "name": doc["name"], "status": doc["status"],
        "tenant_id": doc["project_id"], "user_id": doc["user_id"], "metadata": doc["metadata"],
        "hostId": hashlib.sha224((doc["project_id"] + config.compute_host).encode()).hexdigest(),
        "image": {"id": doc["image_id"], "links": link(f"images/{doc['image_id']}")[1:]}
        if doc["image_id"] else "",
        "flavor": embedded_flavor(flavor), "created": doc["created"], "updated": doc["updated"],
        "addresses": _addresses(store, ports), "accessIPv4": "", "accessIPv6": "",
        "links": link(f"servers/{doc['id']}"), "OS-DCF:diskConfig": "MANUAL", "progress": 0,
        "OS-EXT-AZ:availability_zone": doc["availability_zone"], "config_drive": "",
        "key_name": doc["key_name"], "OS-SRV-USG:launched_at": doc["launched_at"],
        "OS-SRV-USG:terminated_at": None,
        "security_groups": _security_groups(store, doc, ports),
        "OS-EXT-STS:task_state": doc["task_state"], "OS-EXT-STS:vm_state": doc["vm_state"],
        "OS-EXT-STS:power_state": doc["power_state"],
        "os-extended-volumes:volumes_attached": [
            {"id": v["id"], **({"delete_on_termination": v["delete_on_termination"]}
                               if at_least("2.3") else {})} for v in doc["volumes"]],
    }
    if doc["status"] == "ERROR" and doc.get("fault"):
        out["fault"] = doc["fault"]
    if admin:
        out.update({"OS-EXT-SRV-ATTR:host": config.compute_host,
                    "OS-EXT-SRV-ATTR:hypervisor_hostname": config.compute_host,
                    "OS-EXT-SRV-ATTR:instance_name": doc["instance_name"]})
    if at_least("2.3") and admin:
        out.update({"OS-EXT-SRV-ATTR:reservation_id": doc["reservation_id"],
                    "OS-EXT-SRV-ATTR:launch_index": 0, "OS-EXT-SRV-ATTR:kernel_id": "",
                    "OS-EXT-SRV-ATTR:ramdisk_id": "",
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                    "OS-EXT-SRV-ATTR:user_data": doc["user_data"]})
    if (at_least("2.3") and admin) or at_least("2.90"):
        out["OS-EXT-SRV-ATTR:hostname"] = doc["hostname"]
    for version, key, value in (("2.9", "locked", bool(doc.get("locked_by"))),
                                ("2.16", "host_status", "UP"),
                                ("2.19", "description", doc["description"]),
                                ("2.26", "tags", doc["tags"]),
                                ("2.63", "trusted_image_certificates", None),
                                ("2.71", "server_groups", doc["server_groups"]),
                                ("2.73", "locked_reason", doc.get("locked_reason")),
                                ("2.96", "pinned_availability_zone", None)):
        if at_least(version) and (key != "host_status" or admin):
            out[key] = value
    return out


def _brief(doc: Doc) -> Doc:
    return {"id": doc["id"], "name": doc["name"], "links": link(f"servers/{doc['id']}")}


# -- listing ---------------------------------------------------------------------------------
def _list(detail: bool):
    store = _store()
    args = flask.request.args
    if truthy(args.get("all_tenants", "0")) or args.get("all_tenants") == "":
        require_admin()
        docs = store.list("server")
        wanted = args.get("project_id") or args.get("tenant_id")
        if wanted:
            docs = [d for d in docs if d["project_id"] == wanted]
    else:
        docs = store.list("server", caller().project_id)
    docs = name_filter(docs)
    if "status" in args:
        docs = [d for d in docs if d["status"] in {s.upper() for s in args.getlist("status")}]
    for key, field in (("flavor", "flavor_id"), ("image", "image_id"),
                       ("availability_zone", "availability_zone"), ("key_name", "key_name")):
        if key in args:
            docs = [d for d in docs if d[field] == args[key]]
    if "ip" in args:
        docs = [d for d in docs if any(args["ip"] in ip["ip_address"]
                                       for p in neutron.ports_of(store, d["id"])
                                       for ip in p["fixed_ips"])]
    docs.reverse()                      # newest first, as Nova sorts by created_at desc
    page = paginate(docs, ApiError(400, f"marker [{args.get('marker')}] not found"))
    result = {"servers": [view(store, d) if detail else _brief(d) for d in page]}
    if links := next_links(page):
        result["servers_links"] = links
    return result


@bp.get("/servers")
def list_servers():
    return _list(detail=False)


@bp.get("/servers/detail")
def list_servers_detail():
    return _list(detail=True)


@bp.get("/servers/<server_id>")
def show_server(server_id):
    store = _store()
    return {"server": view(store, find_server(store, server_id))}


# -- create ----------------------------------------------------------------------------------
def _image(store: Store, image_ref: str) -> Doc:
    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
    try:
        image = glance.find_image(store, image_id)
    except ApiError:
        raise ApiError(400, f"Image {image_id} could not be found.") from None
    if image["status"] != "active":
        raise ApiError(400, f"Image {image_id} is not active.")
    return image


def _auto_network(store: Store) -> list[dict]:
    """``networks: "auto"``: the one network the project can use."""
    usable = [n for n in store.list("network")
              if caller().owns(n) or n["shared"]]
    if not usable:
        raise ApiError(400, f"Unable to automatically allocate a network for project "
                            f"{caller().project_id}")
    if len(usable) > 1:
        raise ApiError(409, "Multiple possible networks found, use a Network ID to be more "
                            "specific.")
    return [{"uuid": usable[0]["id"]}]


def _network_requests(store: Store, networks) -> list[dict]:
    if networks == "auto":
        return _auto_network(store)
    if networks == "none":
        return []
    if networks is None:
        if at_least("2.37"):
            raise ApiError(400, "Invalid input for field/attribute server: 'networks' is a "
                                "required property")
        return _auto_network(store)
    if not isinstance(networks, list):
        raise ApiError(400, "Invalid input for field/attribute networks.")
    for request in networks:
        if request.get("port"):
            port = store.get("port", request["port"])
            if port is None or not (caller().is_admin or caller().owns(port)):
                raise ApiError(400, f"Port id {request['port']} could not be found.")
            if port["device_id"]:
                raise ApiError(409, f"Port {request['port']} is still in use.")
        elif request.get("uuid"):
            network = store.get("network", request["uuid"])
            if network is None or not (caller().owns(network) or network["shared"]
                                       or caller().is_admin):
                raise ApiError(400, f"Network {request['uuid']} could not be found.")
        else:
            raise ApiError(400, "Bad networks format: each entry needs 'port' or 'uuid'.")
    return networks


def _group_ids(store: Store, names: list) -> list[str]:
    neutron.ensure_default_group(store, caller().project_id)
    groups = store.list("security_group", caller().project_id)
    ids = []
    for entry in names:
        name = entry.get("name") if isinstance(entry, dict) else entry
        found = next((g for g in groups if name in (g["id"], g["name"])), None)
        if found is None:
            raise ApiError(400, f"Security group {name} not found for project "
                                f"{caller().project_id}.")
        ids.append(found["id"])
    return ids


def _mappings(store: Store, data: dict) -> list[dict]:
    """``block_device_mapping_v2`` entries that end in a volume, checked."""
    volumes = []
    for bdm in data.get("block_device_mapping_v2") or []:
        if bdm.get("destination_type") != "volume":
            continue
        source = bdm.get("source_type")
        boot = str(bdm.get("boot_index")) == "0"
        entry = {"source": source, "boot": boot, "tag": bdm.get("tag"),
                 "delete_on_termination": truthy(bdm.get("delete_on_termination", False))}
        if source == "volume":
            volume = store.get("volume", str(bdm.get("uuid")))
            if volume is None or not (caller().is_admin or caller().owns(volume)):
                raise ApiError(400, f"Block Device Mapping is Invalid: failed to get volume "
                                    f"{bdm.get('uuid')}.")
            if volume["status"] != "available":
                raise ApiError(400, f"Invalid volume: volume {volume['id']} status must be "
                                    f"'available'. Currently in '{volume['status']}'")
            entry["volume"] = volume
        elif source in ("image", "blank"):
            size = bdm.get("volume_size")
            if not size:
                raise ApiError(400, "Block Device Mapping is Invalid: volume_size is "
                                    "required to create a volume.")
            entry.update(size=int(size), volume_type=bdm.get("volume_type"),
                         image=_image(store, str(bdm.get("uuid"))) if source == "image" else None)
        else:
            raise ApiError(400, f"Block Device Mapping is Invalid: source_type {source} is "
                                "not supported.")
        volumes.append(entry)
    return sorted(volumes, key=lambda e: not e["boot"])


def _new_volume(store: Store, entry: dict) -> Doc:
    """Cinder creates the volume a mapping asks for (from an image, or blank)."""
    image = entry["image"]
    doc = cinder.new_volume(store, size=entry["size"], name="",
                            volume_type=cinder.find_type(store, entry["volume_type"]),
                            bootable=image is not None)
    if image:
        doc["volume_image_metadata"] = cinder.image_metadata(image)
    return cinder.place_on_array(store, doc)


@bp.post("/servers")
def create_server():
    data = body("server")
    if not data.get("name"):
        raise ApiError(400, "Invalid input for field/attribute name: name is required.")
    if int(data.get("max_count") or 1) > 1:
        raise ApiError(400, "This cloud creates one server per request (max_count 1).")
    zone = (data.get("availability_zone") or cloud().config.availability_zone).split(":")[0]
    if zone != cloud().config.availability_zone:
        raise ApiError(400, "The requested availability zone is not available")
    store = _store()
    with store.transaction():
        flavor_ref = str(data.get("flavorRef") or "").rstrip("/").rsplit("/", 1)[-1]
        try:
            flavor = find_flavor(store, flavor_ref)
        except ApiError:
            raise ApiError(400, f"Flavor {flavor_ref} could not be found.") from None
        mappings = _mappings(store, data)
        boots_from_volume = bool(mappings and mappings[0]["boot"])
        image = None
        if not boots_from_volume:
            if not data.get("imageRef"):
                raise ApiError(400, "Block Device Mapping is Invalid: Boot sequence for the "
                                    "instance and image/block device mapping combination is "
                                    "not valid.")
            image = _image(store, str(data["imageRef"]))
        if data.get("key_name"):
            try:
                find_keypair(store, data["key_name"])
            except ApiError:
                raise ApiError(400, "Invalid key_name provided.") from None
        groups = _group_ids(store, data.get("security_groups") or [])
        requests = _network_requests(store, data.get("networks"))
        sent = flask.request.get_json(silent=True) or {}        # Nova takes either key
        hint = sent.get("os:scheduler_hints") or sent.get("OS-SCH-HNT:scheduler_hints") or {}
        server_group = find_group(store, hint["group"]) if hint.get("group") else None
        return _build(store, data, flavor, image, mappings, groups, requests, server_group)


def _build(store: Store, data: dict, flavor: Doc, image: Doc | None, mappings: list[dict],
           groups: list[str], requests: list[dict], server_group: Doc | None):
    config = cloud().config
    now = store.now()
    server_id = new_id()
    delay = take_behaviour(store, "server_build_delay")
    ready = now + (delay["seconds"] if delay else config.build_seconds)
    failure = take_behaviour(store, "server_build_error")
    doc = {"id": server_id, "name": data["name"], "project_id": caller().project_id,
           "user_id": caller().user_id, "status": "BUILD", "vm_state": "building",
           "task_state": "spawning", "power_state": NOSTATE, "flavor_id": flavor["id"],
           "flavor": flavor, "image_id": image["id"] if image else "",
           "key_name": data.get("key_name"), "metadata": data.get("metadata") or {},
           "availability_zone": config.availability_zone, "created": iso(now),
           "updated": iso(now), "launched_at": None, "description": data.get("description"),
           "tags": data.get("tags") or [], "hostname": data.get("hostname") or data["name"],
           "server_groups": [server_group["id"]] if server_group else [],
           "security_groups": [store.get("security_group", g)["name"] for g in groups]
           or ["default"], "user_data": data.get("user_data"),
           "instance_name": f"instance-{store.count('server') + 1:08x}",
           "reservation_id": f"r-{new_id()[:8]}", "volumes": [], "_created_ports": []}
    if failure is None:
        failure_message = _plug(store, doc, mappings, groups, requests, ready)
    else:
        failure_message = failure.get("message") or BUILD_FAULT
    if failure_message:
        schedule(doc, ready, status="ERROR", vm_state="error", task_state=None,
                 fault={"code": 500, "created": iso(ready), "message": failure_message,
                        "details": "Build of instance aborted"})
    else:
        schedule(doc, ready, **ACTIVE, launched_at=iso(ready), updated=iso(ready))
    if server_group:
        server_group["members"].append(server_id)
        store.put("server_group", server_group)
    store.put("server", doc)
    response = flask.jsonify({"server": {
        "id": server_id, "links": link(f"servers/{server_id}"), "OS-DCF:diskConfig": "MANUAL",
        "security_groups": [{"name": n} for n in doc["security_groups"]],
        "adminPass": new_id().replace("-", "")[:12]}})
    response.status_code = 202
    response.headers["Location"] = link(f"servers/{server_id}")[0]["href"]
    return response


def _plug(store: Store, doc: Doc, mappings: list[dict], groups: list[str],
          requests: list[dict], ready: float) -> str | None:
    """Ports and volumes of a server that will build; why the build fails, if it will."""
    for index, entry in enumerate(mappings):
        volume = entry.get("volume") or _new_volume(store, entry)
        if not volume["provider_id"]:
            store.put("volume", volume)
            return f"Build of instance aborted: Volume {volume['id']} did not finish being " \
                   "created even after we waited."
        device = f"/dev/vd{chr(ord('a') + index)}"
        cinder.attach(store, volume, doc["id"], device, ready)
        doc["volumes"].append({"id": volume["id"], "device": device, "tag": entry["tag"],
                               "delete_on_termination": entry["delete_on_termination"],
                               "attachment_id": volume["attachments"][0]["attachment_id"],
                               "bdm_uuid": new_id()})
    host = cloud().config.compute_host
    for request in requests:
        if request.get("port"):
            port = store.get("port", request["port"])
        else:
            fixed = [{"ip_address": request["fixed_ip"]}] if request.get("fixed_ip") else None
            try:
                port = neutron.create_port(store, {
                    "network_id": request["uuid"], "fixed_ips": fixed, "project_id":
                    doc["project_id"], **({"security_groups": groups} if groups else {})})
            except ApiError as exc:
                raise ApiError(400 if exc.status == 409 else exc.status, exc.message) from None
            doc["_created_ports"].append(port["id"])
        neutron.bind_port(store, port, doc["id"], host, ready)
    return None


# -- update, metadata, delete ----------------------------------------------------------------
@bp.put("/servers/<server_id>")
def update_server(server_id):
    changes = body("server")
    store = _store()
    with store.transaction():
        doc = find_server(store, server_id)
        for key in ("name", "description", "hostname"):
            if key in changes:
                doc[key] = changes[key]
        doc["updated"] = iso(store.now())
        store.put("server", doc)
        return {"server": view(store, doc)}


@bp.get("/servers/<server_id>/metadata")
def get_metadata(server_id):
    return {"metadata": find_server(_store(), server_id)["metadata"]}


@bp.post("/servers/<server_id>/metadata")
@bp.put("/servers/<server_id>/metadata")
def set_metadata(server_id):
    metadata = body("metadata")
    store = _store()
    with store.transaction():
        doc = find_server(store, server_id)
        doc["metadata"] = ({**doc["metadata"], **metadata} if flask.request.method == "POST"
                           else dict(metadata))
        store.put("server", doc)
        return {"metadata": doc["metadata"]}


@bp.get("/servers/<server_id>/metadata/<key>")
def get_meta_item(server_id, key):
    metadata = find_server(_store(), server_id)["metadata"]
    if key not in metadata:
        raise ApiError(404, "Metadata item was not found")
    return {"meta": {key: metadata[key]}}


@bp.put("/servers/<server_id>/metadata/<key>")
def set_meta_item(server_id, key):
    meta = body("meta")
    if list(meta) != [key]:
        raise ApiError(400, "Request body and URI mismatch")
    store = _store()
    with store.transaction():
        doc = find_server(store, server_id)
        doc["metadata"][key] = meta[key]
        store.put("server", doc)
    return {"meta": meta}


@bp.delete("/servers/<server_id>/metadata/<key>")
def delete_meta_item(server_id, key):
    store = _store()
    with store.transaction():
        doc = find_server(store, server_id)
        if doc["metadata"].pop(key, None) is None:
            raise ApiError(404, "Metadata item was not found")
        store.put("server", doc)
    return "", 204


def _release_volume(store: Store, attachment: dict):
    volume = store.get("volume", attachment["id"])
    if volume is None:
        return
    volume.update({"status": "available", "attachments": [], "_pending": []})
    if attachment["delete_on_termination"]:
        cinder.delete_volume(store, volume)
    else:
        store.put("volume", volume)


@bp.delete("/servers/<server_id>")
def delete_server(server_id):
    store = _store()
    with store.transaction():
        doc = find_server(store, server_id)
        _refuse_if_locked(doc, "delete")
        for port in neutron.ports_of(store, server_id):
            if port["id"] in doc["_created_ports"]:
                store.delete("port", port["id"])
            else:
                neutron.unbind_port(store, port)
        for attachment in doc["volumes"]:
            _release_volume(store, attachment)
        for group_id in doc["server_groups"]:
            group = store.get("server_group", group_id)
            if group:
                group["members"].remove(server_id)
                store.put("server_group", group)
        store.delete("server", server_id)
    return "", 204


# -- actions ---------------------------------------------------------------------------------
def _transition(store: Store, doc: Doc, task: str, **result):
    now = store.now()
    doc.update({"task_state": task, "updated": iso(now), "_pending": []})
    schedule(doc, now + cloud().config.task_seconds, **{"task_state": None, **result})
    store.put("server", doc)


def _stop(store: Store, doc: Doc, args):
    if doc["vm_state"] != "active" or doc["task_state"]:
        raise _conflict(doc, "stop")
    _transition(store, doc, "powering-off", status="SHUTOFF", vm_state="stopped",
                power_state=SHUTDOWN)


def _start(store: Store, doc: Doc, args):
    if doc["vm_state"] != "stopped" or doc["task_state"]:
        raise _conflict(doc, "start")
    _transition(store, doc, "powering-on", **ACTIVE)


def _reboot(store: Store, doc: Doc, args):
    if doc["vm_state"] not in ("active", "stopped") or doc["task_state"]:
        raise _conflict(doc, "reboot")
    hard = (args or {}).get("type", "SOFT").upper() == "HARD"
    doc["status"] = "HARD_REBOOT" if hard else "REBOOT"
    _transition(store, doc, "reboot_started_hard" if hard else "reboot_started", **ACTIVE)


def _reset_state(store: Store, doc: Doc, args):
    require_admin()
    state = (args or {}).get("state")
    if state not in ("active", "error"):
        raise ApiError(400, "Invalid input for field/attribute state.")
    doc.update(ACTIVE if state == "active" else {"status": "ERROR", "vm_state": "error",
                                                 "task_state": None})
    doc["_pending"] = []
    store.put("server", doc)


def _lock(store: Store, doc: Doc, args):
    """Nova's lock: by the owner, or by an admin of another project (who alone may then
    unlock it); a reason from 2.73 on."""
    reason = (args or {}).get("locked_reason") if isinstance(args, dict) else None
    if reason is not None and (not at_least("2.73") or len(reason) > 255):
        raise ApiError(400, "Invalid input for field/attribute lock.")
    doc["locked_by"] = "owner" if caller().owns(doc) else "admin"
    doc["locked_reason"] = reason
    store.put("server", doc)


def _unlock(store: Store, doc: Doc, args):
    if doc.get("locked_by") == "admin" and not caller().is_admin:
        raise ApiError(403, "Policy doesn't allow os_compute_api:os-lock-server:unlock:"
                            "unlock_override to be performed.")
    doc["locked_by"] = doc["locked_reason"] = None
    store.put("server", doc)


_ACTIONS = {"os-stop": _stop, "os-start": _start, "reboot": _reboot,
            "os-resetState": _reset_state, "lock": _lock, "unlock": _unlock}
# What Nova refuses on a locked server, but to an admin (check_instance_lock).
_LOCKED_REFUSES = ("os-stop", "os-start", "reboot", "delete")


# The simulated guest's boot log. What the guest's own services print comes after it: the
# lines of the server's ``lab_console`` metadata (a lab convention standing in for the
# guest OS: a recovered server keeps its metadata, so it prints what its original did).
BOOT_LOG = ("[    0.000000] Linux version 6.1.0 (site-recovery-lab guest)",
            "[    1.204518] EXT4-fs (vda1): mounted filesystem with ordered data mode",
            "[    3.918812] cloud-init[412]: Cloud-init v. 23.1 finished")
CONSOLE_KEY = "lab_console"


def _console_output(doc: Doc, args) -> dict:
    """Nova's ``os-getConsoleOutput``: the last ``length`` lines (all: null); 409 while
    the server has not booted."""
    length = (args or {}).get("length") if isinstance(args, dict) else None
    if length is not None and (not isinstance(length, int) or length < -1):
        raise ApiError(400, "Invalid input for field/attribute length.")
    if not doc["launched_at"] or doc["vm_state"] not in ("active", "stopped"):
        raise ApiError(409, f"Instance {doc['id']} is not ready yet.")
    lines = [*BOOT_LOG, *str(doc["metadata"].get(CONSOLE_KEY, "")).splitlines(),
             f"{doc['name']} login:"]
    if length is not None and length >= 0:
        lines = lines[len(lines) - length:] if length else []
    return {"output": "\n".join(lines) + "\n"}


@bp.post("/servers/<server_id>/action")
def server_action(server_id):
    data = body()
    action = next(iter(data), None) if isinstance(data, dict) else None
    if action == "os-getConsoleOutput":
        return _console_output(find_server(_store(), server_id), data[action])
    if action not in _ACTIONS:
        raise ApiError(400, f"There is no such action: {action}")
    store = _store()
    with store.transaction():
        doc = find_server(store, server_id)
        _refuse_if_locked(doc, action)
        _ACTIONS[action](store, doc, data[action])
    return "", 202


def _refuse_if_locked(doc: Doc, action: str):
    if action in _LOCKED_REFUSES and doc.get("locked_by") and not caller().is_admin:
        raise ApiError(409, f"Instance {doc['id']} is locked")


def _plugged(store: Store, doc: Doc, action: str) -> Doc:
    """A server that can take an interface or a volume right now."""
    if doc["vm_state"] not in ("active", "stopped") or doc["task_state"]:
        raise _conflict(doc, action)
    return doc


# -- interfaces ------------------------------------------------------------------------------
def _interface_view(port: Doc) -> Doc:
    out = {"port_state": port["status"], "port_id": port["id"], "net_id": port["network_id"],
           "mac_addr": port["mac_address"],
           "fixed_ips": [{"subnet_id": ip["subnet_id"], "ip_address": ip["ip_address"]}
                         for ip in port["fixed_ips"]]}
    if at_least("2.70"):
        out["tag"] = None
    return out


def _attached_port(store: Store, server_id: str, port_id: str) -> Doc:
    port = store.get("port", port_id)
    if port is None or port["device_id"] != server_id:
        raise ApiError(404, f"Port {port_id} is not attached")
    return port


@bp.get("/servers/<server_id>/os-interface")
def list_interfaces(server_id):
    store = _store()
    find_server(store, server_id)
    return {"interfaceAttachments": [_interface_view(p)
                                     for p in neutron.ports_of(store, server_id)]}


@bp.get("/servers/<server_id>/os-interface/<port_id>")
def show_interface(server_id, port_id):
    store = _store()
    find_server(store, server_id)
    return {"interfaceAttachment": _interface_view(_attached_port(store, server_id, port_id))}


@bp.post("/servers/<server_id>/os-interface")
def attach_interface(server_id):
    data = body("interfaceAttachment")
    store = _store()
    with store.transaction():
        doc = _plugged(store, find_server(store, server_id), "attach_interface")
        if data.get("port_id"):
            _network_requests(store, [{"port": data["port_id"]}])
            port = store.get("port", data["port_id"])
        elif data.get("net_id"):
            _network_requests(store, [{"uuid": data["net_id"]}])
            try:
                port = neutron.create_port(store, {
                    "network_id": data["net_id"], "project_id": doc["project_id"],
                    "fixed_ips": [{"ip_address": ip["ip_address"]}
                                  for ip in data.get("fixed_ips") or []] or None})
            except ApiError as exc:
                raise ApiError(400 if exc.status == 409 else exc.status, exc.message) from None
            doc["_created_ports"].append(port["id"])
            store.put("server", doc)
        else:
            raise ApiError(400, "Must input network_id or port_id")
        port = neutron.bind_port(store, port, server_id, cloud().config.compute_host,
                                 store.now() + cloud().config.task_seconds)
        return {"interfaceAttachment": _interface_view(port)}


@bp.delete("/servers/<server_id>/os-interface/<port_id>")
def detach_interface(server_id, port_id):
    store = _store()
    with store.transaction():
        doc = _plugged(store, find_server(store, server_id), "detach_interface")
        port = _attached_port(store, server_id, port_id)
        if port_id in doc["_created_ports"]:
            store.delete("port", port_id)
            doc["_created_ports"].remove(port_id)
            store.put("server", doc)
        else:
            neutron.unbind_port(store, port)
    return "", 202


# -- volume attachments ----------------------------------------------------------------------
def _attachment_view(server_id: str, attachment: dict) -> Doc:
    out = {"serverId": server_id, "volumeId": attachment["id"], "device": attachment["device"]}
    if not at_least("2.89"):
        out["id"] = attachment["id"]
    if at_least("2.70"):
        out["tag"] = attachment["tag"]
    if at_least("2.79"):
        out["delete_on_termination"] = attachment["delete_on_termination"]
    if at_least("2.89"):
        out.update({"attachment_id": attachment["attachment_id"],
                    "bdm_uuid": attachment["bdm_uuid"]})
    return out


def _attachment(doc: Doc, volume_id: str) -> dict:
    found = next((a for a in doc["volumes"] if a["id"] == volume_id), None)
    if found is None:
        raise ApiError(404, f"Volume {volume_id} is not attached to instance {doc['id']}.")
    return found


@bp.get("/servers/<server_id>/os-volume_attachments")
def list_volume_attachments(server_id):
    doc = find_server(_store(), server_id)
    return {"volumeAttachments": [_attachment_view(server_id, a) for a in doc["volumes"]]}


@bp.get("/servers/<server_id>/os-volume_attachments/<volume_id>")
def show_volume_attachment(server_id, volume_id):
    doc = find_server(_store(), server_id)
    return {"volumeAttachment": _attachment_view(server_id, _attachment(doc, volume_id))}


@bp.post("/servers/<server_id>/os-volume_attachments")
def attach_volume(server_id):
    data = body("volumeAttachment")
    store = _store()
    with store.transaction():
        doc = _plugged(store, find_server(store, server_id), "attach_volume")
        volume = cinder.find_volume(store, str(data.get("volumeId")))
        if volume["status"] != "available":
            raise ApiError(400, f"Invalid volume: volume {volume['id']} status must be "
                                f"'available'. Currently in '{volume['status']}'")
        used = {a["device"] for a in doc["volumes"]}
        device = data.get("device") or next(f"/dev/vd{c}" for c in "bcdefghijklmnopqrstuvwxyz"
                                            if f"/dev/vd{c}" not in used)
        volume = cinder.attach(store, volume, server_id, device,
                               store.now() + cloud().config.task_seconds)
        attachment = {"id": volume["id"], "device": device, "tag": data.get("tag"),
                      "delete_on_termination": truthy(data.get("delete_on_termination", False)),
                      "attachment_id": volume["attachments"][0]["attachment_id"],
                      "bdm_uuid": new_id()}
        doc["volumes"].append(attachment)
        store.put("server", doc)
        # Nova's attach answers in its own shape at every microversion: "id" (the volume
        # id) always, never attachment_id/bdm_uuid (those are the GET views' from 2.89).
        reply = {"id": volume["id"], "serverId": server_id, "volumeId": volume["id"],
                 "device": device}
        if at_least("2.70"):
            reply["tag"] = attachment["tag"]
        if at_least("2.79"):
            reply["delete_on_termination"] = attachment["delete_on_termination"]
        return {"volumeAttachment": reply}


@bp.delete("/servers/<server_id>/os-volume_attachments/<volume_id>")
def detach_volume(server_id, volume_id):
    store = _store()
    with store.transaction():
        doc = _plugged(store, find_server(store, server_id), "detach_volume")
        attachment = _attachment(doc, volume_id)
        if attachment["device"] == "/dev/vda" and not doc["image_id"]:
            raise ApiError(400, "Can't detach root device volume")
        doc["volumes"].remove(attachment)
        store.put("server", doc)
        volume = store.get("volume", volume_id)
        if volume is not None:
            cinder.detach(store, volume, store.now() + cloud().config.task_seconds)
    return "", 202
