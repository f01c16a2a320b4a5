"""Version discovery: the documents clients read before their first real call.

novaclient and openstacksdk negotiate the compute microversion from ``GET /compute/v2.1``,
cinderclient reads ``GET /volume/``, keystoneauth walks the roots. Real Cinder and Glance
answer their root with 300 Multiple Choices; the clients accept it.
"""

from __future__ import annotations

import flask

from .identity import public

COMPUTE_MIN, COMPUTE_MAX = "2.1", "2.96"
VOLUME_MIN, VOLUME_MAX = "3.0", "3.71"
IMAGE_VERSIONS = [f"2.{n}" for n in range(16, -1, -1)]   # newest first, as Glance lists them

bp = flask.Blueprint("versions", __name__)


def _href(path: str) -> str:
    return flask.request.host_url.rstrip("/") + path


def _compute_version() -> dict:
    return {"id": "v2.1", "status": "CURRENT", "version": COMPUTE_MAX,
            "min_version": COMPUTE_MIN, "updated": "2013-07-23T11:33:21Z",
            "links": [{"rel": "self", "href": _href("/compute/v2.1/")},
                      {"rel": "describedby", "type": "text/html",
                       "href": "http://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


def _volume_version() -> dict:
    return {"id": "v3.0", "status": "CURRENT", "version": VOLUME_MAX,
            "min_version": VOLUME_MIN, "updated": "2023-08-31T00:00:00Z",
            "links": [{"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": _href("/volume/v3/")}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


@bp.get("/compute")
@bp.get("/compute/")
@public
def compute_root():
    return {"versions": [_compute_version()]}


@bp.get("/compute/v2.1")
@bp.get("/compute/v2.1/")
@public
def compute_v21():
    return {"version": _compute_version()}


@bp.get("/network")
@bp.get("/network/")
@public
def network_root():
    return {"versions": [{"id": "v2.0", "status": "CURRENT",
                          "links": [{"rel": "self", "href": _href("/network/v2.0/")}]}]}


@bp.get("/network/v2.0")
@bp.get("/network/v2.0/")
@public
def network_v20():
    collections = {"network": "networks", "subnet": "subnets", "port": "ports",
                   "security_group": "security-groups",
                   "security_group_rule": "security-group-rules"}
    return {"resources": [
        {"name": name, "collection": coll,
         "links": [{"rel": "self", "href": _href(f"/network/v2.0/{coll}")}]}
        for name, coll in collections.items()]}


@bp.get("/volume")
@bp.get("/volume/")
@public
def volume_root():
    return {"versions": [_volume_version()]}, 300


@bp.get("/volume/v3")
@bp.get("/volume/v3/")
@public
def volume_v3():
    return {"versions": [_volume_version()]}


@bp.get("/image")
@bp.get("/image/")
@bp.get("/image/versions")
@public
def image_versions():
    versions = [{"id": f"v{v}", "status": "CURRENT" if i == 0 else "SUPPORTED",
                 "links": [{"rel": "self", "href": _href("/image/v2/")}]}
                for i, v in enumerate(IMAGE_VERSIONS)]
    return {"versions": versions}, 200 if flask.request.path.endswith("/versions") else 300
