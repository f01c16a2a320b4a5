"""``site-recovery-protector``: the protection service of one site, under gunicorn.

Before any worker starts: the configuration is checked (a clear message and exit status 2
when it is wrong), the database is migrated, and this site and its peer are registered.
Each worker then builds the app and runs a :class:`Housekeeper`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading

from gunicorn.app.base import BaseApplication

from site_recovery.core import config as service_config
from site_recovery.core.model import DEFAULT_DOMAIN, Project

from . import db, prober
from .app import create_app
from .launcher import Launcher, service_session
from .models import Site
from .projects import ProjectIds
from .services import services

log = logging.getLogger(__name__)
# An operation whose execution Mistral still does not have this long after it was accepted
# lost its start (with its worker): the start pool drains far faster even under a burst.
LOST_START = 300.0
FOLLOW_INTERVAL = 10.0        # seconds between looks at starts and Mistral's executions


class _Gunicorn(BaseApplication):
    def __init__(self, settings: service_config.ServiceConfig):
        self.settings = settings
        super().__init__()

    def load_config(self):
        settings = self.settings
        for key, value in {"bind": settings.bind, "workers": settings.workers,
                           "worker_class": "gthread", "threads": settings.threads,
                           "timeout": 120, "accesslog": "-",
                           "post_worker_init": _start_housekeeper}.items():
            self.cfg.set(key, value)
        if settings.tls:
            self.cfg.set("certfile", str(settings.tls.cert_file))
            self.cfg.set("keyfile", str(settings.tls.key_file))

    def load(self):
        return create_app(self.settings)


class Housekeeper(threading.Thread):
    """Each worker's background duties: probe the peer every ``peer.probe_interval``
    seconds, and catch up with it when it answers again, then fence the original VMs of
    the groups that failed over to it meanwhile; every ``FOLLOW_INTERVAL``, settle the
    starts that went unanswered (the execution found under its planned id, or the
    operation never started), end the operations whose workflow will report no more, and
    fence what is still waiting for it."""

    def __init__(self, app):
        super().__init__(name="housekeeper", daemon=True)
        site = services(app)
        self.sessions, self.registry, self.operations = (site.sessions, site.registry,
                                                         site.operations)
        self.config = site.config
        self._stopped = threading.Event()
        self._caught_up = False

    def run(self):
        rounds = max(1, round(FOLLOW_INTERVAL / self.config.peer.probe_interval))
        round_ = 0
        while not self._stopped.wait(self.config.peer.probe_interval):
            round_ += 1
            duties = [lambda: prober.probe_once(self.sessions, self.config),
                      self.catch_up_once_reachable]
            if round_ % rounds == 0:
                duties += [lambda: self.operations.settle_starts(LOST_START),
                           self.operations.follow_executions,
                           self.operations.fence_returned]
            for duty in duties:
                try:
                    duty()
                except Exception:              # the thread must outlive a bad round
                    log.exception("housekeeping failed")

    def catch_up_once_reachable(self):
        """Whenever the peer answers again (and once after this worker starts), adopt
        what it recorded alone meanwhile, so a failover made while this site was away is
        known here before anyone asks for a failback."""
        with self.sessions() as session:
            reachable = session.get(Site, self.config.peer.name).reachable
        if not reachable:
            self._caught_up = False
        elif not self._caught_up:
            changed = self.registry.sync()
            if changed:
                log.info("caught up with peer site %s: %d objects", self.config.peer.name,
                         changed)
            self._caught_up = changed is not None
            if self._caught_up:          # what failed over meanwhile is fenced first of all
                self.operations.fence_returned()

    def stop(self):
        self._stopped.set()


def _start_housekeeper(worker):
    """gunicorn's post_worker_init hook: ``worker.wsgi`` is this worker's Flask app."""
    Housekeeper(worker.wsgi).start()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="site-recovery-protector",
                                     description="The Site Recovery protection service.")
    parser.add_argument("--config", default=os.environ.get("SITE_RECOVERY_CONFIG",
                                                           "/etc/site-recovery/protector.yaml"))
    commands = parser.add_subparsers(dest="command", metavar="command")
    commands.add_parser("serve", help="serve the API (the default)")
    commands.add_parser("install-workbooks",
                        help="create or replace the DR workbooks in this site's Mistral")
    forget = commands.add_parser(
        "forget-project", help="forget the Keystone project id this site recorded for a "
        "project's domain and name: the next caller (or the DR account) of that name "
        "records its own, and owns what the name owns")
    forget.add_argument("name", help="the project's name")
    forget.add_argument("--domain", default=DEFAULT_DOMAIN, help="its domain's name")
    args = parser.parse_args(argv)
    try:
        settings = service_config.load(args.config)
    except service_config.ConfigError as exc:
        print(f"site-recovery-protector: {exc}", file=sys.stderr)
        return 2
    if args.command == "install-workbooks":
        launcher = Launcher(service_session(settings, settings.mistral.timeout * 6),
                            str(settings.mistral.url) if settings.mistral.url else None)
        for line in launcher.install(settings.engine.capture_schedule,
                                     {"concurrency": settings.engine.concurrency}):
            print(line)
        return 0
    engine = db.make_engine(settings.database_url)
    try:
        db.upgrade(engine)
        if args.command == "forget-project":
            return _forget_project(db.session_factory(engine), settings.site,
                                   Project(args.domain, args.name))
        prober.ensure_sites(db.session_factory(engine), settings)
    finally:
        engine.dispose()
    _Gunicorn(settings).run()
    return 0


def _forget_project(sessions, site: str, project: Project) -> int:
    projects = ProjectIds(sessions, site)
    record = projects.recorded(project)
    if record is None:
        print(f"{site} holds no record of project {project}: nothing to forget")
        return 1
    projects.forget(project)
    print(f"{site} forgot project {project} (id {record.project_id}, recorded from the "
          f"{record.recorded_from} on {record.recorded_at:%Y-%m-%d %H:%M} UTC)")
    return 0

if __name__ == "__main__":
    sys.exit(main())
