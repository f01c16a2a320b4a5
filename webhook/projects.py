"""Which Keystone project a domain and name mean on this site: the id recorded the first
time the service met it, so a project deleted and created again under the same name is
another tenant here.

Groups and mappings are owned by a project's domain and name, the pair both sites'
independent Keystones agree on (each gives the project its own id). On each site the
first caller from a project, or the DR account signing in to it when the engine first
acts there, records its id. From then on a caller whose token names that domain and name
with another id is refused before any view runs, and the engine scopes to the recorded
id, so it never acts in a newcomer's project. ``site-recovery-protector forget-project``
lets a cloud admin hand the name over once the old project's groups are dealt with.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from site_recovery.core.model import DEFAULT_DOMAIN, Project

from .errors import Forbidden
from .models import ProjectRecord

CALLER, DR_ACCOUNT = "caller", "dr-account"
# How long a process trusts a match it read (every request checks its caller's project):
# as long at most as keystonemiddleware trusts a token it validated.
CONFIRMED_FOR = 60.0


class ProjectIds:
    """This site's record of project ids, filled on first meeting."""

    def __init__(self, sessions: sessionmaker[Session], site: str,
                 keystone_project_id: Callable[[Project], str] | None = None):
        """``keystone_project_id``: the id Keystone gives a project when the DR account
        signs in to it (asked only where none is recorded; None: records are only read,
        checked or forgotten)."""
        self.sessions, self.site = sessions, site
        self._keystone_project_id = keystone_project_id
        self._confirmed: dict[tuple[Project, str], float] = {}   # (project, id): until

    def check_caller(self):
        """Flask ``before_request``: a token's project must be the one recorded under its
        domain and name (keystonemiddleware has validated the token, set the headers)."""
        headers = request.headers
        if headers.get("X-Identity-Status") == "Confirmed" and \
                headers.get("X-Project-Id") and headers.get("X-Project-Name"):
            self.check(Project(headers.get("X-Project-Domain-Name", DEFAULT_DOMAIN),
                               headers["X-Project-Name"]), headers["X-Project-Id"])

    def recorded(self, project: Project) -> ProjectRecord | None:
        with self.sessions() as session:
            return session.get(ProjectRecord, (project.domain, project.name))

    def check(self, project: Project, project_id: str):
        """Refuse a caller whose token names ``project`` with an id other than the one
        recorded for it; record ``project_id`` where none is. A match is trusted for
        ``CONFIRMED_FOR`` seconds without reading the record again."""
        now = time.monotonic()
        if self._confirmed.get((project, project_id), 0.0) > now:
            return
        recorded = self.recorded(project) or self._record(project, project_id, CALLER)
        if recorded.project_id != project_id:
            raise Forbidden(
                f"project {project} on {self.site} is not the project whose protection "
                f"groups this site keeps under that name: another project of that name "
                f"was recorded here on {recorded.recorded_at:%Y-%m-%d %H:%M} UTC (a "
                "project deleted and created again is another tenant). A cloud admin "
                "hands the name over with 'site-recovery-protector forget-project'",
                rule="protector:project")
        self._confirmed[(project, project_id)] = now + CONFIRMED_FOR

    def resolve(self, project: Project) -> str:
        """The id recorded for ``project``; where none is, the one Keystone gives the DR
        account signing in to it, recorded."""
        recorded = self.recorded(project)
        if recorded is None:
            recorded = self._record(project, self._keystone_project_id(project), DR_ACCOUNT)
        return recorded.project_id

    def forget(self, project: Project) -> bool:
        """Drop ``project``'s record (the next caller or sign-in records its id again);
        whether there was one. Other processes stop trusting their last match within
        ``CONFIRMED_FOR`` seconds."""
        self._confirmed = {key: until for key, until in self._confirmed.items()
                           if key[0] != project}
        with self.sessions() as session, session.begin():
            return session.execute(delete(ProjectRecord).where(
                ProjectRecord.project_domain == project.domain,
                ProjectRecord.project_name == project.name)).rowcount > 0

    def _record(self, project: Project, project_id: str, source: str) -> ProjectRecord:
        """The record for ``project``: ``project_id``'s, unless another request recorded
        one first."""
        try:
            with self.sessions() as session, session.begin():
                session.add(ProjectRecord(project_domain=project.domain,
                                          project_name=project.name,
                                          project_id=project_id, recorded_from=source))
        except IntegrityError:
            pass                                        # recorded meanwhile: that one holds
        return self.recorded(project)

