"""REST client of the protection service (docs/api.md): one method per API call.

All knowledge of paths, bodies and the error format lives here; the commands only
present what these methods return.
"""

from __future__ import annotations

import uuid
from functools import partialmethod
from http import HTTPStatus
from urllib.parse import quote

from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exceptions
from osc_lib import exceptions

from site_recovery.core.model import OperationKind

SERVICE_TYPE = "protector"
API_PREFIX = "/v1"
DEFAULT_TIMEOUT = 60.0
# How often a read, or an operation's start (its Idempotency-Key makes that safe), is
# sent again after it failed to connect or timed out.
CONNECT_RETRIES = 3


class ProtectorError(exceptions.CommandError):
    """The service refused a request; the message names the status and the reason."""

    def __init__(self, status: int, reason: str, message: str, details: dict | None = None):
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details or {}
        super().__init__(f"{message} (HTTP {f'{status} {reason}'.strip()})")


class ServiceUnreachable(exceptions.CommandError):
    """No answer at all: the request may be worth repeating, unlike a refusal."""


def _segment(value: str) -> str:
    """Ids and names go into a path as one segment: a name may hold '/' or spaces."""
    return quote(str(value), safe="")


def _all_projects(all_projects: bool) -> dict:
    return {"all_projects": "true"} if all_projects else {}


def _given(**values) -> dict:
    """The values the caller gave: None, "" and {} stand for none."""
    return {k: v for k, v in values.items() if v is not None and v != "" and v != {}}


class Client:
    """The protection service of one site, reached through its Keystone catalog."""

    def __init__(self, session, *, interface: str | None = None,
                 region_name: str | None = None, timeout: float = DEFAULT_TIMEOUT):
        self._api = adapter.Adapter(session, service_type=SERVICE_TYPE, interface=interface,
                                    region_name=region_name, client_name="site-recovery-cli")
        self._interface = interface
        self._region_name = region_name
        self._timeout = timeout
        self._base_url: str | None = None

    def _url(self, path: str) -> str:
        """The catalog may name the service's root or its ``/v1``: both work."""
        if self._base_url is None:
            try:
                endpoint = self._api.get_endpoint()
            except ks_exceptions.EndpointNotFound:
                endpoint = None
            if not endpoint:
                raise exceptions.CommandError(
                    f"the Keystone catalog has no {SERVICE_TYPE!r} endpoint (interface "
                    f"{self._interface or 'public'}, region {self._region_name or 'any'}): "
                    "is the protection service registered on this site?")
            base = endpoint.rstrip("/")
            self._base_url = base if base.endswith(API_PREFIX) else base + API_PREFIX
        return self._base_url + path

    def _request(self, method: str, path: str, *, body: dict | None = None,
                 params: dict | None = None, headers: dict | None = None,
                 document: bool = False):
        """The answer's JSON; with ``document``, its bytes (a report's HTML or PDF)."""
        url = self._url(path)
        # Only a request that cannot act twice is repeated: a read, or one with a key.
        repeatable = method == "GET" or "Idempotency-Key" in (headers or {})
        try:
            response = self._api.request(url, method, json=body, params=params or None,
                                         headers=headers, raise_exc=False,
                                         timeout=self._timeout,
                                         connect_retries=CONNECT_RETRIES if repeatable else 0)
        except ks_exceptions.ConnectionError as exc:
            raise ServiceUnreachable(
                f"cannot reach the protection service at {url}: {exc}") from None
        if response.status_code >= 400:
            raise _error(response)
        if document:
            return response.content
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise exceptions.CommandError(
                f"{url} answered {response.status_code} without JSON: is the catalog's "
                f"{SERVICE_TYPE!r} endpoint the protection service?") from None

    def _start(self, path: str, body: dict | None, idempotency_key: str | None,
               all_projects: bool = False) -> dict:
        """POST that starts an operation; the key makes a repeated request harmless."""
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        answer = self._request("POST", path, body=body, params=_all_projects(all_projects),
                               headers=headers)
        return answer["operation"]

    # Sites

    def list_sites(self) -> list[dict]:
        return self._request("GET", "/sites")["sites"]

    def get_site(self, name: str) -> dict:
        return self._request("GET", f"/sites/{_segment(name)}")["site"]

    # Protection groups and their members

    def list_groups(self, *, all_projects: bool = False) -> list[dict]:
        return self._request("GET", "/protection-groups",
                             params=_all_projects(all_projects))["protection_groups"]

    def create_group(self, **fields) -> dict:
        return self._request("POST", "/protection-groups", body=fields)["protection_group"]

    def get_group(self, group: str, *, all_projects: bool = False) -> dict:
        return self._request("GET", f"/protection-groups/{_segment(group)}",
                             params=_all_projects(all_projects))["protection_group"]

    def update_group(self, group: str, *, all_projects: bool = False, **fields) -> dict:
        return self._request("PATCH", f"/protection-groups/{_segment(group)}", body=fields,
                             params=_all_projects(all_projects))["protection_group"]

    def resolve_group(self, group: str, keep: str, *, all_projects: bool = False) -> dict:
        return self._request("POST", f"/protection-groups/{_segment(group)}/resolve",
                             body={"keep": keep},
                             params=_all_projects(all_projects))["protection_group"]

    def delete_group(self, group: str, *, all_projects: bool = False,
                     force: bool = False) -> None:
        """``force``: also a group that is not unprotected, leaving its replication as it
        is (the service refuses one otherwise, naming unprotect)."""
        self._request("DELETE", f"/protection-groups/{_segment(group)}",
                      params={**_all_projects(all_projects),
                              **({"force": "true"} if force else {})})

    def get_readiness(self, group: str, *, all_projects: bool = False) -> dict | None:
        """The group's last readiness check, on its DR site (None before the first)."""
        return self._request("GET", f"/protection-groups/{_segment(group)}/readiness",
                             params=_all_projects(all_projects))["readiness"]

    def check_readiness(self, group: str, *, all_projects: bool = False) -> dict:
        return self._request("POST", f"/protection-groups/{_segment(group)}/readiness",
                             params=_all_projects(all_projects))["readiness"]

    def list_members(self, group: str, *, all_projects: bool = False) -> list[dict]:
        return self._request("GET", f"/protection-groups/{_segment(group)}/members",
                             params=_all_projects(all_projects))["members"]

    def add_member(self, group: str, server_id: str, *, server_name: str | None = None,
                   all_projects: bool = False) -> dict:
        """``{"member": ...}``; for a protected group also ``operation``, the protect that
        puts the member's volumes in replication (None, and ``protect`` saying why, when
        it could not start)."""
        return self._request("POST", f"/protection-groups/{_segment(group)}/members",
                             body={"server_id": server_id, **_given(server_name=server_name)},
                             params=_all_projects(all_projects))

    def set_member(self, group: str, server_id: str, *, all_projects: bool = False,
                   **fields) -> dict:
        """``boot_tier`` and ``gate`` as given (None: unset); the member."""
        return self._request(
            "PATCH", f"/protection-groups/{_segment(group)}/members/{_segment(server_id)}",
            body=fields, params=_all_projects(all_projects))["member"]

    def remove_member(self, group: str, server_id: str, *, all_projects: bool = False) -> dict:
        """``{}``; for a protected group ``operation``, the protect that takes the member's
        volumes out of replication (None, and ``protect`` saying why, when it could not
        start)."""
        return self._request(
            "DELETE", f"/protection-groups/{_segment(group)}/members/{_segment(server_id)}",
            params=_all_projects(all_projects)) or {}

    # Resource mappings

    def list_mappings(self, *, group: str | None = None,
                      all_projects: bool = False) -> list[dict]:
        return self._request("GET", "/resource-mappings", params={
            **_all_projects(all_projects), **_given(protection_group=group)})["resource_mappings"]

    def create_mapping(self, kind: str, source: str, target: str, *,
                       group: str | None = None) -> dict:
        return self._request("POST", "/resource-mappings", body={
            "kind": kind, "source": source, "target": target,
            **_given(protection_group=group)})["resource_mapping"]

    def get_mapping(self, mapping_id: str, *, all_projects: bool = False) -> dict:
        return self._request("GET", f"/resource-mappings/{_segment(mapping_id)}",
                             params=_all_projects(all_projects))["resource_mapping"]

    def update_mapping(self, mapping_id: str, target: str, *,
                       expected_version: int | None = None,
                       all_projects: bool = False) -> dict:
        return self._request("PATCH", f"/resource-mappings/{_segment(mapping_id)}",
                             body={"target": target, **_given(version=expected_version)},
                             params=_all_projects(all_projects))["resource_mapping"]

    def resolve_mapping(self, mapping_id: str, keep: str, *, all_projects: bool = False
                        ) -> dict:
        return self._request("POST", f"/resource-mappings/{_segment(mapping_id)}/resolve",
                             body={"keep": keep},
                             params=_all_projects(all_projects))["resource_mapping"]

    def delete_mapping(self, mapping_id: str, *, all_projects: bool = False) -> None:
        self._request("DELETE", f"/resource-mappings/{_segment(mapping_id)}",
                      params=_all_projects(all_projects))

    # DR operations

    def start_operation(self, operation: OperationKind, group: str, *,
                        all_projects: bool = False, idempotency_key: str | None = None,
                        **options) -> dict:
        """Start ``operation`` on one group (``options``: its body; those not given are
        left out). A protect runs only on the group's primary site, a recovery only on
        its secondary: another site's service refuses, naming the site to ask."""
        body = _given(**options)
        path = f"/protection-groups/{_segment(group)}/{operation.replace('_', '-')}"
        return self._start(path, body or None, idempotency_key, all_projects)

    def plan_operation(self, operation: OperationKind, group: str, *,
                       all_projects: bool = False, **options) -> dict:
        """What ``operation`` on one group would do, from the service's dry run: nothing
        is started or recorded."""
        path = f"/protection-groups/{_segment(group)}/{operation.replace('_', '-')}"
        return self._request("POST", path, body={**_given(**options), "dry_run": True},
                             params=_all_projects(all_projects))["plan"]

    protect = partialmethod(start_operation, OperationKind.PROTECT)
    test_failover = partialmethod(start_operation, OperationKind.TEST_FAILOVER)
    test_cleanup = partialmethod(start_operation, OperationKind.TEST_CLEANUP)
    failback = partialmethod(start_operation, OperationKind.FAILBACK)

    def failover(self, group: str, failover_type: str, **options) -> dict:
        return self.start_operation(OperationKind.FAILOVER, group,
                                    failover_type=failover_type, **options)

    def site_failover(self, site: str, failover_type: str, *, force: bool = False,
                      idempotency_key: str | None = None) -> dict:
        return self._start(f"/sites/{_segment(site)}/failover",
                           {"failover_type": failover_type, "force": force}, idempotency_key)

    def plan_site_failover(self, site: str, failover_type: str, *,
                           force: bool = False) -> dict:
        return self._request("POST", f"/sites/{_segment(site)}/failover", body={
            "failover_type": failover_type, "force": force, "dry_run": True})["plan"]

    def retry_operation(self, operation_id: str, *, all_projects: bool = False,
                        idempotency_key: str | None = None) -> dict:
        return self._start(f"/operations/{_segment(operation_id)}/retry", None,
                           idempotency_key, all_projects)

    def cancel_operation(self, operation_id: str, *, all_projects: bool = False) -> dict:
        return self._request("POST", f"/operations/{_segment(operation_id)}/cancel",
                             params=_all_projects(all_projects))["operation"]

    def list_operations(self, *, status: str | None = None, group: str | None = None,
                        all_projects: bool = False) -> list[dict]:
        return self._request("GET", "/operations", params={
            **_all_projects(all_projects), **_given(status=status, protection_group=group)}
        )["operations"]

    def get_operation(self, operation_id: str, *, all_projects: bool = False) -> dict:
        return self._request("GET", f"/operations/{_segment(operation_id)}",
                             params=_all_projects(all_projects))["operation"]

    def operation_report(self, operation_id: str, report_format: str = "json", *,
                         all_projects: bool = False) -> dict | bytes:
        """A recovery's report: a dict for json, the document's bytes for html and pdf."""
        path = f"/operations/{_segment(operation_id)}/report"
        params = {"format": report_format, **_all_projects(all_projects)}
        if report_format == "json":
            return self._request("GET", path, params=params)["report"]
        return self._request("GET", path, params=params, document=True)

    # Audit log

    def list_audit(self, *, limit: int | None = None, marker: str | None = None,
                   all_projects: bool = False) -> list[dict]:
        return self._request("GET", "/audit-log", params={
            **_all_projects(all_projects), **_given(limit=limit, marker=marker)})["entries"]


def _error(response) -> ProtectorError:
    """The service's ``{"error": {...}}``, or what a proxy in front of it said."""
    try:
        error = response.json()["error"]
        message, details = error["message"], error.get("details") or {}
    except (ValueError, KeyError, TypeError):
        text = " ".join(response.text.split())[:200]
        message, details = text or "the protection service gave no reason", {}
    try:
        reason = HTTPStatus(response.status_code).phrase
    except ValueError:
        reason = response.reason or ""
    return ProtectorError(response.status_code, reason, message, details)
