"""Dry runs: a drill's, a failover's or a site failover's plan, and nothing changed.

A dry run is asked on the request that would start the operation (``"dry_run": true``)
and passes the same doors: the caller's role, the group's site and status, what the peer's
state allows. Then, instead of an operation, it answers with each group's plan as
:mod:`site_recovery.core.preview` builds it from this site's array and cloud, read as the
recovery would read them (the DR account in the tenant's project). Nothing is recorded:
no operation, no audit entry, no Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions
from sqlalchemy.orm import Session, sessionmaker

from site_recovery.core import operations as rules
from site_recovery.core import preview
from site_recovery.core.config import ConfigError, ServiceConfig
from site_recovery.core.model import OperationKind, Purpose
from site_recovery.storage.driver import StorageDriver
from site_recovery.storage.errors import StorageError

from .registry import recovery_inputs


class Previews:
    def __init__(self, sessions: sessionmaker[Session], config: ServiceConfig,
                 storage: Callable[[], StorageDriver], connect: Callable):
        self.sessions, self.config = sessions, config
        self._storage, self._connect = storage, connect

    def plan(self, kind: OperationKind, group_ids: list[str], params: dict, *,
             lost_at: str | None = None, site: str | None = None,
             skipped: dict[str, str] | None = None) -> dict:
        """The plan of ``kind`` on these groups, recovered here (``params``: the request's
        options; ``lost_at``: where an unplanned move's data loss ends; ``site``: the
        failed site of a site failover, and ``skipped`` the groups it would leave out)."""
        now = datetime.now(timezone.utc)
        lost = datetime.fromisoformat(lost_at) if lost_at else None
        try:
            storage = self._storage()
        except StorageError as exc:
            storage = exc
        groups = [self._group(storage, group_id, kind, params, lost, now)
                  for group_id in group_ids]
        return {"dry_run": True, "operation_type": kind.value,
                "failover_type": params.get("failover_type"), "site": site,
                "recovered_on": self.config.site,
                "ready": all(not g["problems"] for g in groups),
                "protection_groups": groups, "skipped": skipped or {}}

    def _group(self, storage: StorageDriver | StorageError, group_id: str,
               kind: OperationKind, params: dict, lost: datetime | None,
               now: datetime) -> dict:
        with self.sessions() as session:
            _, plan, documents = recovery_inputs(session, group_id)
        try:
            spec = plan.protection(self.config)
        except ConfigError as exc:
            spec, storage = None, exc
        if isinstance(storage, StorageError | ConfigError):
            point, problems = None, [f"the DR array could not be read: {storage}"]
        else:
            point, problems = preview.point_plan(
                storage, spec, now, name=params.get("recovery_point"), lost_at=lost,
                planned=rules.Request(kind, params.get("failover_type")).planned,
                members=preview.member_volumes(plan))
        purpose = Purpose.DRILL if kind.drill else Purpose.FAILOVER
        try:
            built = preview.recovery_plan(plan, documents,
                                          self._connect(self.config.site, plan.project),
                                          purpose, params.get("network_mapping"), spec)
        except (sdk_exceptions.SDKException, ks_exceptions.ClientException) as exc:
            built = {"problems": [f"{self.config.site}'s cloud could not be asked as project "
                                  f"{plan.project} ({type(exc).__name__}: {exc})"]}
        return {"protection_group": plan.name, "protection_group_id": plan.id,
                "recovery_point": point, **built, "problems": problems + built["problems"]}
