"""The application factory: one Flask app serves a site's Nova, Neutron, Cinder and Glance.

All four services share one port and one SQLite file, as in the lab's catalog
(:mod:`site_recovery.lab.layout`): ``/compute/v2.1``, ``/network``,
``/volume/v3/<project>``, ``/image``. Cinder keeps its volumes on the site's simulated
FlashArray (:mod:`site_recovery.storage.fabric`).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

import flask
from werkzeug.exceptions import HTTPException

from site_recovery.storage.fabric import Fabric, FabricArray

from . import (
    cinder,
    cinder_types,
    faults,
    glance,
    manage,
    neutron,
    nova,
    nova_extras,
    versions,
)
from .common import ApiError, error_response, service_of
from .identity import authenticate
from .store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CloudConfig:
    """One site's simulated cloud. Durations are in seconds of the simulation clock."""

    db: str                               # SQLite file of this site's cloud
    fabric: str                           # SQLite file of the simulated FlashArrays
    array: str                            # this site's array in the fabric
    site: str = "site-a"
    keystone_url: str | None = None       # None: trust the identity headers as they come
    service_user: str = "cloud"
    service_password: str = "cloud-pass"
    service_project: str = "service"
    token_cache_time: int = 10
    build_seconds: float = 1.0            # server BUILD -> ACTIVE
    volume_seconds: float = 0.5           # volume creating/managing -> available
    task_seconds: float = 0.2             # attach, detach, stop, start
    array_timeout: float = 30.0
    availability_zone: str = "nova"
    volume_host: str = "cinder@pure#pure"

    @property
    def compute_host(self) -> str:
        return f"{self.site}-compute"


@dataclass
class Cloud:
    """What the blueprints share, kept in ``app.extensions["cloud"]``."""

    config: CloudConfig
    store: Store
    fabric: Fabric

    @property
    def array(self) -> FabricArray:
        return self.fabric.array(self.config.array, timeout=self.config.array_timeout)


def create_app(config: CloudConfig) -> flask.Flask:
    app = flask.Flask(__name__)
    app.json.sort_keys = False
    Path(config.db).parent.mkdir(parents=True, exist_ok=True)
    state = Cloud(config, Store(config.db), Fabric(config.fabric))
    if config.array not in state.fabric.arrays():
        raise ValueError(f"no array {config.array} in fabric {config.fabric}")
    app.extensions["cloud"] = state
    with state.store.transaction():
        cinder.seed(state)

    app.before_request(authenticate)
    app.before_request(faults.apply_request_faults)
    for module in (versions, nova_extras, nova, neutron, cinder, cinder_types, manage, glance,
                   faults):
        app.register_blueprint(module.bp)

    @app.teardown_request
    def release_connections(_exc):
        state.store.release()
        state.fabric.release()

    @app.after_request
    def request_id(response: flask.Response) -> flask.Response:
        rid = f"req-{uuid.uuid4()}"
        response.headers["X-OpenStack-Request-Id"] = rid
        if service_of(flask.request.path) == "compute":
            response.headers["X-Compute-Request-Id"] = rid
        return response

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("%s %s failed", flask.request.method, flask.request.path)
        return error_response(500, f"Unexpected error: {exc}")

    return app
