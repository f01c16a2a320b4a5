"""Real Mistral for a lab site, with Keystone authentication on.

Two modes:

``allinone`` (default): one process (``launchers/mistral_all.py``) runs the API, engine,
executor, notifier and periodic services on the in-memory ``fake:/`` transport, with SQLite
in the service directory. Needs nothing outside the venv and Keystone.

``rabbit``: what a deployment runs, one ``mistral-server --server X`` per service (engine,
executor, notifier, periodic, api) over RabbitMQ at 127.0.0.1:5672 and PostgreSQL at
127.0.0.1:5432. Each lab site gets its own RabbitMQ vhost when ``rabbitmqctl`` may create
one, else the default vhost with its own exchange and topics, so two sites never share a
queue. These processes have no HTTP of their own: call :func:`wait_workers` after starting
them to know that they consume their queues.

The settings are the measured ones: the ``default`` scheduler with a 0.1 s delay (the stock
1 s adds up to a second per with-items wave), the remote executor (the local one
serialises with-items), and cron triggers off the API (otherwise ``mistral-server`` ignores
SIGTERM). Mistral is run as shipped: no patch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from ..layout import HOST, SiteLayout
from . import venvs
from .base import LAUNCHERS, ServiceSpec, run_once, service_env
from .postgres import POSTGRES_PORT, answers, database_name, pg_database, postgres_url

MODES = ("allinone", "rabbit")
RABBIT_PORT = 5672
RABBIT_USER = ("guest", "guest")
# The mistral-server processes of rabbit mode, in start order: the API last.
# ``periodic`` fires the cron triggers (the capture, the groups' drill schedules): with
# them off the API, a deployment without it never runs one.
RABBIT_SERVERS = ("engine", "executor", "notifier", "periodic", "api")
WORKER_TOPICS = {"engine": "mistral_engine", "executor": "mistral_executor",
                 "notifier": "mistral_notifier"}


class Unavailable(RuntimeError):
    """A backend the requested mode needs does not answer."""


def prepare(site: SiteLayout, mode: str = "allinone",
            env: dict[str, str] | None = None, executors: int = 1,
            wheel: Path | None = None) -> list[ServiceSpec]:
    """Venv, configuration and schema (each once); the processes to run, in start order.

    ``allinone``: one spec. ``rabbit``: engine, ``executors`` executors (sharing their
    queue, as a deployment's executor hosts do), notifier, api (raises
    :class:`Unavailable` naming what is missing when RabbitMQ or PostgreSQL does not answer).
    Every spec's process loads our ``mistral.actions`` entry points at start, from the venv
    that has this project installed; ``env`` is added to their environment (the actions
    find the site's configuration through ``SITE_RECOVERY_CONFIG``). ``wheel``: the
    product's wheel goes into Mistral's venv as an operator installs it, rather than this
    checkout, editable.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if mode == "rabbit":
        missing = rabbit_missing()
        if missing:
            raise Unavailable(f"Mistral rabbit mode needs {' and '.join(missing)}")
    here = site.service_dir("mistral")
    venv = (venvs.cached(site.venvs, "mistral", venvs.REQUIREMENTS["mistral"], wheel=wheel)
            if wheel else venvs.ensure(site.venvs, "mistral", with_project=True))
    (here / ".venv").write_text(str(venv))
    specs = [_allinone(site, venv, here)] if mode == "allinone" else _rabbit(
        site, venv, here, executors)
    for spec in specs:
        spec.env.update(env or {})
    return specs


def rabbit_missing() -> list[str]:
    """What rabbit mode needs that does not answer, e.g. ``["RabbitMQ at 127.0.0.1:5672"]``."""
    return [f"{what} at {HOST}:{port}" for what, port in
            (("RabbitMQ", RABBIT_PORT), ("PostgreSQL", POSTGRES_PORT)) if not answers(port)]


def wait_workers(site: SiteLayout, timeout: float = 60.0):
    """Rabbit mode: wait until the engine, executor and notifier answer RPC calls.

    A probe in the Mistral venv calls oslo.messaging's ping endpoint (``rpc_ping_enabled``)
    on each topic until it answers. Without this, the first execution may be sent before
    the engine has declared its queue, and RabbitMQ drops it (an RPC timeout 30 s later).
    """
    here = site.run_dir / "mistral"
    venv = _venv(site)
    topics = _rabbit_names(site, here)[2]
    result = subprocess.run(
        [str(venv / "bin" / "python"), str(LAUNCHERS / "mistral_ping.py"), "--config-file",
         str(here / "mistral-rabbit.conf"), "--timeout", str(timeout),
         *(topics[worker] for worker in WORKER_TOPICS)],
        capture_output=True, text=True, timeout=timeout + 30,
        env={**os.environ, **service_env(venv)})
    if result.returncode:
        raise TimeoutError(f"Mistral workers of {site.name} not answering: "
                           f"{(result.stdout + result.stderr).strip()[-800:]}")


def _venv(site: SiteLayout) -> Path:
    """The venv the site's Mistral was prepared with."""
    chosen = site.run_dir / "mistral" / ".venv"
    return Path(chosen.read_text()) if chosen.exists() else venvs.ensure(
        site.venvs, "mistral", with_project=True)


def cleanup(site: SiteLayout):
    """Drop what rabbit mode made outside the run directory: its database and vhost.

    The processes must be stopped. The all-in-one mode's SQLite stays in the run directory.
    """
    here = site.run_dir / "mistral"
    marker = here / ".schema-postgresql"
    if marker.exists():
        pg_database(_venv(site), "drop",
                    database_name(site, "mistral"))
        marker.unlink()
    vhost_marker = here / ".rabbit-vhost"
    if vhost_marker.exists():
        _rabbitmqctl("delete_vhost", vhost_marker.read_text())
        vhost_marker.unlink()


# -- all-in-one --------------------------------------------------------------------------
def _allinone(site: SiteLayout, venv: Path, here: Path) -> ServiceSpec:
    connection = f"sqlite:///{here / 'mistral.db'}"
    conf = here / "mistral.conf"
    log = here / "mistral.log"
    conf.write_text(_config(site, mode="allinone", transport="fake:/", connection=connection,
                            log=log))
    python = str(venv / "bin" / "python")
    manage = [str(venv / "bin" / "mistral-db-manage"), "--config-file", str(conf)]
    # Alembic cannot migrate SQLite: tables from the models, then mark them current.
    run_once(here / ".schema-sqlite", connection,
             [[python, str(LAUNCHERS / "mistral_schema.py"), "--config-file", str(conf)],
              [*manage, "stamp", "head"], [*manage, "populate"]],
             here / "mistral-db-manage.log", service_env(venv))
    argv = (python, str(LAUNCHERS / "mistral_all.py"), "--config-file", str(conf))
    return ServiceSpec("mistral", argv, here, log, site.url("mistral", "/"), service_env(venv),
                       stop_timeout=15.0, port=site.port("mistral"))


# -- RabbitMQ + PostgreSQL ---------------------------------------------------------------
def _rabbit(site: SiteLayout, venv: Path, here: Path, executors: int) -> list[ServiceSpec]:
    vhost, exchange, topics = _rabbit_names(site, here, create=True)
    name = database_name(site, "mistral")
    pg_database(venv, "ensure", name)
    connection = postgres_url(name)
    conf = here / "mistral-rabbit.conf"
    user, password = RABBIT_USER
    transport = f"rabbit://{user}:{password}@{HOST}:{RABBIT_PORT}/{quote(vhost, safe='')}"
    conf.write_text(_config(site, mode="rabbit", transport=transport, connection=connection,
                            log=None, exchange=exchange, topics=topics))
    manage = [str(venv / "bin" / "mistral-db-manage"), "--config-file", str(conf)]
    run_once(here / ".schema-postgresql", connection,
             [[*manage, "upgrade", "head"], [*manage, "populate"]],
             here / "mistral-db-manage.log", service_env(venv))
    specs = []
    for server in RABBIT_SERVERS:
        for number in range(1, (executors if server == "executor" else 1) + 1):
            name = f"mistral-{server}" + (f"-{number}" if number > 1 else "")
            log = here / f"{name}.log"
            argv = (str(venv / "bin" / "mistral-server"), "--config-file", str(conf),
                    "--server", server, "--log-file", str(log))
            # Only the API speaks HTTP. A worker's ready URL is Keystone's, which it depends
            # on, so a supervisor's start_and_wait() moves on at once; wait_workers() is the
            # real check that engine, executor and notifier consume their queues.
            api = server == "api"
            ready = site.url("mistral", "/") if api else site.keystone_url
            specs.append(ServiceSpec(name, argv, here, log, ready, service_env(venv),
                                     stop_timeout=20.0,
                                     port=site.port("mistral") if api else None))
    return specs


def _rabbit_names(site: SiteLayout, here: Path, create: bool = False):
    """(vhost, control exchange or None, worker topics) that isolate this site.

    A vhost of its own when rabbitmqctl may create one (as root, or a member of the
    rabbitmq group); otherwise the default vhost with a site-named exchange and topics.
    """
    name = database_name(site, "mq")
    marker = here / ".rabbit-vhost"
    # Both commands are idempotent: run them every time, in case the vhost went meanwhile.
    if create and _rabbitmqctl("add_vhost", name) and _rabbitmqctl(
            "set_permissions", "-p", name, RABBIT_USER[0], ".*", ".*", ".*"):
        marker.write_text(name)
    if marker.exists():
        return marker.read_text(), None, dict(WORKER_TOPICS)
    return "", name, {worker: f"{topic}_{name}" for worker, topic in WORKER_TOPICS.items()}


def _rabbitmqctl(*args: str) -> bool:
    ctl = shutil.which("rabbitmqctl") or shutil.which("rabbitmqctl", path="/usr/sbin:/sbin")
    if ctl is None:
        return False
    try:
        return subprocess.run([ctl, "-q", *args], capture_output=True,
                              timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# -- configuration -----------------------------------------------------------------------
def _config(site: SiteLayout, *, mode: str, transport: str, connection: str, log: Path | None,
            exchange: str | None = None, topics: dict[str, str] | None = None) -> str:
    account = site.account("mistral")
    sections: dict[str, dict[str, object]] = {
        "DEFAULT": {
            "transport_url": transport,
            "rpc_response_timeout": 30,
            # Each group of a site failover holds one running action (which waits on its
            # stack or volumes): the stock 64 threads would queue groups beyond 64.
            "executor_thread_pool_size": 128,
            "scheduler_type": "default",
            "debug": "false",
            # rabbit mode: each mistral-server gets --log-file of its own
            **({"log_file": log} if log else {}),
            **({"control_exchange": exchange} if exchange else {}),
            # oslo.messaging's own ping endpoint on every RPC server: wait_workers() calls it
            **({"rpc_ping_enabled": "true"} if mode == "rabbit" else {}),
        },
        "database": {"connection": connection},
        "api": {"host": HOST, "port": site.port("mistral")},
        "pecan": {"auth_enable": "true"},
        "keystone_authtoken": {
            "www_authenticate_uri": site.keystone_url,
            "auth_url": site.keystone_url,
            "auth_type": "password",
            "username": account.user,
            "password": account.password,
            "project_name": account.project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
            "interface": "public",
            "service_token_roles_required": "true",
        },
        # remote: over the transport (in-process with fake:/); local would run with-items
        # actions one after another inside the engine.
        "executor": {"type": "remote"},
        "notifier": {"type": "remote"},
        "scheduler": {"fixed_delay": 0.1},
        # An action whose executor died (Mistral killed mid-step) is failed after three
        # missed 5 s heartbeats, not the stock 15 x 20 s: its group is then reported failed
        # and a retry of the operation picks up where the steps left off.
        "action_heartbeat": {"check_interval": 5, "max_missed_heartbeats": 3,
                             "first_heartbeat_timeout": 30},
        "cron_trigger": {"run_in_api": "false"},
    }
    if exchange:
        for worker, topic in (topics or {}).items():
            sections.setdefault(worker, {})["topic"] = topic
        # The default vhost is shared: let queues go once their consumers have.
        sections["oslo_messaging_rabbit"] = {"amqp_auto_delete": "true"}
    lines = [f"# Mistral for lab site {site.name} (run {site.run_name}), mode {mode};",
             "# written by site_recovery.lab.services.mistral."]
    for section, options in sections.items():
        lines.append(f"\n[{section}]")
        lines.extend(f"{key} = {value}" for key, value in options.items())
    return "\n".join(lines) + "\n"
