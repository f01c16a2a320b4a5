"""Simulated Nova, part one: microversions and everything but servers.

Flavors (none at first, as on a fresh Nova; Heat looks a flavor up by name as an id first
and expects a 404 ``itemNotFound`` before it lists), keypairs (per user), server groups,
availability zones, limits and quota sets. The compute microversion (2.1-2.96) comes from
``OpenStack-API-Version: compute X`` or ``X-OpenStack-Nova-API-Version`` and shapes the
answers as Nova does.
"""

from __future__ import annotations

import base64
import hashlib
import json

import flask
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from . import versions
from .common import (
    ApiError,
    body,
    cloud,
    microversion,
    microversions,
    not_found,
    truthy,
    version_string,
)
from .identity import caller, require_admin
from .store import Doc, Store, iso, new_id


def blueprint(name: str) -> flask.Blueprint:
    """A blueprint under ``/compute/v2.1`` that honours Nova's microversions."""
    bp = flask.Blueprint(name, __name__, url_prefix="/compute/v2.1")

    @bp.before_request
    def negotiate():
        flask.g.compute_version = microversion("compute", "X-OpenStack-Nova-API-Version",
                                               versions.COMPUTE_MIN, versions.COMPUTE_MAX)

    @bp.after_request
    def version_headers(response):
        if "compute_version" in flask.g:
            version = version_string(flask.g.compute_version)
            response.headers["OpenStack-API-Version"] = f"compute {version}"
            response.headers["X-OpenStack-Nova-API-Version"] = version
            response.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        return response

    return bp


bp = blueprint("nova_extras")


at_least, since = microversions("compute_version")


def link(path: str) -> list[dict]:
    base = flask.request.host_url.rstrip("/")
    return [{"rel": "self", "href": f"{base}/compute/v2.1/{path}"},
            {"rel": "bookmark", "href": f"{base}/compute/{path}"}]


def _store() -> Store:
    return cloud().store


# -- flavors ---------------------------------------------------------------------------------
def _flavor(flavor_id: str, name: str, ram: int, vcpus: int, disk: int, **extra) -> Doc:
    return {"id": flavor_id, "name": name, "ram": ram, "vcpus": vcpus, "disk": disk,
            "ephemeral": extra.get("ephemeral", 0), "swap": extra.get("swap", 0),
            "rxtx_factor": extra.get("rxtx_factor", 1.0), "is_public": extra.get("is_public", True),
            "description": extra.get("description"), "extra_specs": {}, "access": []}


def find_flavor(store: Store, flavor_id: str) -> Doc:
    doc = store.get("flavor", flavor_id)
    if doc is None or not (doc["is_public"] or caller().is_admin or
                           caller().project_id in doc["access"]):
        raise not_found("Flavor", flavor_id)
    return doc


def flavor_view(doc: Doc) -> Doc:
    out = {"id": doc["id"], "name": doc["name"], "ram": doc["ram"], "vcpus": doc["vcpus"],
           "disk": doc["disk"], "OS-FLV-EXT-DATA:ephemeral": doc["ephemeral"],
           "swap": doc["swap"] if at_least("2.75") else (doc["swap"] or ""),
           "rxtx_factor": doc["rxtx_factor"], "os-flavor-access:is_public": doc["is_public"],
           "OS-FLV-DISABLED:disabled": False, "links": link(f"flavors/{doc['id']}")}
    if at_least("2.55"):
        out["description"] = doc["description"]
    if at_least("2.61"):
        out["extra_specs"] = doc["extra_specs"]
    return out


def embedded_flavor(doc: Doc) -> Doc:
    """The flavor inside a server body: a copy from 2.47 on, a link before."""
    if not at_least("2.47"):
        return {"id": doc["id"], "links": link(f"flavors/{doc['id']}")[1:]}
    return {"vcpus": doc["vcpus"], "ram": doc["ram"], "disk": doc["disk"],
            "ephemeral": doc["ephemeral"], "swap": doc["swap"], "original_name": doc["name"],
            "extra_specs": doc["extra_specs"]}


def _visible_flavors(store: Store) -> list[Doc]:
    args = flask.request.args
    docs = [d for d in store.list("flavor") if d["is_public"] or caller().is_admin
            or caller().project_id in d["access"]]
    if "is_public" in args and args["is_public"].lower() != "none":
        docs = [d for d in docs if d["is_public"] == truthy(args["is_public"])]
    docs = [d for d in docs if d["ram"] >= args.get("minRam", 0, type=int)
            and d["disk"] >= args.get("minDisk", 0, type=int)]
    return sorted(docs, key=lambda d: (d["ram"], d["id"]))


@bp.get("/flavors")
def list_flavors():
    docs = _visible_flavors(_store())
    out = [{"id": d["id"], "name": d["name"], "links": link(f"flavors/{d['id']}")}
           for d in docs]
    if at_least("2.55"):
        for entry, doc in zip(out, docs, strict=True):
            entry["description"] = doc["description"]
    return {"flavors": out}


@bp.get("/flavors/detail")
def list_flavors_detail():
    return {"flavors": [flavor_view(d) for d in _visible_flavors(_store())]}


@bp.get("/flavors/<flavor_id>")
def show_flavor(flavor_id):
    return {"flavor": flavor_view(find_flavor(_store(), flavor_id))}


@bp.post("/flavors")
def create_flavor():
    require_admin()
    data = body("flavor")
    store = _store()
    with store.transaction():
        flavor_id = str(data.get("id") or new_id())
        if any(d["name"] == data.get("name") for d in store.list("flavor")):
            raise ApiError(409, f"Flavor with name {data.get('name')} already exists.")
        if store.get("flavor", flavor_id):
            raise ApiError(409, f"Flavor with ID {flavor_id} already exists.")
        try:
            doc = _flavor(flavor_id, str(data["name"]), int(data["ram"]), int(data["vcpus"]),
                          int(data["disk"]),
                          ephemeral=int(data.get("OS-FLV-EXT-DATA:ephemeral") or 0),
                          swap=int(data.get("swap") or 0),
                          rxtx_factor=float(data.get("rxtx_factor") or 1.0),
                          is_public=data.get("os-flavor-access:is_public", True) is not False,
                          description=data.get("description"))
        except (KeyError, TypeError, ValueError):
            raise ApiError(400, "Invalid input for field/attribute flavor: name, ram, vcpus "
                                "and disk are required numbers.") from None
        store.put("flavor", doc)
        return {"flavor": flavor_view(doc)}


@bp.delete("/flavors/<flavor_id>")
def delete_flavor(flavor_id):
    require_admin()
    store = _store()
    with store.transaction():
        store.delete("flavor", find_flavor(store, flavor_id)["id"])
    return "", 202


@bp.get("/flavors/<flavor_id>/os-extra_specs")
def get_flavor_specs(flavor_id):
    return {"extra_specs": find_flavor(_store(), flavor_id)["extra_specs"]}


@bp.post("/flavors/<flavor_id>/os-extra_specs")
def set_flavor_specs(flavor_id):
    require_admin()
    specs = {k: str(v) for k, v in body("extra_specs").items()}
    store = _store()
    with store.transaction():
        doc = find_flavor(store, flavor_id)
        doc["extra_specs"].update(specs)
        store.put("flavor", doc)
    return {"extra_specs": specs}


@bp.get("/flavors/<flavor_id>/os-extra_specs/<key>")
def get_flavor_spec(flavor_id, key):
    specs = find_flavor(_store(), flavor_id)["extra_specs"]
    if key not in specs:
        raise ApiError(404, f"Flavor {flavor_id} has no extra specs with key {key}.")
    return {key: specs[key]}


@bp.delete("/flavors/<flavor_id>/os-extra_specs/<key>")
def delete_flavor_spec(flavor_id, key):
    require_admin()
    store = _store()
    with store.transaction():
        doc = find_flavor(store, flavor_id)
        if doc["extra_specs"].pop(key, None) is None:
            raise ApiError(404, f"Flavor {flavor_id} has no extra specs with key {key}.")
        store.put("flavor", doc)
    return "", 200


def _access_view(doc: Doc) -> dict:
    return {"flavor_access": [{"flavor_id": doc["id"], "tenant_id": p} for p in doc["access"]]}


@bp.get("/flavors/<flavor_id>/os-flavor-access")
def flavor_access(flavor_id):
    require_admin()
    doc = find_flavor(_store(), flavor_id)
    if doc["is_public"]:
        raise ApiError(404, "Access list not available for public flavors.")
    return _access_view(doc)


@bp.post("/flavors/<flavor_id>/action")
def flavor_action(flavor_id):
    require_admin()
    data = body()
    store = _store()
    with store.transaction():
        doc = find_flavor(store, flavor_id)
        if "addTenantAccess" in data:
            tenant = data["addTenantAccess"]["tenant"]
            if tenant in doc["access"]:
                raise ApiError(409, f"Flavor access already exists for flavor {flavor_id} "
                                    f"and project {tenant} combination.")
            doc["access"].append(tenant)
        elif "removeTenantAccess" in data:
            tenant = data["removeTenantAccess"]["tenant"]
            if tenant not in doc["access"]:
                raise ApiError(404, f"Flavor access not found for {flavor_id} / {tenant} "
                                    "combination.")
            doc["access"].remove(tenant)
        else:
            raise ApiError(400, f"There is no such action: {', '.join(data)}")
        store.put("flavor", doc)
        return _access_view(doc)


# -- keypairs ---------------------------------------------------------------------------------
def _fingerprint(public_key: str) -> str:
    try:
        serialization.load_ssh_public_key(public_key.encode())
        blob = base64.b64decode(public_key.split()[1])
    except (ValueError, IndexError, TypeError):
        raise ApiError(400, "Keypair data is invalid: failed to generate fingerprint") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def _generate() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public


def _keypair_user() -> str:
    """Admins may act for another user (2.10+ ``user_id``)."""
    user = flask.request.args.get("user_id")
    if user and user != caller().user_id:
        require_admin()
    return user or caller().user_id


def find_keypair(store: Store, name: str, user_id: str | None = None) -> Doc:
    doc = store.get("keypair", f"{user_id or caller().user_id}/{name}")
    if doc is None:
        raise ApiError(404, f"Keypair {name} not found for user {user_id or caller().user_id}")
    return doc


def _keypair_view(doc: Doc, full: bool = False) -> Doc:
    out = {"name": doc["name"], "public_key": doc["public_key"],
           "fingerprint": doc["fingerprint"]}
    if at_least("2.2"):
        out["type"] = doc["type"]
    if full:
        out.update({"user_id": doc["user_id"], "id": doc["seq"], "created_at": doc["created_at"],
                    "deleted": False, "deleted_at": None, "updated_at": None})
    return out


@bp.post("/os-keypairs")
def create_keypair():
    data = body("keypair")
    user = data.get("user_id") or caller().user_id
    if user != caller().user_id:
        require_admin()
    name = data.get("name") or ""
    if not name or len(name) > 255:
        raise ApiError(400, "Keypair data is invalid: Keypair name must be string and "
                            "between 1 and 255 characters long")
    private = None
    public_key = data.get("public_key")
    if not public_key:
        if at_least("2.92"):
            raise ApiError(400, "Invalid input for field/attribute keypair: 'public_key' is "
                                "a required property")
        private, public_key = _generate()
    store = _store()
    with store.transaction():
        if store.get("keypair", f"{user}/{name}"):
            raise ApiError(409, f"Key pair '{name}' already exists.")
        doc = {"id": f"{user}/{name}", "name": name, "user_id": user,
               "project_id": caller().project_id, "public_key": public_key,
               "fingerprint": _fingerprint(public_key), "type": data.get("type", "ssh"),
               "created_at": iso(store.now()), "seq": len(store.list("keypair")) + 1}
        store.put("keypair", doc)
    out = _keypair_view(doc)
    out["user_id"] = user
    if private:
        out["private_key"] = private
    return {"keypair": out}, 201 if at_least("2.2") else 200


@bp.get("/os-keypairs")
def list_keypairs():
    user = _keypair_user()
    return {"keypairs": [{"keypair": _keypair_view(d)} for d in _store().list("keypair")
                         if d["user_id"] == user]}


@bp.get("/os-keypairs/<name>")
def show_keypair(name):
    return {"keypair": _keypair_view(find_keypair(_store(), name, _keypair_user()), full=True)}


@bp.delete("/os-keypairs/<name>")
def delete_keypair(name):
    store = _store()
    with store.transaction():
        store.delete("keypair", find_keypair(store, name, _keypair_user())["id"])
    return "", 202 if not at_least("2.2") else 204


# -- server groups ---------------------------------------------------------------------------
POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


def find_group(store: Store, group_id: str) -> Doc:
    doc = store.get("server_group", group_id)
    if doc is None or not (caller().is_admin or caller().owns(doc)):
        raise ApiError(404, f"Instance group {group_id} could not be found.")
    return doc


def group_view(doc: Doc) -> Doc:
    out = {"id": doc["id"], "name": doc["name"], "members": doc["members"]}
    if at_least("2.64"):
        out.update({"policy": doc["policy"], "rules": doc["rules"]})
    else:
        out.update({"policies": [doc["policy"]], "metadata": {}})
    if at_least("2.13"):
        out.update({"project_id": doc["project_id"], "user_id": doc["user_id"]})
    return out


@bp.post("/os-server-groups")
def create_server_group():
    data = body("server_group")
    policy = data.get("policy") if at_least("2.64") else (data.get("policies") or [None])[0]
    if policy not in POLICIES:
        raise ApiError(400, f"Invalid input for field/attribute policy. Value: {policy}. "
                            f"It must be one of {', '.join(POLICIES)}.")
    store = _store()
    with store.transaction():
        doc = {"id": new_id(), "name": data.get("name") or "", "policy": policy,
               "rules": data.get("rules") or {}, "members": [],
               "project_id": caller().project_id, "user_id": caller().user_id}
        store.put("server_group", doc)
    return {"server_group": group_view(doc)}


@bp.get("/os-server-groups")
def list_server_groups():
    every = caller().is_admin and truthy(flask.request.args.get("all_projects", "0"))
    docs = _store().list("server_group", None if every else caller().project_id)
    return {"server_groups": [group_view(d) for d in docs]}


@bp.get("/os-server-groups/<group_id>")
def show_server_group(group_id):
    return {"server_group": group_view(find_group(_store(), group_id))}


@bp.delete("/os-server-groups/<group_id>")
def delete_server_group(group_id):
    store = _store()
    with store.transaction():
        store.delete("server_group", find_group(store, group_id)["id"])
    return "", 204


# -- zones, limits, quotas -------------------------------------------------------------------
@bp.get("/os-availability-zone")
def availability_zones():
    return {"availabilityZoneInfo": [{"zoneName": cloud().config.availability_zone,
                                      "zoneState": {"available": True}, "hosts": None}]}


@bp.get("/os-availability-zone/detail")
def availability_zones_detail():
    require_admin()
    return {"availabilityZoneInfo": [{
        "zoneName": cloud().config.availability_zone, "zoneState": {"available": True},
        "hosts": {cloud().config.compute_host: {"nova-compute": {
            "available": True, "active": True, "updated_at": iso(_store().now())}}}}]}


QUOTAS = {"instances": 10, "cores": 20, "ram": 51200, "key_pairs": 100, "metadata_items": 128,
          "server_groups": 10, "server_group_members": 10}


def _quotas(project_id: str) -> dict[str, int]:
    """The project's quota set: the defaults, with what an admin set (``PUT``)."""
    return {**QUOTAS, **json.loads(_store().setting(f"quota:{project_id}", "{}"))}


def _usage(project_id: str) -> dict:
    store = _store()
    instances, cores, ram = store.totals("server", project_id, "$.flavor.vcpus", "$.flavor.ram")
    return {"instances": instances, "cores": cores, "ram": ram,
            "server_groups": store.count("server_group", project_id)}


@bp.get("/limits")
def limits():
    used, quotas = _usage(caller().project_id), _quotas(caller().project_id)
    return {"limits": {"rate": [], "absolute": {
        "maxTotalInstances": quotas["instances"], "maxTotalCores": quotas["cores"],
        "maxTotalRAMSize": quotas["ram"], "maxTotalKeypairs": quotas["key_pairs"],
        "maxServerMeta": quotas["metadata_items"], "maxImageMeta": 128,
        "maxServerGroups": quotas["server_groups"],
        "maxServerGroupMembers": quotas["server_group_members"],
        "totalInstancesUsed": used["instances"], "totalCoresUsed": used["cores"],
        "totalRAMUsed": used["ram"], "totalServerGroupsUsed": used["server_groups"]}}}


@bp.get("/os-quota-sets/<project_id>")
@bp.get("/os-quota-sets/<project_id>/detail")
def quota_set(project_id):
    if project_id != caller().project_id:
        require_admin()
    quotas = _quotas(project_id)
    if not flask.request.path.endswith("/detail"):
        return {"quota_set": {"id": project_id, **quotas}}
    used = _usage(project_id)
    return {"quota_set": {"id": project_id, **{
        k: {"limit": v, "in_use": used.get(k, 0), "reserved": 0} for k, v in quotas.items()}}}


@bp.put("/os-quota-sets/<project_id>")
def update_quota_set(project_id):
    """An admin sets some of a project's quotas (the others keep theirs)."""
    require_admin()
    asked = body("quota_set")
    unknown = sorted(set(asked) - set(QUOTAS) - {"force"})
    if unknown or not all(isinstance(asked[k], int) and asked[k] >= -1 for k in asked
                          if k != "force"):
        raise ApiError(400, f"Invalid input for quota_set: {', '.join(unknown) or 'a value'}"
                       " is not a known quota or not an integer >= -1.")
    store = _store()
    with store.transaction():
        store.put_setting(f"quota:{project_id}", json.dumps(
            {**json.loads(store.setting(f"quota:{project_id}", "{}")),
             **{k: v for k, v in asked.items() if k != "force"}}))
    return {"quota_set": _quotas(project_id)}
