"""``site-recovery-protector``: the protection service of one site, under gunicorn.

Before any worker starts: the configuration is checked (a clear message and exit status 2
when it is wrong), the database is migrated, and this site and its peer are registered.
Each worker then builds the app and runs a peer prober.
"""

from __future__ import annotations

import argparse
import os
import sys

from gunicorn.app.base import BaseApplication

from . import config as service_config
from . import db, prober
from .app import create_app


class _Gunicorn(BaseApplication):
    def __init__(self, settings: service_config.ServiceConfig):
        self.settings = settings
        super().__init__()

    def load_config(self):
        for key, value in {"bind": self.settings.bind, "workers": self.settings.workers,
                           "worker_class": "gthread", "threads": 8, "timeout": 120,
                           "accesslog": "-", "post_worker_init": _start_prober}.items():
            self.cfg.set(key, value)

    def load(self):
        return create_app(self.settings)


def _start_prober(worker):
    """gunicorn's post_worker_init hook: ``worker.wsgi`` is this worker's Flask app."""
    app = worker.wsgi
    prober.Prober(app.extensions["sessions"], app.config["SERVICE"]).start()


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
