"""FlashArray REST 1.x simulator: the lab's arrays, spoken to by the real ``purestorage`` SDK.

One Flask app per simulated array serves the subset of REST 1.x that the DR pack and the
Cinder driver use, over the shared SQLite model in :mod:`site_recovery.storage.fabric`. The
unmodified SDK (and anything built on it) can then run against replicating arrays without
hardware. The wire follows what the SDK expects: HTTPS only, a session cookie re-sent on
every 200, JSON bodies on every method, ``[{"msg", "ctx"}]`` errors with HTTP 400, object
names that are the rest of the path, and an array that is down drops the connection
without answering. The same app also speaks the REST 2.x subset that py-pure-client uses
(:mod:`.flasharray_sim_v2`), over the same model.

Run one array: ``python -m site_recovery.lab.flasharray_sim --fabric F --array fa-a``.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from site_recovery.lab import flasharray_sim_v2
from site_recovery.lab.serving import BackgroundServer
from site_recovery.storage.fabric import ArrayDown, Fabric, FabricArray, PurityError

# What a Purity 6.1 array lists; the SDK picks the newest 1.x it knows (1.19).
API_VERSIONS = [f"1.{n}" for n in range(20)] + [f"2.{n}" for n in range(5)]
CERT_FILE = "flasharray-sim.pem"

log = logging.getLogger(__name__)


# -- request parameters ------------------------------------------------------------------------
def _query_value(value: str) -> Any:
    return {"true": True, "false": False}.get(value.lower(), value)


def _params() -> dict[str, Any]:
    """Query string merged with the JSON body (the SDK sends ``null`` when it has nothing)."""
    request = flask.request
    params: dict[str, Any] = {}
    for key in request.args:
        values = [_query_value(v) for v in request.args.getlist(key)]
        params[key] = values[0] if len(values) == 1 else values
    raw = request.get_data()
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise PurityError("body", "Request body is not valid JSON.") from None
    if body is not None and not isinstance(body, dict):
        raise PurityError("body", "Request body must be a JSON object.")
    params.update(body or {})
    return params


def _take(params: dict[str, Any], key: str) -> Any:
    if key not in params:
        raise PurityError(key, "Missing parameter.")
    return params.pop(key)


def _unsupported(*_: Any) -> Any:
    raise PurityError(flask.request.view_args["rest"], "Not supported by the simulator.")


# -- handlers that choose a model operation from the body ----------------------------------------
def _snapshot_volumes(fa: FabricArray, p: dict) -> Any:
    if not p.pop("snap", False):
        return _unsupported()
    return fa.create_snapshots(_take(p, "source"), **p)


def _volume_post(fa: FabricArray, p: dict, name: str) -> Any:
    if "source" in p:
        return fa.copy_volume(p.pop("source"), name, **p)
    return fa.create_volume(name, _take(p, "size"), **p)


def _volume_put(fa: FabricArray, p: dict, name: str) -> Any:
    if p.get("action") == "recover":
        return fa.recover_volume(name)
    if "name" in p:
        return fa.rename_volume(name, p["name"])
    if "container" in p:
        return fa.move_volume(name, p["container"])
    return _unsupported()


def _volume_delete(fa: FabricArray, p: dict, name: str) -> Any:
    return fa.eradicate_volume(name) if p.get("eradicate") else fa.destroy_volume(name)


def _pgroup_delete(fa: FabricArray, p: dict, name: str) -> Any:
    if p.pop("eradicate", False):
        return fa.eradicate_pgroup(name, **p)
    return fa.destroy_pgroup(name, **p)


def _pod_delete(fa: FabricArray, p: dict, name: str) -> Any:
    return fa.eradicate_pod(name) if p.get("eradicate") else fa.destroy_pod(name)


# Path (after /api/<v>/) -> {method: handler(array, params, *names)}. Names are the rest of the
# path and may hold ':', '::', '.' and '/', so sub-resources are matched first, by suffix.
# Unknown body parameters reach the model, which answers "Invalid parameter." (400).
_ROUTES: list[tuple[re.Pattern[str], dict[str, Callable[..., Any]]]] = [
    (re.compile(pattern), handlers) for pattern, handlers in [
        ("array", {"GET": lambda fa, p: fa.get(**p)}),
        ("array/connection", {"GET": lambda fa, p: fa.list_array_connections(**p)}),
        ("volume", {"GET": lambda fa, p: fa.list_volumes(**p), "POST": _snapshot_volumes}),
        ("volume/(.+)/pgroup/([^/]+)", {
            "POST": lambda fa, p, vol, pg: fa.add_volume(vol, pg),
            "DELETE": lambda fa, p, vol, pg: fa.remove_volume(vol, pg)}),
        ("volume/(.+)/host", {
            "GET": lambda fa, p, vol: fa.list_volume_private_connections(vol, **p)}),
        ("volume/(.+)", {
            "GET": lambda fa, p, vol: fa.get_volume(vol, **p),
            "POST": _volume_post, "PUT": _volume_put, "DELETE": _volume_delete}),
        ("pgroup", {
            "GET": lambda fa, p: fa.list_pgroups(**p),
            "POST": lambda fa, p: fa.create_pgroup_snapshots(_take(p, "source"), **p)}),
        ("pgroup/(.+)", {
            "GET": lambda fa, p, pg: fa.get_pgroup(pg, **p),
            "POST": lambda fa, p, pg: fa.create_pgroup(pg, **p),
            "PUT": lambda fa, p, pg: fa.set_pgroup(pg, **p),
            "DELETE": _pgroup_delete}),
        ("pod", {"GET": lambda fa, p: fa.list_pods(**p)}),
        ("pod/(.+)/array/([^/]+)", {
            "POST": lambda fa, p, pod, array: fa.add_pod(pod, array),
            "DELETE": lambda fa, p, pod, array: fa.remove_pod(pod, array, **p)}),
        ("pod/(.+)", {
            "GET": lambda fa, p, pod: fa.get_pod(pod, **p),
            "POST": lambda fa, p, pod: fa.create_pod(pod, **p),
            "PUT": lambda fa, p, pod: fa.set_pod(pod, **p),
            "DELETE": _pod_delete}),
        ("host", {"GET": lambda fa, p: fa.list_hosts(**p)}),
        ("host/([^/]+)/volume/(.+)", {
            "POST": lambda fa, p, host, vol: fa.connect_host(host, vol, **p),
            "DELETE": lambda fa, p, host, vol: fa.disconnect_host(host, vol)}),
        ("host/([^/]+)/volume", {
            "GET": lambda fa, p, host: fa.list_host_connections(host, **p)}),
        ("host/([^/]+)", {
            "POST": lambda fa, p, host: fa.create_host(host, **p),
            "DELETE": lambda fa, p, host: fa.delete_host(host)}),
    ]
]


# -- responses -----------------------------------------------------------------------------------
def _error(status: int, ctx: Any, msg: str) -> flask.Response:
    response = flask.jsonify([{"msg": msg, "ctx": ctx}])
    response.status_code = status
    return response


class _NoAnswer:
    """A response body that aborts the connection before the status line goes out."""

    def __iter__(self):
        raise ConnectionAbortedError("array is down")


def _hang_up() -> flask.Response:
    """Look like a powered-off array: close the TCP connection without any HTTP answer."""
    sock = flask.request.environ.get("werkzeug.socket")
    if sock is not None:
        sock.shutdown(socket.SHUT_RDWR)
    return flask.Response(_NoAnswer())


class _Sessions:
    """REST sessions by cookie; a session expires after ``ttl`` seconds without use."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._last_use: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        sid = secrets.token_hex(16)
        now = time.monotonic()
        with self._lock:
            self._last_use = {s: t for s, t in self._last_use.items() if now - t <= self.ttl}
            self._last_use[sid] = now
        return sid

    def touch(self, sid: str | None) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last_use.get(sid or "")
            if last is None or now - last > self.ttl:
                self._last_use.pop(sid or "", None)
                return False
            self._last_use[sid] = now
            return True

    def close(self, sid: str):
        with self._lock:
            self._last_use.pop(sid, None)


# -- the app ------------------------------------------------------------------------------------
def create_app(fabric: Fabric, array: str, *, session_ttl: float = 3600.0) -> flask.Flask:
    """The app of one array of ``fabric``: REST 1.x here, REST 2.x from flasharray_sim_v2."""
    fa = fabric.array(array)       # no timeout: latency faults delay the answer
    sessions = _Sessions(session_ttl)
    app = flask.Flask(__name__)
    app.teardown_request(lambda _exc: fabric.release())

    @app.before_request
    def gate():
        if not fabric.is_up(array):
            raise ArrayDown(array)
        version = (flask.request.view_args or {}).get("version")
        if version is None:         # api_version, or an unknown path (404 follows)
            return None
        if version not in API_VERSIONS:
            raise NotFound(f"REST API version {version} is not supported.")
        if version.startswith("2."):    # sessions by header: flasharray_sim_v2
            return None
        if flask.request.endpoint == "session" and flask.request.method == "POST":
            return None
        sid = flask.request.cookies.get("session")
        if not sessions.touch(sid):
            return _error(401, "session", "Session is missing or has expired.")
        flask.g.session = sid
        return None

    @app.after_request
    def renew_cookie(response: flask.Response) -> flask.Response:
        # The SDK drops its cookie jar on any 200 that does not set the cookie.
        sid = flask.g.get("session")
        if response.status_code == 200 and sid:
            response.set_cookie("session", sid, secure=True, httponly=True)
        return response

    app.register_blueprint(flasharray_sim_v2.blueprint(
        fabric, array, fa, _Sessions(session_ttl), _hang_up))

    @app.get("/api/api_version")
    def api_version():
        return flask.jsonify(version=API_VERSIONS)

    @app.route("/api/<version>/auth/session", methods=["POST", "DELETE"])
    def session(version: str):
        if flask.request.method == "DELETE":
            sessions.close(flask.g.pop("session"))
            response = flask.jsonify({})
            response.delete_cookie("session")
            return response
        token = _params().get("api_token")
        expected = fabric.api_token(array)
        if not isinstance(token, str) or \
                not secrets.compare_digest(token.encode(), expected.encode()):
            raise PurityError("api_token", "invalid credentials")
        flask.g.session = sessions.open()
        return flask.jsonify(username="pureuser")

    @app.route("/api/<version>/<path:rest>", methods=["GET", "POST", "PUT", "DELETE"])
    def dispatch(version: str, rest: str):
        params = _params()
        for pattern, handlers in _ROUTES:
            match = pattern.fullmatch(rest)
            if match:
                handler = handlers.get(flask.request.method)
                if handler is None:
                    raise MethodNotAllowed(valid_methods=list(handlers))
                return flask.jsonify(handler(fa, params, *match.groups()))
        raise NotFound(f"No such resource: {rest}")

    @app.errorhandler(PurityError)
    def purity_error(exc: PurityError):
        return _error(400, exc.ctx, exc.msg)

    @app.errorhandler(ArrayDown)
    def array_down(exc: ArrayDown):
        return _hang_up()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return _error(exc.code or 500, flask.request.path, exc.description or exc.name)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.exception("%s: %s %s failed", array, flask.request.method, flask.request.path)
        return _error(500, flask.request.path, f"Simulator error: {type(exc).__name__}: {exc}")

    return app


# -- TLS and the server --------------------------------------------------------------------------
def ensure_certificate(cert_dir: str | Path) -> Path:
    """A self-signed key and certificate (one PEM) for 127.0.0.1 and localhost.

    Made once per directory and reused; published with a hard link, which fails when the
    file exists, so of two array processes starting at once the first one's certificate
    is the one both serve (a rename would let the second replace the file the first had
    already loaded, and clients trusting the file would then refuse the first array).
    """
    cert_dir = Path(cert_dir)
    path = cert_dir / CERT_FILE
    if path.exists():
        return path
    cert_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()) + \
        cert.public_bytes(serialization.Encoding.PEM)
    fd, tmp = tempfile.mkstemp(dir=cert_dir, suffix=".tmp")       # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        os.link(tmp, path)
    except FileExistsError:
        pass                                  # another process published first: use its
    finally:
        os.unlink(tmp)
    return path


class SimulatorServer(BackgroundServer):
    """One simulated array served over HTTPS by a background thread.

    ``address`` ("host:port") is what the SDK takes as its target. ``port=0`` picks a free
    port; ``port`` holds the bound one once started. ``cert_file`` (key and certificate,
    PEM) can serve as a CA bundle for clients that verify TLS.
    """

    def __init__(self, fabric: Fabric, array: str, host: str = "127.0.0.1", port: int = 0,
                 session_ttl: float = 3600.0, cert_dir: str | Path | None = None):
        super().__init__(host, port, name=f"flasharray-sim-{array}")
        self.fabric = fabric
        self.array = array
        self.session_ttl = session_ttl
        self.cert_dir = cert_dir
        self.cert_file: Path | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> SimulatorServer:
        """Listen and serve; connections are accepted as soon as this returns."""
        if self.running:
            return self
        if self.cert_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="flasharray-sim-")
        self.cert_file = ensure_certificate(self.cert_dir or self._tmp.name)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file)
        self._serve(create_app(self.fabric, self.array, session_ttl=self.session_ttl), context)
        return self

    def stop(self):
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

def main(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(
        prog="python -m site_recovery.lab.flasharray_sim",
        description="Serve one simulated FlashArray (REST 1.x and 2.x over HTTPS) until SIGTERM.")
    parser.add_argument("--fabric", required=True, help="SQLite fabric file")
    parser.add_argument("--array", required=True, help="name of the array in the fabric")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default) picks a free port")
    parser.add_argument("--cert-dir", help="where the TLS certificate is kept (default: temp)")
    parser.add_argument("--session-ttl", type=float, default=3600.0,
                        help="seconds an unused REST session stays valid")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    fabric = Fabric(args.fabric)
    if args.array not in fabric.arrays():
        parser.error(f"no array {args.array} in fabric {args.fabric}")
    # Block the signals before any thread starts, so that only sigwait() receives them.
    signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    with SimulatorServer(fabric, args.array, args.host, args.port, args.session_ttl,
                         args.cert_dir) as server:
        print(f"{args.array} serving https://{server.address}", flush=True)
        received = signal.sigwait(signals)
        log.info("%s: %s, stopping", args.array, signal.Signals(received).name)


if __name__ == "__main__":
    main()
