"""The protection service's Flask application factory.

``create_app(config)`` builds the app for one site: database sessions, JSON errors,
versions, health and metrics, request ids, and Keystone token validation in front of the
API. ``load_application`` is what a WSGI server loads (:mod:`.wsgi`); ``build_services``
is what the engine shares with it. Migrations are ``db upgrade``'s, never a start's: an
older schema stops the load.
"""

from __future__ import annotations

import gc
import os

from flask import Flask, g, request
from oslo_middleware import request_id
from oslo_middleware.healthcheck import Healthcheck
from oslo_middleware.http_proxy_to_wsgi import HTTPProxyToWSGI
from oslo_middleware.request_id import RequestId
from sqlalchemy import text
from sqlalchemy.engine import Engine
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from site_recovery.core.clouds import Clouds
from site_recovery.core.config import CONFIG_ENV, DEFAULT_CONFIG, ServiceConfig
from site_recovery.core.config import load as load_config

from . import (
    alerts,
    db,
    errors,
    groups,
    identity,
    internal,
    logs,
    metrics,
    openapi,
    operations,
    preview,
    prober,
    readiness,
    reports,
    schedules,
    sites,
    versions,
)
from .launcher import Launcher, service_session
from .lifecycle import Lifecycle
from .peerlink import PeerLink
from .policy import Policy
from .projects import ProjectIds
from .registry import Registry
from .services import Services, services
from .tenancy import References, TenantClouds


def create_app(config: ServiceConfig, *, engine: Engine | None = None,
               keystone: bool = True, peer: PeerLink | None = None,
               launcher: Launcher | None = None,
               tenants: TenantClouds | None = None,
               references: References | None = None) -> Flask:
    """The app for ``config``'s site. ``keystone=False`` leaves token validation to an
    outer layer (the identity headers are then trusted as they arrive); ``peer``,
    ``launcher``, ``tenants`` and ``references`` replace the links to the peer site, to
    Mistral and to this site's cloud (unit tests)."""
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes     # larger bodies: 413
    app.config["KEYSTONE_URL"] = str(config.keystone.auth_url)   # named in a 401
    engine = engine or db.make_engine(config.database_url, threads=config.threads)
    build_services(config, engine=engine, peer=peer, launcher=launcher, tenants=tenants,
                   references=references).init_app(app)
    errors.install(app)
    for blueprint in (versions.bp, sites.bp, groups.bp, internal.bp, operations.bp,
                      alerts.bp, openapi.bp):
        app.register_blueprint(blueprint)
    app.before_request(_request_context)         # first: every line of the request is tagged
    app.teardown_request(_request_ended)
    metrics.install(app)
    # after the timer: refusals are measured
    app.before_request(services(app).projects.check_caller)

    @app.get("/healthz")
    def healthz():
        """Alive, and the database answers."""
        with services(app).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "site": config.site}

    if keystone:
        app.wsgi_app = identity.protect(app.wsgi_app, config)
    # Outermost first: the request id (every answer carries it, refusals too), then the
    # load balancer's health check, which needs neither a token nor the database.
    drain = config.healthcheck_disable_file
    health = Healthcheck(None, {**_MIDDLEWARE_CONF, "backends": "disable_by_file" if drain
                                else "", **({"disable_by_file_path": str(drain)} if drain
                                            else {})})
    app.wsgi_app = RequestId(HTTPProxyToWSGI(
        DispatcherMiddleware(app.wsgi_app, {"/healthcheck": health}),
        {**_MIDDLEWARE_CONF, "enable_proxy_headers_parsing": True}))
    return app


# oslo.middleware's options, kept in a configuration of their own rather than oslo.config's
# global one (which every app of the process would share).
_MIDDLEWARE_CONF = {"oslo_config_project": "site-recovery", "oslo_config_file": os.devnull}


def load_application(config: ServiceConfig | None = None) -> Flask:
    """protector-api's application, as a WSGI server loads it: the configuration (from
    ``$SITE_RECOVERY_CONFIG`` unless given), logging, a database at this release's
    schema, this site and its peer registered."""
    config = config or load_config(os.environ.get(CONFIG_ENV, DEFAULT_CONFIG))
    logs.setup(config.logging, "protector-api")
    db.require_current(config.database_url)
    app = create_app(config)
    prober.ensure_sites(services(app).sessions, config)
    # What the load made lives as long as the process: out of the collector's sight, a
    # full collection (about 100 ms over it, all threads stopped) no longer lands in the
    # middle of a request.
    gc.freeze()
    return app


def build_services(config: ServiceConfig, *, engine: Engine | None = None,
                   peer: PeerLink | None = None, launcher: Launcher | None = None,
                   tenants: TenantClouds | None = None,
                   references: References | None = None) -> Services:
    """What one site's service is made of, for the API's app and for the engine."""
    engine = engine or db.make_engine(config.database_url)
    sessions = db.session_factory(engine)
    launcher = launcher or Launcher(service_session(config, config.mistral.timeout),
                                    str(config.mistral.url) if config.mistral.url else None)
    clouds = Clouds(config)
    projects = ProjectIds(sessions, config.site, clouds.keystone_project_id)
    clouds.project_ids = projects.resolve
    peer = peer or PeerLink(config)
    lifecycle = Lifecycle(sessions, config, launcher, peer_answers=lambda: prober.healthy(
        str(config.peer.url), config.peer.probe_timeout, config.peer.name,
        config.peer_verify)[0], peer=peer)
    made_reports = reports.Reports(sessions, config, clouds)
    return Services(config, engine, sessions,
                    Policy(config.policy_file, config.internal, own_account=launcher.account),
                    Registry(sessions, config, peer), launcher, lifecycle,
                    tenants or TenantClouds(config), clouds, projects,
                    references or References(clouds, config.site),
                    readiness.Readiness(sessions, config, clouds),
                    preview.Previews(sessions, config, clouds.storage, clouds.connect),
                    made_reports,
                    schedules.DrillSchedules(sessions, config, launcher, lifecycle,
                                             made_reports))


def _request_context():
    """The request's id (oslo.middleware's) as the thread's context until the request
    ends: what log lines and the operations this request starts carry."""
    g.request_context = logs.request_context(
        request.environ.get(request_id.ENV_REQUEST_ID) or "req-none",
        request.environ.get(request_id.GLOBAL_REQ_ID),
        user_id=request.headers.get("X-User-Id"),
        project_id=request.headers.get("X-Project-Id"))
    g.request_context.__enter__()


def _request_ended(_error=None):
    if "request_context" in g:
        g.pop("request_context").__exit__(None, None, None)
