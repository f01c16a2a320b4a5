"""FlashArray REST 2.x for the simulator: the subset that py-pure-client's FlashArray uses.

Served by the same Flask app as REST 1.x (:mod:`.flasharray_sim`) and over the same
:class:`FabricArray`, so a 1.x and a 2.x client can share one simulated array and each sees
what the other did. Every answer is built from the model's 1.x views, so the two APIs
cannot disagree. The wire follows what the unmodified client expects: ``POST /login``
trades the ``api-token`` header for an ``x-auth-token`` session header; objects are named
by query parameters (``names``, ``group_names``, ``member_names`` ...) and changed by JSON
bodies; lists are ``{"items", "continuation_token", "more_items_remaining",
"total_item_count"}`` paged by ``limit`` with continuation tokens (or ``offset``); times
are milliseconds since the epoch; errors are ``{"errors": [{"context", "message"}]}``
with HTTP 400 (the client retries or raises on other codes instead of answering).

Not modelled, so refused with "Not supported by the simulator.": recovering destroyed
protection groups, pods and their snapshots, renaming pgroups and pods, demoting pods,
cloning pods or pgroups, ``filter`` other than on the name (``name='<name>'``, or
``name='<prefix>*'``, as Purity's filters match). Destroyed pgroups, pgroup snapshots and pods are
listed by name only: the model keeps no listing of them but its inventory.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import BaseConverter

from site_recovery.storage.fabric import ArrayDown, Fabric, FabricArray, PurityError
from site_recovery.storage.fabric.records import pod_of

UNSUPPORTED = "Not supported by the simulator."
_NAME_FILTER = re.compile(r"^name='([^'*]*)(\*?)'$")

log = logging.getLogger(__name__)


class Rest2Version(BaseConverter):
    """``2.<n>`` only, tried before a plain segment, so 1.x paths keep their own routes."""

    regex = r"2\.\d+"
    weight = 50


# -- request parameters --------------------------------------------------------------------------
def _names(key: str) -> list[str] | None:
    """A comma-separated query parameter (how the client sends every list)."""
    value = flask.request.args.get(key)
    return None if value is None else [name for name in value.split(",") if name]


def _required(key: str) -> list[str]:
    names = _names(key)
    if not names:
        raise PurityError(key, "Missing parameter.")
    return names


def _flag(key: str) -> bool | None:
    value = flask.request.args.get(key)
    if value is None:
        return None
    if value.lower() not in ("true", "false"):
        raise PurityError(key, "Invalid value.")
    return value.lower() == "true"


def _count(key: str) -> int | None:
    value = flask.request.args.get(key)
    if value is None:
        return None
    if not value.isdigit():
        raise PurityError(key, "Invalid value.")
    return int(value)


def _body(allowed: set[str]) -> dict[str, Any]:
    """The JSON body; a field the simulator does not act on is refused, never ignored."""
    raw = flask.request.get_data()
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise PurityError("body", "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise PurityError("body", "Request body must be a JSON object.")
    for key in body:
        if key not in allowed:
            raise PurityError(key, UNSUPPORTED)
    return body


def _ref_name(value: Any, key: str) -> str:
    """The name in a reference (``{"name": ...}``)."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise PurityError(key, "Invalid reference: a name is required.")
    return value["name"]


def _only_true(body: dict, key: str) -> bool:
    """Whether the body sets ``key`` to true; false would recover, which is not modelled."""
    if key not in body:
        return False
    if body[key] is not True:
        raise PurityError(key, UNSUPPORTED)
    return True


# -- views -------------------------------------------------------------------------------------
def _ms(iso_time: str | None) -> int | None:
    """REST 2.x times: the model's ISO-8601 seconds as milliseconds since the epoch."""
    if iso_time is None:
        return None
    moment = datetime.strptime(iso_time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1000


def _ref(name: str | None) -> dict | None:
    return {"name": name} if name else None


def _compact(item: dict) -> dict:
    return {key: value for key, value in item.items() if value is not None}


def _is_replica(pgroup: str) -> bool:
    """``source:pg`` names a replicated group on its target; ``pod::pg`` is local."""
    return ":" in pgroup.replace("::", "")


def _volume(view: dict) -> dict:
    remaining = view.get("time_remaining")
    return {"name": view["name"], "serial": view["serial"], "provisioned": view["size"],
            "created": _ms(view["created"]), "destroyed": remaining is not None,
            "time_remaining": None if remaining is None else remaining * 1000,
            "source": _ref(view["source"]), "pod": _ref(pod_of(view["name"])),
            "subtype": "regular", "space": {"total_provisioned": view["size"]}}


def _snapshot(view: dict) -> dict:
    name, source = view["name"], view["source"]
    suffix = name[len(source) + 1:] if name.startswith(f"{source}.") else None
    remaining = view.get("time_remaining")
    return {"name": name, "serial": view["serial"], "provisioned": view["size"],
            "created": _ms(view["created"]), "destroyed": remaining is not None,
            "time_remaining": None if remaining is None else remaining * 1000,
            "source": _ref(source), "suffix": suffix, "pod": _ref(pod_of(name))}


def _pgroup(group: dict, schedule: dict, retention: dict) -> dict:
    name = group["name"]

    def policy(prefix: str) -> dict:
        return {"all_for_sec": retention[f"{prefix}all_for"],
                "per_day": retention[f"{prefix}per_day"], "days": retention[f"{prefix}days"]}

    return {"name": name, "destroyed": False, "is_local": not _is_replica(name),
            "pod": _ref(pod_of(name)), "source": _ref(group["source"]),
            "host_count": 0, "host_group_count": 0, "volume_count": len(group["volumes"]),
            "target_count": len(group["targets"] or []),
            "replication_schedule": {"enabled": schedule["replicate_enabled"],
                                     "frequency": schedule["replicate_frequency"] * 1000},
            "snapshot_schedule": {"enabled": schedule["snap_enabled"],
                                  "frequency": schedule["snap_frequency"] * 1000},
            "source_retention": policy(""), "target_retention": policy("target_")}


def _destroyed(name: str) -> dict:
    """What is known of a destroyed object the model only lists in its inventory."""
    return {"name": name, "destroyed": True, "pod": _ref(pod_of(name))}


def _pgroup_snapshot(view: dict) -> dict:
    source, suffix = view["name"].rsplit(".", 1)
    return {"name": view["name"], "created": _ms(view["created"]), "destroyed": False,
            "source": _ref(source), "suffix": suffix,
            "pod": _ref(pod_of(view["name"]))}


def _transfer(view: dict) -> dict:
    return {"name": view["name"], "destroyed": False, "started": _ms(view["started"]),
            "completed": _ms(view["completed"]), "progress": view["progress"],
            "data_transferred": view["data_transferred"],
            "physical_bytes_written": view["physical_bytes_written"]}


def _pod(view: dict) -> dict:
    arrays = [{"name": a["name"], "id": a["array_id"], "status": a["status"],
               "mediator_status": a["mediator_status"], "frozen_at": _ms(a["frozen_at"])}
              for a in view["arrays"]]
    return {"name": view["name"], "destroyed": False, "arrays": arrays,
            "array_count": len(arrays), "mediator": "purestorage",
            "failover_preferences": [{"name": n} for n in view["failover_preference"]],
            "promotion_status": view["promotion_status"],
            "requested_promotion_state": view["requested_promotion_state"],
            "link_source_count": view["link_source_count"],
            "link_target_count": view["link_target_count"]}


# -- listings ------------------------------------------------------------------------------------
def _named(items: list[dict], missing: str, key: str = "names") -> list[dict]:
    """The items named by ``key``; naming one that does not exist is an error, as on Purity."""
    wanted = _names(key)
    if wanted is None:
        return items
    found = {item["name"] for item in items}
    for name in wanted:
        if name not in found:
            raise PurityError(name, missing)
    return [item for item in items if item["name"] in wanted]


def _sourced(items: list[dict]) -> list[dict]:
    wanted = _names("source_names")
    return items if wanted is None else [i for i in items if i["source"]["name"] in wanted]


def _by_state(items: list[dict]) -> list[dict]:
    """``destroyed=true|false`` keeps one side; without it both are listed."""
    destroyed = _flag("destroyed")
    return items if destroyed is None else [i for i in items if i["destroyed"] == destroyed]


def _members(pairs: list[dict]) -> list[dict]:
    for key, side in (("group_names", "group"), ("member_names", "member")):
        wanted = _names(key)
        if wanted is not None:
            pairs = [pair for pair in pairs if pair[side]["name"] in wanted]
    return pairs


def _token(offset: int) -> str:
    """Opaque to the client; bound to the path so it cannot page another listing."""
    state = json.dumps({"path": flask.request.path, "offset": offset})
    return base64.urlsafe_b64encode(state.encode()).decode()


def _start() -> int:
    token = flask.request.args.get("continuation_token")
    if token is None:
        return _count("offset") or 0
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode()))
        if state["path"] == flask.request.path and isinstance(state["offset"], int):
            return state["offset"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        pass
    raise PurityError("continuation_token", "Invalid continuation token.")


def _sort(items: list[dict]) -> list[dict]:
    """``sort=field,-field``: top-level fields, missing values first."""
    for key in reversed(_names("sort") or []):
        field = key.lstrip("-")
        items = sorted(items, key=lambda i: (i.get(field) is not None, i.get(field)),
                       reverse=key.startswith("-"))
    return items


def _filtered(items: list[dict]) -> list[dict]:
    """``filter=name='<name>'`` or ``name='<prefix>*'``: the subset the client uses."""
    text = flask.request.args.get("filter")
    if text is None:
        return items
    match = _NAME_FILTER.match(text.strip())
    if match is None:
        raise PurityError("filter", UNSUPPORTED)
    literal, wildcard = match.groups()
    return [i for i in items
            if (i["name"].startswith(literal) if wildcard else i["name"] == literal)]


def _listing(items: list[dict]) -> flask.Response:
    """One page of ``items`` and how to ask for the next."""
    items = _sort(_filtered(items))
    start, limit = _start(), _count("limit")
    end = len(items) if limit is None else min(start + limit, len(items))
    more = end < len(items)
    return flask.jsonify(items=[_compact(i) for i in items[start:end]],
                         continuation_token=_token(end) if more else None,
                         more_items_remaining=more, total_item_count=len(items))


def _items(items: list[dict]) -> flask.Response:
    return flask.jsonify(items=[_compact(i) for i in items])


def _done() -> flask.Response:
    return flask.jsonify({})


# -- arrays and connections ----------------------------------------------------------------------
def _arrays_get(fa: FabricArray) -> flask.Response:
    array = fa.get()
    return _listing([{"name": array["array_name"], "id": array["id"], "os": "Purity//FA",
                      "version": array["version"]}])


def _array_connections_get(fa: FabricArray) -> flask.Response:
    connections = [{"name": c["array_name"], "id": c["id"], "status": c["status"],
                    "type": c["type"], "version": c["version"],
                    "management_address": c["management_address"],
                    "replication_addresses": [c["replication_address"]],
                    "replication_transport": "ip", "throttle": {}}
                   for c in fa.list_array_connections()]
    return _listing(_named(connections, "Array connection does not exist."))


def _connections_get(fa: FabricArray) -> flask.Response:
    volumes, hosts = _names("volume_names"), _names("host_names")
    for volume in volumes or []:
        fa.get_volume(volume)                   # "Volume does not exist." for a wrong name
    return _listing([{"host": {"name": c["name"]}, "lun": c["lun"], "volume": {"name": c["vol"]}}
                     for c in fa.list_hosts(all=True)
                     if (volumes is None or c["vol"] in volumes) and
                     (hosts is None or c["name"] in hosts)])


# -- volumes and their snapshots -----------------------------------------------------------------
def _volumes_get(fa: FabricArray) -> flask.Response:
    volumes = [_volume(v) for v in fa.list_volumes(pending=True)]
    return _listing(_named(_by_state(volumes), "Volume does not exist."))


def _volumes_post(fa: FabricArray) -> flask.Response:
    body = _body({"provisioned", "source"})
    overwrite = bool(_flag("overwrite"))
    created = []
    for name in _required("names"):
        if "source" in body:
            view = fa.copy_volume(_ref_name(body["source"], "source"), name, overwrite=overwrite)
        elif type(body.get("provisioned")) is int and body["provisioned"] > 0:
            view = fa.create_volume(name, body["provisioned"])
        else:
            raise PurityError("provisioned", "Invalid volume size.")
        created.append(_volume(view))
    return _items(created)


def _volumes_patch(fa: FabricArray) -> flask.Response:
    body = _body({"destroyed", "name", "pod"})
    changed = []
    for name in _required("names"):
        if "name" in body:
            name = fa.rename_volume(name, body["name"])["name"]
        if "pod" in body:                       # {"name": ""} moves it out of its pod
            name = fa.move_volume(name, _ref_name(body["pod"], "pod"))["name"]
        if body.get("destroyed") is True:
            fa.destroy_volume(name)
        elif body.get("destroyed") is False:
            fa.recover_volume(name)
        changed.append(_volume(fa.get_volume(name, pending=True)))
    return _items(changed)


def _volumes_delete(fa: FabricArray) -> flask.Response:
    for name in _required("names"):
        fa.eradicate_volume(name)
    return _done()


def _volume_snapshots_get(fa: FabricArray) -> flask.Response:
    snapshots = [_snapshot(s) for s in fa.list_volumes(snap=True, pending=True)]
    return _listing(_named(_sourced(_by_state(snapshots)), "Snapshot does not exist."))


# -- protection groups ---------------------------------------------------------------------------
def _pgroups(fa: FabricArray) -> list[dict]:
    schedules = {s["name"]: s for s in fa.list_pgroups(schedule=True)}
    retentions = {r["name"]: r for r in fa.list_pgroups(retention=True)}
    live = [_pgroup(g, schedules[g["name"]], retentions[g["name"]]) for g in fa.list_pgroups()
            if g["name"] in schedules and g["name"] in retentions]
    known = {g["name"] for g in live}
    return live + [_destroyed(name) for name in fa.fabric.inventory(fa.name)["pgroups"]
                   if name not in known]


def _pgroups_named(fa: FabricArray, names: list[str]) -> list[dict]:
    return [g for g in _pgroups(fa) if g["name"] in names]


def _pgroups_get(fa: FabricArray) -> flask.Response:
    return _listing(_named(_by_state(_pgroups(fa)), "Protection group does not exist."))


def _pgroups_post(fa: FabricArray) -> flask.Response:
    if "source_names" in flask.request.args:
        raise PurityError("source_names", UNSUPPORTED)
    names = _required("names")
    for name in names:
        fa.create_pgroup(name)
    return _items(_pgroups_named(fa, names))


_SCHEDULES = {"replication_schedule": "replicate", "snapshot_schedule": "snap"}
_RETENTIONS = {"source_retention": "", "target_retention": "target_"}


def _pgroup_changes(body: dict) -> dict[str, Any]:
    """A PATCH body as the model's ``set_pgroup`` changes (frequencies in seconds)."""
    changes: dict[str, Any] = {}
    for key, prefix in _SCHEDULES.items():
        schedule = body.get(key) or {}
        for field in schedule:
            if field not in ("enabled", "frequency"):
                raise PurityError(f"{key}.{field}", UNSUPPORTED)
        if "enabled" in schedule:
            changes[f"{prefix}_enabled"] = bool(schedule["enabled"])
        if "frequency" in schedule:
            frequency = schedule["frequency"]
            if not isinstance(frequency, int) or frequency <= 0 or frequency % 1000:
                raise PurityError(f"{key}.frequency", "Invalid value.")
            changes[f"{prefix}_frequency"] = frequency // 1000
    for key, prefix in _RETENTIONS.items():
        retention = body.get(key) or {}
        for field, value in retention.items():
            column = {"all_for_sec": "all_for", "per_day": "per_day", "days": "days"}.get(field)
            if column is None:
                raise PurityError(f"{key}.{field}", UNSUPPORTED)
            changes[prefix + column] = value
    return changes


def _pgroups_patch(fa: FabricArray) -> flask.Response:
    body = _body({"destroyed", *_SCHEDULES, *_RETENTIONS})
    changes, destroy = _pgroup_changes(body), _only_true(body, "destroyed")
    names = _required("names")
    for name in names:
        if changes:
            fa.set_pgroup(name, **changes)
        if destroy:
            fa.destroy_pgroup(name)
    return _items(_pgroups_named(fa, names))


def _pgroups_delete(fa: FabricArray) -> flask.Response:
    for name in _required("names"):
        fa.eradicate_pgroup(name)
    return _done()


def _pgroup_pairs(fa: FabricArray, kind: str) -> list[dict]:
    """Group-member pairs: ``kind`` is ``volumes`` or ``targets`` (which carry ``allowed``)."""
    pairs = []
    for group in fa.list_pgroups():
        if kind == "volumes":
            pairs += [{"group": {"name": group["name"]}, "member": {"name": volume}}
                      for volume in group["volumes"]]
        else:
            pairs += [{"group": {"name": group["name"]}, "member": {"name": target["name"]},
                       "allowed": target["allowed"]} for target in group["targets"] or []]
    return pairs


def _pgroup_members(kind: str, add: str, remove: str) -> dict[str, Callable[..., Any]]:
    """GET, POST and DELETE of ``protection-groups/<kind>``; ``add`` and ``remove`` name
    the model's ``set_pgroup`` lists."""

    def get(fa: FabricArray) -> flask.Response:
        groups = {g["name"] for g in fa.list_pgroups()}
        for group in _names("group_names") or []:
            if group not in groups:
                raise PurityError(group, "Protection group does not exist.")
        return _listing(_members(_pgroup_pairs(fa, kind)))

    def change(fa: FabricArray, key: str) -> list[str]:
        members = _required("member_names")
        for group in _required("group_names"):
            fa.set_pgroup(group, **{key: members})
        return members

    def post(fa: FabricArray) -> flask.Response:
        change(fa, add)
        return _items(_members(_pgroup_pairs(fa, kind)))

    def delete(fa: FabricArray) -> flask.Response:
        change(fa, remove)
        return _done()

    return {"GET": get, "POST": post, "DELETE": delete}


def _pgroup_targets_patch(fa: FabricArray) -> flask.Response:
    """On a target array: allow (or disallow) the replicas of a source's group."""
    body = _body({"allowed"})
    if not isinstance(body.get("allowed"), bool):
        raise PurityError("allowed", "Invalid value.")
    for member in _names("member_names") or []:
        if member != fa.name:
            raise PurityError(member, "Only the local array can allow a protection group.")
    for group in _required("group_names"):
        fa.set_pgroup(group, allowed=body["allowed"])
    return _items(_members(_pgroup_pairs(fa, "targets")))


# -- protection group snapshots ------------------------------------------------------------------
def _pgroup_snapshots(fa: FabricArray) -> list[dict]:
    live = [_pgroup_snapshot(s) for s in fa.list_pgroups(snap=True)]
    known = {s["name"] for s in live}
    return live + [{**_destroyed(name), "source": _ref(name.rsplit(".", 1)[0])}
                   for name in fa.fabric.inventory(fa.name)["pgroup_snapshots"]
                   if name not in known]


def _pgroup_snapshots_get(fa: FabricArray) -> flask.Response:
    snapshots = _sourced(_by_state(_pgroup_snapshots(fa)))
    return _listing(_named(snapshots, "Protection group snapshot does not exist."))


def _pgroup_snapshots_post(fa: FabricArray) -> flask.Response:
    body = _body({"suffix"})
    if _flag("for_replication"):
        raise PurityError("for_replication", UNSUPPORTED)
    flags = {key: value for key in ("replicate_now", "replicate", "apply_retention")
             if (value := _flag(key)) is not None}
    if body.get("suffix") is not None:
        flags["suffix"] = body["suffix"]
    taken = fa.create_pgroup_snapshots(_required("source_names"), **flags)
    return _items([_pgroup_snapshot(s) for s in taken])


def _pgroup_snapshots_patch(fa: FabricArray) -> flask.Response:
    body = _body({"destroyed"})
    names = _required("names")
    if _only_true(body, "destroyed"):
        for name in names:
            fa.destroy_pgroup(name)
    return _items([s for s in _pgroup_snapshots(fa) if s["name"] in names])


def _pgroup_snapshots_delete(fa: FabricArray) -> flask.Response:
    for name in _required("names"):
        fa.eradicate_pgroup(name)
    return _done()


def _pgroup_snapshot_transfers_get(fa: FabricArray) -> flask.Response:
    """Replication progress: on a target, of the replica; on the source, of all targets."""
    transfers = [{**_transfer(t), "source": {"name": t["source"]}}
                 for t in fa.list_pgroups(snap=True, transfer=True)]
    transfers = _named(_sourced(_by_state(transfers)), "Protection group snapshot does not "
                                                        "exist.")
    return _listing([{k: v for k, v in t.items() if k != "source"} for t in transfers])


# -- pods ----------------------------------------------------------------------------------------
def _pods(fa: FabricArray) -> list[dict]:
    live = [_pod(p) for p in fa.list_pods()]
    known = {p["name"] for p in live}
    return live + [{"name": name, "destroyed": True}
                   for name in fa.fabric.inventory(fa.name)["pods"] if name not in known]


def _pods_named(fa: FabricArray, names: list[str]) -> list[dict]:
    return [p for p in _pods(fa) if p["name"] in names]


def _failover_preferences(body: dict) -> list[str]:
    preferences = body["failover_preferences"]
    if not isinstance(preferences, list):
        raise PurityError("failover_preferences", "Invalid value.")
    return [_ref_name(p, "failover_preferences") for p in preferences]


def _pods_get(fa: FabricArray) -> flask.Response:
    return _listing(_named(_by_state(_pods(fa)), "Pod does not exist."))


def _pods_post(fa: FabricArray) -> flask.Response:
    body = _body({"failover_preferences"})
    names = _required("names")
    for name in names:
        fa.create_pod(name)
        if "failover_preferences" in body:
            fa.set_pod(name, failover_preference=_failover_preferences(body))
    return _items(_pods_named(fa, names))


def _pods_patch(fa: FabricArray) -> flask.Response:
    body = _body({"destroyed", "failover_preferences", "requested_promotion_state"})
    if body.get("requested_promotion_state", "promoted") != "promoted":
        raise PurityError("requested_promotion_state", UNSUPPORTED)   # pods stay promoted
    destroy = _only_true(body, "destroyed")
    names = _required("names")
    for name in names:
        if "failover_preferences" in body:
            fa.set_pod(name, failover_preference=_failover_preferences(body))
        if destroy:
            fa.destroy_pod(name)
    return _items(_pods_named(fa, names))


def _pods_delete(fa: FabricArray) -> flask.Response:
    for name in _required("names"):
        fa.eradicate_pod(name)
    return _done()


def _pod_arrays(fa: FabricArray) -> list[dict]:
    return [{"group": {"name": pod["name"]}, "member": {"name": a["name"], "id": a["array_id"]}}
            for pod in fa.list_pods() for a in pod["arrays"]]


def _pod_arrays_get(fa: FabricArray) -> flask.Response:
    return _listing(_members(_pod_arrays(fa)))


def _pod_arrays_post(fa: FabricArray) -> flask.Response:
    arrays = _required("member_names")
    for pod in _required("group_names"):
        for array in arrays:
            fa.add_pod(pod, array)
    return _items(_members(_pod_arrays(fa)))


def _pod_arrays_delete(fa: FabricArray) -> flask.Response:
    flags = {"with_unknown": True} if _flag("with_unknown") else {}
    arrays = _required("member_names")
    for pod in _required("group_names"):
        for array in arrays:
            fa.remove_pod(pod, array, **flags)
    return _done()


# Resource path (after /api/2.<n>/) -> {method: handler(array)}; objects are named by the query.
RESOURCES: dict[str, dict[str, Callable[[FabricArray], flask.Response]]] = {
    "arrays": {"GET": _arrays_get},
    "array-connections": {"GET": _array_connections_get},
    "connections": {"GET": _connections_get},
    "volumes": {"GET": _volumes_get, "POST": _volumes_post, "PATCH": _volumes_patch,
                "DELETE": _volumes_delete},
    "volume-snapshots": {"GET": _volume_snapshots_get},
    "protection-groups": {"GET": _pgroups_get, "POST": _pgroups_post, "PATCH": _pgroups_patch,
                          "DELETE": _pgroups_delete},
    "protection-groups/volumes": _pgroup_members("volumes", "addvollist", "remvollist"),
    "protection-groups/targets": {**_pgroup_members("targets", "addtargetlist", "remtargetlist"),
                                  "PATCH": _pgroup_targets_patch},
    "protection-group-snapshots": {
        "GET": _pgroup_snapshots_get, "POST": _pgroup_snapshots_post,
        "PATCH": _pgroup_snapshots_patch, "DELETE": _pgroup_snapshots_delete},
    "protection-group-snapshots/transfer": {"GET": _pgroup_snapshot_transfers_get},
    "pods": {"GET": _pods_get, "POST": _pods_post, "PATCH": _pods_patch, "DELETE": _pods_delete},
    "pods/arrays": {"GET": _pod_arrays_get, "POST": _pod_arrays_post,
                    "DELETE": _pod_arrays_delete},
}


# -- the blueprint -------------------------------------------------------------------------------
def _errors(status: int, context: Any, message: str) -> flask.Response:
    response = flask.jsonify(errors=[{"context": context, "message": message}])
    response.status_code = status
    return response


def blueprint(fabric: Fabric, array: str, fa: FabricArray, sessions: Any,
              hang_up: Callable[[], flask.Response]) -> flask.Blueprint:
    """REST 2.x of ``array``. ``sessions`` opens, touches and closes session tokens (the
    1.x simulator's kind, a store of its own); ``hang_up`` answers for an array that is
    down. The app's own gate has already refused unknown versions and powered-off arrays."""
    bp = flask.Blueprint("rest2", __name__, url_prefix="/api/<rest2:version>")
    bp.record_once(lambda state: state.app.url_map.converters.setdefault("rest2", Rest2Version))
    public = {f"{bp.name}.login", f"{bp.name}.logout"}

    @bp.before_request
    def authenticate():
        if flask.request.endpoint in public:
            return None
        if not sessions.touch(flask.request.headers.get("x-auth-token")):
            return _errors(401, "x-auth-token", "Session is missing or has expired.")
        return None

    @bp.after_request
    def echo_request_id(response: flask.Response) -> flask.Response:
        # The client reads X-Request-ID back to page with the same request id.
        response.headers["X-Request-ID"] = \
            flask.request.headers.get("X-Request-ID") or str(uuid.uuid4())
        return response

    @bp.post("/login")
    def login(version: str):
        token = flask.request.headers.get("api-token", "")
        if not secrets.compare_digest(token.encode(), fabric.api_token(array).encode()):
            return _errors(401, "api-token", "invalid credentials")
        response = flask.jsonify(items=[{"username": "pureuser"}])
        response.headers["x-auth-token"] = sessions.open()
        return response

    @bp.post("/logout")
    def logout(version: str):
        sessions.close(flask.request.headers.get("x-auth-token", ""))
        return _done()

    @bp.route("/<path:resource>", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    def dispatch(version: str, resource: str):
        handlers = RESOURCES.get(resource)
        if handlers is None:
            raise NotFound(f"No such resource: {resource}")
        handler = handlers.get(flask.request.method)
        if handler is None:
            raise MethodNotAllowed(valid_methods=list(handlers))
        return handler(fa)

    @bp.errorhandler(PurityError)
    def purity_error(exc: PurityError):
        return _errors(400, exc.ctx, exc.msg)

    @bp.errorhandler(ArrayDown)
    def array_down(exc: ArrayDown):
        return hang_up()

    @bp.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _errors(exc.code or 500, flask.request.path, exc.description or exc.name)

    @bp.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("%s: %s %s failed", array, flask.request.method, flask.request.path)
        return _errors(500, flask.request.path, f"Simulator error: {type(exc).__name__}")

    return bp
