"""The engine's watch of each group's replication, on the group's DR site.

Every ``engine.replication_check_interval`` seconds the leading engine asks this site's
array, for each group that replicates to it, for the newest recovery point it holds
(:mod:`site_recovery.core.rpo` judges it against the group's RPO target). The state is
kept per group, shown with the group and in ``/metrics``; a group crossing its target,
either way, is an audit entry of its project.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from site_recovery.core.config import ConfigError, ServiceConfig
from site_recovery.core.model import GroupStatus, Project
from site_recovery.core.plan import protection_spec
from site_recovery.core.rpo import ReplicationState as Assessed
from site_recovery.core.rpo import assess
from site_recovery.storage import errors
from site_recovery.storage.driver import StorageDriver

from . import audit, db
from .models import ProtectionGroup, ReplicationState

log = logging.getLogger(__name__)
# Replicating from the primary site to this one (after a reprotect the roles have swapped).
WATCHED = (GroupStatus.PROTECTED, GroupStatus.REPROTECTED)
WATCH_ACTOR = {"user": "site-recovery", "duty": "replication watch"}


class ReplicationWatch:
    def __init__(self, sessions: sessionmaker[Session], config: ServiceConfig,
                 storage: Callable[[], StorageDriver],
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.sessions, self.config, self._storage, self._clock = (sessions, config,
                                                                  storage, clock)

    def check_once(self) -> int:
        """Ask the array about every group replicating here; the number checked."""
        here = self.config.site
        with self.sessions() as session:
            groups = session.execute(select(
                ProtectionGroup.id, ProtectionGroup.name, ProtectionGroup.project_domain,
                ProtectionGroup.project_name, ProtectionGroup.replication_type,
                ProtectionGroup.primary_site, ProtectionGroup.rpo_target_seconds).where(
                ProtectionGroup.secondary_site == here,
                ProtectionGroup.status.in_(WATCHED))).all()
        with db.transaction(self.sessions) as session:       # no longer replicating here
            session.execute(delete(ReplicationState).where(
                ReplicationState.group_id.not_in([g.id for g in groups])))
        if not groups:
            return 0
        try:
            driver = self._storage()
        except (ConfigError, errors.StorageError, OSError) as exc:
            driver, unavailable = None, str(exc)
        for group in groups:
            state = (self._check(driver, group) if driver is not None else
                     assess(None, self._clock(), group.rpo_target_seconds, unavailable))
            self._record(group, state)
        return len(groups)

    def _check(self, driver: StorageDriver, group) -> Assessed:
        now = self._clock()
        try:
            spec = protection_spec(self.config, group.id, group.replication_type,
                                   group.primary_site, self.config.site,
                                   group.rpo_target_seconds)
            newest = driver.newest_recovery_point(spec).created
        except errors.NoRecoveryPoint:
            newest = None
        except (ConfigError, errors.StorageError) as exc:
            return assess(None, now, group.rpo_target_seconds, str(exc))
        return assess(newest, now, group.rpo_target_seconds)

    def _record(self, group, state: Assessed):
        with db.transaction(self.sessions) as session:
            row = session.get(ReplicationState, group.id, with_for_update=True)
            was = row.violated if row is not None else None
            if row is None:
                row = ReplicationState(group_id=group.id)
                session.add(row)
            row.checked_at, row.recovery_point_at = state.checked_at, state.recovery_point_at
            row.lag_seconds, row.violated, row.error = (state.lag_seconds, state.violated,
                                                        state.error)
            if state.violated is None or state.violated == bool(was):
                return
            target = group.rpo_target_seconds
            audit.record_in(
                session, WATCH_ACTOR,
                "replication.rpo_violated" if state.violated else "replication.rpo_met",
                group.id, "recorded",
                f"protection group {group.name}: {state.reason}, "
                f"{'over' if state.violated else 'within'} its {target} s RPO target",
                project=Project(group.project_domain, group.project_name),
                details={"lag_seconds": state.lag_seconds, "rpo_target_seconds": target})
        if state.violated:
            log.warning("protection group %s (%s) is over its RPO target: %s", group.name,
                        group.id, state.reason)
