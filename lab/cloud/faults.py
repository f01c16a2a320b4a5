"""Faults on demand, injected by the lab while the cloud runs.

``POST /_lab/faults`` (admin only) adds one of two things and answers 201 ``{"fault": {...}}``:

* a **request fault**: ``{"service": "compute", "method": "POST", "path": "/servers$",
  "latency": 2.0, "status": 503, "message": "...", "count": 1}``. Requests whose service
  (``compute``, ``network``, ``volume``, ``image``), method and path (a regular expression
  searched in the full URL path) match wait ``latency`` seconds and, if ``status`` is given,
  fail with that code in the service's own error body. Every field is optional; ``count``
  limits how many requests are hit (default: until removed).
* a **behaviour**: ``{"behaviour": NAME, "count": n, "message": "...", "seconds": s}`` for
  the next ``n`` operations of one kind:

  - ``server_build_error``: the server ends its build in ERROR with a ``fault`` carrying
    ``message`` (default "No valid host was found.");
  - ``server_build_delay``: the build takes ``seconds`` instead of the configured time;
  - ``manage_error``: a Cinder manage-existing ends in ``error_managing`` without touching
    the array.

``GET /_lab/faults`` lists what stands, ``DELETE /_lab/faults`` removes everything and
``DELETE /_lab/faults/<id>`` one entry. ``POST /_lab/clock`` ``{"advance": seconds}`` moves
the simulation clock forward (builds, attaches and the like complete sooner).
"""

from __future__ import annotations

import re
import time

import flask

from .common import SERVICES, ApiError, body, cloud, service_of
from .identity import require_admin
from .store import iso, new_id

BEHAVIOURS = ("server_build_error", "server_build_delay", "manage_error")

bp = flask.Blueprint("lab", __name__, url_prefix="/_lab")


def _store():
    return cloud().store


def _request_fault(data: dict) -> dict:
    if data.get("service") not in (None, *SERVICES):
        raise ApiError(400, f"service must be one of {', '.join(SERVICES)}")
    try:
        re.compile(data.get("path") or "")
    except re.error as exc:
        raise ApiError(400, f"invalid path pattern: {exc}") from None
    status = data.get("status")
    if status is not None and not (isinstance(status, int) and 400 <= status <= 599):
        raise ApiError(400, "status must be an HTTP error code (400-599)")
    return {"service": data.get("service"), "method": (data.get("method") or "").upper() or None,
            "path": data.get("path") or "", "latency": float(data.get("latency") or 0),
            "status": status, "message": data.get("message") or "Injected fault."}


@bp.post("/faults")
def add_fault():
    require_admin()
    data = body()
    count = data.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ApiError(400, "count must be a positive integer")
    if "behaviour" in data:
        if data["behaviour"] not in BEHAVIOURS:
            raise ApiError(400, f"behaviour must be one of {', '.join(BEHAVIOURS)}")
        fault = {"behaviour": data["behaviour"], "message": data.get("message"),
                 "seconds": float(data.get("seconds") or 0), "count": count or 1}
    else:
        fault = {**_request_fault(data), "count": count}
    fault["id"] = new_id()
    store = _store()
    with store.transaction():
        store.put("fault", fault)
    return {"fault": fault}, 201


@bp.get("/faults")
def list_faults():
    require_admin()
    return {"faults": _store().list("fault")}


@bp.delete("/faults")
def clear_faults():
    require_admin()
    store = _store()
    with store.transaction():
        for fault in store.list("fault"):
            store.delete("fault", fault["id"])
    return "", 204


@bp.delete("/faults/<fault_id>")
def delete_fault(fault_id):
    require_admin()
    store = _store()
    with store.transaction():
        if not store.delete("fault", fault_id):
            raise ApiError(404, f"No fault {fault_id}.")
    return "", 204


@bp.post("/clock")
def advance_clock():
    require_admin()
    seconds = body().get("advance")
    if not isinstance(seconds, int | float) or seconds < 0:
        raise ApiError(400, "advance must be a number of seconds >= 0")
    store = _store()
    store.advance(seconds)
    return {"now": iso(store.now())}


def _consume(store, fault: dict):
    if fault["count"] is None:
        return
    fault["count"] -= 1
    if fault["count"] > 0:
        store.put("fault", fault)
    else:
        store.delete("fault", fault["id"])


def apply_request_faults():
    """``before_request``: delay or fail the requests that a standing fault matches."""
    service = service_of(flask.request.path)
    if service is None:
        return
    store = _store()

    def hits(f):
        return "behaviour" not in f and f["service"] in (None, service) and \
            f["method"] in (None, flask.request.method) and re.search(f["path"], flask.request.path)

    if not any(hits(f) for f in store.list("fault")):
        return
    with store.transaction():
        matched = [f for f in store.list("fault") if hits(f)]
        for fault in matched:
            _consume(store, fault)
    time.sleep(sum(f["latency"] for f in matched))
    failing = next((f for f in matched if f["status"]), None)
    if failing:
        raise ApiError(failing["status"], failing["message"])


def take_behaviour(store, name: str) -> dict | None:
    """Use up one occurrence of a named behaviour, if one stands (inside a transaction)."""
    fault = next((f for f in store.list("fault") if f.get("behaviour") == name), None)
    if fault is not None:
        _consume(store, dict(fault))
    return fault
