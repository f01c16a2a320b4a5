"""Probing the peer site and keeping its reachability in the database.

The leading engine probes (see :mod:`.engine`), but a probe result is written only if
nobody recorded one since it read the state (a conditional update), so an engine that
lost the lead without knowing yet still judges the peer as one with the new leader. The
verdict itself is :func:`.peer.judge`.
"""

from __future__ import annotations

from datetime import datetime, timezone

import requests
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from site_recovery.core.config import ServiceConfig

from . import db
from .models import Site
from .peer import PeerState, judge


def ensure_sites(sessions: sessionmaker[Session], config: ServiceConfig):
    """This site and its peer exist in the database, with the configured URLs. Every
    API process and engine does it as it starts: two that insert one row at once both
    succeed (the second finds the first's row)."""
    for attempt in (1, 2):
        try:
            with db.transaction(sessions) as session:
                for name, role, url in ((config.site, "local", ""),
                                        (config.peer.name, "peer", str(config.peer.url))):
                    row = session.get(Site, name)
                    if row is None:
                        session.add(Site(name=name, role=role, url=url))
                    else:
                        row.role, row.url = role, url
            return
        except IntegrityError:
            if attempt == 2:
                raise


def probe_once(sessions: sessionmaker[Session], config: ServiceConfig,
               now: datetime | None = None) -> PeerState | None:
    """Probe the peer unless someone did within the interval; returns the new state."""
    peer = config.peer
    now = now or datetime.now(timezone.utc)
    with sessions() as session:
        row = session.get(Site, peer.name)
        seen = row.last_probe_at
        if seen is not None and (now - seen).total_seconds() < peer.probe_interval * 0.8:
            return None
        state = PeerState(row.reachable, row.state_since, row.consecutive_failures,
                          row.consecutive_successes, seen, row.last_error)
    ok, error = healthy(str(peer.url), peer.probe_timeout, peer.name, config.peer_verify)
    state = judge(state, ok, now, failure_threshold=peer.failure_threshold,
                  success_threshold=peer.success_threshold, error=error)
    with db.transaction(sessions) as session:
        written = session.execute(
            update(Site).where(Site.name == peer.name,
                               Site.last_probe_at.is_(None) if seen is None
                               else Site.last_probe_at == seen)
            .values(reachable=state.reachable, state_since=state.since,
                    consecutive_failures=state.failures,
                    consecutive_successes=state.successes, last_probe_at=now,
                    last_error=state.last_error, **({"last_seen_at": now} if ok else {})
                    )).rowcount
    return state if written else None


def healthy(url: str, timeout: float, site: str,
            verify: str | bool = True) -> tuple[bool | None, str | None]:
    """Whether the service at ``url`` is ``site``'s protection service and answers its
    health check within ``timeout``: True, False (it does not answer, or not well), or
    None when something else answers there (a wrong URL: misconfigured), with why."""
    target = f"{url.rstrip('/')}/healthz"
    try:
        reply = requests.get(target, timeout=timeout, verify=verify)
    except requests.exceptions.SSLError:
        return None, (f"misconfigured: {target} does not prove it is {site}'s protection "
                      "service (TLS verification failed); check peer.ca_file")
    except requests.RequestException as exc:
        return False, f"{type(exc).__name__} after at most {timeout:g} s"
    try:
        answer = reply.json()
    except ValueError:
        answer = None
    said = answer.get("site") if isinstance(answer, dict) else None
    if reply.status_code == 200 and said == site:
        return True, None
    if reply.status_code >= 500 and said in (site, None):     # it, or a proxy before it
        return False, f"health check answered HTTP {reply.status_code}"
    who = f"the protection service of {said}" if said else f"HTTP {reply.status_code}"
    return None, (f"misconfigured: {target} is not {site}'s protection service ({who}); "
                  "check peer.url")
