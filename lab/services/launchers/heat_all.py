"""heat-api, heat-api-cfn and heat-engine in ONE process, run with the Heat venv's python.

    python heat_all.py --api-port P [--cfn-port P] [--host H] --config-file heat.conf

Heat 27 ships no ``heat-all`` and no standalone ``heat-api``, and the broker-less
``fake://`` transport only connects RPC clients and servers of one process. So this builds
the real WSGI applications (the same ``init_application`` the ``heat-wsgi-api`` script
uses, and the ``heat-api-cfn`` pipeline of the same ``api-paste.ini``), starts the real
``EngineService`` with oslo.service's threading backend, and serves HTTP with a threaded
wsgiref server. Nothing of Heat is patched. SIGTERM or SIGINT: stop serving, stop the
engine (bounded wait), exit.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref import simple_server

ENGINE_STOP_TIMEOUT = 5.0
ACCESS = logging.getLogger("heat.lab.access")


class _Server(ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


class _Handler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):
        ACCESS.info("%s %s", self.address_string(), format % args)


def _our_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--cfn-port", type=int, default=0)
    ours, rest = parser.parse_known_args()
    # Heat's init_application() lets oslo.config parse sys.argv: leave it only its own options.
    sys.argv = [sys.argv[0], *rest]
    return ours


def _serve(app, host: str, port: int) -> _Server:
    server = simple_server.make_server(host, port, app, server_class=_Server,
                                       handler_class=_Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     name=f"http-{port}", daemon=True).start()
    return server


def main() -> int:
    ours = _our_options()

    from oslo_service import backend
    # What heat-engine does, before anything imports oslo_service.service.
    backend.init_backend(backend.BackendType.THREADING)

    from heat.api.openstack import wsgi as api_wsgi
    from heat.common import config
    from heat.engine import template
    from oslo_config import cfg
    from oslo_log import log as oslo_logging

    # Parses the configuration, sets up logging and the (fake) transport, builds heat-api.
    api_app = api_wsgi.init_application()
    log = oslo_logging.getLogger("heat-all")
    cfn_app = config.load_paste_app("heat-api-cfn") if ours.cfn_port else None

    # What heat-engine's launch_engine() checks before it starts the service.
    config.startup_sanity_check()
    manager = template._get_template_extension_manager()
    if not manager or not manager.names():
        log.critical("no template format plugins registered")
        return 1

    from heat.engine import service as engine_service
    from heat.rpc import api as rpc_api

    engine = engine_service.EngineService(cfg.CONF.host, rpc_api.ENGINE_TOPIC)
    engine.start()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    servers = [_serve(api_app, ours.host, ours.api_port)]
    if cfn_app is not None:
        servers.append(_serve(cfn_app, ours.host, ours.cfn_port))
    log.info("heat-all serving heat-api on %s:%s%s (engine %s, pid %s)", ours.host,
             ours.api_port, f" and heat-api-cfn on port {ours.cfn_port}" if cfn_app else "",
             engine.engine_id, os.getpid())

    while not stop.wait(1.0):
        pass

    log.info("heat-all stopping")
    for server in servers:
        server.shutdown()
        server.server_close()
    stopper = threading.Thread(target=engine.stop, name="engine-stop", daemon=True)
    stopper.start()
    stopper.join(ENGINE_STOP_TIMEOUT)
    if stopper.is_alive():
        log.warning("engine did not stop within %s s; exiting anyway", ENGINE_STOP_TIMEOUT)
    log.info("heat-all stopped")
    return 0


if __name__ == "__main__":
    from launch import run_then_exit

    run_then_exit(main)
