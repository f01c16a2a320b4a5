"""Real Heat for a lab site: heat-api, heat-api-cfn and heat-engine in one process.

Heat 27 has no ``heat-all``; ``launchers/heat_all.py`` (run with the Heat venv's python)
builds the real API applications and the real engine and connects them with the in-memory
``fake://`` transport. Heat is run as shipped: no patch, and its 1 s stagger per leaf
resource in the convergence engine stays.

Database: PostgreSQL when 127.0.0.1:5432 answers (one database per lab run and site) with
the default convergence engine. Otherwise SQLite with the legacy engine, because convergence
on SQLite hangs stack updates (SQLite reuses row ids that a stale delete then removes).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..layout import HEAT_DOMAIN, HEAT_DOMAIN_ADMIN, HOST, REGION, SiteLayout
from . import venvs
from .base import LAUNCHERS, TEMPLATES, ServiceSpec, run_once, service_env
from .postgres import POSTGRES_PORT, answers, database_name, pg_database, postgres_url

DATABASES = ("auto", "postgresql", "sqlite")
# Exactly 32 characters, as Heat requires; a lab secret, not a real one.
AUTH_ENCRYPTION_KEY = "site-recovery-lab-heat-key-32chr"
_CONVERGENCE = "# convergence engine (Heat's default): the database is PostgreSQL"
_LEGACY = ("# SQLite: convergence would hang stack updates (SQLite reuses row ids), so the legacy\n"
           "# engine (deprecated upstream, hence a warning at start)\nconvergence_engine = false")


# -- Heat ----------------------------------------------------------------------------------
def prepare(site: SiteLayout, *, database: str = "auto") -> ServiceSpec:
    """Venv, configuration and schema (each once); the one process to run.

    ``database``: ``auto`` (the run's earlier choice; at first PostgreSQL if it answers,
    else SQLite), ``postgresql`` (an error if it does not answer) or ``sqlite``.
    """
    if database not in DATABASES:
        raise ValueError(f"database must be one of {DATABASES}, not {database!r}")
    venv = venvs.ensure(site.venvs, "heat")
    here = site.service_dir("heat")
    etc = _copy_etc(venv, here / "etc")
    (here / "plugins").mkdir(exist_ok=True)
    marker = here / ".db_synced"
    if database == "auto":              # a run keeps its stacks: stay with its first choice
        if marker.exists():
            database = "postgresql" if marker.read_text().startswith("postgresql") else "sqlite"
        else:
            database = "postgresql" if answers(POSTGRES_PORT) else "sqlite"
    use_postgres = database == "postgresql"
    if use_postgres:
        if not answers(POSTGRES_PORT):
            raise RuntimeError(f"Heat: PostgreSQL does not answer on {HOST}:{POSTGRES_PORT}")
        name = database_name(site, "heat")
        connection = postgres_url(name)
    else:
        connection = f"sqlite:///{here / 'heat.db'}"
    conf = here / "heat.conf"
    heat = site.account("heat")
    conf.write_text((TEMPLATES / "heat.conf").read_text().format(
        site=site.name, run=site.run_name, dir=here, etc=etc, connection=connection,
        engine_choice=_CONVERGENCE if use_postgres else _LEGACY,
        auth_encryption_key=AUTH_ENCRYPTION_KEY,
        heat_domain=HEAT_DOMAIN, domain_admin=HEAT_DOMAIN_ADMIN.user,
        domain_admin_password=HEAT_DOMAIN_ADMIN.password, cfn_url=site.url("heat_cfn"),
        region=REGION, keystone_url=site.keystone_url, keystone_root=site.url("keystone"),
        user=heat.user, password=heat.password, project=heat.project))
    env = service_env(venv)
    if use_postgres:
        pg_database(venv, "ensure", name)         # idempotent; also after an outside drop
    run_once(marker, connection,
             [[str(venv / "bin" / "heat-manage"), "--config-file", str(conf), "db_sync"]],
             here / "heat-manage.log", env)
    argv = (str(venv / "bin" / "python"), str(LAUNCHERS / "heat_all.py"),
            "--host", HOST, "--api-port", str(site.port("heat")),
            "--cfn-port", str(site.port("heat_cfn")), "--config-file", str(conf))
    return ServiceSpec("heat", argv, here, here / "heat.log", site.url("heat", "/"), env,
                       stop_timeout=15.0, port=site.port("heat"))


def cleanup(site: SiteLayout):
    """Drop the site's Heat database on PostgreSQL, if it has one (Heat must be stopped)."""
    here = site.run_dir / "heat"
    marker = here / ".db_synced"
    if marker.exists() and marker.read_text().startswith("postgresql"):
        pg_database(venvs.ensure(site.venvs, "heat"), "drop", database_name(site, "heat"))
        marker.unlink()


def _copy_etc(venv: Path, etc: Path) -> Path:
    """api-paste.ini, environment.d and templates from the venv's etc/heat (pip data files)."""
    shipped = venv / "etc" / "heat"
    if not (shipped / "api-paste.ini").exists():
        raise RuntimeError(f"{shipped}/api-paste.ini is missing: is openstack-heat installed?")
    etc.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shipped / "api-paste.ini", etc / "api-paste.ini")
    for folder in ("environment.d", "templates"):
        if (shipped / folder).is_dir():
            shutil.copytree(shipped / folder, etc / folder, dirs_exist_ok=True)
        else:
            (etc / folder).mkdir(exist_ok=True)
    return etc
