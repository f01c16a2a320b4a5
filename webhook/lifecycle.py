"""A DR operation's life, in one place: start, progress, end, retry, and the ends nobody
reported.

Starting one: :mod:`core.operations` decides whether the peer's state allows it, the
operation is recorded with one result per group, and only then is the Mistral workflow
started. An idempotency key returns the operation it first started and starts nothing.

Mistral accepts executions one at a time per API worker (about 20 a second on the lab's
two cores), so under a burst of requests a synchronous start would keep every caller
waiting for the whole queue. Each start runs on a small pool instead; the request waits
for it up to ``mistral.start_wait`` seconds. A start that fails within that time (Mistral
refuses the connection, the workflow is unknown) fails the request, so nothing is
half-done; one still under way answers with the operation pending, and records its
execution, or that it never started, when Mistral answers. Each start asks Mistral for the
execution id the operation recorded (``planned_execution_id``), so a start whose answer
was lost is repeated or found, never doubled.

The workflows report each group's progress and end (:meth:`Lifecycle.admit`, which
decides first whether their execution may act at all); the operation's status is their
roll-up (:func:`core.operations.rollup`) however it ends: reported, never started
(:meth:`Lifecycle.settle_starts`), or ended by Mistral without a report
(:meth:`Lifecycle.follow_executions`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillStarting
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from site_recovery import workbooks
from site_recovery.core import operations as rules
from site_recovery.core import rto
from site_recovery.core.config import ServiceConfig
from site_recovery.core.model import (
    TOTAL,
    UNFINISHED,
    ExecutionReport,
    FenceState,
    GroupStatus,
    OperationInput,
    OperationKind,
    ProgressReport,
    Project,
    Status,
)

from . import audit, db, logs
from .errors import APIError, Conflict, Forbidden, NotFound, Unavailable
from .launcher import RECENT, Execution, Launcher, Root, StartUncertain
from .models import (
    Divergence,
    Operation,
    OperationResult,
    ProtectionGroup,
    Site,
    new_id,
    owned_by,
)
from .peerlink import PeerLink, PeerUnreachable
from .registry import DocumentKind, refuse_while_diverged

log = logging.getLogger(__name__)
SERVICE_ACTOR = {"user": "site-recovery"}
# The pack's workflows that capture groups: the cron trigger's, and capture on demand.
# They are no operation; the DR service account runs them.
CAPTURES = ("capture", "capture_site")
ROOTS_KEPT = 4096          # execution id -> its root, per process (they never change)
SETTLE = 60.0              # seconds a start may take before Mistral is asked about it
FENCE_RETRY = 120.0        # seconds before a fence that failed is started again


@dataclass(frozen=True)
class Start:
    """An operation to start: its kind, its groups, and who asked."""

    kind: OperationKind
    groups: Sequence[ProtectionGroup]
    actor: dict                        # a user, or a monitoring rule
    requested_project: Project | None  # the caller's project, which may follow it
    params: dict = field(default_factory=dict)
    force: bool = False
    site: str | None = None            # the failed site, for a site failover
    key: str | None = None             # Idempotency-Key, namespaced by project
    key_request: str | None = None     # a digest of the request the key came with
    execution_id: str | None = None    # a workflow started in Mistral directly: its root
    automatic: bool = False            # an alert's: never an unplanned move while the peer
                                       # answers

    @property
    def project(self) -> Project | None:
        """The groups' project, when they share one."""
        projects = {g.project for g in self.groups}
        return projects.pop() if len(projects) == 1 else None


@dataclass(frozen=True)
class Started:
    operation_id: str
    new: bool                          # False: the key's earlier operation


def _holding(kind: OperationKind, group_ids: list[str], leaving_out: tuple = (), *also):
    """(group id, operation id, *``also``) of the unfinished operations that keep ``kind``
    from starting on these groups, but for those of the kinds ``leaving_out``."""
    return select(OperationResult.group_id, Operation.id, *also).join(Operation).where(
        Operation.status.in_(UNFINISHED),
        Operation.type.in_([k for k in rules.conflicting(kind) if k not in leaving_out]),
        OperationResult.group_id.in_(group_ids))


def _left_out(groups, busy: dict[str, str], where: dict[str, str], diverged: set[str]
              ) -> dict[str, str]:
    """The groups a site failover goes on without, by name, and why: those not protected,
    those an unfinished operation holds (``busy``: group id -> operation id; ``where``:
    " on peer site ..." for the peer's), and those whose sites' copies diverged."""
    skipped = {g.name: f"not protected (status {g.status}): it has no replica to recover"
               for g in groups if g.status != GroupStatus.PROTECTED}
    skipped |= {g.name: f"operation {busy[g.id]} is under way{where.get(g.id, '')}"
                for g in groups if g.id in busy}
    skipped |= {g.name: "its two sites' copies diverged: keep one first"
                for g in groups if g.id in diverged}
    return skipped


def _timed(session: Session, op: Operation, result: OperationResult, now: datetime):
    """A recovery's group has ended: its wall time from the request (``total``, its RTO
    measured); once completed, how that compares with the group's RTO target if it has
    one, in its details, and an audit entry of its project when over it."""
    total = round((now - op.created_at).total_seconds(), 3)
    result.timings = {**result.timings, TOTAL: total}
    group = session.get(ProtectionGroup, result.group_id)
    target = group.rto_target_seconds if group else None
    if result.status != Status.COMPLETED or target is None:
        return
    said = rto.verdict(total, target)
    result.details = {**result.details, "rto": said}
    if rto.exceeded(total, target):
        log.warning("protection group %s %s (operation %s)", result.group_name, said, op.id)
        audit.record_in(session, SERVICE_ACTOR, "operation.rto_exceeded", group.id,
                        "recorded", f"protection group {result.group_name} {said}",
                        project=group.project,
                        details={"operation_id": op.id, "seconds": total,
                                 "rto_target_seconds": target})


def none_left(skipped: dict[str, str]) -> Conflict:
    """A site failover that would go on without every group: refused, each named."""
    return Conflict("no group of this site failover can fail over; nothing was started: "
                    + "; ".join(f"{name}: {why}" for name, why in skipped.items()),
                    skipped=skipped)


class Lifecycle:
    def __init__(self, sessions: sessionmaker[Session], config: ServiceConfig,
                 launcher: Launcher, peer_answers: Callable[[], bool],
                 peer: PeerLink | None = None):
        self.sessions, self.config, self.launcher = sessions, config, launcher
        self._peer_answers, self.peer = peer_answers, peer
        self._pool = ThreadPoolExecutor(config.mistral.start_workers,
                                        thread_name_prefix="mistral-start")
        self._roots: dict[str, Root | None] = {}
        self._roots_lock = threading.Lock()

    def close(self):
        """Wait for the starts under way (a worker's or a test's end)."""
        self._pool.shutdown(wait=True)

    # -- starting ----------------------------------------------------------------------------

    def existing(self, key: str | None, kind: OperationKind,
                 request: str | None = None) -> str | None:
        """The operation ``key`` already started; the key answers only the request it came
        with (``request``: its digest; another one is a 422) and may not start another
        kind. A key whose operation never started (Mistral refused it) is released:
        repeating the request with it starts the operation now."""
        if key is None:
            return None
        with self.sessions() as session:
            op = session.scalar(select(Operation).where(Operation.idempotency_key == key))
        if op is None:
            return None
        if op.status == Status.FAILED and op.mistral_execution_id is None:
            with db.transaction(self.sessions) as session:
                session.get(Operation, op.id).idempotency_key = None
            return None
        if op.type != kind:
            raise Conflict(f"this Idempotency-Key already started operation {op.id}, a "
                           f"{op.type}; use a new key for a {kind}", operation_id=op.id)
        if request and op.idempotency_request and op.idempotency_request != request:
            raise APIError(f"this Idempotency-Key already started operation {op.id} for "
                           "another request (another group, site or options); use a new "
                           "key for this one", status=422, operation_id=op.id)
        return op.id

    def start(self, start: Start) -> Started:
        """Check, record and launch one operation."""
        earlier = self.existing(start.key, start.kind, start.key_request)
        if earlier is not None:
            return Started(earlier, new=False)
        peer = self.config.peer.name
        reachable = self.allowed(start)
        ids = [g.id for g in start.groups]
        if start.kind.moves and "peer_last_seen" not in start.params and not rules.Request(
                start.kind, start.params.get("failover_type")).planned:     # a retry keeps it
            start = replace(start, params={**start.params,
                                           "peer_last_seen": self.peer_last_seen(reachable)})
        # A site failover goes on without the groups the peer holds, so it asks first; a
        # group's operation asks once it is recorded (below), one round trip to the peer.
        try:
            op_id, groups, params = self._record(
                start, reachable,
                self.busy_on_peer(start.kind, ids, reachable) if start.kind.site_wide else {})
        except IntegrityError:
            earlier = self.existing(start.key, start.kind, start.key_request)
            if earlier is None:
                raise Conflict("the operation could not be recorded (a group changed "
                               "meanwhile); try again") from None
            return Started(earlier, new=False)           # the same key, a moment ago
        # Asked once this one is recorded: of two admitted on both sites at the same moment,
        # each then sees the other's, and each steps back (never both run).
        held_on_peer = self.busy_on_peer(start.kind, [g.id for g in groups], reachable)
        if held_on_peer and start.execution_id is None:
            group_id, held = next(iter(held_on_peer.items()))
            group = next(g.name for g in groups if g.id == group_id)
            if start.kind.site_wide:
                self.never_started(op_id, f"operation {held['operation_id']} started on peer "
                                          f"site {peer} for a group at the same moment")
                raise Conflict(f"operation {held['operation_id']} "
                               f"({held['operation_type']}) started on peer site {peer} at "
                               f"the same moment on protection group {group}; nothing was "
                               "started here: try again once it has ended",
                               operation_id=held["operation_id"], site=peer)
            self._withdraw(op_id, start, f"operation {held['operation_id']} is under way "
                                         f"on peer site {peer} on protection group {group}")
            raise Conflict(f"operation {held['operation_id']} ({held['operation_type']}) is "
                           f"under way on peer site {peer} on protection group {group}; "
                           "nothing was started: wait for it to end",
                           operation_id=held["operation_id"], site=peer)
        # A recovery brings the workload here from the peer; a protect replicates it from
        # here, its primary, to the peer.
        source, target = ((self.config.site, peer) if start.kind.runs_on_primary
                          else (peer, self.config.site))
        workflow_input = OperationInput(
            operation_id=op_id, operation_type=start.kind,
            protection_group_ids=[g.id for g in groups], source_site=source,
            target_site=target, params=params, concurrency=self.config.engine.concurrency)
        future = self._pool.submit(self._launch, op_id, start, workflow_input)
        with contextlib.suppress(StillStarting):
            future.result(timeout=self.config.mistral.start_wait)
        return Started(op_id, new=True)

    def allowed(self, start: Start, *, audited: bool = True) -> bool | None:
        """Whether the peer's state allows ``start`` (:func:`core.operations.precheck`):
        the peer's reachability, as the operation records it; a Conflict naming why not,
        audited unless a dry run asks."""
        peer = self.config.peer.name
        reachable = self._peer_answers() if start.kind.moves else self._peer_verdict()
        try:
            rules.precheck(rules.Request(start.kind, start.params.get("failover_type"),
                                         start.force, start.automatic), peer, reachable)
        except rules.Refused as exc:
            if audited:
                audit.record(self.sessions, start.actor, f"operation.{start.kind}",
                             start.site or start.groups[0].id, "refused", str(exc),
                             project=start.project)
            raise Conflict(str(exc), peer=peer, peer_reachable=reachable) from None
        return reachable

    def peer_last_seen(self, reachable: bool | None) -> str | None:
        """Where an unplanned move's data loss ends: the last moment this site saw the
        peer answer well, while it is gone (None while it answers: the old primary is
        fenced first, so the loss ends when the recovery point is chosen)."""
        if reachable:
            return None
        with self.sessions() as session:
            seen = session.get(Site, self.config.peer.name).last_seen_at
        return seen.isoformat() if seen else None

    def _peer_verdict(self) -> bool | None:
        with self.sessions() as session:
            return session.get(Site, self.config.peer.name).reachable

    def busy_on_peer(self, kind: OperationKind, group_ids: list[str],
                     reachable: bool | None) -> dict[str, dict]:
        """The peer site's unfinished operations that keep ``kind`` from starting on these
        groups (group id: ``operation_id``, ``operation_type``), so that a group has one
        operation at a time on the pair. A peer that is away, or does not answer, holds
        none that matters: what it records meanwhile is reconciled when the sites talk
        again (``registry``: divergence)."""
        if self.peer is None or reachable is False or not group_ids or \
                not rules.conflicting(kind):
            return {}
        try:
            reply = self.peer.request("POST", "/v1/internal/busy",
                                      {"operation_type": kind, "groups": group_ids})
        except PeerUnreachable:
            return {}
        return reply.body.get("busy", {}) if reply.status == 200 else {}

    def busy_here(self, kind: OperationKind, group_ids: list[str]) -> dict[str, dict]:
        """This site's answer to :meth:`busy_on_peer`: its own operations only, not the
        peer steps it runs for the asking site's operations."""
        with self.sessions() as session:
            rows = session.execute(_holding(kind, group_ids, (OperationKind.PEER_STEP,),
                                            Operation.type)).all()
        return {group_id: {"operation_id": op_id, "operation_type": op_type}
                for group_id, op_id, op_type in rows}

    def left_out(self, start: Start) -> dict[str, str]:
        """The groups a site failover would go on without, as this site knows them now
        (its dry run's answer; the start asks the peer too)."""
        ids = [g.id for g in start.groups]
        with self.sessions() as session:
            busy = dict(session.execute(_holding(start.kind, ids)).all())
            diverged = set(session.scalars(select(Divergence.open_for).where(
                Divergence.open_for.in_(ids))))
        return _left_out(start.groups, busy, {}, diverged)

    def _record(self, start: Start, reachable: bool | None,
                on_peer: dict[str, dict] | None = None) -> tuple[str, list, dict]:
        """The operation and its groups' results (its id, its groups, its parameters);
        groups an unfinished conflicting operation holds, here or (``on_peer``) on the
        peer site, refuse it, except that a site failover goes on without them. A site
        failover also takes protected groups only (another has no replica to recover).
        What it skipped is in ``params["skipped"]``: each group's name, and why."""
        groups = list(start.groups)
        with db.transaction(self.sessions) as session:
            ids = [g.id for g in groups]
            locked = session.scalars(select(ProtectionGroup.id).where(
                ProtectionGroup.id.in_(ids)).with_for_update()).all()
            if len(locked) < len(ids):
                raise Conflict("a protection group of this operation was deleted meanwhile")
            diverged = set(session.scalars(select(Divergence.open_for).where(
                Divergence.open_for.in_(ids))))
            if diverged and not start.kind.site_wide:
                refuse_while_diverged(session, DocumentKind.PROTECTION_GROUP, diverged.pop())
            busy = dict(session.execute(_holding(start.kind, ids)).all())
            where = {group_id: "" for group_id in busy}
            for group_id, held in (on_peer or {}).items():
                if group_id in ids and group_id not in busy:
                    busy[group_id] = held["operation_id"]
                    where[group_id] = f" on peer site {self.config.peer.name}"
            if busy and not start.kind.site_wide:
                group, op_id = next(iter(busy.items()))
                raise Conflict(f"operation {op_id} is under way{where[group]} on protection "
                               f"group {next(g.name for g in groups if g.id == group)}; wait "
                               "for it to end", operation_id=op_id)
            params = dict(start.params)
            if start.kind.site_wide:
                skipped = _left_out(groups, busy, where, diverged)
                groups = [g for g in groups if g.name not in skipped]
                if not groups:
                    raise none_left(skipped)
                if skipped:
                    params["skipped"] = skipped
            owner, asker = start.project, start.requested_project
            op = Operation(type=start.kind, scope="site" if start.kind.site_wide
                           else "protection_group",
                           group_id=None if start.kind.site_wide else groups[0].id,
                           site=start.site, project_domain=owner and owner.domain,
                           project_name=owner and owner.name,
                           requested_domain=asker and asker.domain,
                           requested_project=asker and asker.name, total=len(groups),
                           force=start.force, peer_reachable=reachable,
                           idempotency_key=start.key, idempotency_request=start.key_request,
                           requested_by=start.actor, request_id=logs.current_request_id(),
                           mistral_execution_id=start.execution_id,
                           planned_execution_id=start.execution_id or new_id(),
                           params=params,
                           results=[OperationResult(group_id=g.id, group_name=g.name)
                                    for g in groups])
            session.add(op)
            session.flush()
            return op.id, groups, params

    def _withdraw(self, op_id: str, start: Start, why: str):
        """Take back an operation refused once recorded: as if it had been refused before
        (nothing of it is listed), the refusal audited."""
        with db.transaction(self.sessions) as session:
            op = session.get(Operation, op_id, with_for_update=True)
            if op is not None and op.mistral_execution_id is None:
                session.delete(op)
            audit.record_in(session, start.actor, f"operation.{start.kind}",
                            start.groups[0].id, "refused", why, project=start.project)

    def _launch(self, op_id: str, start: Start, workflow_input: OperationInput):
        """Start the operation's workflow (on the pool); a start that fails marks the
        operation as never started and raises what the request answers."""
        with self.sessions() as session:
            op = session.get(Operation, op_id)
            if op is None or op.finished_at is not None:
                return                            # given up while it waited its turn
            planned, request = op.planned_execution_id, op.request_id
        workflow = self.config.workflows.of(start.kind)
        description = f"site-recovery {start.kind} {op_id}" + (
            f" (request {request})" if request else "")
        try:
            execution = self.launcher.start(workflow, workflow_input.model_dump(mode="json"),
                                            description=description, execution_id=planned)
        except StartUncertain as exc:
            # It may run: the operation stays pending, the key held; the housekeeper
            # finds the execution by its planned id, or ends the operation.
            log.warning("operation %s: %s", op_id, exc.message)
            return
        except APIError as exc:
            self.never_started(op_id, exc.message)
            raise
        except Exception as exc:                  # TLS, credentials, a garbled answer
            log.exception("starting %s for operation %s failed", workflow, op_id)
            self.never_started(op_id, f"Mistral could not be asked ({type(exc).__name__})")
            raise Unavailable(f"Mistral could not be asked to start {workflow} "
                              f"({type(exc).__name__}); nothing was started") from None
        self._started(op_id, start.kind, start.actor, start.project, workflow, execution.id,
                      workflow_input.params)

    def _started(self, op_id: str, kind: str, actor: dict, project: Project | None,
                 workflow: str, execution_id: str, params: dict, found: bool = False):
        """Record the execution that runs ``op_id`` (``found``: by the housekeeper, after a
        start whose answer was lost); cancel it if the operation was given up meanwhile."""
        with db.transaction(self.sessions) as session:
            op = session.get(Operation, op_id, with_for_update=True)
            if op.mistral_execution_id == execution_id:
                return
            op.mistral_execution_id = execution_id
            given_up, request_id = op.finished_at is not None, op.request_id
            audit.record_in(session, actor, f"operation.{kind}", op_id,
                            "refused" if given_up else "accepted",
                            f"{workflow} started as execution {execution_id}"
                            + (" (found after its start went unanswered)" if found else "")
                            + (" after the operation was given up: cancelled"
                               if given_up else ""),
                            project=project, details={"params": params})
        logs.with_request(request_id, __name__).info(
            "operation %s (%s) %s as Mistral execution %s%s", op_id, kind,
            "found started" if found else "started", execution_id,
            ", given up meanwhile: cancelled" if given_up else "")
        if given_up:
            self.launcher.cancel(execution_id)

    def retry(self, op_id: str, *, actor: dict, requested_project: Project | None,
              project: Project | None, key: str | None,
              key_request: str | None = None) -> Started:
        """A new operation of the same kind for the groups that failed in ``op_id`` and
        that run the kind on this site (recovering here, or for a protect, running here);
        ``project``: only that project's groups."""
        with self.sessions() as session:
            op = session.get(Operation, op_id)
            kind = OperationKind(op.type)
            if op.status not in (Status.FAILED, Status.PARTIALLY_FAILED):
                raise Conflict(f"operation {op_id} is {op.status}: only a failed or partially "
                               "failed operation is retried")
            failed = [r.group_id for r in op.results if r.status == Status.FAILED]
            here = (ProtectionGroup.primary_site if kind.runs_on_primary
                    else ProtectionGroup.secondary_site)
            query = select(ProtectionGroup).where(ProtectionGroup.id.in_(failed),
                                                  here == self.config.site)
            if project is not None:
                query = query.where(owned_by(ProtectionGroup, project))
            groups = list(session.scalars(query))
            params = {k: v for k, v in op.params.items() if k != "skipped"}
            force, site = op.force, op.site
        earlier = self.existing(key, kind, key_request)
        if earlier is not None:
            return Started(earlier, new=False)
        if not groups:
            raise Conflict(f"none of the groups that failed in operation {op_id} can be "
                           f"retried here by {actor.get('user') or actor.get('user_id')}: "
                           f"they no longer exist, "
                           f"{'run' if kind.runs_on_primary else 'recover'} elsewhere, "
                           "or belong to another project")
        return self.start(Start(kind, groups, actor, requested_project,
                                params={**params, "retry_of": op_id}, force=force,
                                site=site, key=key, key_request=key_request))

    def cancel(self, op_id: str, actor: dict):
        """End ``op_id`` now, cancelled by ``actor``, and cancel its Mistral execution (its
        actions, asking to act, then find it finished and stop). What it built stays: a
        retry or a cleanup continues from there. An unfinished start is cancelled when
        it reaches Mistral (``_started``)."""
        who = actor.get("user") or actor.get("user_id") or "someone"
        why = (f"cancelled by {who}: what was built stays, for a retry or a cleanup to "
               "continue from")
        with db.transaction(self.sessions) as session:
            op = session.get(Operation, op_id, with_for_update=True)
            if Status(op.status).finished:
                raise Conflict(f"operation {op_id} has finished ({op.status}): nothing to "
                               "cancel")
            _end(op, datetime.now(timezone.utc), why)
            op.error, execution = why, op.mistral_execution_id
            audit.record_in(session, actor, f"operation.{op.type}", op_id, "cancelled", why,
                            project=_owner(op))
        if execution is not None:
            try:
                self.launcher.cancel(execution)
            except APIError as exc:      # its actions stop anyway: the operation is over
                log.warning("operation %s cancelled; its execution %s was not: %s", op_id,
                            execution, exc.message)

    # -- who may act: the DR service's own executions ----------------------------------------

    def admit(self, execution_id: str, report: ExecutionReport) -> str | None:
        """Whether an action running in Mistral execution ``execution_id`` may act, and for
        which operation (None: a capture, which is none); its report is then recorded.

        Mistral lets any tenant run an installed action, ad hoc or from a workflow of its
        own, and the actions hold the DR service's keys. So an action acts only inside a
        tree of executions whose root belongs to this service's project (Mistral alone
        records that) and runs an operation this service recorded, still unfinished, with
        the reporting group among its groups; or the pack's capture. A workflow of the
        pack that the DR account (or an admin in its project) started in Mistral directly
        is recorded as an operation the first time one of its actions asks."""
        root = self._root(execution_id)
        own_project = self.launcher.account()[1]
        if root is None or root.project_id != own_project:
            raise Forbidden(f"execution {execution_id} is not one of the DR service's: the "
                            "site_recovery actions act only in workflows the protection "
                            "service or its account started")
        op_id = root.input.get("operation_id")
        kind = next((k for k in OperationKind
                     if self.config.workflows.of(k) == root.workflow_name), None)
        if op_id:
            with self.sessions() as session:
                op = session.get(Operation, op_id)
            if op is None or (op.mistral_execution_id or op.planned_execution_id) \
                    not in (None, root.id):
                raise Forbidden(f"execution {root.id} does not run operation {op_id}")
            if op.mistral_execution_id is None:       # its start's answer was lost
                self._started(op.id, op.type, op.requested_by, _owner(op),
                              root.workflow_name, root.id, op.params, found=True)
        elif root.workflow_name in {workbooks.workflow_name(w) for w in CAPTURES}:
            return None
        elif kind is not None:
            op_id = self._adopt(root, kind)
        else:
            raise Forbidden(f"execution {root.id} runs {root.workflow_name}, which is none "
                            "of the pack's operations")
        if report.operation_id and report.operation_id != op_id:
            raise Forbidden(f"execution {root.id} runs operation {op_id}, not "
                            f"{report.operation_id}")
        self.record(op_id, ProgressReport.model_validate(
            report.model_dump(exclude={"operation_id"}, exclude_defaults=True)))
        return op_id

    def _root(self, execution_id: str) -> Root | None:
        with self._roots_lock:
            if execution_id in self._roots:
                return self._roots[execution_id]
        root = self.launcher.root(execution_id)
        with self._roots_lock:
            if len(self._roots) >= ROOTS_KEPT:
                self._roots.clear()
            self._roots[execution_id] = root
        return root

    def _adopt(self, root: Root, kind: OperationKind) -> str:
        """The operation recorded for ``root``, a workflow started in Mistral directly:
        recorded now, the first time one of its actions asks."""
        adopted = select(Operation.id).where(Operation.mistral_execution_id == root.id)
        with self.sessions() as session:
            op_id = session.scalar(adopted)
            if op_id:
                return op_id
            ids = [str(i) for i in root.input.get("protection_group_ids") or []]
            groups = list(session.scalars(select(ProtectionGroup).where(
                ProtectionGroup.id.in_(ids))))
        unknown = sorted(set(ids) - {g.id for g in groups})
        if unknown or not groups:
            raise NotFound(f"execution {root.id} names protection groups unknown here: "
                           f"{', '.join(unknown) or 'none'}")
        actor = {"user": "mistral", "execution": root.id, "project_id": root.project_id}
        params = root.input.get("params")
        start = Start(kind, groups, actor, requested_project=None,
                      params=params if isinstance(params, dict) else {},
                      site=root.input.get("source_site") if kind.site_wide else None,
                      execution_id=root.id)
        try:
            op_id, _, _ = self._record(start, reachable=None)
        except (IntegrityError, Conflict):
            with self.sessions() as session:
                op_id = session.scalar(adopted)     # another of its actions, a moment ago
            if op_id is None:
                raise
            return op_id
        audit.record(self.sessions, actor, f"operation.{kind}", op_id, "accepted",
                     f"{root.workflow_name} started in Mistral directly as execution "
                     f"{root.id}", project=start.project)
        return op_id

    # -- progress from the workflows ---------------------------------------------------------

    def record(self, op_id: str, report: ProgressReport):
        """A workflow's report: the operation as a whole (running, or ended), or one
        group's progress or end; the operation's status follows."""
        now = datetime.now(timezone.utc)
        with db.transaction(self.sessions) as session:
            op = session.get(Operation, op_id, with_for_update=True)
            if op is None:
                raise NotFound(f"operation {op_id!r} not found")
            if Status(op.status).finished:
                raise Conflict(f"operation {op_id} has finished ({op.status})")
            op.started_at = op.started_at or now
            if report.protection_group_id is None:
                self._operation_report(op, report, now)
            else:
                self._group_report(session, op, report, now)
            op.recovery_point = op.recovery_point or report.recovery_point
            if report.rpo_achieved_seconds is not None:
                op.rpo_achieved_seconds = max(op.rpo_achieved_seconds or 0,
                                              report.rpo_achieved_seconds)

    @staticmethod
    def _group_report(session: Session, op: Operation, report: ProgressReport,
                      now: datetime):
        result = next((r for r in op.results if r.group_id == report.protection_group_id),
                      None)
        if result is None:
            raise NotFound(f"protection group {report.protection_group_id} is not part of "
                           f"operation {op.id}")
        result.status = report.status
        result.step = report.step or result.step
        result.reason = report.reason if report.status == Status.FAILED else result.reason
        result.recovery_point = report.recovery_point or result.recovery_point
        if report.rpo_achieved_seconds is not None:
            result.rpo_achieved_seconds = report.rpo_achieved_seconds
        result.timings = {**result.timings, **report.timings}
        result.details = {**result.details, **report.details}
        result.started_at = result.started_at or now
        if Status(report.status).finished:
            result.finished_at = now
            if OperationKind(op.type).recovers:
                _timed(session, op, result, now)
        _roll_up(op, now)

    @staticmethod
    def _operation_report(op: Operation, report: ProgressReport, now: datetime):
        """The operation as a whole: running, or its workflow ended (the groups that did
        not report their end failed where they were)."""
        if report.status == Status.RUNNING:
            op.status = Status.RUNNING
            return
        _end(op, now, report.reason or "the workflow ended before this group finished",
             step=report.step)
        op.error = report.reason if report.status == Status.FAILED else op.error

    # -- ends nobody reported ----------------------------------------------------------------

    def never_started(self, op_id: str, why: str):
        """Its workflow never started: every group failed, the operation too."""
        with db.transaction(self.sessions) as session:
            op = session.get(Operation, op_id, with_for_update=True)
            if op.mistral_execution_id or op.finished_at:
                return
            _end(op, datetime.now(timezone.utc), "the workflow never started")
            op.error = f"never started: {why}"
            audit.record_in(session, op.requested_by, f"operation.{op.type}", op_id,
                            "refused", op.error, project=_owner(op))

    def settle_starts(self, lost_after: float, now: datetime | None = None) -> int:
        """Operations still without an execution ``SETTLE`` seconds after they were
        accepted (a start whose answer was lost, or a worker that stopped while starting):
        the execution Mistral has under the planned id is recorded; with none there after
        ``lost_after`` seconds, the operation never started. How many were settled."""
        now = now or datetime.now(timezone.utc)
        with self.sessions() as session:
            waiting = session.execute(select(
                Operation.id, Operation.planned_execution_id, Operation.created_at).where(
                Operation.status == Status.PENDING, Operation.mistral_execution_id.is_(None),
                Operation.finished_at.is_(None),
                Operation.created_at < now - timedelta(seconds=SETTLE))).all()
        settled = 0
        for op_id, planned, created_at in waiting:
            try:
                execution = self.launcher.find(planned) if planned else None
            except APIError:
                continue                              # Mistral away: ask next round
            if execution is not None:
                with self.sessions() as session:
                    op = session.get(Operation, op_id)
                    kind, actor, params = op.type, op.requested_by, op.params
                    project = _owner(op)
                self._started(op_id, kind, actor, project, self.config.workflows.of(
                    OperationKind(kind)), execution.id, params, found=True)
            elif created_at < now - timedelta(seconds=lost_after):
                self.never_started(op_id, f"no Mistral execution {lost_after:g} s after it "
                                          "was accepted (the service stopped while starting "
                                          "it); start it again")
            else:
                continue
            settled += 1
        return settled

    def fence_returned(self, now: datetime | None = None) -> list[str]:
        """Fence what failed over while this site was away: the groups whose original VMs
        are here, recorded by the peer as running there with their fence pending on this
        site, each get a ``fence`` operation (stop and lock them here), unless one is under
        way or failed within ``FENCE_RETRY`` seconds, or this site's Mistral does not
        answer yet (a site coming back starts its services one by one). Run after each
        catch-up with the peer and every follow round. The operations started."""
        now = now or datetime.now(timezone.utc)
        here = self.config.site
        with self.sessions() as session:
            waiting = [g for g in session.scalars(select(ProtectionGroup).where(
                ProtectionGroup.secondary_site == here,
                ProtectionGroup.status.in_([s for s in GroupStatus if s.away]),
                ProtectionGroup.fence.is_not(None)))
                # JSON keeps a lifted fence as null, which SQL does not see as NULL
                if g.fence and g.fence.get("site") == here
                and g.fence.get("state") == FenceState.PENDING and g.divergence is None]
            if not waiting:
                return []
            try:
                self.launcher.since(now)       # Mistral answers (a site starting up)
            except APIError as exc:
                log.info("fencing on %s waits for Mistral: %s", here, exc.message)
                return []
            earlier = session.execute(select(
                OperationResult.group_id, Operation.status, Operation.created_at).join(
                Operation).where(Operation.type == OperationKind.FENCE,
                                 OperationResult.group_id.in_([g.id for g in waiting]))).all()
        started = []
        for group in waiting:
            tried = [(status, created) for group_id, status, created in earlier
                     if group_id == group.id]
            if any(status in UNFINISHED or created > now - timedelta(seconds=FENCE_RETRY)
                   for status, created in tried):
                continue
            # One per group, fence and attempt, however many workers ask at once.
            key = f"fence:{group.id}:{group.fence.get('since')}:{len(tried)}"
            try:
                started.append(self.start(Start(
                    OperationKind.FENCE, [group], SERVICE_ACTOR, None, key=key)).operation_id)
            except APIError as exc:              # Mistral away: the next round tries again
                log.warning("fencing %s on %s did not start: %s", group.name, here,
                            exc.message)
        return started

    def follow_executions(self, now: datetime | None = None) -> int:
        """End the unfinished operations whose workflow will report no more: Mistral
        ended it in ERROR or CANCELLED, ended it SUCCESS without its end reported (for
        ``SETTLE`` seconds), or no longer has it (deleted). Each ends failed, naming the
        cause; how many ended. One question to Mistral, none while nothing runs."""
        now = now or datetime.now(timezone.utc)
        with self.sessions() as session:
            running = dict(session.execute(
                select(Operation.mistral_execution_id, Operation.id).where(
                    Operation.status.in_(UNFINISHED),
                    Operation.mistral_execution_id.is_not(None))).all())
            oldest = session.scalar(select(func.min(Operation.created_at)).where(
                Operation.mistral_execution_id.in_(list(running)))) if running else None
        if not running:
            return 0
        try:
            # An execution started in Mistral directly began before it was recorded.
            seen = {e.id: e for e in self.launcher.since(oldest - timedelta(minutes=10))}
        except APIError:
            return 0                                  # Mistral away: ask again next round
        whole = len(seen) < RECENT
        ended = 0
        for execution_id, op_id in running.items():
            why = _why_ended(execution_id, seen.get(execution_id), whole, now)
            if why is None:
                continue
            with db.transaction(self.sessions) as session:
                op = session.get(Operation, op_id, with_for_update=True)
                if op.finished_at is not None:
                    continue
                _end(op, now, why)
                op.error = why
                audit.record_in(session, SERVICE_ACTOR, f"operation.{op.type}", op.id,
                                "recorded", why, project=_owner(op))
            ended += 1
        return ended


def _why_ended(execution_id: str, execution: Execution | None, whole: bool,
               now: datetime) -> str | None:
    """Why an operation's workflow will report no more, or None while it may."""
    if execution is None:
        return (f"its Mistral execution {execution_id} no longer exists (deleted): "
                "nothing will report the rest") if whole else None
    if execution.state in ("ERROR", "CANCELLED"):
        return (f"its workflow ended {execution.state} in Mistral: "
                f"{execution.state_info or 'no reason given'}")
    if execution.state == "SUCCESS" and execution.updated_at is not None and \
            execution.updated_at < now - timedelta(seconds=SETTLE):
        return "its workflow ended in Mistral without reporting this group's end"
    return None

def _owner(op: Operation) -> Project | None:
    return Project(op.project_domain, op.project_name) if op.project_name else None


def _end(op: Operation, now: datetime, why: str, *, step: str | None = None):
    """End the operation: every group still unfinished failed, ``why``."""
    for result in op.results:
        if not Status(result.status).finished:
            result.status, result.finished_at, result.reason = Status.FAILED, now, why
            result.step = step or result.step
    _roll_up(op, now)
    op.finished_at = now


def _roll_up(op: Operation, now: datetime):
    summary = rules.rollup((r.status for r in op.results), started=True)
    op.status, op.completed_count, op.failed_count = (summary.status, summary.completed,
                                                      summary.failed)
    if Status(op.status).finished:
        op.finished_at = now
