"""What one site's app is made of, reached through a typed accessor (Flask's extension
idiom: ``services()`` inside a request, ``services(app)`` outside one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Flask, current_app

if TYPE_CHECKING:                     # the rooms that use the accessor build these
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from site_recovery.core.clouds import Clouds
    from site_recovery.core.config import ServiceConfig

    from .launcher import Launcher
    from .lifecycle import Lifecycle
    from .policy import Policy
    from .preview import Previews
    from .projects import ProjectIds
    from .readiness import Readiness
    from .registry import Registry
    from .reports import Reports
    from .schedules import DrillSchedules
    from .tenancy import References, TenantClouds

EXTENSION = "site_recovery"


@dataclass(frozen=True)
class Services:
    config: ServiceConfig
    engine: Engine                         # the database
    sessions: sessionmaker[Session]
    policy: Policy
    registry: Registry                     # groups and mappings, on both sites
    launcher: Launcher                     # this site's Mistral
    operations: Lifecycle                  # DR operations, from start to end
    tenants: TenantClouds                  # this site's cloud, as the caller sees it
    clouds: Clouds                         # this site's cloud, as the DR account
    projects: ProjectIds                   # the project ids this site recorded
    references: References                 # this site's cloud, as a tenant's project sees it
    readiness: Readiness                   # whether the groups recovering here would recover now
    previews: Previews                     # dry runs: what an operation would do
    reports: Reports                       # what each recovery got back, kept
    schedules: DrillSchedules              # groups that drill by themselves

    def init_app(self, app: Flask):
        app.extensions[EXTENSION] = self

    def close(self):
        """Wait for the starts under way, then release the database (a worker's or a
        test's end)."""
        self.operations.close()
        self.engine.dispose()


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions[EXTENSION]
