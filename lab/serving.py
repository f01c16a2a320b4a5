"""A WSGI app served from a background thread: the lab's in-process servers."""

from __future__ import annotations

import logging
import threading

from werkzeug.serving import make_server


class BackgroundServer:
    """Serves one app on ``host:port`` (0 picks a free port) until :meth:`stop`."""

    def __init__(self, host: str, port: int, name: str):
        self.host, self.port, self.name = host, port, name
        self._server = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def _serve(self, app, ssl_context=None):
        try:
            self._server = make_server(self.host, self.port, app, threaded=True,
                                       ssl_context=ssl_context)
        except SystemExit:         # werkzeug exits the process when it cannot bind
            raise OSError(f"{self.name}: cannot listen on {self.host}:{self.port}") from None
        self.port = self._server.port
        # In-process servers (tests, demo, benchmarks) keep quiet; a main() logs requests.
        logging.getLogger("werkzeug").setLevel(
            logging.INFO if logging.getLogger().isEnabledFor(logging.INFO) else logging.WARNING)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name=self.name)
        self._thread.start()

    def stop(self):
        """Stop serving and close the listening socket (idempotent)."""
        if self._server is None:
            return
        self._server.shutdown()
        self._thread.join()          # serve_forever closes the socket on its way out
        self._server = self._thread = None

    def __exit__(self, *exc_info):
        self.stop()
