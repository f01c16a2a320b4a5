"""What a tenant's references point at, asked of this site's cloud as the tenant's project
sees it, never with an admin's view (which would see every project's).

A protection group protects its own project's servers only: a member is accepted on the
group's primary site, where its servers run, when Nova shows the server to the caller and
says it belongs to the group's project. keystonemiddleware hands the views the caller's
token as a keystoneauth plugin (``keystone.token_auth``), with the caller's catalog.

A mapping's target lives on the site where the group recovers, which may be the peer:
that site looks it up with the DR account signed in to the tenant's project (a member
there), as the recovery's preflight will (:class:`References`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import request
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from openstack import exceptions as sdk_exceptions

from site_recovery.core.clouds import Clouds
from site_recovery.core.config import ConfigError, ServiceConfig
from site_recovery.core.model import DEFAULT_DOMAIN, MappingKind, Project
from site_recovery.core.protection import Unprotectable
from site_recovery.core.recovery import check_volumes, find_reference

from .errors import APIError, Conflict, Unavailable

TIMEOUT = 10.0


@dataclass(frozen=True)
class Server:
    id: str
    name: str
    project_id: str


class TenantClouds:
    """This site's Nova and Keystone as the caller sees them."""

    def __init__(self, config: ServiceConfig):
        """Nova where the ``clouds.local`` entry finds it (its region and interface) and
        Keystone, each checked with its CA bundle (the entry's; the service account's)."""
        self.site = config.site
        local = config.clouds.region("local")
        self.verify = {"compute": local.get_requests_verify_args()[0],
                       "identity": config.service_account().get_requests_verify_args()[0]}
        self.where = {service_type: {"interface": local.get_interface(service_type),
                                     "region_name": local.get_region_name(service_type) or None}
                      for service_type in self.verify}

    def _get(self, service_type: str, path: str, **params) -> dict | None:
        """One GET as the caller: its JSON, None for 404."""
        auth = request.environ.get("keystone.token_auth")
        if auth is None or not auth.has_user_token:
            raise Unavailable("the caller's token cannot be used to look the reference up")
        session = ks_session.Session(auth=auth, verify=self.verify[service_type],
                                     timeout=TIMEOUT)
        wanted = {"service_type": service_type, **self.where[service_type],
                  **({"version": (3, 0)} if service_type == "identity" else {})}
        try:
            reply = session.get(path, params=params or None, raise_exc=False,
                                endpoint_filter=wanted)
        except ks_exceptions.ClientException as exc:
            raise Unavailable(f"{service_type} on {self.site} did not answer: "
                              f"{type(exc).__name__}") from None
        if reply.status_code == 404:
            return None
        if reply.status_code >= 300:
            raise Unavailable(f"{service_type} on {self.site} answered HTTP "
                              f"{reply.status_code} to {path}")
        return reply.json()

    def server(self, server_id: str) -> Server | None:
        """The server as Nova shows it to the caller; None if it shows none."""
        found = self._get("compute", f"/servers/{server_id}")
        if found is None:
            return None
        server = found["server"]
        return Server(server["id"], server.get("name") or "", server.get("tenant_id", ""))

    def project_id(self, project: Project) -> str | None:
        """The project's id in this site's Keystone, as the caller may read it."""
        domain_id = "default"
        if project.domain != DEFAULT_DOMAIN:
            domains = (self._get("identity", "/domains", name=project.domain)
                       or {}).get("domains", [])
            if not domains:
                return None
            domain_id = domains[0]["id"]
        projects = (self._get("identity", "/projects", name=project.name,
                              domain_id=domain_id) or {}).get("projects", [])
        return projects[0]["id"] if projects else None


def member_server(tenants: TenantClouds, recorded_id: str | None, project: Project,
                  primary: str, server_id: str) -> Server:
    """The server ``server_id`` if it may join a group of ``project`` (``recorded_id``: the
    id this site recorded for it, if any) whose primary site is ``primary``; else a 409
    (wrong site) or a 400 naming the server."""
    if primary != tenants.site:
        raise APIError(f"this protection group runs on {primary}: add its members there, "
                       "where its servers are", status=409)
    server = tenants.server(server_id)
    owner = recorded_id or tenants.project_id(project)
    if server is None or not owner or server.project_id != owner:
        raise APIError(f"server {server_id} is not a server of project {project} on "
                       f"{tenants.site}: a protection group protects its own project's "
                       "servers only", status=400)
    return server


class References:
    """This site's cloud as a tenant's project sees it: the DR account signed in to the
    project (a member there), as the recovery's preflight looks its targets up and protect
    reads a member's volumes."""

    def __init__(self, clouds: Clouds, site: str):
        self.clouds, self.site = clouds, site

    def find(self, project: Project, kind: MappingKind, ref: str) -> str | None:
        """The id ``ref`` names among the project's (or shared) ``kind``; None if none."""
        try:
            return find_reference(self.clouds.connect(self.site, project), kind, ref)
        except ConfigError as exc:
            raise Conflict(str(exc)) from None
        except (sdk_exceptions.SDKException, ks_exceptions.ClientException) as exc:
            raise Unavailable(f"{self.site}'s cloud could not look {kind} {ref!r} up for "
                              f"project {project}: {type(exc).__name__}") from None

    def check_member(self, project: Project, server_id: str, replication_type: str):
        """Refuse (400, naming each volume) a server joining a protected group whose
        volumes do not replicate ``replication_type``, read as protect reads them: the
        server and its volumes as the project sees them, their types as the DR account's
        admin (only an admin sees their replication extra specs)."""
        try:
            check_volumes(self.clouds.connect(self.site),
                          self.clouds.connect(self.site, project), [server_id],
                          replication_type)
        except Unprotectable as exc:
            raise APIError(str(exc), field="server_id") from None
        except ConfigError as exc:
            raise Conflict(str(exc)) from None
        except (sdk_exceptions.SDKException, ks_exceptions.ClientException) as exc:
            raise Unavailable(f"{self.site}'s cloud could not read the volumes of server "
                              f"{server_id} for project {project}: {type(exc).__name__}; "
                              "nothing was changed") from None


def unknown_target(kind: MappingKind, ref: str, project: Project, site: str) -> str:
    noun = MappingKind(kind).value.replace("_", " ")
    return (f"{noun} {ref!r} is not a {noun} of project {project} on {site} (its own or "
            "shared): a mapping's target must be one the project's recovery may use there")


def check_target(references: References, peer_find: Callable[[dict], bool], site: str,
                 project: Project, kind: MappingKind, ref: str, sites: set[str]):
    """Refuse (400, naming it) a mapping target that ``project`` cannot use on one of
    ``sites``, where its groups recover: looked up here, or asked of the peer
    (``peer_find``: whether its ``/v1/internal/references`` found it). An IP rule's
    target is an address range, no reference."""
    if kind is MappingKind.IP_RULE:
        return
    for where in sorted(sites):
        found = (references.find(project, kind, ref) is not None if where == site
                 else peer_find({"project_domain": project.domain,
                                 "project_name": project.name, "kind": kind, "ref": ref}))
        if not found:
            raise APIError(unknown_target(kind, ref, project, where), field="target")
