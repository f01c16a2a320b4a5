"""What the supervisor needs to run one lab process, and how it knows it is up."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests


@dataclass(frozen=True)
class ServiceSpec:
    """One process of a site: how to start it and how to tell it answers."""

    name: str                        # "keystone", "heat", ...
    argv: tuple[str, ...]
    cwd: Path
    log: Path
    ready_url: str                   # answers (any status below 500) once the service is up
    env: dict[str, str] = field(default_factory=dict)
    stop_timeout: float = 10.0


class NotReady(RuntimeError):
    pass


def wait_ready(url: str, timeout: float, *, alive=lambda: True, log: Path | None = None):
    """Poll ``url`` until it answers below 500, the process dies, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not alive():
            raise NotReady(f"{url}: the process exited{_tail(log)}")
        try:
            status = requests.get(url, timeout=2, verify=False).status_code
            if status < 500:
                return
            last = f"HTTP {status}"
        except requests.RequestException as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise NotReady(f"{url} not ready within {timeout:g} s ({last}){_tail(log)}")


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
    process = start(spec)
    try:
        wait_ready(spec.ready_url, timeout, alive=lambda: process.poll() is None, log=spec.log)
    except BaseException:
        stop_group(process.pid, spec.stop_timeout)
        raise
    return process
