"""Who is calling: Keystone tokens, validated by keystonemiddleware's ``auth_token``.

The middleware validates the token against this site's Keystone and sets the caller's
identity headers; views read them through :func:`caller`, which refuses a missing or
invalid token with 401. Health and metrics stay public (load balancers and Prometheus
carry no token).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request
from keystonemiddleware import auth_token
from oslo_config import cfg

from site_recovery.core.config import ServiceConfig
from site_recovery.core.model import DEFAULT_DOMAIN, Project

from .errors import APIError

# Alertmanager carries no Keystone token: its receiver checks a shared secret instead.
PUBLIC_PATHS = ("/healthz", "/metrics", "/v1/openapi.json", "/v1/alerts/alertmanager")


@dataclass(frozen=True)
class Caller:
    user_id: str
    user_name: str
    project_id: str
    project_name: str
    roles: frozenset[str]
    project_domain: str = DEFAULT_DOMAIN

    @property
    def project(self) -> Project:
        """What the caller owns: its project, by domain and name."""
        return Project(self.project_domain, self.project_name)

    @property
    def actor(self) -> dict:
        """How the audit log and operation records name the caller."""
        return {"user": self.user_name, "user_id": self.user_id,
                "project": self.project_name, "project_domain": self.project_domain,
                "roles": sorted(self.roles)}


def caller() -> Caller:
    headers = request.headers
    if headers.get("X-Identity-Status") != "Confirmed" or not headers.get("X-Project-Id"):
        keystone = current_app.config["KEYSTONE_URL"]
        raise APIError("authentication required: send a valid, project-scoped Keystone "
                       "token in X-Auth-Token", status=401,
                       headers={"WWW-Authenticate": f'Keystone uri="{keystone}"'})
    return Caller(user_id=headers.get("X-User-Id", ""), user_name=headers.get("X-User-Name", ""),
                  project_id=headers["X-Project-Id"],
                  project_name=headers.get("X-Project-Name", ""),
                  project_domain=headers.get("X-Project-Domain-Name", DEFAULT_DOMAIN),
                  roles=frozenset(r.strip() for r in headers.get("X-Roles", "").split(",")
                                  if r.strip()))


def protect(wsgi_app, config: ServiceConfig):
    """Put Keystone token validation in front of every path but the public ones."""
    guarded = auth_token.AuthProtocol(wsgi_app, middleware_conf(config))

    def dispatch(environ, start_response):
        if environ.get("PATH_INFO", "") in PUBLIC_PATHS:
            return wsgi_app(environ, start_response)
        return guarded(environ, start_response)

    return dispatch


def middleware_conf(config: ServiceConfig) -> dict:
    """keystonemiddleware's ``auth_token`` settings: the service's own account (its auth
    type and options, a password or an application credential) validates the tokens, at
    the account's region and interface, checking TLS with its CA bundle."""
    account = config.service_account()
    verify, cert = account.get_requests_verify_args()
    region = account.get_region_name("identity")
    return {
        "www_authenticate_uri": str(config.keystone.auth_url),
        "auth_type": account.config["auth_type"],
        **account.config["auth"],
        "interface": account.get_interface("identity"),
        **({"region_name": region} if region else {}),
        "insecure": "false",
        **({"cafile": verify} if isinstance(verify, str) else {}),
        **({"certfile": cert} if isinstance(cert, str) else
           {"certfile": cert[0], "keyfile": cert[1]} if cert else {}),
        "token_cache_time": str(config.keystone.token_cache_time),
        # The app answers 401 itself, in the service's JSON error format.
        "delay_auth_decision": "true",
        "http_connect_timeout": "5",
        "http_request_max_retries": "1",
        # Settings of its own: the options of the account's auth type are registered
        # there, never in the process's global oslo.config.
        "oslo_config_config": cfg.ConfigOpts(),
    }
