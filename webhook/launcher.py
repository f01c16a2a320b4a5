"""Starting and following Mistral executions, with the service's own Keystone session.

Operations are started under the DR service's account (the workflows need admin-only
calls such as Cinder's manage); who asked is recorded in the operation, not in Mistral.
Every call has a timeout; an unreachable Mistral is a 503 that names it, so the caller can
mark the operation failed-to-start and leave nothing half-done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import yaml
from keystoneauth1 import adapter as ks_adapter
from keystoneauth1 import exceptions as ks_exceptions
from mistralclient.api import base as mistral_base
from mistralclient.api import client as mistral_client
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_fixed

from site_recovery import workbooks
from site_recovery.core.config import ServiceConfig

from .errors import APIError, Unavailable

START_TRIES = 3                  # a start's create, repeated over a timeout (same id)
RECENT = 1000                    # executions listed at once, at most


class StartUncertain(Unavailable):
    """Mistral did not answer a start in time: its execution may exist. The operation
    stays pending; the housekeeper finds the execution by its planned id, or gives the
    operation up once Mistral says it has none."""


def service_session(config: ServiceConfig, timeout: float) -> ks_adapter.Adapter:
    """A Keystone session for this service's account on its own site, whose catalog
    lookups (Mistral's endpoint) take the account's region and interface."""
    account = config.service_account(api_timeout=timeout)
    return ks_adapter.Adapter(account.get_session(),
                              interface=account.get_interface("workflow"),
                              region_name=account.get_region_name("workflow") or None)


@dataclass(frozen=True)
class Execution:
    id: str
    state: str            # IDLE | RUNNING | SUCCESS | ERROR | PAUSED | CANCELLED
    state_info: str | None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Root:
    """The execution at the top of an action's workflow tree, as Mistral records it: who
    owns it (its project) and what it runs. Mistral alone writes these, so an action's
    caller cannot choose them."""

    id: str
    project_id: str
    workflow_name: str
    input: dict


class Launcher:
    def __init__(self, session: ks_adapter.Adapter, url: str | None = None):
        self._session = session
        self._url = url                 # None: the workflowv2 endpoint of the catalog
        self._client = None

    @property
    def url(self) -> str:
        return self._url or self._session.get_endpoint(service_type="workflowv2")

    def _mistral(self):
        """mistralclient verifies an https Mistral against the system's CAs unless given
        the entry's own bundle (``cacert``), which the session holds."""
        if self._client is None:
            bundle = self._session.session.verify
            self._client = mistral_client.client(
                mistral_url=self.url, session=self._session,
                **({"cacert": bundle} if isinstance(bundle, str) else {}))
        return self._client

    def install(self, capture_schedule: str, capture_input: dict,
                trigger: str = "site_recovery.capture") -> list[str]:
        """Create or replace the pack's workbooks in this site's Mistral, point the cron
        trigger that captures this site's groups at this version's workflow, then remove
        older versions of the workbooks (no trigger holds them any more). What was done,
        a line each. Idempotent: a second run replaces each workbook with itself. A newer
        version than this pack's is left alone."""
        mistral = self._mistral()
        present = {w.name for w in mistral.workbooks.list()}
        done = []
        for book in workbooks.pack():
            (mistral.workbooks.update if book.name in present
             else mistral.workbooks.create)(book.text)
            done.append(f"workbook {book.name} installed")
        done.append(self.schedule(trigger, workbooks.workflow_name("capture_site"),
                                  capture_schedule, capture_input))
        for book in workbooks.pack():
            for name in sorted(present - {book.name}):
                family, version = workbooks.family_and_version(name)
                if family == book.family and version < book.version:
                    self._remove(name)
                    done.append(f"workbook {name} removed: {book.name} replaces it")
                elif family == book.family:
                    done.append(f"workbook {name} left in place: it is newer than "
                                f"{book.name}")
        return done

    def _remove(self, name: str):
        """A workbook and the workflows it made: Mistral keeps those when the workbook
        goes, and an operator would still find them."""
        mistral = self._mistral()
        definition = yaml.safe_load(mistral.workbooks.get(name).definition) or {}
        for workflow in definition.get("workflows") or {}:
            try:
                mistral.workflows.delete(f"{name}.{workflow}")
            except mistral_base.APIException as exc:
                if exc.error_code != 404:               # gone already: a rerun
                    raise
        mistral.workbooks.delete(name)

    def triggers(self, prefix: str) -> dict[str, tuple[str, str, dict]]:
        """The cron triggers named ``prefix...``: (pattern, workflow, input) by name."""
        return {t.name: (t.pattern, t.workflow_name, _as_dict(t.workflow_input))
                for t in self._mistral().cron_triggers.list() if t.name.startswith(prefix)}

    def unschedule(self, name: str):
        try:
            self._mistral().cron_triggers.delete(name)
        except mistral_base.APIException as exc:
            if exc.error_code != 404:               # gone already
                raise

    def schedule(self, name: str, workflow: str, pattern: str, workflow_input: dict) -> str:
        """The cron trigger ``name`` running ``workflow`` on ``pattern`` (a trigger on
        another schedule, workflow or input is replaced)."""
        held = self.triggers(name).get(name)
        if held != (pattern, workflow, workflow_input):
            self.set_trigger(name, workflow, pattern, workflow_input, replacing=held is not None)
        return f"cron trigger {name} runs {workflow} on '{pattern}'"

    def set_trigger(self, name: str, workflow: str, pattern: str, workflow_input: dict, *,
                    replacing: bool):
        """Mistral changes no trigger: one on another schedule is deleted and made again."""
        if replacing:
            self.unschedule(name)
        self._mistral().cron_triggers.create(name, workflow, workflow_input, pattern=pattern)

    def start(self, workflow: str, workflow_input: dict, *, description: str,
              execution_id: str) -> Execution:
        """Create execution ``execution_id`` of ``workflow``; returns at once (Mistral runs
        it). Mistral answers the create of an id it already has with that execution, so a
        create that timed out (its answer lost: keystoneauth says ConnectTimeout for a read
        timeout too) is repeated, never doubled; still no answer: StartUncertain."""
        body = {"id": execution_id, "workflow_name": workflow, "description": description,
                "input": json.dumps(workflow_input)}
        # mistralclient's create() takes no id: its manager's own POST, with one.
        execution = self._call(lambda m: self._create(m, body), workflow, uncertain=True)
        return Execution(execution.id, execution.state, execution.state_info)

    @staticmethod
    @retry(retry=retry_if_exception_type(ks_exceptions.ConnectTimeout), reraise=True,
           stop=stop_after_attempt(START_TRIES), wait=wait_fixed(1.0))
    def _create(mistral, body: dict):
        return mistral.executions._create("/executions", body)

    def cancel(self, execution_id: str):
        """Ask Mistral to cancel an execution (one started after it was given up)."""
        self._call(lambda m: m.executions.update(execution_id, "CANCELLED"), execution_id)

    def since(self, created: datetime) -> list[Execution]:
        """This service's executions created since ``created`` (UTC), with their states:
        one call however many operations are under way (at most ``RECENT``; more would
        be a partial view)."""
        stamp = created.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        found = self._call(lambda m: m.executions.list(
            created_at=f"gte:{stamp}", fields=["id", "state", "state_info", "updated_at"],
            limit=RECENT), "executions")
        return [Execution(e.id, e.state, e.state_info, _when(getattr(e, "updated_at", None)))
                for e in found]

    def account(self) -> tuple[str, str]:
        """This service's own user and project ids (its Keystone session's)."""
        return self._session.get_user_id(), self._session.get_project_id()

    def root(self, execution_id: str) -> Root | None:
        """The root of ``execution_id``'s tree, or None when this service's account cannot
        see it (another project's execution, or none at all)."""
        try:
            execution = self._mistral().executions.get(execution_id)
            root_id = getattr(execution, "root_execution_id", None)
            if root_id and root_id != execution.id:
                execution = self._mistral().executions.get(root_id)
        except mistral_base.APIException as exc:
            if exc.error_code in (400, 404):
                return None
            raise APIError(f"Mistral refused execution {execution_id}: "
                           f"{exc.error_message}", status=502) from None
        except (ks_exceptions.ConnectFailure, ks_exceptions.ConnectTimeout,
                ks_exceptions.DiscoveryFailure, ks_exceptions.EndpointNotFound) as exc:
            raise Unavailable(f"Mistral is unreachable ({type(exc).__name__})",
                              mistral=self._url) from None
        return Root(execution.id, getattr(execution, "project_id", ""),
                    execution.workflow_name, _as_dict(getattr(execution, "input", None)))

    def find(self, execution_id: str) -> Execution | None:
        """The execution of that id, or None when this site's Mistral has none."""
        def get(mistral):
            try:
                return mistral.executions.get(execution_id)
            except mistral_base.APIException as exc:
                if exc.error_code == 404:
                    return None
                raise
        execution = self._call(get, f"execution {execution_id}")
        return execution and Execution(execution.id, execution.state, execution.state_info)

    def _call(self, call, subject: str, uncertain: bool = False):
        """``call`` on this site's Mistral; ``uncertain``: a timeout may have started
        something (StartUncertain), rather than nothing."""
        try:
            return call(self._mistral())
        except ks_exceptions.ConnectTimeout as exc:
            if not uncertain:
                raise Unavailable(f"Mistral is unreachable ({type(exc).__name__})",
                                  mistral=self._url) from None
            raise StartUncertain(f"Mistral did not answer the start of {subject} in time "
                                 f"({type(exc).__name__}): it may run; the service finds "
                                 "out", mistral=self._url) from None
        except (ks_exceptions.ConnectFailure,
                ks_exceptions.DiscoveryFailure, ks_exceptions.EndpointNotFound) as exc:
            raise Unavailable(f"Mistral is unreachable ({type(exc).__name__}); nothing was "
                              f"started", mistral=self._url) from None
        except mistral_base.APIException as exc:
            # An unknown workflow is the engine's DBEntityNotFoundError, relayed by the API.
            if exc.error_code == 404 or "DBEntityNotFoundError" in (exc.error_message or ""):
                raise APIError(f"{subject} is not known to this site's Mistral: is the "
                               "workbook installed?", status=500) from None
            raise APIError(f"Mistral refused {subject}: {exc.error_message}",
                           status=502) from None


def _when(stamp: str | None) -> datetime | None:
    """A Mistral timestamp ("2026-12-06 21:00:00", UTC) as an aware datetime."""
    return datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc) if stamp else None


def _as_dict(value) -> dict:
    """A cron trigger's input as mistralclient gives it: a JSON text, or a mapping."""
    return json.loads(value) if isinstance(value, str) else dict(value or {})
