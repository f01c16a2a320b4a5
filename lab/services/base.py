"""What the supervisor needs to run one lab process, and how it knows it is up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import requests
from urllib3.exceptions import InsecureRequestWarning

# Liveness probes of the lab's own loopback services skip TLS verification (the arrays'
# certificate is self-signed); one process-wide filter, as warnings.catch_warnings is not
# thread-safe and the supervisor probes from several threads.
warnings.filterwarnings("ignore", category=InsecureRequestWarning,
                        message=r".*host '127\.0\.0\.1'")

LAUNCHERS = Path(__file__).resolve().parent / "launchers"
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass(frozen=True)
class ServiceSpec:
    """One process of a site: how to start it and how to tell it answers."""

    name: str                        # "keystone", "heat", ...
    argv: tuple[str, ...]
    cwd: Path
    log: Path
    ready_url: str                   # answers (any status below 500) once the service is up
                                     # ("": it serves nothing; ready_log tells instead)
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 10.0
    port: int | None = None          # the port it listens on, if it serves at all
    ready_log: str | None = None     # a line it logs once it is up (one serving nothing)


def service_env(venv: Path) -> dict[str, str]:
    """Environment additions for a service process and its admin commands."""
    return {"PYTHONWARNINGS": "ignore", "PYTHONUNBUFFERED": "1",
            "PATH": f"{venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def run_once(marker: Path, key: str, steps, log: Path, env: dict[str, str]):
    """Run the commands ``steps`` unless ``marker`` already records ``key``."""
    if marker.exists() and marker.read_text() == key:
        return
    with open(log, "a") as out:
        for argv in steps:
            try:
                subprocess.run(argv, check=True, timeout=600, stdout=out,
                               stderr=subprocess.STDOUT, cwd=marker.parent,
                               env={**os.environ, **env})
            except subprocess.CalledProcessError:
                raise RuntimeError(f"{' '.join(argv[:3])}... failed; see {log}") from None
    marker.write_text(key)


class NotReady(RuntimeError):
    pass


def probe(url: str, timeout: float = 2.0) -> int | str:
    """The HTTP status ``url`` answers with, or why it did not answer.

    The lab's arrays serve a self-signed certificate; a liveness probe does not verify it.
    """
    try:
        return requests.get(url, timeout=timeout, verify=False).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


def wait_ready(url: str, timeout: float, *, alive=lambda: True, log: Path | None = None):
    """Poll ``url`` until it answers below 500, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not alive():
            raise NotReady(f"{url}: the process exited{_tail(log)}")
        status = probe(url)
        if isinstance(status, int) and status < 500:
            return
        last = f"HTTP {status}" if isinstance(status, int) else status
        time.sleep(0.1)
    raise NotReady(f"{url} not ready within {timeout:g} s ({last}){_tail(log)}")


def wait_logged(log: Path, offset: int, marker: str, timeout: float, *, alive=lambda: True):
    """Wait until ``log`` holds ``marker`` after ``offset`` (a service serving nothing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise NotReady(f"{log}: the process exited{_tail(log)}")
        if log.exists():
            with open(log, "rb") as text:
                text.seek(offset)
                if marker.encode() in text.read():
                    return
        time.sleep(0.1)
    raise NotReady(f"{log} never said {marker!r} within {timeout:g} s{_tail(log)}")


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


def start(spec: ServiceSpec) -> subprocess.Popen:
    """Start the service in its own session (so stopping it takes its children too)."""
    spec.log.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.log, "ab") as log:
        return subprocess.Popen(spec.argv, cwd=spec.cwd, env={**os.environ, **spec.env},
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)


def stop_group(pid: int, timeout: float = 10.0) -> bool:
    """SIGTERM the process group, then SIGKILL what is left after ``timeout``.

    Returns whether anything was running.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        _reap(pid)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _reap(pid: int):
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def start_and_wait(spec: ServiceSpec, timeout: float = 120.0) -> subprocess.Popen:
    """Start the service and wait until it answers; stop it again if it never does."""
    logged = spec.log.stat().st_size if spec.log.exists() else 0
    process = start(spec)
    try:
        if spec.ready_log:
            wait_logged(spec.log, logged, spec.ready_log, timeout,
                        alive=lambda: process.poll() is None)
        else:
            wait_ready(spec.ready_url, timeout, alive=lambda: process.poll() is None,
                       log=spec.log)
    except BaseException:
        stop_group(process.pid, spec.stop_timeout)
        raise
    return process
