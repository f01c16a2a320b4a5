"""The application factory: one Flask app serves a site's Nova, Neutron, Cinder and Glance.

All four services share one port and one SQLite file, as in the lab's catalog
(:mod:`site_recovery.lab.layout`): ``/compute/v2.1``, ``/network``,
``/volume/v3/<project>``, ``/image``. Cinder keeps its volumes on the site's simulated
FlashArray (:mod:`site_recovery.storage.fabric`).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import flask
from werkzeug.exceptions import HTTPException

from site_recovery.storage.fabric import Fabric

from . import (
    cinder,
    cinder_types,
    faults,
    glance,
    manage,
    neutron,
    nova,
    nova_extras,
    transfers,
    versions,
)
from .common import ApiError, error_response, service_of
from .identity import authenticate
from .state import Cloud, CloudConfig
from .store import Store

log = logging.getLogger(__name__)


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
    for module in (versions, nova_extras, nova, neutron, cinder, cinder_types, manage,
                   transfers, glance, faults):
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
