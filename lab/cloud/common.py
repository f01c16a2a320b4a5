"""What every simulated service shares: errors in each service's own body, request bodies,
microversions, list filters and paging.

Clients parse error bodies to pick their exception class (novaclient and cinderclient read
``{"itemNotFound": {...}}``, neutronclient maps ``NeutronError.type`` to a class), so an
error is raised once as :class:`ApiError` and rendered in the dialect of the service whose
URL was called.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urlencode

import flask

from .state import Cloud

SERVICES = ("compute", "network", "volume", "image")


def cloud() -> Cloud:
    """The site's shared state (config, store, array) of the running app."""
    return flask.current_app.extensions["cloud"]


# Nova and Cinder share the webob fault names.
_FAULT_NAMES = {400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound",
                405: "badMethod", 406: "notAcceptable", 409: "conflictingRequest",
                413: "overLimit", 415: "badMediaType", 429: "overLimit",
                501: "notImplemented", 503: "serviceUnavailable"}
_NEUTRON_TYPES = {400: "BadRequest", 401: "NotAuthorized", 403: "PolicyNotAuthorized",
                  404: "NotFound", 409: "Conflict", 503: "ServiceUnavailable"}
_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
           413: "Request Entity Too Large", 415: "Unsupported Media Type",
           429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
           503: "Service Unavailable"}


class ApiError(Exception):
    """An HTTP error; ``kind`` is Neutron's exception type (ignored by other services)."""

    def __init__(self, status: int, message: str, kind: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"{what} {ident} could not be found.")


def service_of(path: str) -> str | None:
    first = path.strip("/").split("/", 1)[0]
    return first if first in SERVICES else None


def error_body(service: str | None, status: int, message: str,
               kind: str | None = None) -> dict[str, Any]:
    if service == "network":
        return {"NeutronError": {"type": kind or _NEUTRON_TYPES.get(status, "NeutronError"),
                                 "message": message, "detail": ""}}
    if service == "image":
        return {"error": {"code": status, "title": _TITLES.get(status, "Error"),
                          "message": message}}
    name = _FAULT_NAMES.get(status, "computeFault")
    return {name: {"code": status, "message": message}}


def error_response(status: int, message: str, kind: str | None = None) -> flask.Response:
    response = flask.jsonify(error_body(service_of(flask.request.path), status, message, kind))
    response.status_code = status
    return response


# -- request bodies --------------------------------------------------------------------------
def body(key: str | None = None, required: bool = True) -> Any:
    """The JSON request body, or its ``key`` member (400 when missing)."""
    data = flask.request.get_json(force=True, silent=True)
    if key is None:
        return data if data is not None else {}
    if not isinstance(data, dict) or not isinstance(data.get(key), dict | list):
        if not required:
            return {}
        raise ApiError(400, f"Invalid input: the request body needs a '{key}' object.")
    return data[key]


def truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y", "t")


# -- microversions -------------------------------------------------------------------------
def _parse_version(text: str) -> tuple[int, int]:
    major, minor = text.strip().split(".")
    return int(major), int(minor)


def microversion(service: str, legacy_header: str | None, minimum: str,
                 maximum: str) -> tuple[int, int]:
    """The version a request asked for (``OpenStack-API-Version: <service> X.Y`` or the
    legacy header), the minimum when it names none, ``latest`` meaning the maximum; 406
    outside the supported range."""
    requested = None
    for part in flask.request.headers.get("OpenStack-API-Version", "").split(","):
        name, _, value = part.strip().partition(" ")
        if name.lower() == service:
            requested = value.strip()
    if requested is None and legacy_header:
        requested = flask.request.headers.get(legacy_header)
    if not requested:
        return _parse_version(minimum)
    if requested.lower() == "latest":
        return _parse_version(maximum)
    try:
        version = _parse_version(requested)
    except ValueError:
        raise ApiError(400, f"Invalid API version request {requested!r}.") from None
    if not _parse_version(minimum) <= version <= _parse_version(maximum):
        raise ApiError(406, f"Version {requested} is not supported by the API. Minimum is "
                            f"{minimum} and maximum is {maximum}.")
    return version


def version_string(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


# -- lists -------------------------------------------------------------------------------------
def matches(value: Any, wanted: list[str]) -> bool:
    """A query filter match: any of the wanted values, compared as strings."""
    if isinstance(value, bool):
        return any(truthy(w) == value for w in wanted)
    return any(str(value) == w for w in wanted)


def filter_docs(docs: list[dict], keys: list[str]) -> list[dict]:
    """Keep the documents matching every query parameter in ``keys`` that was given."""
    args = flask.request.args
    for key in keys:
        if key in args:
            docs = [d for d in docs if matches(d.get(key), args.getlist(key))]
    return docs


def name_filter(docs: list[dict]) -> list[dict]:
    """Nova's ``name`` filter, a regular expression."""
    pattern = flask.request.args.get("name")
    if pattern is None:
        return docs
    try:
        regex = re.compile(pattern)
    except re.error:
        raise ApiError(400, f"Invalid name filter {pattern!r}.") from None
    return [d for d in docs if regex.search(d.get("name") or "")]


def paginate(docs: list[dict], marker_missing: ApiError | None = None) -> list[dict]:
    """``marker`` (the last id seen), ``limit`` and ``offset``, as the clients page."""
    args = flask.request.args
    marker = args.get("marker")
    if marker:
        ids = [d["id"] for d in docs]
        if marker not in ids:
            raise marker_missing or ApiError(400, f"marker [{marker}] not found")
        docs = docs[ids.index(marker) + 1:]
    offset = args.get("offset", type=int)
    if offset:
        docs = docs[offset:]
    limit = args.get("limit", type=int)
    return docs[:limit] if limit is not None and limit >= 0 else docs


def next_links(page: list[dict]) -> list[dict]:
    """The ``*_links`` of a page that a ``limit`` filled: where the next page starts."""
    limit = flask.request.args.get("limit", type=int)
    if not page or not limit or len(page) < limit:
        return []
    query = {k: v for k, v in flask.request.args.items() if k != "marker"}
    query["marker"] = page[-1]["id"]
    return [{"rel": "next", "href": f"{flask.request.base_url}?{urlencode(query)}"}]


def microversions(attribute: str):
    """``at_least`` and ``since`` for one service's negotiated microversion, which the
    service's blueprint keeps in ``flask.g.<attribute>`` as a (major, minor) tuple."""

    def at_least(version: str) -> bool:
        major, minor = version.split(".")
        return getattr(flask.g, attribute) >= (int(major), int(minor))

    def since(version: str):
        """The API exists from this microversion on (404 below, as the real API answers)."""
        def wrap(view):
            @functools.wraps(view)
            def versioned(*args, **kwargs):
                if not at_least(version):
                    raise ApiError(404, f"API not available before microversion {version}.")
                return view(*args, **kwargs)
            return versioned
        return wrap

    return at_least, since
