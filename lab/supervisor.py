"""Brings the two-site lab up and down, and tells what runs where.

Per site, in order: Keystone (then its accounts and catalog), the site's FlashArray
simulator, the simulated Nova/Neutron/Cinder/Glance, Heat and Mistral. The arrays of both
sites share one fabric, joined by a replication link. What runs is recorded in a state
file, so ``up`` is idempotent, ``status`` and ``down`` work from any shell, and a site can
be taken down and brought back as a fault.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import requests
import yaml

from site_recovery.core.config import CONFIG_ENV
from site_recovery.storage.fabric import Fabric

from .flasharray_sim import ensure_certificate
from .layout import DEFAULT_PORT_BASE, HOST, REGION, SITES, SiteLayout, lab_home
from .services import base, keystone, postgres, venvs
from .services.base import ServiceSpec

CINDER_HOST = "cinder@pure#pure"       # the simulated Cinder's one backend (lab/cloud)


@dataclass(frozen=True)
class LabOptions:
    port_base: int = DEFAULT_PORT_BASE
    home: Path | None = None
    run_name: str = "default"
    mistral_mode: str = "allinone"
    protector_database: str = "sqlite"      # or postgresql: the machine's, a database per site
    concurrency: int = 10                   # groups one DR operation runs at once
    mistral_executors: int = 1              # rabbit mode: executors sharing their queue
    engines: int = 1                        # protector-engines per site
    coordination: str = "database"          # or redis: the machine's, for the engines
    # editable: this checkout, in Mistral's venv and the lab's own; wheel: the product's
    # wheel, into Mistral's venv and a venv of its own for the service, as an operator
    # installs it (docs/guides/01-deploy.md)
    install: str = "editable"
    array_rest_version: int = 2             # how the services reach the arrays (1: REST 1.x)
    horizon: bool = True                    # real Horizon per site, with the dashboard plugin
    # How often the engines read each group's replication lag off the arrays: often, for
    # tests to see a lag cross its target; the benchmarks take production's 60 s.
    replication_check_interval: float = 5.0
    ready_timeout: float = 180.0


class Lab:
    def __init__(self, options: LabOptions = LabOptions()):
        self.options = options
        self.home = options.home or lab_home()
        self.sites = {name: SiteLayout.for_site(name, port_base=options.port_base,
                                                home=self.home, run_name=options.run_name)
                      for name in SITES}
        self.run_dir = self.home / "run" / options.run_name
        self.state_file = self.run_dir / "state.json"

    # -- state ---------------------------------------------------------------------------
    def state(self) -> dict:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {"port_base": self.options.port_base, "sites": {}}

    def _save(self, state: dict):
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_file)

    @property
    def fabric_path(self) -> Path:
        return self.run_dir / "fabric.db"

    @cached_property
    def fabric(self) -> Fabric:
        """The arrays of both sites, joined for replication (made on first use)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        new = not self.fabric_path.exists()
        fabric = Fabric(self.fabric_path, transfer_seconds=2.0 if new else None)
        for site in self.sites.values():
            fabric.add_array(site.array_name)
        fabric.connect(*(s.array_name for s in self.sites.values()))
        return fabric

    # -- the services of a site ----------------------------------------------------------
    def _array(self, site: SiteLayout) -> list[ServiceSpec]:
        here = site.service_dir("array")
        return [ServiceSpec(
            "array",
            (sys.executable, "-m", "site_recovery.lab.flasharray_sim",
             "--fabric", str(self.fabric_path), "--array", site.array_name,
             "--port", str(site.port("array")), "--cert-dir", str(self.run_dir / "tls")),
            here, here / "array.log", f"https://{HOST}:{site.port('array')}/api/api_version",
            port=site.port("array"))]

    def _cloud(self, site: SiteLayout) -> list[ServiceSpec]:
        here = site.service_dir("cloud")
        account = site.account("cloud")
        return [ServiceSpec(
            "cloud",
            (sys.executable, "-m", "site_recovery.lab.cloud", "--site", site.name,
             "--port", str(site.port("cloud")), "--db", str(here / "cloud.db"),
             "--fabric", str(self.fabric_path), "--array", site.array_name,
             "--keystone-url", site.keystone_url, "--service-user", account.user,
             "--service-password", account.password, "--service-project", account.project),
            here, here / "cloud.log", site.url("cloud", "/compute/"), port=site.port("cloud"))]

    def _heat(self, site: SiteLayout) -> list[ServiceSpec]:
        from .services import heat
        return [heat.prepare(site)]

    def _mistral(self, site: SiteLayout) -> list[ServiceSpec]:
        """Mistral, whose executor runs the DR actions with the site's configuration."""
        from .services import mistral
        config = self._site_config(site)
        return mistral.prepare(site, mode=self.options.mistral_mode,
                               env={CONFIG_ENV: str(config)},
                               executors=self.options.mistral_executors,
                               wheel=self._wheel)

    def _site_config(self, site: SiteLayout) -> Path:
        """The site's configuration file, shared by its protection service and the actions
        its Mistral runs, as in a deployment: the protection service, peered with the other
        site's and probing it every second; this site's cloud as the DR service account (a
        password: it signs in to each tenant project), which is also the service's own
        account (``keystone.cloud``), and the peer's Keystone as the peer account, by its
        application credential, which opens only the peer's protection service
        (``clouds.yaml``), and the peer account of this site's Keystone as the one the
        peer calls with (``internal.peer``); both arrays, and the API token of this
        site's alone (in a file; the simulator's CA);
        Alertmanager alerts accepted with the bearer secret in ``alert.secret``: a
        ``SiteDown`` alert for the peer is recorded without acting on it, and a
        ``DrillRequested`` alert starts a drill of each group of its ``project`` label's
        project that recovers here.
        """
        here = site.service_dir("webhook")
        peer = self.sites[site.peer]
        _write(here / "alert.secret", f"lab-alert-secret-{site.name}", private=True)
        clouds = here / "clouds.yaml"
        ca_file = str(self.ca_file())
        where = {"region_name": REGION, "interface": "public", "cacert": ca_file}
        peer_auth = keystone.application_credential_entry(peer, keystone.PEER_ACCOUNT,
                                                          wait=self.options.ready_timeout)
        _write(clouds, yaml.safe_dump({"clouds": {
            site.name: {"auth": site.auth("site-recovery"), **where},
            peer.name: {"auth_type": "v3applicationcredential", "auth": peer_auth, **where}}},
            sort_keys=False), private=True)
        database = f"sqlite:///{here / 'protector.db'}"
        if self.options.protector_database == "postgresql":
            name = postgres.database_name(site, "protector")
            postgres.pg_database(Path(sys.prefix), "ensure", name)    # needs psycopg2 here
            database = postgres.postgres_url(name)
            (here / ".postgresql").write_text(name)
        config = here / "protector.yaml"
        _write(config, yaml.safe_dump({
            "site": site.name,
            "peer": {"name": peer.name, "url": peer.url("webhook"), "ca_file": ca_file,
                     "probe_interval": 1.0,
                     "probe_timeout": 1.0, "failure_threshold": 3, "success_threshold": 2},
            "database_url": database,
            "keystone": {"cloud": site.name},
            "clouds": {"file": str(clouds), "local": site.name, "peer": peer.name},
            "internal": {"peer": keystone.account_ids(site, keystone.PEER_ACCOUNT)},
            "arrays": [{"name": layout.array_name, "site": layout.name,
                        "address": f"{HOST}:{layout.port('array')}",
                        **({"token_file": str(self._array_token(here, layout))}
                           if layout is site else {}),
                        "ca_file": ca_file, "cinder_host": CINDER_HOST,
                        "rest_version": self.options.array_rest_version}
                       for layout in (site, peer)],
            "engine": {"poll_interval": 0.5, "concurrency": self.options.concurrency,
                       "replication_check_interval": self.options.replication_check_interval,
                       # a drill schedule set in a test reaches Mistral within seconds
                       "drill_schedule_interval": 5.0},
            "monitoring": {"shared_secret_file": str(here / "alert.secret"),
                           "rules": [{"name": f"{peer.name} down",
                                      "match": {"alertname": "SiteDown", "site": peer.name},
                                      "operation": "site_failover", "mode": "record"},
                                     {"name": "drill requested",
                                      "match": {"alertname": "DrillRequested"},
                                      "operation": "test_failover",
                                      "selector": {"project_name": "$project"},
                                      "mode": "execute"}]},
            **({"coordination": {"backend_url": self._redis_url()}}
               if self.options.coordination == "redis" else {}),
            "bind": f"{HOST}:{site.port('webhook')}", "workers": 2,
            "tls": {"cert_file": ca_file, "key_file": ca_file},
        }, sort_keys=False))
        return config

    def _array_token(self, here: Path, layout: SiteLayout) -> Path:
        path = here / f"{layout.array_name}.token"
        _write(path, self.fabric.api_token(layout.array_name), private=True)
        return path

    def _webhook(self, site: SiteLayout) -> list[ServiceSpec]:
        """The protection service (see :meth:`_site_config`): its database migrated by
        the product's own command, then the API under gunicorn and the engines."""
        here = site.service_dir("webhook")
        config = self._site_config(site)
        self._protector_command(site, "db", "upgrade")
        env = {"PYTHONWARNINGS": "ignore", "PROMETHEUS_MULTIPROC_DIR": str(
            _emptied(here / "metrics"))}
        command = (*self._protector, "--config", str(config))
        engines = [ServiceSpec(
            "engine" if number == 1 else f"engine-{number}", (*command, "engine"), here,
            here / ("engine.log" if number == 1 else f"engine-{number}.log"), "",
            {"PYTHONWARNINGS": "ignore"}, ready_log=" starts")
            for number in range(1, self.options.engines + 1)]
        return [ServiceSpec("webhook", (*command, "api"), here, here / "webhook.log",
                            site.url("webhook", "/healthz"), env,
                            port=site.port("webhook")), *engines]

    @cached_property
    def _wheel(self) -> Path | None:
        """The product's wheel when the lab installs it as an operator does (``install:
        wheel``); None: this checkout, editable."""
        if self.options.install == "wheel":
            return venvs.product_wheel(self.sites["site-a"].venvs)
        return None

    def protector_bin(self) -> Path | None:
        """The folder of the product-only install's commands (``site-recovery-protector``,
        ``openstack`` with the plugin), or None when the lab runs this checkout."""
        if self._wheel is None:
            return None
        return venvs.product_only(self.sites["site-a"].venvs, self._wheel) / "bin"

    @property
    def _protector(self) -> tuple[str, ...]:
        """How the lab runs ``site-recovery-protector``."""
        folder = self.protector_bin()
        return ((str(folder / "site-recovery-protector"),) if folder else
                (sys.executable, "-m", "site_recovery.webhook.commands"))

    def _protector_command(self, site: SiteLayout, *argv: str) -> str:
        """``site-recovery-protector *argv`` for ``site``, as an operator runs it."""
        config = site.run_dir / "webhook" / "protector.yaml"
        result = subprocess.run(
            [*self._protector, "--config", str(config), *argv], capture_output=True,
            text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        if result.returncode:
            raise RuntimeError(f"{site.name}: site-recovery-protector {' '.join(argv)} "
                               f"failed: {(result.stdout + result.stderr).strip()[-2000:]}")
        return result.stdout.strip()

    def _horizon(self, site: SiteLayout) -> list[ServiceSpec]:
        from .services import horizon
        return [horizon.prepare(site, self.ca_file(), wheel=self._wheel)]

    def plan(self) -> list[tuple[str, Callable[[SiteLayout], list[ServiceSpec]]]]:
        return [("keystone", lambda site: [keystone.prepare(site)]), ("array", self._array),
                ("cloud", self._cloud), ("heat", self._heat), ("mistral", self._mistral),
                ("webhook", self._webhook),
                *([("horizon", self._horizon)] if self.options.horizon else [])]

    # -- commands ------------------------------------------------------------------------
    def up(self, sites=SITES, progress=print) -> dict:
        """Start whatever is not running yet; returns the state.

        The sites come up side by side. Within a site Keystone comes first (everything
        else authenticates against it), then the other components in parallel.
        """
        state = self.state()
        lock = threading.Lock()
        for name in sites:
            self.fabric.set_array_up(self.sites[name].array_name, True)
            state["sites"].setdefault(name, {})

        def component(name: str, label: str, specs_of):
            site = self.sites[name]
            for spec in specs_of(site):
                entry = state["sites"][name].get(spec.name)
                if entry and _alive(entry["pid"]):
                    continue
                _refuse_busy_port(spec)
                process = base.start_and_wait(spec, self.options.ready_timeout)
                with lock:
                    state["sites"][name][spec.name] = {
                        "pid": process.pid, "url": spec.ready_url, "log": str(spec.log),
                        "component": label}
                    self._save(state)
                progress(f"{name}: {spec.name} up (pid {process.pid}) {spec.ready_url}")
            if label == "keystone":
                keystone.provision(site)
            if label == "mistral" and self.options.mistral_mode == "rabbit":
                from .services import mistral
                mistral.wait_workers(site)

        def bring_up(name: str):
            (first, first_specs), *rest = self.plan()
            component(name, first, first_specs)
            _all(lambda item: component(name, *item), rest)

        _all(bring_up, list(sites))
        _all(lambda name: self.install_workbooks(name, progress), list(sites))
        return state

    def install_workbooks(self, name: str, progress=print):
        """The DR workbooks into the site's Mistral, by the product's own install command."""
        progress(f"{name}: {self._protector_command(self.sites[name], 'install-workbooks')}")

    def down(self, sites=SITES, progress=print):
        state = self.state()
        for name in sites:
            for service, entry in reversed(list(state["sites"].get(name, {}).items())):
                if base.stop_group(entry["pid"]):
                    progress(f"{name}: {service} stopped")
            state["sites"].pop(name, None)
        if state["sites"]:
            self._save(state)
        elif self.state_file.exists():
            self.state_file.unlink()

    def purge(self, progress=print):
        """``down``, then remove everything the run made: databases, vhosts, its files."""
        from .services import heat, mistral

        self.down(progress=progress)
        for site in self.sites.values():
            heat.cleanup(site)
            mistral.cleanup(site)
            marker = site.run_dir / "webhook" / ".postgresql"
            if marker.exists():
                postgres.pg_database(Path(sys.prefix), "drop", marker.read_text())
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.__dict__.pop("fabric", None)

    def status(self) -> dict:
        """Every service of the lab with its URL, PID and health, and what clients need."""
        state = self.state()
        fabric = self.fabric if self.fabric_path.exists() else None
        report = {"run_dir": str(self.run_dir), "sites": {}}
        for name, site in self.sites.items():
            services = {}
            for service, entry in state["sites"].get(name, {}).items():
                services[service] = {"url": entry["url"], "pid": entry["pid"],
                                     "log": entry["log"], "healthy": _healthy(entry)}
            report["sites"][name] = {
                "keystone_url": site.keystone_url, "mistral_url": site.url("mistral", "/v2"),
                "protector_url": site.url("webhook", "/v1"),
                "horizon_url": site.url("horizon", "/") if "horizon" in services else None,
                "services": services,
                "array": {"name": site.array_name, "management_address":
                          f"{HOST}:{site.port('array')}",
                          "api_token": fabric.api_token(site.array_name) if fabric else None,
                          "ca_file": str(self.ca_file())},
                "ca_file": str(self.ca_file()),
            }
        return report

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user and system) each running component has spent,
        ``<site>/<component>``, its child processes included (gunicorn's workers).
        PostgreSQL and RabbitMQ are not the lab's processes and are left out."""
        parents: dict[int, int] = {}
        own: dict[int, float] = {}
        tick = os.sysconf("SC_CLK_TCK")
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue                              # ended meanwhile
            pid = int(stat.parent.name)
            parents[pid] = int(fields[1])
            own[pid] = (int(fields[11]) + int(fields[12])) / tick

        def tree(pid: int) -> float:
            return own.get(pid, 0.0) + sum(tree(child) for child, parent in parents.items()
                                           if parent == pid)

        return {f"{site}/{component}": tree(entry["pid"])
                for site, components in self.state()["sites"].items()
                for component, entry in components.items() if "pid" in entry}

    # -- faults --------------------------------------------------------------------------
    def site_down(self, name: str, progress=print):
        """The whole site stops answering: its services stop and its array powers off."""
        self.down(sites=[name], progress=progress)
        self.fabric.set_array_up(self.sites[name].array_name, False)

    def site_up(self, name: str, progress=print):
        self.up(sites=[name], progress=progress)

    def service_down(self, name: str, service: str, progress=print):
        """One service of a site stops, every process of it (``mistral`` over RabbitMQ:
        its api, engine, executors and notifier); ``site_up`` (or ``up``) starts it
        again."""
        state = self.state()
        running = state["sites"].get(name, {})
        stopping = [process for process, entry in running.items()
                    if service in (process, entry.get("component"))]
        if not stopping:
            raise RuntimeError(f"{name}: {service} is not running")
        for process in reversed(stopping):
            base.stop_group(running.pop(process)["pid"])
            progress(f"{name}: {process} stopped")
        self._save(state)

    def set_link(self, up: bool):
        self.fabric.set_link(*(s.array_name for s in self.sites.values()), up=up)

    def cloud_fault(self, name: str, fault: dict) -> dict:
        """Inject a fault into a site's simulated Nova/Neutron/Cinder/Glance (see
        :mod:`site_recovery.lab.cloud.faults` for the fields)."""
        site = self.sites[name]
        reply = requests.post(site.url("cloud", "/_lab/faults"), json=fault, timeout=30,
                              headers={"X-Auth-Token": keystone.token(site)})
        if reply.status_code != 201:
            raise RuntimeError(f"{name}: fault refused ({reply.status_code}): {reply.text}")
        return reply.json()["fault"]

    def clear_faults(self):
        """Lift every fault: arrays and link, and each running site's cloud faults."""
        self.fabric.clear_faults()
        running = self.state()["sites"]
        for name, site in self.sites.items():
            if "cloud" in running.get(name, {}):
                requests.delete(site.url("cloud", "/_lab/faults"), timeout=30,
                                headers={"X-Auth-Token": keystone.token(site)})

    def _redis_url(self) -> str:
        """The machine's Redis, keyed apart for this lab (several may share one Redis);
        a lock lasts 5 s unrenewed, so a standby engine takes over within seconds."""
        return (f"redis://{HOST}:6379?namespace=site-recovery-lab-{self.options.run_name}-"
                f"{self.options.port_base}&lock_timeout=5&timeout=5")

    def ca_file(self) -> Path:
        """The lab's own certificate (and key, one PEM), which its clients trust: the
        arrays and the protection services serve it."""
        return ensure_certificate(self.run_dir / "tls")

    def clouds_yaml(self) -> Path:
        """clouds.yaml with an entry per site and account: ``site-a`` is the admin,
        ``site-a-alice`` a tenant member, ``site-a-site-recovery`` the DR service account
        (its project owns the private DR workbook, whose workflows it starts directly in
        Mistral), and so on."""
        clouds = {}
        for name, site in self.sites.items():
            for user in ("admin", "dr-admin", "site-recovery", "alice", "rita", "bob",
                         "carol", "mallory"):
                entry = f"{name}" if user == "admin" else f"{name}-{user}"
                clouds[entry] = {"auth": site.auth(user), "region_name": "RegionOne",
                                 "identity_api_version": 3, "interface": "public",
                                 "cacert": str(self.ca_file())}
        path = self.run_dir / "clouds.yaml"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({"clouds": clouds}, sort_keys=False))
        return path


def _write(path: Path, text: str, private: bool = False):
    """Replace a file at once: Mistral's and the service's preparations write the same
    files side by side, and a process may read them meanwhile."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(text)
    if private:
        tmp.chmod(0o600)
    tmp.replace(path)


def _all(work, items):
    """``work`` on every item at once; raises the first failure once all have ended."""
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        futures = [pool.submit(work, item) for item in items]
    for future in futures:
        future.result()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _emptied(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _healthy(entry: dict) -> bool:
    if not _alive(entry["pid"]):
        return False
    if not entry["url"]:                  # it serves nothing: alive is healthy
        return True
    status = base.probe(entry["url"])
    return isinstance(status, int) and status < 500


def _refuse_busy_port(spec: ServiceSpec):
    """Fail clearly when something else already holds the service's port."""
    if spec.port is None:
        return
    with contextlib.closing(socket.socket()) as probe:
        if probe.connect_ex((HOST, spec.port)) == 0:
            raise RuntimeError(f"{spec.name}: port {spec.port} is already in use by another "
                               "process; choose another --port-base or stop it")
