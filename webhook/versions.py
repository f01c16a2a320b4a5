"""``GET /``: the API versions this service speaks, as OpenStack services list theirs, so
a client that finds the service in the catalog (service type ``protector``) can tell
which version to use without a token."""

from __future__ import annotations

from flask import Blueprint, request

bp = Blueprint("versions", __name__)

API_VERSION = "1.0"
UPDATED = "2026-12-07T00:00:00Z"       # the last change to the v1 API


@bp.get("/")
def versions():
    root = request.host_url.rstrip("/")
    return {"versions": [{
        "id": "v1.0", "status": "CURRENT", "version": API_VERSION, "min_version": "1.0",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": f"{root}/v1/"},
                  {"rel": "describedby", "type": "application/json",
                   "href": f"{root}/v1/openapi.json"}]}]}
