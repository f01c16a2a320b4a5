"""The machine's PostgreSQL, for services that would hang or serialise on SQLite.

This machine kind runs PostgreSQL on 127.0.0.1:5432 with trust authentication; each lab
run and site gets databases of its own, named so two labs never share one.
"""

from __future__ import annotations

import hashlib
import re
import socket
import subprocess
from pathlib import Path

from ..layout import HOST, SiteLayout
from .base import LAUNCHERS

POSTGRES_PORT = 5432


def answers(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def database_name(site: SiteLayout, service: str) -> str:
    """``lab_<run>_<site>_<service>``, made a valid PostgreSQL identifier (<= 63 chars)."""
    raw = f"lab_{site.run_name}_{site.name}_{service}".lower()
    name = re.sub(r"[^a-z0-9_]+", "_", raw)
    if len(name) > 63:
        name = f"{name[:52]}_{hashlib.sha1(raw.encode()).hexdigest()[:10]}"
    return name


def postgres_url(name: str) -> str:
    return f"postgresql+psycopg2://postgres@{HOST}:{POSTGRES_PORT}/{name}"


def pg_database(venv: Path, action: str, name: str):
    """Create (``ensure``) or ``drop`` a database, with the venv's psycopg2."""
    result = subprocess.run([str(venv / "bin" / "python"), str(LAUNCHERS / "pgdb.py"), action,
                             name, "--host", HOST, "--port", str(POSTGRES_PORT)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode:
        raise RuntimeError(f"PostgreSQL {action} {name} failed: "
                           f"{(result.stderr or result.stdout).strip()[-800:]}")
