"""Driving the simulated cloud without Keystone: for tests, and for the lab until its
Keystone is up.

:func:`wrap_with_tokens` turns a token of the form ``<project>:<role,role>[:<user>]``
(say ``ecommerce:member,reader``) into the identity headers keystonemiddleware would
set, so unmodified clients can authenticate with keystoneauth's ``token_endpoint`` /
``admin_token`` plugin.
:class:`Client` does the same for Flask's test client, per project and roles.
"""

from __future__ import annotations

from typing import Any

import flask

_IDENTITY = ("X-Identity-Status", "X-Project-Id", "X-Project-Name", "X-User-Id",
             "X-User-Name", "X-Roles")


def identity_headers(project: str, roles: str = "member,reader",
                     user: str | None = None) -> dict[str, str]:
    user = user or f"{project}-user"
    return {"X-Identity-Status": "Confirmed", "X-Project-Id": project,
            "X-Project-Name": project, "X-User-Id": user, "X-User-Name": user,
            "X-Roles": roles}


def wrap_with_tokens(app: flask.Flask) -> flask.Flask:
    """Stand in for :func:`~.identity.wrap_with_keystone`: the identity comes from the
    ``X-Auth-Token``, and identity headers a client sent are dropped, as ``auth_token``
    drops them."""
    inner = app.wsgi_app

    def dispatch(environ, start_response):
        for header in _IDENTITY:
            environ.pop("HTTP_" + header.upper().replace("-", "_"), None)
        project, _, rest = environ.get("HTTP_X_AUTH_TOKEN", "").partition(":")
        roles, _, user = rest.partition(":")
        if project:
            for header, value in identity_headers(project, roles, user or None).items():
                environ["HTTP_" + header.upper().replace("-", "_")] = value
        return inner(environ, start_response)

    app.wsgi_app = dispatch
    return app


class Client:
    """Flask's test client acting as one project with some roles; JSON in, JSON out."""

    def __init__(self, app: flask.Flask, project: str, roles: str = "member,reader",
                 user: str | None = None, headers: dict[str, str] | None = None):
        self.http = app.test_client()
        self.project = project
        self.headers = {**identity_headers(project, roles, user), **(headers or {})}

    def call(self, method: str, path: str, json: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any]:
        response = self.http.open(path, method=method, json=json,
                                  headers={**self.headers, **(headers or {})})
        return response.status_code, response.get_json(silent=True)

    def get(self, path: str, **kwargs) -> tuple[int, Any]:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs) -> tuple[int, Any]:
        return self.call("POST", path, json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs) -> tuple[int, Any]:
        return self.call("PUT", path, json, **kwargs)

    def delete(self, path: str, **kwargs) -> tuple[int, Any]:
        return self.call("DELETE", path, **kwargs)
