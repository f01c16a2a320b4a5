"""``/v1/sites``: this site and its peer, with the peer's reachability and since when."""

from __future__ import annotations

from flask import Blueprint

from .errors import NotFound
from .identity import caller
from .models import Site
from .services import services

bp = Blueprint("sites", __name__, url_prefix="/v1/sites")


def view(site: Site) -> dict:
    state = {True: "reachable", False: "unreachable", None: "unknown"}[site.reachable]
    if site.role == "local":
        state = "local"
    return {"name": site.name, "role": site.role, "url": site.url or None, "state": state,
            "since": site.state_since.isoformat() if site.state_since else None,
            "last_probe_at": site.last_probe_at.isoformat() if site.last_probe_at else None,
            "consecutive_failures": site.consecutive_failures, "last_error": site.last_error}


@bp.get("")
def list_sites():
    services().policy.require("protector:read", caller())
    with services().sessions() as session:
        sites = session.query(Site).order_by(Site.role, Site.name).all()
    return {"sites": [view(s) for s in sites]}


@bp.get("/<name>")
def show_site(name: str):
    services().policy.require("protector:read", caller())
    with services().sessions() as session:
        site = session.get(Site, name)
    if site is None:
        raise NotFound(f"no site {name!r}; this service knows its own site and its peer")
    return {"site": view(site)}
