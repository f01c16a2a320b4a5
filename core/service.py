"""The workflows' view of this site's protection service (its ``/v1/internal`` API).

Group documents (with what capture recorded) and resource mappings are read from it;
progress, captures and role swaps are written to it, so durable operation state lives in
the service's database and reaches the peer site through the service's own sync. The
endpoint comes from the Keystone catalog (service type ``protector``); the caller signs in
as the DR service account, the one account (with the ``site_recovery_service`` role) those
endpoints take from the workflows.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from keystoneauth1 import exceptions as ks_exceptions
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from .model import (
    ExecutionReport,
    Fence,
    GroupDocument,
    GroupStatus,
    MappingDocument,
    Project,
)

SERVICE_TYPE = "protector"
AS_IT_IS = object()           # set_state: a field not to change


def refusal(reply) -> str:
    """What a protection service (this site's or the peer's) said when it refused: its
    JSON error's message, else the start of its body."""
    try:
        return reply.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return reply.text[:300]


class ServiceError(RuntimeError):
    """The protection service refused or did not answer; the message says which and why."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class NotAuthorized(ServiceError):
    """The protection service refused to let this execution act: nothing was done."""


class Protector:
    def __init__(self, session, timeout: float = 30.0, endpoint: dict | None = None):
        """``endpoint``: keystoneauth's filter for the service's catalog entry (default:
        its public one)."""
        self.session, self.timeout = session, timeout
        self.endpoint = endpoint or {"service_type": SERVICE_TYPE, "interface": "public"}

    @retry(retry=retry_if_exception_type(ks_exceptions.ConnectFailure), reraise=True,
           stop=stop_after_attempt(4), wait=wait_exponential(multiplier=0.5, max=5))
    def _call(self, method: str, path: str, body: dict | None = None,
              allowed: tuple[int, ...] = ()) -> dict | None:
        try:
            reply = self.session.request(path, method, json=body,
                                         endpoint_filter=self.endpoint,
                                         timeout=self.timeout, raise_exc=False)
        except ks_exceptions.ConnectFailure:
            raise
        except ks_exceptions.ClientException as exc:
            raise ServiceError(f"protection service: {method} {path} failed: {exc}") from None
        if reply.status_code in allowed:
            return None
        if reply.status_code >= 300:
            raise ServiceError(f"protection service refused {method} {path} "
                               f"({reply.status_code}): {refusal(reply)}", reply.status_code)
        return reply.json() if reply.content else {}

    def group(self, group_id: str) -> GroupDocument:
        return GroupDocument.model_validate(
            self._call("GET", f"internal/protection-groups/{group_id}")["document"])

    def groups(self) -> list[GroupDocument]:
        return [GroupDocument.model_validate(doc) for doc in
                self._call("GET", "internal/protection-groups")["documents"]]

    def project_id(self, project: Project) -> str:
        """The id this site recorded for ``project``: what the engine scopes to there."""
        return self._call("GET", f"internal/projects/{quote(project.domain, safe='')}/"
                                 f"{quote(project.name, safe='')}")["project_id"]

    def mappings(self, project: Project) -> list[MappingDocument]:
        query = urlencode({"project_name": project.name, "project_domain": project.domain})
        return [MappingDocument.model_validate(doc) for doc in self._call(
            "GET", f"internal/resource-mappings?{query}")["documents"]]

    def record_capture(self, group_id: str, specs: dict[str, dict],
                       unchanged: list[str] = ()) -> int:
        """Store each member's captured spec (by server id) on both sites; ``unchanged``:
        members captured again as they were (only their capture time moves). The group's
        version after it."""
        return self._call("PUT", f"internal/protection-groups/{group_id}/capture",
                          {"specs": specs, "unchanged": list(unchanged)})["document"]["version"]

    def set_state(self, group_id: str, *, status: GroupStatus | None = None,
                  primary_site: str | None = None, secondary_site: str | None = None,
                  fence: Fence | object | None = AS_IT_IS) -> dict:
        """A group's status and, after a failover, its swapped sites; its ``fence`` (None:
        lifted; by default left as it is)."""
        body: dict = {} if status is None else {"status": status}
        if primary_site:
            body.update(primary_site=primary_site, secondary_site=secondary_site)
        if fence is not AS_IT_IS:
            body["fence"] = fence and fence.model_dump(mode="json")
        return self._call("PUT", f"internal/protection-groups/{group_id}/state",
                          body)["document"]

    def report(self, execution_id: str | None, operation_id: str | None = None, *,
               finished_is_fine: bool = False, **progress) -> str | None:
        """Progress of an operation, or of one group in it (``protection_group_id``), from
        inside Mistral execution ``execution_id``: the fields of a
        :class:`~.model.ProgressReport`, checked before they are sent. Returns the
        operation the execution runs (None: a capture, which is no operation).

        The service answers it first of all whether this execution may act at all (an
        ad-hoc run or another project's workflow may not): a refusal raises
        :class:`NotAuthorized`, and the action does nothing. ``finished_is_fine``: a report
        of an end may arrive after the operation finished (a late duplicate): left as it is.
        """
        if not execution_id:
            raise NotAuthorized("not run by a workflow: the site_recovery actions act only "
                                "in workflows the protection service or its account started")
        body = ExecutionReport.model_validate(
            {"operation_id": operation_id,
             **{k: v for k, v in progress.items() if v is not None}}
        ).model_dump(mode="json", exclude_defaults=True)
        try:
            reply = self._call("POST", f"internal/executions/{execution_id}/progress", body,
                               allowed=(409,) if finished_is_fine else ())
        except ServiceError as exc:
            if exc.status in (403, 404):
                raise NotAuthorized(str(exc)) from None
            raise
        return reply["operation_id"] if reply else None

    # -- a scheduled drill's steps (webhook/schedules.py) ----------------------------------

    def _scheduled(self, method: str, execution_id: str | None, path: str,
                   body: dict | None = None) -> dict:
        """A scheduled drill's step, heard only from its own run (refused: NotAuthorized)."""
        if not execution_id:
            raise NotAuthorized("not run by a workflow: a scheduled drill's steps act only in "
                                "its own run of scheduled_drill")
        try:
            return self._call(method, f"internal/scheduled-drills/{execution_id}{path}", body)
        except ServiceError as exc:
            if exc.status in (403, 404):
                raise NotAuthorized(str(exc)) from None
            raise

    def start_scheduled(self, execution_id: str | None, kind: str) -> dict:
        """The run's drill or cleanup: ``operation_id``, or why it was ``skipped``."""
        return self._scheduled("POST", execution_id, "/operations", {"kind": kind})

    def scheduled_operation(self, execution_id: str | None, operation_id: str) -> dict:
        """Whether the run's operation ``ended``, and its ``status``."""
        return self._scheduled("GET", execution_id, f"/operations/{operation_id}")

    def verify_scheduled(self, execution_id: str | None, operation_id: str) -> dict:
        """The drill's report kept and checked: ``passed`` and its ``problems``."""
        return self._scheduled("POST", execution_id,
                               f"/operations/{operation_id}/verification")

    def finish_scheduled(self, execution_id: str | None, problems: list[str]) -> dict:
        return self._scheduled("POST", execution_id, "/outcome", {"problems": problems})
