"""DR operations: start them (protect, drill, cleanup, failover, failback, site failover),
follow them, retry what failed; and the internal endpoint where workflows report progress.

Starting one: the caller's role is checked, the groups are found, :mod:`core.operations`
decides whether the peer's state allows it, the operation is recorded, and only then is
the Mistral workflow started. A group's recovery operations start on its secondary site,
a protect on its primary (``core.operations.ON_PRIMARY``). An ``Idempotency-Key`` returns
the operation it first started and starts nothing. If Mistral cannot be reached the
operation is recorded as failed (it never started) and the caller gets 503: nothing is
half-done.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Blueprint, current_app, request
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from site_recovery.core import operations as rules

from . import audit, db, prober, schemas
from .errors import APIError, Conflict, NotFound
from .groups import find_group
from .identity import Caller, caller
from .models import Operation, OperationResult, ProtectionGroup, Site
from .params import body

bp = Blueprint("operations", __name__, url_prefix="/v1")

RULE = {"protect": "protector:write",
        "test_failover": "protector:test_failover", "test_cleanup": "protector:test_failover",
        "failover": "protector:failover", "failback": "protector:failover",
        "site_failover": "protector:site_failover"}
KEY = re.compile(r"^[\x21-\x7e]{1,64}$")


def result_view(result: OperationResult) -> dict:
    return {"protection_group_id": result.group_id, "protection_group": result.group_name,
            "status": result.status, "step": result.step, "reason": result.reason,
            "recovery_point": result.recovery_point,
            "rpo_achieved_seconds": result.rpo_achieved_seconds, "timings": result.timings,
            "details": result.details,
            "started_at": _iso(result.started_at), "finished_at": _iso(result.finished_at)}


def operation_view(op: Operation) -> dict:
    return {"id": op.id, "operation_type": op.type, "scope": op.scope, "status": op.status,
            "protection_group_id": op.group_id,
            "protection_group": op.results[0].group_name if op.scope != "site" and op.results
            else None,
            "site": op.site, "project_name": op.project_name,
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


# -- starting --------------------------------------------------------------------------------

def _idempotency_key(who: Caller) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not KEY.match(key):
        raise APIError("Idempotency-Key must be 1 to 64 printable characters without spaces",
                       field="Idempotency-Key")
    return f"{who.project_id}:{key}"           # one project's key never finds another's


def _existing(session: Session, key: str | None, kind: str) -> Operation | None:
    """The operation this key already started; the key may not start another kind. A key
    whose operation never started (Mistral refused it) is released: repeating the request
    with it starts the operation now."""
    if key is None:
        return None
    op = session.scalar(select(Operation).where(Operation.idempotency_key == key))
    if op is None:
        return None
    if op.status == "failed" and op.mistral_execution_id is None:
        with db.transaction(current_app.extensions["sessions"]) as writing:
            writing.get(Operation, op.id).idempotency_key = None
        return None
    if op.type != kind:
        raise Conflict(f"this Idempotency-Key already started operation {op.id}, a "
                       f"{op.type}; use a new key for a {kind}", operation_id=op.id)
    return op


def _peer(session: Session) -> Site:
    return session.get(Site, current_app.config["SERVICE"].peer.name)


def _peer_answers(config) -> bool:
    """Whether the peer answers now: a failover decides on this and records it."""
    ok, _ = prober.healthy(str(config.peer.url), config.peer.probe_timeout)
    return ok


def _busy(session: Session, kind: str, group_ids: list[str]) -> dict[str, str]:
    """Groups that an unfinished operation in ``rules.conflicting(kind)`` holds: group id
    -> operation id."""
    rows = session.execute(
        select(OperationResult.group_id, Operation.id).join(Operation).where(
            Operation.status.in_(("pending", "running")),
            Operation.type.in_(rules.conflicting(kind)),
            OperationResult.group_id.in_(group_ids))).all()
    return dict(rows)


def start(actor: dict, requested_project: str | None, kind: str,
          groups: list[ProtectionGroup], *, site: str | None, params: dict,
          force: bool = False, key: str | None = None):
    """Check, record and launch one operation for ``actor`` (a user, or a monitoring
    rule); the reply for the view."""
    config = current_app.config["SERVICE"]
    sessions = current_app.extensions["sessions"]
    with sessions() as session:
        peer = _peer(session)
        existing = _existing(session, key, kind)
    if existing is not None:
        return {"operation": operation_view(existing)}, 200
    reachable = (_peer_answers(config) if kind in ("failover", "failback", "site_failover")
                 else peer.reachable)
    try:
        rules.precheck(rules.Request(kind, params.get("failover_type"), force),
                       peer.name, reachable)
    except rules.Refused as exc:
        audit.record(sessions, actor, f"operation.{kind}", site or groups[0].id,
                     "refused", str(exc), project_name=_project(groups))
        raise Conflict(str(exc), peer=peer.name, peer_reachable=reachable) from None
    try:
        with db.transaction(sessions) as session:
            ids = [g.id for g in groups]
            locked = session.scalars(select(ProtectionGroup.id).where(
                ProtectionGroup.id.in_(ids)).with_for_update()).all()
            busy = _busy(session, kind, ids)
            if len(locked) < len(ids):
                raise Conflict("a protection group of this operation was deleted meanwhile")
            if busy and (kind != "site_failover" or len(busy) == len(ids)):
                group, op_id = next(iter(busy.items()))
                raise Conflict(f"operation {op_id} is under way on protection group "
                               f"{next(g.name for g in groups if g.id == group)}; wait for "
                               "it to end", operation_id=op_id)
            if busy:              # a site failover goes on without what is already moving
                params["skipped"] = sorted(g.name for g in groups if g.id in busy)
                groups = [g for g in groups if g.id not in busy]
            op = Operation(type=kind, scope="site" if kind in rules.SITE_OPERATIONS
                           else "protection_group",
                           group_id=groups[0].id if kind not in rules.SITE_OPERATIONS
                           else None, site=site, project_name=_project(groups),
                           requested_project=requested_project, total=len(groups),
                           force=force, peer_reachable=reachable, idempotency_key=key,
                           requested_by=actor, params=params,
                           results=[OperationResult(group_id=g.id, group_name=g.name)
                                    for g in groups])
            session.add(op)
    except IntegrityError:
        with sessions() as session:
            existing = _existing(session, key, kind)
        if existing is None:
            raise Conflict("the operation could not be recorded (a group changed "
                           "meanwhile); try again") from None
        return {"operation": operation_view(existing)}, 200   # the same key, a moment ago
    workflow = getattr(config.workflows, kind)
    # A recovery brings the workload here from the peer; a protect replicates it from
    # here, its primary, to the peer.
    source, target = ((config.site, config.peer.name) if kind in rules.ON_PRIMARY
                      else (config.peer.name, config.site))
    current_app.extensions["starts"].start(
        op, actor, workflow, {"operation_id": op.id, "operation_type": kind,
                              "protection_group_ids": [g.id for g in groups],
                              "source_site": source, "target_site": target,
                              "params": params, "concurrency": config.engine.concurrency},
        wait=config.mistral.start_wait)
    with sessions() as session:
        return {"operation": operation_view(session.get(Operation, op.id))}, 202


def _project(groups: list[ProtectionGroup]) -> str | None:
    projects = {g.project_name for g in groups}
    return projects.pop() if len(projects) == 1 else None


def _group_operation(ref: str, kind: str, model: type[schemas.Body]):
    who = caller()
    policy = current_app.extensions["policy"]
    policy.require(RULE[kind], who)
    everyone = policy.all_projects(who)
    options = body(model)
    key = _idempotency_key(who)
    config = current_app.config["SERVICE"]
    with current_app.extensions["sessions"]() as session:
        existing = _existing(session, key, kind)
        if existing is not None:
            return {"operation": operation_view(existing)}, 200
        group = find_group(session, ref, who, everyone)
    if kind in rules.ON_PRIMARY:
        if group.primary_site != config.site:
            raise Conflict(f"protection group {group.name} runs on {group.primary_site}: "
                           f"{kind.replace('_', ' ')} it there", site=group.primary_site)
    elif group.secondary_site != config.site:
        raise Conflict(f"protection group {group.name} recovers on {group.secondary_site}: "
                       f"run its {kind.replace('_', ' ')} there", site=group.secondary_site)
    params = options.model_dump()
    return start(who.actor, who.project_name, kind, [group], site=None, params=params,
                 force=params.pop("force", False), key=key)


@bp.post("/protection-groups/<ref>/protect")
def protect(ref: str):
    """Make the group replicate to its secondary site and capture its VMs; here, on its
    primary site."""
    return _group_operation(ref, "protect", schemas.NoOptions)


@bp.post("/protection-groups/<ref>/test-failover")
def test_failover(ref: str):
    return _group_operation(ref, "test_failover", schemas.TestFailover)


@bp.post("/protection-groups/<ref>/test-cleanup")
def test_cleanup(ref: str):
    return _group_operation(ref, "test_cleanup", schemas.NoOptions)


@bp.post("/protection-groups/<ref>/failover")
def failover(ref: str):
    return _group_operation(ref, "failover", schemas.Failover)


@bp.post("/protection-groups/<ref>/failback")
def failback(ref: str):
    return _group_operation(ref, "failback", schemas.NoOptions)


@bp.post("/sites/<name>/failover")
def site_failover(name: str):
    """Fail over every group whose primary is ``name``, here, at the surviving site."""
    who = caller()
    current_app.extensions["policy"].require(RULE["site_failover"], who)
    options = body(schemas.SiteFailover)
    key = _idempotency_key(who)
    config = current_app.config["SERVICE"]
    if name not in config.sites:
        raise NotFound(f"no site {name!r}; this service knows {' and '.join(config.sites)}")
    if name == config.site:
        raise Conflict(f"site {name} is this site: fail it over from its peer "
                       f"{config.peer.name}, which takes its workloads", site=config.peer.name)
    with current_app.extensions["sessions"]() as session:
        existing = _existing(session, key, "site_failover")
        if existing is not None:
            return {"operation": operation_view(existing)}, 200
        groups = session.scalars(select(ProtectionGroup).where(
            ProtectionGroup.primary_site == name).order_by(
            ProtectionGroup.project_name, ProtectionGroup.name)).all()
    if not groups:
        raise Conflict(f"site {name} is the primary of no protection group: nothing to fail "
                       "over")
    params = options.model_dump()
    return start(who.actor, who.project_name, "site_failover", list(groups), site=name,
                 params=params, force=params.pop("force"), key=key)


# -- following -------------------------------------------------------------------------------

def _visible(session: Session, op_id: str, who: Caller, everyone: bool) -> Operation:
    """Operations on the caller's project's groups, and those the caller's project asked
    for (a site failover spans projects); every one with ``all_projects``."""
    op = session.get(Operation, op_id)
    if op is None or not (everyone or who.project_name in (op.project_name,
                                                           op.requested_project)):
        raise NotFound(f"operation {op_id!r} not found")
    return op


@bp.get("/operations")
def list_operations():
    who = caller()
    policy = current_app.extensions["policy"]
    policy.require("protector:read", who)
    everyone = policy.all_projects(who)
    query = select(Operation).order_by(Operation.created_at.desc()).limit(200)
    if not everyone:
        query = query.where(or_(Operation.project_name == who.project_name,
                                Operation.requested_project == who.project_name))
    if request.args.get("status"):
        query = query.where(Operation.status == request.args["status"])
    with current_app.extensions["sessions"]() as session:
        if request.args.get("protection_group"):
            group = find_group(session, request.args["protection_group"], who, everyone)
            query = query.where(Operation.results.any(OperationResult.group_id == group.id))
        return {"operations": [operation_view(op) for op in session.scalars(query)]}


@bp.get("/operations/<op_id>")
def show_operation(op_id: str):
    who = caller()
    policy = current_app.extensions["policy"]
    policy.require("protector:read", who)
    everyone = policy.all_projects(who)
    with current_app.extensions["sessions"]() as session:
        return {"operation": operation_view(_visible(session, op_id, who, everyone))}


@bp.post("/operations/<op_id>/retry")
def retry(op_id: str):
    """A new operation of the same kind, for the groups that failed (those the caller may
    act on, that run the kind on this site: recovering here, or for a protect, running
    here)."""
    who = caller()
    policy = current_app.extensions["policy"]
    everyone = policy.all_projects(who)
    config = current_app.config["SERVICE"]
    with current_app.extensions["sessions"]() as session:
        op = _visible(session, op_id, who, everyone)
        policy.require(RULE[op.type], who)
        if op.status not in ("failed", "partially_failed"):
            raise Conflict(f"operation {op_id} is {op.status}: only a failed or partially "
                           "failed operation is retried")
        failed = [r.group_id for r in op.results if r.status == "failed"]
        here = (ProtectionGroup.primary_site if op.type in rules.ON_PRIMARY
                else ProtectionGroup.secondary_site)
        query = select(ProtectionGroup).where(ProtectionGroup.id.in_(failed),
                                              here == config.site)
        if not everyone:
            query = query.where(ProtectionGroup.project_name == who.project_name)
        groups = session.scalars(query).all()
        key = _idempotency_key(who)
        existing = _existing(session, key, op.type)
        if existing is not None:
            return {"operation": operation_view(existing)}, 200
    if not groups:
        raise Conflict(f"none of the groups that failed in operation {op_id} can be retried "
                       f"here by {who.user_name or who.user_id}: they no longer exist, "
                       f"{'run' if op.type in rules.ON_PRIMARY else 'recover'} elsewhere, "
                       "or belong to another project")
    params = {**op.params, "retry_of": op.id}
    params.pop("skipped", None)
    return start(who.actor, who.project_name, op.type, list(groups), site=op.site,
                 params=params, force=op.force, key=key)


# -- progress from the workflows -------------------------------------------------------------

@bp.post("/internal/operations/<op_id>/progress")
def report_progress(op_id: str):
    who = caller()
    current_app.extensions["policy"].require("protector:internal", who)
    report = body(schemas.ProgressReport)
    now = datetime.now(UTC)
    with db.transaction(current_app.extensions["sessions"]) as session:
        op = session.get(Operation, op_id, with_for_update=True)
        if op is None:
            raise NotFound(f"operation {op_id!r} not found")
        if op.status in ("completed", "failed", "partially_failed"):
            raise Conflict(f"operation {op_id} has finished ({op.status})")
        op.started_at = op.started_at or now
        if report.protection_group_id is None:
            _report_operation(op, report, now)
        else:
            _report_group(op, report, now)
        op.recovery_point = op.recovery_point or report.recovery_point
        if report.rpo_achieved_seconds is not None:
            op.rpo_achieved_seconds = max(op.rpo_achieved_seconds or 0,
                                          report.rpo_achieved_seconds)
        session.flush()
        return {"operation": operation_view(op)}


def _report_group(op: Operation, report: schemas.ProgressReport, now: datetime):
    result = next((r for r in op.results if r.group_id == report.protection_group_id), None)
    if result is None:
        raise NotFound(f"protection group {report.protection_group_id} is not part of "
                       f"operation {op.id}")
    result.status = report.status
    result.step = report.step or result.step
    result.reason = report.reason if report.status == "failed" else result.reason
    result.recovery_point = report.recovery_point or result.recovery_point
    if report.rpo_achieved_seconds is not None:
        result.rpo_achieved_seconds = report.rpo_achieved_seconds
    result.timings = {**result.timings, **report.timings}
    result.details = {**result.details, **report.details}
    result.started_at = result.started_at or now
    if report.status in rules.FINISHED:
        result.finished_at = now
    summary = rules.rollup((r.status for r in op.results), started=True)
    op.status, op.completed_count, op.failed_count = (summary.status, summary.completed,
                                                      summary.failed)
    if op.status in ("completed", "failed", "partially_failed"):
        op.finished_at = now


def _report_operation(op: Operation, report: schemas.ProgressReport, now: datetime):
    """The operation as a whole: running, or failed before its groups finished."""
    if report.status == "running":
        op.status = "running"
        return
    for result in op.results:
        if result.status not in rules.FINISHED:
            result.status, result.finished_at = "failed", now
            result.step = report.step or result.step
            result.reason = report.reason or "the workflow ended before this group finished"
    summary = rules.rollup((r.status for r in op.results), started=True)
    op.status, op.completed_count, op.failed_count = (summary.status, summary.completed,
                                                      summary.failed)
    op.error = report.reason if report.status == "failed" else op.error
    op.finished_at = now
