"""Who is calling: the identity headers of keystonemiddleware's ``auth_token``.

The app never sees a token. In the lab :func:`wrap_with_keystone` puts ``auth_token`` in
front of it, which validates the token against the site's Keystone, strips any identity
headers a client forged, and sets ``X-Project-Id``, ``X-Roles`` and friends. Without it (unit
tests) the app trusts those headers as they come. Version documents stay public, as on a
real cloud, so clients can discover microversions before they authenticate.
"""

from __future__ import annotations

from dataclasses import dataclass

import flask
from keystonemiddleware import auth_token
from werkzeug.exceptions import HTTPException

from .common import ApiError
from .state import CloudConfig

WRITER_ROLES = frozenset({"admin", "member", "service"})


@dataclass(frozen=True)
class Caller:
    project_id: str
    project_name: str
    user_id: str
    user_name: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    @property
    def read_only(self) -> bool:
        """A ``reader`` with no role that may write."""
        return not self.roles & WRITER_ROLES

    def owns(self, doc: dict) -> bool:
        return doc.get("project_id") == self.project_id


def public(view):
    """Mark a view as needing no identity (version discovery)."""
    view.public = True
    return view


def caller() -> Caller:
    return flask.g.caller


def require_admin():
    if not caller().is_admin:
        raise ApiError(403, "Policy doesn't allow this operation to be performed: "
                            "admin role required.", "PolicyNotAuthorized")


def authenticate():
    """``before_request``: read the caller, and keep readers from writing."""
    view = flask.current_app.view_functions.get(flask.request.endpoint or "")
    if view is None or getattr(view, "public", False):
        return
    headers = flask.request.headers
    if headers.get("X-Identity-Status", "Confirmed") != "Confirmed" or \
            not headers.get("X-Project-Id"):
        raise ApiError(401, "The request you have made requires authentication.")
    roles = frozenset(r.strip() for r in headers.get("X-Roles", "").split(",") if r.strip())
    flask.g.caller = Caller(headers["X-Project-Id"], headers.get("X-Project-Name", ""),
                            headers.get("X-User-Id", ""), headers.get("X-User-Name", ""), roles)
    if flask.request.method not in ("GET", "HEAD", "OPTIONS") and flask.g.caller.read_only:
        raise ApiError(403, f"Policy doesn't allow {flask.request.method} "
                            f"{flask.request.path} to be performed.", "PolicyNotAuthorized")


def wrap_with_keystone(app: flask.Flask, config: CloudConfig) -> flask.Flask:
    """Validate every token with the site's Keystone (keystonemiddleware ``auth_token``)."""
    protected = auth_token.AuthProtocol(app.wsgi_app, {
        "www_authenticate_uri": config.keystone_url,
        "auth_url": config.keystone_url,
        "auth_type": "password",
        "username": config.service_user,
        "password": config.service_password,
        "project_name": config.service_project,
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "delay_auth_decision": False,
        "include_service_catalog": False,
        "token_cache_time": config.token_cache_time,
    })
    bare = app.wsgi_app

    def is_public(environ) -> bool:
        try:
            endpoint, _ = app.url_map.bind_to_environ(environ).match()
        except HTTPException:
            return False
        return getattr(app.view_functions.get(endpoint), "public", False)

    def dispatch(environ, start_response):
        return (bare if is_public(environ) else protected)(environ, start_response)

    app.wsgi_app = dispatch
    return app
