"""Serving a site's simulated cloud: in a background thread, or as the lab's process.

``python -m site_recovery.lab.cloud --site site-a --port 15001 --db D --fabric F`` serves
until SIGTERM on 127.0.0.1 with a threaded werkzeug server; with ``--keystone-url`` every
request but version discovery needs a token the site's Keystone accepts.
"""

from __future__ import annotations

import argparse
import logging
import signal

from site_recovery.lab.layout import HOST, SiteLayout
from site_recovery.lab.serving import BackgroundServer

from .app import create_app
from .identity import wrap_with_keystone
from .state import CloudConfig

log = logging.getLogger(__name__)


class CloudServer(BackgroundServer):
    """A site's cloud app served by a background thread; ``port=0`` picks a free port."""

    def __init__(self, app, host: str = HOST, port: int = 0):
        super().__init__(host, port, name="cloud")
        self.app = app

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> CloudServer:
        if not self.running:
            self._serve(self.app)
        return self

    def __enter__(self) -> CloudServer:
        return self.start()

def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(
        prog="python -m site_recovery.lab.cloud",
        description="Serve one site's simulated Nova, Neutron, Cinder and Glance until "
                    "SIGTERM.")
    parser.add_argument("--site", default="site-a")
    parser.add_argument("--port", type=int, help="default: the site's cloud port in the layout")
    parser.add_argument("--db", required=True, help="SQLite file of this cloud")
    parser.add_argument("--fabric", required=True, help="SQLite file of the simulated arrays")
    parser.add_argument("--array", help="this site's array (default: pure-<site>)")
    parser.add_argument("--keystone-url", help="validate tokens here (default: trust the "
                                               "X-Project-Id/X-Roles headers)")
    parser.add_argument("--service-user", default="cloud")
    parser.add_argument("--service-password", default="cloud-pass")
    parser.add_argument("--service-project", default="service")
    parser.add_argument("--build-seconds", type=float, default=1.0)
    parser.add_argument("--volume-seconds", type=float, default=0.5)
    parser.add_argument("--task-seconds", type=float, default=0.2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    layout = SiteLayout.for_site(args.site)
    config = CloudConfig(db=args.db, fabric=args.fabric, array=args.array or layout.array_name,
                         site=args.site, keystone_url=args.keystone_url,
                         service_user=args.service_user,
                         service_password=args.service_password,
                         service_project=args.service_project,
                         build_seconds=args.build_seconds, volume_seconds=args.volume_seconds,
                         task_seconds=args.task_seconds)
    try:
        app = create_app(config)
    except ValueError as exc:
        parser.error(str(exc))
    if config.keystone_url:
        wrap_with_keystone(app, config)
    # Block the signals before any thread starts, so that only sigwait() receives them.
    signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    port = layout.port("cloud") if args.port is None else args.port
    with CloudServer(app, HOST, port) as server:
        print(f"{args.site} cloud serving {server.url}", flush=True)
        received = signal.sigwait(signals)
        log.info("%s cloud: %s, stopping", args.site, signal.Signals(received).name)
