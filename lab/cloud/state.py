"""A site's simulated cloud: its configuration and the state its services share (the
store, the fabric, the site's array), kept in the app as ``extensions["cloud"]``."""

from __future__ import annotations

from dataclasses import dataclass

from site_recovery.storage.fabric import Fabric, FabricArray

from .store import Store


@dataclass(frozen=True)
class CloudConfig:
    """One site's simulated cloud. Durations are in seconds of the simulation clock."""

    db: str                               # SQLite file of this site's cloud
    fabric: str                           # SQLite file of the simulated FlashArrays
    array: str                            # this site's array in the fabric
    site: str = "site-a"
    keystone_url: str | None = None       # None: trust the identity headers as they come
    service_user: str = "cloud"
    service_password: str = "cloud-pass"
    service_project: str = "service"
    token_cache_time: int = 10
    build_seconds: float = 1.0            # server BUILD -> ACTIVE
    volume_seconds: float = 0.5           # volume creating/managing -> available
    task_seconds: float = 0.2             # attach, detach, stop, start
    array_timeout: float = 30.0
    availability_zone: str = "nova"
    volume_host: str = "cinder@pure#pure"

    @property
    def compute_host(self) -> str:
        return f"{self.site}-compute"


@dataclass
class Cloud:
    """What the blueprints share, kept in ``app.extensions["cloud"]``."""

    config: CloudConfig
    store: Store
    fabric: Fabric

    @property
    def array(self) -> FabricArray:
        return self.fabric.array(self.config.array, timeout=self.config.array_timeout)
