"""The protection service's Flask application factory.

``create_app(config)`` builds the app for one site: database sessions, JSON errors,
health and metrics, and Keystone token validation in front of the API. Migrations run
from the console script before the workers start, never in a worker.
"""

from __future__ import annotations

import time

from flask import Flask, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from site_recovery.core.clouds import Clouds
from site_recovery.core.config import ServiceConfig

from . import (
    alerts,
    db,
    errors,
    groups,
    identity,
    internal,
    openapi,
    operations,
    prober,
    sites,
)
from .launcher import Launcher, service_session
from .lifecycle import Lifecycle
from .models import Divergence
from .peerlink import PeerLink
from .policy import Policy
from .projects import ProjectIds
from .registry import Registry
from .services import Services, services
from .tenancy import References, TenantClouds

REQUESTS = Counter("protector_http_requests_total", "HTTP requests served",
                   ["method", "endpoint", "status"])
LATENCY = Histogram("protector_http_request_seconds", "HTTP request latency", ["endpoint"])
DIVERGED = Gauge("protector_diverged_objects", "Groups and mappings whose two sites' copies "
                 "were written apart and wait for one to be kept")
# Label values come from closed sets: any other method is "other", so a client cannot
# grow the metrics without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
    engine = engine or db.make_engine(config.database_url)
    sessions = db.session_factory(engine)
    launcher = launcher or Launcher(service_session(config, config.mistral.timeout),
                                    str(config.mistral.url) if config.mistral.url else None)
    clouds = Clouds(config)
    projects = ProjectIds(sessions, config.site, clouds.keystone_project_id)
    clouds.project_ids = projects.resolve
    peer = peer or PeerLink(config)
    Services(config, engine, sessions,
             Policy(config.policy_file, config.internal, own_account=launcher.account),
             Registry(sessions, config, peer), launcher,
             Lifecycle(sessions, config, launcher, peer_answers=lambda: prober.healthy(
                 str(config.peer.url), config.peer.probe_timeout, config.peer.name,
                 config.peer_verify)[0], peer=peer),
             tenants or TenantClouds(config), clouds, projects,
             references or References(clouds, config.site)).init_app(app)
    errors.install(app)
    for blueprint in (sites.bp, groups.bp, internal.bp, operations.bp,
                      alerts.bp, openapi.bp):
        app.register_blueprint(blueprint)
    _observe(app)
    app.before_request(projects.check_caller)    # after the timer: refusals are measured

    @app.get("/healthz")
    def healthz():
        """Alive, and the database answers."""
        with services(app).engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "site": config.site}

    @app.get("/metrics")
    def metrics():
        with services(app).sessions() as session:
            DIVERGED.set(session.scalar(select(func.count()).select_from(Divergence).where(
                Divergence.open_for.is_not(None))))
        return generate_latest(), 200, {"Content-Type": CONTENT_TYPE_LATEST}

    if keystone:
        app.wsgi_app = identity.protect(app.wsgi_app, config)
    return app


def _observe(app: Flask):
    @app.before_request
    def started():
        g.started = time.perf_counter()

    @app.after_request
    def finished(response):
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        method = request.method if request.method in METHODS else "other"
        REQUESTS.labels(method, endpoint, response.status_code).inc()
        LATENCY.labels(endpoint).observe(time.perf_counter() - g.get("started", 0.0))
        return response
