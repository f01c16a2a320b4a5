"""The protection service's REST API (docs/api.md) as the signed-in user may use it.

Each call carries the user's own token and goes to the ``protector`` endpoint of the
user's Keystone catalog, so the service, not Horizon, decides what the user sees and may
do. Settings: ``SITE_RECOVERY_CA_FILE`` (the CA bundle the service's certificate is
checked against; else Horizon's ``OPENSTACK_SSL_CACERT``, else the system's;
``OPENSTACK_SSL_NO_VERIFY`` turns checking off as for Horizon's other clients) and
``SITE_RECOVERY_TIMEOUT`` (seconds per call).
"""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

import requests
from django.conf import settings
from horizon import exceptions
from openstack_dashboard.api import base

SERVICE_TYPE = "protector"
# An operation's statuses (docs/api.md): still moving; ended with groups to retry.
UNFINISHED = frozenset({"pending", "running"})
RETRYABLE = frozenset({"failed", "partially_failed"})
API_PREFIX = "/v1"
DEFAULT_TIMEOUT = 30.0


class ProtectorError(Exception):
    """The service refused the call, or did not answer; the message is its own words."""


def _verify() -> bool | str:
    if getattr(settings, "OPENSTACK_SSL_NO_VERIFY", False):
        return False
    return (getattr(settings, "SITE_RECOVERY_CA_FILE", None)
            or getattr(settings, "OPENSTACK_SSL_CACERT", None) or True)


def _api_url(request) -> str:
    """The catalog may name the service's root or its ``/v1``: both work."""
    try:
        endpoint = base.url_for(request, SERVICE_TYPE).rstrip("/")
    except exceptions.ServiceCatalogException:
        raise ProtectorError(f"no {SERVICE_TYPE} endpoint in region "
                             f"{request.user.services_region} of the catalog") from None
    return endpoint if endpoint.endswith(API_PREFIX) else endpoint + API_PREFIX


def _refusal(reply: requests.Response) -> ProtectorError:
    """The service's ``{"error": {"message": ...}}``, or what a proxy in front said."""
    try:
        message = reply.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = " ".join(reply.text.split())[:200] or "the protection service gave no reason"
    try:
        reason = HTTPStatus(reply.status_code).phrase
    except ValueError:
        reason = reply.reason or ""
    return ProtectorError(f"{message} (HTTP {f'{reply.status_code} {reason}'.strip()})")


def _call(request, method: str, path: str, headers: dict | None = None, **kwargs):
    url = _api_url(request) + path
    timeout = getattr(settings, "SITE_RECOVERY_TIMEOUT", DEFAULT_TIMEOUT)
    try:
        reply = requests.request(
            method, url, headers={"X-Auth-Token": request.user.token.id, **(headers or {})},
            timeout=timeout, verify=_verify(), **kwargs)
    except requests.ReadTimeout:
        late = f"the protection service at {url} did not answer within {timeout:g} s"
        if method == "GET":
            raise ProtectorError(late) from None
        if "Idempotency-Key" in (headers or {}):
            raise ProtectorError(f"{late}: the operation may have started; see the Operations, "
                                 "or send the same form again, which shows it rather than "
                                 "starting another") from None
        raise ProtectorError(f"{late}: the change may have been made; see its Operations "
                             "before trying again") from None
    except requests.RequestException as exc:
        cause = " ".join(str(exc).split())[:200]
        raise ProtectorError(f"cannot reach the protection service at {url}: "
                             f"{type(exc).__name__}: {cause}") from None
    if reply.status_code >= 400:
        raise _refusal(reply)
    if not reply.content:
        return None
    try:
        return reply.json()
    except ValueError:                  # a proxy's page in front of the service
        raise ProtectorError(f"the answer from {url} is not the protection service's: "
                             f"{' '.join(reply.text.split())[:200]}") from None


def _group_path(group: str, tail: str = "") -> str:
    return f"/protection-groups/{quote(group, safe='')}{tail}"


def _start(request, path: str, idempotency_key: str | None, **kwargs) -> dict:
    """A POST that starts an operation; the operation it started. The service answers a
    key it has seen with the operation that key started (docs/api.md, *Operations*), so a
    form submitted twice starts one operation."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return _call(request, "POST", path, headers=headers, **kwargs)["operation"]


# -- sites -----------------------------------------------------------------------------------
def list_sites(request) -> list[dict]:
    """This site and its peer: role, state (reachable, unreachable...), since when."""
    return _call(request, "GET", "/sites")["sites"]


def site_failover(request, site: str, failover_type: str, force: bool, *,
                  idempotency_key: str) -> dict:
    """Every protected group whose primary is ``site``, recovered here (dr_site_admin)."""
    body = {"failover_type": failover_type, **({"force": True} if force else {})}
    return _start(request, f"/sites/{quote(site, safe='')}/failover", idempotency_key,
                  json=body)


# -- protection groups -----------------------------------------------------------------------
def list_groups(request) -> list[dict]:
    """The protection groups of the user's current project."""
    return _call(request, "GET", "/protection-groups")["protection_groups"]


def get_group(request, group: str) -> dict:
    """One protection group, by id or by name within the user's project."""
    return _call(request, "GET", _group_path(group))["protection_group"]


def create_group(request, **fields) -> dict:
    """``name``, ``replication_type``, ``primary_site``, ``secondary_site``,
    ``volume_type``, optional ``description``, ``rpo_target_seconds`` and
    ``rto_target_seconds``."""
    return _call(request, "POST", "/protection-groups", json=fields)["protection_group"]


def update_group(request, group: str, **fields) -> dict:
    """Any of ``name``, ``description``, ``volume_type``, ``rpo_target_seconds``,
    ``rto_target_seconds`` (``version``: the version the change was made against)."""
    return _call(request, "PATCH", _group_path(group), json=fields)["protection_group"]


def delete_group(request, group: str):
    _call(request, "DELETE", _group_path(group))


# -- members ---------------------------------------------------------------------------------
def list_members(request, group: str) -> list[dict]:
    return _call(request, "GET", _group_path(group, "/members"))["members"]


def add_member(request, group: str, server_id: str, server_name: str | None = None) -> dict:
    """The member, and for a protected group the protect that replicates its volumes
    (``operation``)."""
    body = {"server_id": server_id, **({"server_name": server_name} if server_name else {})}
    return _call(request, "POST", _group_path(group, "/members"), json=body)


def remove_member(request, group: str, server_id: str) -> dict | None:
    """``None``, or for a protected group the protect that takes its volumes out."""
    return _call(request, "DELETE", _group_path(group, f"/members/{quote(server_id, safe='')}"))


# -- resource mappings -----------------------------------------------------------------------
def list_mappings(request, group: str | None = None) -> list[dict]:
    """The project's mappings, or those of one group and the project's."""
    params = {"protection_group": group} if group else {}
    return _call(request, "GET", "/resource-mappings", params=params)["resource_mappings"]


def create_mapping(request, kind: str, source: str, target: str,
                   group: str | None = None) -> dict:
    """``kind``: network, flavor, security_group, ip_rule or availability_zone."""
    body = {"kind": kind, "source": source, "target": target,
            **({"protection_group": group} if group else {})}
    return _call(request, "POST", "/resource-mappings", json=body)["resource_mapping"]


def delete_mapping(request, mapping: str):
    _call(request, "DELETE", f"/resource-mappings/{quote(mapping, safe='')}")


# -- operations ------------------------------------------------------------------------------
def run_group_operation(request, group: str, operation: str, *, idempotency_key: str,
                        **body) -> dict:
    """``operation``: protect, unprotect, test-failover, test-cleanup, failover,
    failback or reprotect; ``body`` as the API takes it (``network_mapping``,
    ``failover_type``, ``force``...). The operation the service started."""
    return _start(request, _group_path(group, f"/{operation}"), idempotency_key,
                  json=body or None)


def list_operations(request, group: str | None = None, status: str | None = None,
                    all_projects: bool = False, scope: str | None = None) -> list[dict]:
    """``all_projects``: every project's, for an admin (a site failover spans projects);
    ``scope``: ``site`` for site failovers only."""
    params = {key: value for key, value in (("protection_group", group), ("status", status),
                                            ("all_projects", all_projects and "true"),
                                            ("scope", scope))
              if value}
    return _call(request, "GET", "/operations", params=params)["operations"]


def get_operation(request, operation: str, all_projects: bool = False) -> dict:
    """With its per-group ``results``: progress, step, errors (``all_projects``: any
    project's operation, for an admin)."""
    params = {"all_projects": "true"} if all_projects else {}
    return _call(request, "GET", f"/operations/{quote(operation, safe='')}",
                 params=params)["operation"]


def retry_operation(request, operation: str, all_projects: bool, *,
                    idempotency_key: str | None) -> dict:
    """A new operation for the groups that failed (``all_projects``: every project's
    groups, as a site failover's retry needs; else the user's project's only)."""
    params = {"all_projects": "true"} if all_projects else {}
    return _start(request, f"/operations/{quote(operation, safe='')}/retry", idempotency_key,
                  params=params)


# -- audit -----------------------------------------------------------------------------------
def list_audit(request, limit: int = 100, target: str | None = None) -> list[dict]:
    """The newest entries of the caller's project; ``target``: only those about it."""
    return _call(request, "GET", "/audit-log", params={
        "limit": limit, **({"target": target} if target else {})})["entries"]
