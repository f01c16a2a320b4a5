"""Clients for this site's cloud and the arrays, from the one configuration file.

The workflows act with the DR service's own account on this site (``clouds.local``); the
peer site's cloud they reach only through the peer's protection service (a peer step:
:mod:`site_recovery.core.peer`), so this site holds no credentials for it. What they
build for a tenant lives in the tenant's project, so a connection may be scoped to a
project (the service account holds ``member`` there): by the id this site recorded for its
domain and name (``project_ids``; a project created again under an old name is another
tenant, and the engine never acts in it), by domain and name where none is recorded. The
recovered stack, servers and volumes are then the tenant's, visible with its own
credentials. Every client has the configured API timeout and the entry's region, interface
and CA bundle.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import openstack
from heatclient import client as heat_client
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from openstack.config.cloud_region import CloudRegion

from site_recovery.storage.base import ArrayEndpoint
from site_recovery.storage.driver import StorageDriver

from .config import ConfigError, ServiceConfig
from .model import Project


class Clouds:
    """openstacksdk connections and heatclients per (site, project), made once each, from
    the ``clouds.local`` entry: its auth type and options, scoped to the project, with its
    region, interface and CA bundle."""

    def __init__(self, config: ServiceConfig,
                 project_ids: Callable[[Project], str | None] | None = None):
        """``project_ids``: the id this site recorded for a project, asked once per
        project (None: scope by domain and name)."""
        self.config = config
        self.project_ids = project_ids
        self._cache: dict[tuple, object] = {}
        self._lock = threading.RLock()          # _region() is made inside connect() and heat()

    def _auth(self, site: str, project: Project | None) -> dict | None:
        """The auth options that scope a connection to ``site`` to ``project`` (None: the
        entry's own project)."""
        if site != self.config.site:
            raise ConfigError(f"{site}'s cloud is reached only through its protection "
                              f"service (a peer step): {self.config.site} holds no "
                              "credentials for it")
        if project is None:
            return None
        recorded = self._once(("project_id", project),
                              lambda: self.project_ids and self.project_ids(project))
        return ({"project_id": recorded} if recorded else
                {"project_name": project.name, "project_domain_name": project.domain})

    def _region(self, site: str, project: Project | None) -> CloudRegion:
        return self._once(("region", site, project), lambda: self.config.clouds.region(
            "local", project=self._auth(site, project),
            api_timeout=self.config.engine.api_timeout))

    def keystone_project_id(self, project: Project) -> str:
        """The id this site's Keystone gives ``project`` (by domain and name) when the DR
        account signs in to it: what this site records for it where nothing is yet."""
        region = self.config.clouds.region(
            "local", project={"project_name": project.name,
                              "project_domain_name": project.domain},
            api_timeout=self.config.engine.api_timeout)
        try:
            return region.get_session().get_project_id()
        except ks_exceptions.Unauthorized:
            raise ConfigError(f"the DR account holds no role in project {project} on "
                              f"{self.config.site} (or the project does not exist there): "
                              "grant it member there first") from None

    def _once(self, key: tuple, make):
        with self._lock:
            if key not in self._cache:
                self._cache[key] = make()
            return self._cache[key]

    def connect(self, site: str,
                project: Project | None = None) -> openstack.connection.Connection:
        """``site``'s cloud as the DR service, scoped to ``project`` (default: its own)."""
        return self._once(("sdk", site, project), lambda: openstack.connection.Connection(
            config=self._region(site, project)))

    def session(self, site: str, project: Project | None = None) -> ks_session.Session:
        """The keystoneauth session of :meth:`connect`'s connection."""
        return self._region(site, project).get_session()

    def endpoint(self, site: str, service_type: str) -> dict[str, str]:
        """keystoneauth's endpoint filter for ``service_type``: the interface and region
        the entry names for it, as openstacksdk's own clients take them."""
        region = self._region(site, None)
        named = region.get_region_name(service_type)
        return {"service_type": service_type,
                "interface": region.get_interface(service_type) or "public",
                **({"region_name": named} if named else {})}

    def heat(self, site: str, project: Project):
        """python-heatclient for ``project`` on ``site``."""
        region = self._region(site, project)
        named = region.get_region_name("orchestration")
        return self._once(("heat", site, project), lambda: heat_client.Client(
            "1", session=region.get_session(), interface=region.get_interface("orchestration"),
            **({"region_name": named} if named else {})))

    def storage(self) -> StorageDriver:
        """This site's array, over the REST version its configuration names (the peer's
        array is the peer's: this site holds no token for it). Only that version's SDK is
        imported: ``purestorage`` (REST 1.x) needs distutils, which Python 3.12 lacks."""
        array = self.config.array_of(self.config.site)

        def driver() -> StorageDriver:
            if array.rest_version == 1:
                from site_recovery.storage.flasharray import flasharray_driver as backend
            else:
                from site_recovery.storage.flasharray_rest2 import (
                    flasharray_rest2_driver as backend,
                )
            return backend(
                [ArrayEndpoint.from_token_file(array.name, array.address, array.token_file,
                                               array.ca_file if array.ca_file else True)],
                connect_timeout=array.connect_timeout, read_timeout=array.read_timeout,
                poll_interval=min(1.0, self.config.engine.poll_interval))

        return self._once(("storage",), driver)

