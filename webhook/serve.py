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
from sqlalchemy.orm import Session, sessionmaker

from . import config as service_config
from . import db, prober, starts
from .app import create_app

log = logging.getLogger(__name__)


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

    def load(self):
        return create_app(self.settings)


class Housekeeper(threading.Thread):
    """Each worker's background duties, every ``peer.probe_interval`` seconds: probe the
    peer, and mark operations whose start was lost with a stopped worker."""

    def __init__(self, sessions: sessionmaker[Session], config: service_config.ServiceConfig):
        super().__init__(name="housekeeper", daemon=True)
        self.sessions, self.config = sessions, config
        self._stopped = threading.Event()

    def run(self):
        lost_after = self.config.mistral.timeout * 3 + self.config.mistral.start_wait
        while not self._stopped.wait(self.config.peer.probe_interval):
            for duty in (lambda: prober.probe_once(self.sessions, self.config),
                         lambda: starts.expire_unstarted(self.sessions, lost_after)):
                try:
                    duty()
                except Exception:              # the thread must outlive a bad round
                    log.exception("housekeeping failed")

    def stop(self):
        self._stopped.set()


def _start_housekeeper(worker):
    """gunicorn's post_worker_init hook: ``worker.wsgi`` is this worker's Flask app."""
    app = worker.wsgi
    Housekeeper(app.extensions["sessions"], app.config["SERVICE"]).start()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="site-recovery-protector",
                                     description="The Site Recovery protection service.")
    parser.add_argument("--config", default=os.environ.get("SITE_RECOVERY_CONFIG",
                                                           "/etc/site-recovery/protector.yaml"))
    args = parser.parse_args(argv)
    try:
        settings = service_config.load(args.config)
    except service_config.ConfigError as exc:
        print(f"site-recovery-protector: {exc}", file=sys.stderr)
        return 2
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    prober.ensure_sites(db.session_factory(engine), settings)
    engine.dispose()
    _Gunicorn(settings).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
