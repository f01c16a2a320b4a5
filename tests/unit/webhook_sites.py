"""Two protection services in one process, each with its own database, linked to each
other: each one's peer link calls the other app directly, as the peer's service account
would, and its Mistral launcher records what it was asked to start."""

from __future__ import annotations

import pytest
from flask import request

from site_recovery.core.config import parse
from site_recovery.webhook import db, prober
from site_recovery.webhook.app import create_app
from site_recovery.webhook.errors import APIError, Unavailable
from site_recovery.webhook.launcher import Execution, Root, StartUncertain
from site_recovery.webhook.peerlink import PeerUnreachable, Reply
from site_recovery.webhook.services import services
from site_recovery.webhook.tenancy import Server, TenantClouds
from tests.unit.test_core_config import minimal

SERVICE = {"X-Identity-Status": "Confirmed", "X-Project-Id": "svc", "X-Project-Name": "service",
           "X-User-Id": "sr", "X-User-Name": "site-recovery",
           "X-Roles": "admin,service,site_recovery_service"}


def user(name: str, project: str, *roles: str) -> dict:
    return {"X-Identity-Status": "Confirmed", "X-Project-Id": f"id-{project}",
            "X-Project-Name": project, "X-User-Id": f"id-{name}", "X-User-Name": name,
            "X-Roles": ",".join(roles)}


ALICE = user("alice", "ecommerce", "member")
RITA = user("rita", "ecommerce", "reader")
BOB = user("bob", "analytics", "member")
ADMIN = user("admin", "admin", "admin")


class AppLink:
    """The peer link, straight into the other app; ``down`` makes it refuse connections,
    ``lose_next_answer`` lose the answer to the next change the peer takes."""

    def __init__(self, name: str):
        self.name, self.client, self.down = name, None, False
        self.before_push = None
        self.lose_next_answer = False

    def request(self, method, path, body=None):
        if self.down:
            raise PeerUnreachable("ConnectFailure")
        if self.before_push and method == "PUT":
            self.before_push()
        reply = self.client.open(path, method=method, json=body, headers=SERVICE)
        if self.lose_next_answer and method != "GET":
            self.lose_next_answer = False          # the peer took it; its answer is lost
            raise PeerUnreachable("ConnectTimeout", maybe_delivered=True)
        return Reply(reply.status_code, reply.get_json(silent=True) or {})


class RecordingLauncher:
    """Mistral as the service sees it: ``down`` makes it unreachable, ``gate`` slow;
    ``roots``: every execution it knows (those it started, in the service's project
    ``svc``), for the service to check who runs an action."""

    ACCOUNT = ("sr", "svc")         # the service's own user and project, as in SERVICE

    def __init__(self):
        self.started, self.down = [], False
        self.gate = None            # an Event: Mistral answers only once it is set
        self.lose_answer = None     # "after": the create's answer is lost; "before": it is
        self.states = {}            # execution id -> (state, state_info, updated_at)
        self.roots: dict[str, Root] = {}
        self.descriptions: dict[str, str] = {}     # execution id -> its description
        # Mistral's cron triggers: (pattern, workflow, input) by name.
        self.triggers_held: dict[str, tuple[str, str, dict]] = {}

    def start(self, workflow, workflow_input, *, description, execution_id):
        if self.gate is not None:
            self.gate.wait(10)
        if self.down:
            raise Unavailable("Mistral is unreachable (ConnectFailure); nothing was started")
        if self.lose_answer == "before":
            raise StartUncertain("Mistral did not answer the start in time (ConnectTimeout)")
        if execution_id not in self.roots:      # Mistral: an id it has is that execution
            self.started.append((workflow, workflow_input))
            self.descriptions[execution_id] = description
            self.roots[execution_id] = Root(execution_id, self.ACCOUNT[1], workflow,
                                            dict(workflow_input))
        if self.lose_answer == "after":
            raise StartUncertain("Mistral did not answer the start in time (ConnectTimeout)")
        return Execution(execution_id, "RUNNING", None)

    def account(self):
        return self.ACCOUNT

    def root(self, execution_id):
        return self.roots.get(execution_id)

    def find(self, execution_id):
        if self.down:
            raise Unavailable("Mistral is unreachable (ConnectFailure)")
        return Execution(execution_id, "RUNNING", None) if execution_id in self.roots \
            else None

    def since(self, created):
        if self.down:
            raise Unavailable("Mistral is unreachable (ConnectFailure)")
        return [Execution(i, *self.states.get(i, ("RUNNING", None, None)))
                for i in self.roots]

    def cancel(self, execution_id):
        self.states[execution_id] = ("CANCELLED", "cancelled by the service", None)

    def triggers(self, prefix):
        return {n: t for n, t in self.triggers_held.items() if n.startswith(prefix)}

    def set_trigger(self, name, workflow, pattern, workflow_input, *, replacing):
        assert replacing == (name in self.triggers_held)
        self.triggers_held[name] = (pattern, workflow, workflow_input)

    def unschedule(self, name):
        self.triggers_held.pop(name, None)


class SiteNova(TenantClouds):
    """A site's cloud as the caller sees it: any server id is a server of the caller's
    own project, unless ``elsewhere`` names its project (only an admin sees those)."""

    def __init__(self, config):
        super().__init__(config)
        self.elsewhere: dict[str, str] = {}        # server id -> its project's id

    def server(self, server_id):
        mine, roles = request.headers["X-Project-Id"], request.headers.get("X-Roles", "")
        owner = self.elsewhere.get(server_id, mine)
        if owner != mine and "admin" not in roles.split(","):
            return None
        return Server(server_id, f"vm-{server_id[:8]}", owner)

    def project_id(self, project):
        return f"id-{project.name}"               # as user() makes them


def planned_execution(client, op_id: str) -> str:
    """The Mistral execution id the service chose for ``op_id`` when it recorded it."""
    from site_recovery.webhook.models import Operation

    with services(client.application).sessions() as session:
        return session.get(Operation, op_id).planned_execution_id


class SiteReferences:
    """A site's cloud as a tenant's project sees it: every reference is the project's own,
    unless ``elsewhere`` holds it (another project's)."""

    def __init__(self):
        self.elsewhere: set[str] = set()
        self.unreplicated: dict[str, str] = {}     # server id -> why its volumes may not join

    def find(self, project, kind, ref):
        return None if ref in self.elsewhere else f"id-{ref}"

    def check_member(self, project, server_id, replication_type):
        if server_id in self.unreplicated:
            raise APIError(self.unreplicated[server_id], field="server_id")


def execution_of(client, op_id: str) -> str:
    """The Mistral execution the service started for ``op_id`` (or a made-up one)."""
    from site_recovery.webhook.models import Operation

    with services(client.application).sessions() as session:
        op = session.get(Operation, op_id)
        return (op.mistral_execution_id if op else None) or "execution-unknown"


def report(client, op_id: str, execution: str | None = None, **fields):
    """A report for operation ``op_id``, as its workflow's actions send it: from inside
    its execution (or ``execution``)."""
    return client.post(f"/v1/internal/executions/{execution or execution_of(client, op_id)}"
                       "/progress", json={**({"operation_id": op_id} if op_id else {}),
                                          **fields}, headers=SERVICE)


def held(client, op_id: str) -> dict:
    """The operation as the service holds it now."""
    return client.get(f"/v1/operations/{op_id}?all_projects=true",
                      headers=ADMIN).json["operation"]


def make_site(tmp_path, name: str, peer: str, **settings):
    """One site's service, its database migrated; its peer link not yet connected."""
    here = tmp_path / name
    here.mkdir()
    settings.setdefault("database_url", f"sqlite:///{here / 'p.db'}")
    # The stock 50 ms is shorter than a busy machine may take to hand the start to a
    # thread: a Mistral that answers at once answers within the request here.
    settings.setdefault("mistral", {"start_wait": 1.0})
    config = parse(minimal(here, site=name,
                           peer={"name": peer, "url": "http://127.0.0.1:9"},
                           clouds={"file": str(here / "clouds.yaml"), "local": name,
                                   "peer": peer}, **settings))
    app = create_app(config, keystone=False, peer=AppLink(peer), launcher=RecordingLauncher(),
                     tenants=SiteNova(config), references=SiteReferences())
    db.upgrade(services(app).engine)
    prober.ensure_sites(services(app).sessions, config)
    return app


def linked_sites(tmp_path, database_url=lambda: None):
    """site-a and site-b, each with its own database (``database_url()``, or SQLite),
    linked to each other; yields their clients and links, and ends their starts."""
    apps = {name: make_site(tmp_path, name, peer,
                            **({"database_url": url} if (url := database_url()) else {}))
            for name, peer in (("site-a", "site-b"), ("site-b", "site-a"))}
    links = {name: services(app).registry.peer for name, app in apps.items()}
    links["site-a"].client = apps["site-b"].test_client()
    links["site-b"].client = apps["site-a"].test_client()
    yield {name: app.test_client() for name, app in apps.items()}, links
    for app in apps.values():
        services(app).close()


@pytest.fixture
def sites(tmp_path):
    yield from linked_sites(tmp_path)


