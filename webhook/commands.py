"""``site-recovery-protector``: one site's protection service, from the command line.

- ``api`` (also ``protector-api``): the API under gunicorn. Any WSGI server may serve
  :mod:`site_recovery.webhook.wsgi` instead; this is the one the package brings.
- ``engine`` (also ``protector-engine``): the background duties (:mod:`.engine`); run one
  or more per site.
- ``db upgrade``: migrate the database; the services refuse to start on an older schema.
- ``install-workbooks``, ``forget-project``: one-off administration.

A configuration that cannot be used ends the command with a message naming the setting,
and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile

from site_recovery.core import config as service_config
from site_recovery.core.model import DEFAULT_DOMAIN, Project

try:
    from gunicorn.app.base import BaseApplication

    from . import db, logs, prober
    from .projects import ProjectIds
except ImportError as missing:     # a base install (Mistral's venv) has no service extra
    WITHOUT_SERVICE: ImportError | None = missing
else:
    WITHOUT_SERVICE = None

log = logging.getLogger(__name__)
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
ACCESS_LOG = ('%(h)s %(t)s "%(r)s" %(s)s %(b)s %(M)sms %({x-openstack-request-id}o)s '
              'global=%({x-openstack-request-id}i)s "%(a)s"')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="site-recovery-protector",
                                     description="The Site Recovery protection service.")
    parser.add_argument("--config", default=os.environ.get(service_config.CONFIG_ENV,
                                                           service_config.DEFAULT_CONFIG))
    commands = parser.add_subparsers(dest="command", metavar="command", required=True)
    commands.add_parser("api", help="serve the API under gunicorn")
    commands.add_parser("engine", help="run the background duties (probing the peer, "
                        "following operations, fencing)")
    database = commands.add_parser("db", help="the service's database")
    database.add_argument("action", choices=["upgrade", "current"],
                          help="upgrade: migrate it to this release's schema; current: "
                          "print its revision and this release's")
    commands.add_parser("install-workbooks",
                        help="create or replace the DR workbooks in this site's Mistral")
    forget = commands.add_parser(
        "forget-project", help="forget the Keystone project id this site recorded for a "
        "project's domain and name: the next caller (or the DR account) of that name "
        "records its own, and owns what the name owns")
    forget.add_argument("name", help="the project's name")
    forget.add_argument("--domain", default=DEFAULT_DOMAIN, help="its domain's name")
    args = parser.parse_args(argv)
    if WITHOUT_SERVICE is not None:
        print(f"site-recovery-protector: {WITHOUT_SERVICE.name} is not installed: the "
              "service needs pip install 'site-recovery[service]'", file=sys.stderr)
        return 2
    try:
        settings = service_config.load(args.config)
        return COMMANDS[args.command](settings, args)
    except (service_config.ConfigError, db.SchemaNotCurrent) as exc:
        print(f"site-recovery-protector: {exc}", file=sys.stderr)
        return 2


def api(argv=None) -> int:
    """``protector-api [--config FILE]``."""
    return main([*(sys.argv[1:] if argv is None else argv), "api"])


def engine(argv=None) -> int:
    """``protector-engine [--config FILE]``."""
    return main([*(sys.argv[1:] if argv is None else argv), "engine"])


def _serve_api(settings: service_config.ServiceConfig, _args) -> int:
    db.require_current(settings.database_url)
    # Before the app's modules are imported: prometheus_client picks its kind of
    # counters when it is first imported (the workers import the app in load()).
    metrics_dir = _metrics_dir()

    class Gunicorn(BaseApplication):
        def load_config(self):
            for key, value in {"bind": settings.bind, "workers": settings.workers,
                               "worker_class": "gthread", "threads": settings.threads,
                               "timeout": 120, "accesslog": "-",
                               # each line with the request id it answered, and the
                               # caller's own (a peer's request that caused it)
                               "access_log_format": ACCESS_LOG,
                               "child_exit": _worker_exited}.items():
                self.cfg.set(key, value)
            if settings.tls:
                self.cfg.set("certfile", str(settings.tls.cert_file))
                self.cfg.set("keyfile", str(settings.tls.key_file))

        def load(self):
            from .app import load_application
            return load_application(settings)

    try:
        Gunicorn().run()
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _metrics_dir() -> str | None:
    """Prometheus' multiprocess directory, emptied before any worker starts (a count of
    a previous run would add to this one's). One of our own when the environment names
    none, removed at the end."""
    given = os.environ.get(METRICS_DIR)
    if given:
        for entry in os.scandir(given):
            if entry.name.endswith(".db"):
                os.unlink(entry.path)
        return None
    made = tempfile.mkdtemp(prefix="site-recovery-metrics-")
    os.environ[METRICS_DIR] = made
    return made


def _worker_exited(_server, worker):
    from . import metrics
    metrics.worker_exited(worker.pid)


def _run_engine(settings: service_config.ServiceConfig, _args) -> int:
    from .app import build_services
    from .engine import Engine, Leadership, coordination_url

    logs.setup(settings.logging, "protector-engine")
    db.require_current(settings.database_url)
    site = build_services(settings)
    prober.ensure_sites(site.sessions, settings)
    member = f"{socket.gethostname()}-{os.getpid()}"
    duties = Engine(site, Leadership(coordination_url(settings), settings.site, member))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: duties.stop())
    log.info("engine %s of %s starts", member, settings.site)
    try:
        duties.run()
    finally:
        site.close()
    log.info("engine %s of %s stopped", member, settings.site)
    return 0


def _database(settings: service_config.ServiceConfig, args) -> int:
    engine = db.make_engine(settings.database_url)
    try:
        if args.action == "upgrade":
            db.upgrade(engine)
            prober.ensure_sites(db.session_factory(engine), settings)
        print(f"{settings.site}: database at revision {db.revision(engine)} "
              f"(this release: {db.head()})")
    finally:
        engine.dispose()
    return 0


def _install_workbooks(settings: service_config.ServiceConfig, _args) -> int:
    from .launcher import Launcher, service_session

    launcher = Launcher(service_session(settings, settings.mistral.timeout * 6),
                        str(settings.mistral.url) if settings.mistral.url else None)
    for line in launcher.install(settings.engine.capture_schedule,
                                 {"concurrency": settings.engine.concurrency}):
        print(line)
    return 0


def _forget_project(settings: service_config.ServiceConfig, args) -> int:
    engine = db.make_engine(settings.database_url)
    try:
        db.require_current(engine)
        projects = ProjectIds(db.session_factory(engine), settings.site)
        project = Project(args.domain, args.name)
        record = projects.recorded(project)
        if record is None:
            print(f"{settings.site} holds no record of project {project}: nothing to forget")
            return 1
        projects.forget(project)
    finally:
        engine.dispose()
    print(f"{settings.site} forgot project {project} (id {record.project_id}, recorded "
          f"from the {record.recorded_from} on {record.recorded_at:%Y-%m-%d %H:%M} UTC)")
    return 0


COMMANDS = {"api": _serve_api, "engine": _run_engine, "db": _database,
            "install-workbooks": _install_workbooks, "forget-project": _forget_project}

if __name__ == "__main__":
    sys.exit(main())
