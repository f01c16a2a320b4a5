"""Real Horizon for a lab site, from PyPI and unpatched, with the product's dashboard plugin.

One venv serves every site and lab run: Horizon with this checkout installed editable
(or the product's wheel, as an operator installs it), constrained to Horizon's own
freeze, so the plugin's modules import, and its ``enabled/`` files linked into Horizon's
``openstack_dashboard/local/enabled/``. Horizon reads
``local/local_settings.py`` from inside its package, which the sites share, so the venv's
one says only "read the site's settings from the file ``SITE_RECOVERY_LAB_HORIZON_SETTINGS``
names", and each site writes its own. Static files are collected and compressed once per
venv (offline compression: no compression while serving); they depend on nothing of a
site. Served by gunicorn, one worker with threads: its memory holds the sessions
(Keystone's catalog is too big for a signed cookie); Horizon's own WSGI application,
wrapped in WhiteNoise for the static files, which a web server in front serves in
production.
"""

from __future__ import annotations

import fcntl
import secrets
import subprocess
from pathlib import Path

from ..layout import HOST, SiteLayout
from . import venvs
from .base import ServiceSpec, service_env

SETTINGS_ENV = "SITE_RECOVERY_LAB_HORIZON_SETTINGS"
LOGIN_PATH = "/auth/login/"
STATIC_TIMEOUT = 900

_VENV_LOCAL_SETTINGS = f'''\
"""Written by the Site Recovery lab: the Horizons of its sites share this venv, so each
reads its own settings from the file ${SETTINGS_ENV} names."""
import os

with open(os.environ["{SETTINGS_ENV}"], encoding="utf-8") as _site_settings:
    exec(_site_settings.read())
'''

_SETTINGS = """\
# Horizon of lab site {site}, written by the lab at each start.
DEBUG = False
ALLOWED_HOSTS = ["{host}", "localhost"]
SECRET_KEY = {secret_key!r}
OPENSTACK_KEYSTONE_URL = "{keystone_url}"
# The lab has a second tenant domain (partners), so the login form asks for the domain.
OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = True
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"
OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
# Both sites' Horizons are on 127.0.0.1, and a cookie ignores the port: a cookie name of
# its own per site keeps one browser signed in to both.
SESSION_COOKIE_NAME = "sessionid-{site}"
CACHES = {{"default": {{"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}}}
# Plain HTTP on loopback.
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
COMPRESS_ENABLED = True
COMPRESS_OFFLINE = True
STATIC_ROOT = "{static_root}"
TIME_ZONE = "UTC"
# The dashboard plugin: the protection service serves the lab's own certificate.
SITE_RECOVERY_CA_FILE = "{ca_file}"
SITE_RECOVERY_TIMEOUT = 30
"""

_WSGI = """\
from openstack_dashboard.wsgi import application as horizon
from whitenoise import WhiteNoise

application = WhiteNoise(horizon, root="{static_root}", prefix="static/")
"""

_GUNICORN = """\
wsgi_app = "lab_horizon_wsgi:application"
pythonpath = "{dir}"
bind = "{host}:{port}"
workers = 1
threads = 4
worker_class = "gthread"
timeout = 120
accesslog = "{dir}/access.log"
errorlog = "{dir}/gunicorn.log"
"""


def prepare(site: SiteLayout, ca_file: Path, wheel: Path | None = None) -> ServiceSpec:
    """Venv (with its static files) once; the site's settings; the process to run.
    ``wheel``: the product's wheel instead of this checkout."""
    venv = ensure_venv(site.venvs, wheel)
    here = site.service_dir("horizon")
    settings = here / "local_settings.py"
    settings.write_text(_settings(site.name, site.keystone_url, ca_file, venv,
                                  _secret_key(here)))
    settings.chmod(0o600)                                   # it holds the signing key
    (here / "lab_horizon_wsgi.py").write_text(_WSGI.format(static_root=venv / "static"))
    (here / "gunicorn.conf.py").write_text(_GUNICORN.format(host=HOST, port=site.port("horizon"),
                                                            dir=here))
    env = {**service_env(venv), SETTINGS_ENV: str(settings)}
    return ServiceSpec("horizon", (str(venv / "bin" / "gunicorn"),), here,
                       here / "gunicorn.log", site.url("horizon", LOGIN_PATH), env,
                       port=site.port("horizon"))


def ensure_venv(venv_home: Path, wheel: Path | None = None) -> Path:
    """Horizon's venv with the plugin enabled and its static files collected and
    compressed (once per venv; the other sites and runs wait, then reuse them)."""
    if wheel:
        venv = venvs.cached(venv_home, "horizon", venvs.REQUIREMENTS["horizon"], wheel=wheel)
        enabled = _site_packages(venv) / "site_recovery" / "dashboard" / "enabled"
    else:
        venv = venvs.ensure(venv_home, "horizon", with_project=True)
        enabled = venvs.project_root() / "dashboard" / "enabled"
    dashboard = _site_packages(venv) / "openstack_dashboard"
    _link_enabled(enabled, dashboard / "local" / "enabled")
    done = venv / ".static-compressed"
    if done.exists():
        return venv
    with open(venv / ".static.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return venv
        (dashboard / "local" / "local_settings.py").write_text(_VENV_LOCAL_SETTINGS)
        settings = venv / "static-settings.py"
        settings.write_text(_settings("(static files)", "http://127.0.0.1:5000/v3", "",
                                      venv, secrets.token_urlsafe(32)))
        env = {**service_env(venv), SETTINGS_ENV: str(settings),
               "DJANGO_SETTINGS_MODULE": "openstack_dashboard.settings"}
        log = venv / "static.log"
        with open(log, "w") as out:
            for command in (("collectstatic", "--noinput"), ("compress", "--force")):
                try:
                    subprocess.run([str(venv / "bin" / "django-admin"), *command], check=True,
                                   timeout=STATIC_TIMEOUT, stdout=out, stderr=out, env=env)
                except subprocess.CalledProcessError:
                    raise RuntimeError(f"Horizon's {command[0]} failed; see {log}") from None
        done.write_text("")
    return venv


def _settings(site: str, keystone_url: str, ca_file: Path | str, venv: Path,
              secret_key: str) -> str:
    return _SETTINGS.format(site=site, host=HOST, secret_key=secret_key,
                            keystone_url=keystone_url, static_root=venv / "static",
                            ca_file=ca_file)


def _site_packages(venv: Path) -> Path:
    (found,) = (venv / "lib").glob("python3*/site-packages")
    return found


def _link_enabled(enabled: Path, folder: Path):
    """The plugin's ``enabled/`` files, linked (a checkout's edits show through)."""
    for source in sorted(enabled.glob("_[0-9]*.py")):
        link = folder / source.name
        if not link.is_symlink() or link.resolve() != source:
            staged = folder / f".{source.name}.{secrets.token_hex(4)}"
            staged.symlink_to(source)
            staged.replace(link)


def _secret_key(here: Path) -> str:
    """Django's signing key for this site, made once and kept beside its settings."""
    kept = here / ".secret_key"
    if not kept.exists():
        staged = here / f".secret_key.{secrets.token_hex(4)}"
        staged.write_text(secrets.token_urlsafe(48))
        staged.chmod(0o600)
        staged.replace(kept)
    return kept.read_text()
