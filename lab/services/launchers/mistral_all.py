"""Mistral api, engine, executor, notifier and periodic in ONE process (Mistral venv's python).

    python mistral_all.py --config-file mistral.conf

``mistral-server --server all`` forks one process per service (oslo.service's threading
backend launches through cotyledon), so the in-memory ``fake:/`` transport cannot connect
them. This builds the very service objects that ``mistral.cmd.launch`` builds and starts
them as threads of one process, the API last, so an answering API means the rest is up.
Nothing of Mistral is patched. SIGTERM or SIGINT: stop the services in reverse order, then
``os._exit(0)``, because futurist and oslo.messaging worker threads are not daemons.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

STOP_TIMEOUT = 5.0


def main() -> int:
    # What mistral/cmd/__init__.py does before anything imports oslo_service.service.
    from oslo_service import backend
    backend.init_backend(backend.BackendType.THREADING)

    from mistral import config
    from mistral.api import service as api_service
    from mistral.engine import engine_server
    from mistral.executors import executor_server
    from mistral.notifiers import notification_server
    from mistral.rpc import base as rpc
    from mistral.services import periodic_server
    from oslo_config import cfg
    from oslo_log import log as oslo_logging

    # The same steps as mistral.cmd.launch.main(), without the --server choice.
    config.parse_args(sys.argv[1:])
    oslo_logging.setup(cfg.CONF, "Mistral")
    log = oslo_logging.getLogger("mistral-all")
    rpc.get_transport()

    services = [
        ("executor", executor_server.get_oslo_service()),
        ("notifier", notification_server.get_oslo_service()),
        ("engine", engine_server.get_oslo_service()),
        ("periodic", periodic_server.get_oslo_service()),
    ]
    for name, service in services:
        service.start()
        log.info("mistral-all: %s started", name)
    # Built last: WSGIService binds its port in __init__ and serves from start().
    api = api_service.WSGIService("mistral_api")
    api.start()
    services.append(("api", api))

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("mistral-all serving the API on %s:%s (pid %s)", cfg.CONF.api.host,
             cfg.CONF.api.port, os.getpid())

    while not stop.wait(1.0):
        pass

    log.info("mistral-all stopping")
    for name, service in reversed(services):
        stopper = threading.Thread(target=service.stop, name=f"stop-{name}", daemon=True)
        stopper.start()
        stopper.join(STOP_TIMEOUT)
        if stopper.is_alive():
            log.warning("mistral-all: %s did not stop within %s s", name, STOP_TIMEOUT)
    log.info("mistral-all stopped")
    return 0


if __name__ == "__main__":
    from launch import run_then_exit

    run_then_exit(main)
