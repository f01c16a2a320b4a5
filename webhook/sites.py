"""What the service knows: ``/v1/sites``, this site and its peer with the peer's
reachability and since when; and ``/v1/audit-log``, the entries of the caller's own
project (an admin with ``all_projects`` sees every entry), newest first, paged by
``marker``."""

from __future__ import annotations

from flask import Blueprint, request
from sqlalchemy import select

from .errors import NotFound
from .identity import caller
from .models import AuditEntry, Site, owned_by
from .params import bounded_int
from .services import services

bp = Blueprint("sites", __name__, url_prefix="/v1")


def view(site: Site) -> dict:
    state = {True: "reachable", False: "unreachable", None: "unknown"}[site.reachable]
    if site.role == "local":
        state = "local"
    return {"name": site.name, "role": site.role, "url": site.url or None, "state": state,
            "since": site.state_since.isoformat() if site.state_since else None,
            "last_probe_at": site.last_probe_at.isoformat() if site.last_probe_at else None,
            "last_seen_at": site.last_seen_at.isoformat() if site.last_seen_at else None,
            "consecutive_failures": site.consecutive_failures, "last_error": site.last_error}


@bp.get("/sites")
def list_sites():
    services().policy.require("protector:read", caller())
    with services().sessions() as session:
        sites = session.query(Site).order_by(Site.role, Site.name).all()
    return {"sites": [view(s) for s in sites]}


@bp.get("/sites/<name>")
def show_site(name: str):
    services().policy.require("protector:read", caller())
    with services().sessions() as session:
        site = session.get(Site, name)
    if site is None:
        raise NotFound(f"no site {name!r}; this service knows its own site and its peer")
    return {"site": view(site)}


def entry_view(entry: AuditEntry) -> dict:
    return {"id": entry.id, "at": entry.at.isoformat(), "actor": entry.actor,
            "action": entry.action, "target": entry.target, "outcome": entry.outcome,
            "reason": entry.reason, "project_name": entry.project_name,
            "project_domain": entry.project_domain,
            "details": entry.details}


@bp.get("/audit-log")
def list_audit_entries():
    who = caller()
    policy = services().policy
    policy.require("protector:read", who)
    limit = bounded_int("limit", 100, 1, 1000)
    marker = bounded_int("marker", None, 0, 2**62)
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if not policy.all_projects(who):
        query = query.where(owned_by(AuditEntry, who.project))
    if marker is not None:
        query = query.where(AuditEntry.id < marker)
    if request.args.get("target"):           # one group's, site's or operation's entries
        query = query.where(AuditEntry.target == request.args["target"])
    with services().sessions() as session:
        entries = session.scalars(query).all()
    return {"entries": [entry_view(e) for e in entries]}
