"""DR operations over HTTP: start them (protect, unprotect, drill, cleanup, failover,
failback, site failover), follow them, retry what failed; the internal endpoint where the
workflows report progress; and the peer site's: the steps it asks of this site's cloud.

The views check the caller's role and find the groups in the caller's project; the
operation's life is :class:`~.lifecycle.Lifecycle`'s. A group's recovery operations start
on its secondary site, a protect or an unprotect on its primary. An ``Idempotency-Key`` returns the
operation it first started and starts nothing. If Mistral cannot be reached the operation
is recorded as failed (it never started) and the caller gets 503: nothing is half-done.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import datetime
from functools import partial

from flask import Blueprint, Response, request
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from site_recovery.core import operations as rules
from site_recovery.core.model import GroupStatus, OperationKind, PeerStepName, PeerStepRequest

from . import report_render, schemas
from .errors import APIError, Conflict, NotFound
from .groups import find_group
from .identity import Caller, caller
from .lifecycle import Start, Started, none_left
from .models import Operation, OperationResult, ProtectionGroup, owned_by
from .params import body
from .policy import InternalCaller
from .services import services

bp = Blueprint("operations", __name__, url_prefix="/v1")

RULE = {OperationKind.PROTECT: "protector:write",
        OperationKind.UNPROTECT: "protector:write",
        OperationKind.TEST_FAILOVER: "protector:test_failover",
        OperationKind.TEST_CLEANUP: "protector:test_failover",
        OperationKind.FAILOVER: "protector:failover",
        OperationKind.FAILBACK: "protector:failover",
        OperationKind.SITE_FAILOVER: "protector:site_failover",
        OperationKind.REPROTECT: "protector:failover"}
OPTIONS = {OperationKind.PROTECT: schemas.NoOptions,
           OperationKind.UNPROTECT: schemas.NoOptions,
           OperationKind.TEST_FAILOVER: schemas.TestFailover,
           OperationKind.TEST_CLEANUP: schemas.NoOptions,
           OperationKind.FAILOVER: schemas.Failover,
           OperationKind.FAILBACK: schemas.NoOptions,
           OperationKind.REPROTECT: schemas.NoOptions}
KEY = re.compile(r"^[\x21-\x7e]{1,64}$")
PEER_STEP = OperationKind.PEER_STEP
WITH_RESULTS = [joinedload(Operation.results)]     # an operation's view: one query
SCOPES = ("protection_group", "site")              # what ?scope= lists


def result_view(result: OperationResult) -> dict:
    return {"protection_group_id": result.group_id, "protection_group": result.group_name,
            "status": result.status, "step": result.step, "reason": result.reason,
            "recovery_point": result.recovery_point,
            "rpo_achieved_seconds": result.rpo_achieved_seconds, "timings": result.timings,
            "details": result.details,
            "started_at": _iso(result.started_at), "finished_at": _iso(result.finished_at)}


def operation_view(op: Operation) -> dict:
    site_wide = OperationKind(op.type).site_wide
    return {"id": op.id, "operation_type": op.type, "scope": op.scope, "status": op.status,
            "protection_group_id": op.group_id,
            "protection_group": op.results[0].group_name if not site_wide and op.results
            else None,
            "site": op.site, "project_name": op.project_name,
            "project_domain": op.project_domain,
            "total_protection_groups": op.total, "completed_count": op.completed_count,
            "failed_count": op.failed_count, "progress": op.progress,
            "failover_type": op.params.get("failover_type"), "force": op.force,
            "peer_reachable": op.peer_reachable, "recovery_point": op.recovery_point,
            "rpo_achieved_seconds": op.rpo_achieved_seconds,
            "mistral_execution_id": op.mistral_execution_id, "requested_by": op.requested_by,
            "params": op.params, "error": op.error, "created_at": _iso(op.created_at),
            "started_at": _iso(op.started_at), "finished_at": _iso(op.finished_at),
            "results": [result_view(r) for r in op.results]}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _shown(started: Started | str, status: int = 200):
    """The operation as the caller sees it: 202 when this request started it."""
    op_id = started.operation_id if isinstance(started, Started) else started
    with services().sessions() as session:
        op = session.get(Operation, op_id, options=WITH_RESULTS)
        if op is None:                     # refused once recorded, taken back meanwhile
            raise Conflict(f"operation {op_id} was refused and taken back (the peer site "
                           "holds its group); nothing was started: try again once that "
                           "has ended", operation_id=op_id)
        view = operation_view(op)
    return {"operation": view}, (202 if isinstance(started, Started) and started.new
                                 else status)


def _idempotency_key(who: Caller) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not KEY.match(key):
        raise APIError("Idempotency-Key must be 1 to 64 printable characters without spaces",
                       field="Idempotency-Key")
    return f"{who.project_id}:{key}"           # one project's key never finds another's


def _key_request() -> str:
    """What an Idempotency-Key is given for: this request's method, path, query and body
    (a digest); the key answers only that request."""
    given = request.get_json(silent=True)
    text = json.dumps([request.method, request.path, sorted(request.args.items(multi=True)),
                       given], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# -- starting --------------------------------------------------------------------------------

def _group_operation(ref: str, kind: OperationKind):
    site = services()
    who = caller()
    site.policy.require(RULE[kind], who)
    everyone = site.policy.all_projects(who)
    params = body(OPTIONS[kind]).model_dump()
    force, dry_run = params.pop("force", False), params.pop("dry_run", False)
    key, asked = _idempotency_key(who), _key_request()
    earlier = None if dry_run else site.operations.existing(key, kind, asked)
    if earlier is not None:
        return _shown(earlier)
    with site.sessions() as session:
        group = find_group(session, ref, who, everyone)
    here = site.config.site
    if kind.runs_on_primary and group.primary_site != here:
        raise Conflict(f"protection group {group.name} runs on {group.primary_site}: "
                       f"{kind.label} it there", site=group.primary_site)
    if not kind.runs_on_primary and group.secondary_site != here:
        raise Conflict(f"protection group {group.name} recovers on {group.secondary_site}: "
                       f"run its {kind.label} there", site=group.secondary_site)
    try:
        rules.check_group(kind, group.name, GroupStatus(group.status))
    except rules.Refused as exc:
        raise Conflict(str(exc)) from None
    start = Start(kind, [group], who.actor, who.project, params=params, force=force,
                  key=key, key_request=asked)
    return _planned(start) if dry_run else _shown(site.operations.start(start))


def _planned(start: Start, skipped: dict[str, str] | None = None):
    """A dry run's answer: the plan of ``start`` once the peer's state allows it, with
    nothing recorded (:mod:`.preview`)."""
    site = services()
    reachable = site.operations.allowed(start, audited=False)
    planned = rules.Request(start.kind, start.params.get("failover_type")).planned
    lost_at = site.operations.peer_last_seen(reachable) \
        if start.kind.moves and not planned else None
    return {"plan": site.previews.plan(start.kind, [g.id for g in start.groups],
                                       start.params, lost_at=lost_at, site=start.site,
                                       skipped=skipped)}


# POST /v1/protection-groups/<ref>/<operation>: protect and unprotect (on the group's primary
# site, where its VMs are), test-failover, test-cleanup, failover and failback (on its
# secondary site).
for _kind in OPTIONS:
    bp.add_url_rule(f"/protection-groups/<ref>/{_kind.value.replace('_', '-')}", _kind.value,
                    partial(_group_operation, kind=_kind), methods=["POST"])


@bp.post("/sites/<name>/failover")
def site_failover(name: str):
    """Fail over every group whose primary is ``name``, here, at the surviving site."""
    site = services()
    kind = OperationKind.SITE_FAILOVER
    who = caller()
    site.policy.require(RULE[kind], who)
    params = body(schemas.SiteFailover).model_dump()
    force, dry_run = params.pop("force"), params.pop("dry_run")
    key, asked = _idempotency_key(who), _key_request()
    config = site.config
    if name not in config.sites:
        raise NotFound(f"no site {name!r}; this service knows {' and '.join(config.sites)}")
    if name == config.site:
        raise Conflict(f"site {name} is this site: fail it over from its peer "
                       f"{config.peer.name}, which takes its workloads", site=config.peer.name)
    earlier = None if dry_run else site.operations.existing(key, kind, asked)
    if earlier is not None:
        return _shown(earlier)
    with site.sessions() as session:
        groups = session.scalars(select(ProtectionGroup).where(
            ProtectionGroup.primary_site == name).order_by(
            ProtectionGroup.priority.desc(), ProtectionGroup.project_domain,
            ProtectionGroup.project_name, ProtectionGroup.name)).all()
    if not groups:
        raise Conflict(f"site {name} is the primary of no protection group: nothing to fail "
                       "over")
    start = Start(kind, groups, who.actor, who.project, params=params, force=force,
                  site=name, key=key, key_request=asked)
    if not dry_run:
        return _shown(site.operations.start(start))
    skipped = site.operations.left_out(start)
    remaining = [g for g in groups if g.name not in skipped]
    if not remaining:
        raise none_left(skipped)
    return _planned(replace(start, groups=remaining), skipped)


# -- following -------------------------------------------------------------------------------

def _visible(session: Session, op_id: str, who: Caller, everyone: bool) -> Operation:
    """Operations on the caller's project's groups, and those the caller's project asked
    for (a site failover spans projects); every one with ``all_projects``."""
    op = session.get(Operation, op_id, options=WITH_RESULTS)
    if op is None or not (everyone or who.project in (
            (op.project_domain, op.project_name), (op.requested_domain,
                                                   op.requested_project))):
        raise NotFound(f"operation {op_id!r} not found")
    return op


def _reader() -> tuple[Caller, bool]:
    who = caller()
    policy = services().policy
    policy.require("protector:read", who)
    return who, policy.all_projects(who)


@bp.get("/operations")
def list_operations():
    who, everyone = _reader()
    query = select(Operation).options(selectinload(Operation.results)).order_by(
        Operation.created_at.desc()).limit(200)
    if not everyone:
        query = query.where(or_(owned_by(Operation, who.project),
                                owned_by(Operation, who.project,
                                         domain=Operation.requested_domain,
                                         name=Operation.requested_project)))
    if request.args.get("status"):
        query = query.where(Operation.status == request.args["status"])
    scope = request.args.get("scope")
    if scope is not None:
        if scope not in SCOPES:
            raise APIError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}",
                           field="scope")
        query = query.where(Operation.scope == scope)
    with services().sessions() as session:
        if request.args.get("protection_group"):
            group = find_group(session, request.args["protection_group"], who, everyone)
            query = query.where(Operation.results.any(OperationResult.group_id == group.id))
        return {"operations": [operation_view(op) for op in session.scalars(query)]}


@bp.get("/operations/<op_id>")
def show_operation(op_id: str):
    who, everyone = _reader()
    with services().sessions() as session:
        return {"operation": operation_view(_visible(session, op_id, who, everyone))}


@bp.get("/operations/<op_id>/report")
def operation_report(op_id: str):
    """What a recovery got back against its groups' targets, with their last drills:
    ``?format=json`` (the default), ``html`` or ``pdf``."""
    who, everyone = _reader()
    wanted = request.args.get("format", "json")
    if wanted not in report_render.FORMATS:
        raise APIError(f"format must be one of {', '.join(report_render.FORMATS)}, not "
                       f"{wanted!r}", field="format")
    with services().sessions() as session:
        _visible(session, op_id, who, everyone)
    made = services().reports.of(op_id)
    if wanted == "json":
        return {"report": made.model_dump(mode="json")}
    body = report_render.html(made) if wanted == "html" else report_render.pdf(made)
    return Response(body, mimetype=report_render.FORMATS[wanted].split(";")[0], headers={
        "Content-Disposition": f'inline; filename="report-{op_id}.{wanted}"'})


def _acting_on(op_id: str, verb: str) -> tuple[Caller, bool]:
    """The caller, allowed to ``verb`` operation ``op_id`` (its kind's rule), and whether
    it asked for every project. A peer step is the asking site's to ``verb``."""
    site = services()
    who = caller()
    everyone = site.policy.all_projects(who)
    with site.sessions() as session:
        op = _visible(session, op_id, who, everyone)
        kind, asked_by = OperationKind(op.type), op.params.get("requested_by", {})
    if kind is PEER_STEP:
        raise Conflict(f"operation {op_id} is a step site {asked_by.get('site')} asked of "
                       f"this site: {verb} that site's operation "
                       f"{asked_by.get('operation', '')}".rstrip())
    if kind is OperationKind.FENCE:
        raise Conflict(f"operation {op_id} is this service's own fence of a group's original "
                       "VMs, which it starts again by itself after a while; nobody may "
                       f"{verb} it")
    site.policy.require(RULE[kind], who)
    return who, everyone


@bp.post("/operations/<op_id>/retry")
def retry(op_id: str):
    """A new operation of the same kind, for the groups that failed (those the caller may
    act on, that run the kind on this site)."""
    who, everyone = _acting_on(op_id, "retry")
    return _shown(services().operations.retry(
        op_id, actor=who.actor, requested_project=who.project,
        project=None if everyone else who.project, key=_idempotency_key(who),
        key_request=_key_request()))


@bp.post("/operations/<op_id>/cancel")
def cancel(op_id: str):
    """Stop an unfinished operation: it ends failed, saying who cancelled it, and its
    Mistral execution is cancelled; what it built stays, for a retry or a cleanup."""
    who, _ = _acting_on(op_id, "cancel")
    services().operations.cancel(op_id, who.actor)
    return _shown(op_id)


# -- progress from the workflows -------------------------------------------------------------

@bp.post("/internal/executions/<execution_id>/progress")
def report_progress(execution_id: str):
    """An action's report from inside Mistral execution ``execution_id``: answered with
    the operation it may act for (none: a capture), or refused, and then it does nothing
    (:meth:`Lifecycle.admit`)."""
    site = services()
    site.policy.require_internal(caller(), InternalCaller.WORKFLOWS)
    return {"operation_id": site.operations.admit(execution_id,
                                                  body(schemas.ExecutionReport))}


# -- a group's scheduled drill: its workflow's steps ------------------------------------------

def _scheduled(execution_id: str):
    site = services()
    site.policy.require_internal(caller(), InternalCaller.WORKFLOWS)
    return site.schedules


@bp.post("/internal/scheduled-drills/<execution_id>/operations")
def start_scheduled(execution_id: str):
    """The run's drill or its cleanup, started (or skipped, saying why)."""
    kind = OperationKind(body(schemas.ScheduledStart).kind)
    return _scheduled(execution_id).start(execution_id, kind)


@bp.get("/internal/scheduled-drills/<execution_id>/operations/<op_id>")
def scheduled_operation(execution_id: str, op_id: str):
    return _scheduled(execution_id).ended(execution_id, op_id)


@bp.post("/internal/scheduled-drills/<execution_id>/operations/<op_id>/verification")
def verify_scheduled(execution_id: str, op_id: str):
    """The drill's report kept, and what it shows checked."""
    return _scheduled(execution_id).verify(execution_id, op_id)


@bp.post("/internal/scheduled-drills/<execution_id>/outcome")
def finish_scheduled(execution_id: str):
    return _scheduled(execution_id).finish(execution_id,
                                           body(schemas.ScheduledOutcome).problems)


# -- what the peer site asks of this one -----------------------------------------------------

@bp.post("/internal/peer-steps")
def start_peer_step():
    """A step an operation of the peer site needs of this site's cloud, run here with this
    site's keys (the peer holds none of them): recorded as this site's own ``peer_step``
    operation and run by this site's Mistral. Asked again with the same key, it answers
    the same operation and starts nothing."""
    site = services()
    who = caller()
    site.policy.require_internal(who, InternalCaller.PEER)
    asked = body(PeerStepRequest)
    if asked.step is PeerStepName.REMOVE_COPY and asked.purpose is None:
        raise APIError("remove_copy needs the purpose of the copy to remove", field="purpose")
    with site.sessions() as session:
        group = session.get(ProtectionGroup, asked.protection_group_id)
        if group is None:
            raise NotFound(f"protection group {asked.protection_group_id!r} not found")
    here = site.config.site
    arguments = {PeerStepName.STOP_SERVERS: {"site": here, "copies": asked.copies,
                                             "fence": asked.fence},
                 PeerStepName.REMOVE_COPY: {"site": here, "purpose": asked.purpose},
                 PeerStepName.REVERSE_REPLICATION: {}, PeerStepName.FENCE: {},
                 PeerStepName.ACCEPT_REPLICATION: {}, PeerStepName.REPLICATE: {},
                 PeerStepName.UNPROTECT: {}}[asked.step]
    started = site.operations.start(Start(
        PEER_STEP, [group], {**who.actor, "site": site.config.peer.name},
        requested_project=None, key=f"peer-step:{asked.key}",
        params={"step": asked.step.value, "arguments": arguments,
                "requested_by": {**asked.requested_by, "site": site.config.peer.name}}))
    return _shown(started)


@bp.get("/internal/operations/<op_id>")
def show_peer_step(op_id: str):
    """A peer step, for the peer site's workflow that waits for it."""
    site = services()
    site.policy.require_internal(caller(), InternalCaller.PEER)
    with site.sessions() as session:
        op = session.get(Operation, op_id)
        if op is None or op.type != PEER_STEP:
            raise NotFound(f"peer step {op_id!r} not found")
        return {"operation": operation_view(op)}
