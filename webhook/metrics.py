"""What Prometheus scrapes at ``/metrics``: the requests this site served, and the DR
figures an operator alerts on, read from the service's database at each scrape.

gunicorn runs several workers per site and a scrape reaches one of them. With
``PROMETHEUS_MULTIPROC_DIR`` set (prometheus_client's multiprocess mode; the launcher
empties that directory before any worker starts and calls :func:`worker_exited` from
gunicorn's ``child_exit`` hook), the request counter and histogram live in files there, so
every worker answers with the whole site's counts. The DR figures need no such sharing:
whichever worker answers reads them from the one database, so they are right however many
workers there are.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timezone

from flask import Flask, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from site_recovery.core.config import ServiceConfig
from site_recovery.core.model import TOTAL, UNFINISHED, GroupStatus, OperationKind, Status

from .models import (
    Divergence,
    Operation,
    OperationResult,
    ProtectionGroup,
    ReadinessRecord,
    ReplicationState,
    ScheduledDrill,
    Site,
    last_drills,
    newest_recovery_points,
)
from .services import services

log = logging.getLogger(__name__)

SHARED_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("protector_http_requests_total", "HTTP requests served",
                   ["method", "endpoint", "status"])
LATENCY = Histogram("protector_http_request_seconds", "HTTP request latency", ["endpoint"])
# Label values come from closed sets: any other method is "other", so a client cannot
# grow the metrics without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# /metrics is public (Prometheus carries no token): a group is named by its id alone, never
# by its name or its project's (docs/security.md); `protection-group show <id>` names it.
GROUP = ["group_id", "primary_site", "secondary_site"]
# As the API shows a group's status: "conflict" while its two sites' copies diverged.
GROUP_STATUSES = (*(status.value for status in GroupStatus), "conflict")


def install(app: Flask):
    """Count and time every request, and serve ``/metrics``. Installed before the app's
    other ``before_request`` hooks, so the requests they refuse are measured too."""
    served = CollectorRegistry()
    if os.environ.get(SHARED_DIRECTORY):
        _count_in_shared_files()
        multiprocess.MultiProcessCollector(served)
    else:
        served.register(REGISTRY)
    served.register(DisasterRecoveryFigures(app))
    app.before_request(_started)
    app.after_request(_finished)

    def metrics():
        """Every worker's requests, and the site's DR figures as the database has them."""
        return generate_latest(served), 200, {"Content-Type": CONTENT_TYPE_LATEST}

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])


def worker_exited(pid: int):
    """For gunicorn's ``child_exit`` hook: the worker's live gauges leave the shared
    directory, while what it counted stays in the site's totals."""
    if os.environ.get(SHARED_DIRECTORY):
        multiprocess.mark_process_dead(pid)


def _count_in_shared_files():
    """prometheus_client chooses where values live when it is first imported. gunicorn's
    master imports the app before a launcher may set the variable, then forks: each worker
    would count in its own memory and a scrape show one worker's share. So the choice is
    made again here, in the worker, before it counts anything."""
    if not values.ValueClass._multiprocess:
        values.ValueClass = values.get_value_class()


def _started():
    g.started = time.perf_counter()


def _finished(response):
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    method = request.method if request.method in METHODS else "other"
    REQUESTS.labels(method, endpoint, response.status_code).inc()
    LATENCY.labels(endpoint).observe(time.perf_counter() - g.get("started", 0.0))
    return response


class DisasterRecoveryFigures:
    """A collector of the figures people alert on, computed from the database when
    Prometheus scrapes (a handful of SELECTs): nothing kept in a worker, so any worker
    answers for the whole site. A database that does not answer is a figure too."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily]:
        site = services(self.app)
        up = "Whether the DR figures could be read from the service's database"
        try:
            with site.sessions() as session:
                figures = list(_figures(session, site.config, datetime.now(timezone.utc)))
        except SQLAlchemyError:
            log.exception("the DR figures could not be read from the database")
            yield _gauge("protector_database_up", up, 0)
            return
        yield _gauge("protector_database_up", up, 1)
        yield from figures


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _figures(session: Session, config: ServiceConfig, now: datetime
             ) -> Iterator[GaugeMetricFamily]:
    yield _gauge("protector_diverged_objects", "Groups and mappings whose two sites' "
                 "copies were written apart and wait for one to be kept",
                 session.scalar(select(func.count()).select_from(Divergence).where(
                     Divergence.open_for.is_not(None))))
    yield from _group_figures(session, config.site, now)
    yield from _peer_figures(session, now)
    yield from _operation_figures(session)


def _group_figures(session: Session, here: str, now: datetime
                   ) -> Iterator[GaugeMetricFamily]:
    groups = session.execute(select(
        ProtectionGroup.id, ProtectionGroup.primary_site,
        ProtectionGroup.secondary_site, ProtectionGroup.status,
        ProtectionGroup.rpo_target_seconds, ProtectionGroup.rto_target_seconds,
        ProtectionGroup.created_at,
        Divergence.id.label("divergence")).outerjoin(
        Divergence, Divergence.open_for == ProtectionGroup.id)).all()
    labels = {g.id: [g.id, g.primary_site, g.secondary_site] for g in groups}

    status = GaugeMetricFamily(
        "protector_group_status", "1 for the status the group is in, as the API shows it "
        "(conflict: its two sites' copies diverged), 0 for the others", labels=[*GROUP,
                                                                                 "status"])
    target = GaugeMetricFamily(
        "protector_group_rpo_target_seconds", "The most data, in seconds of writes, the "
        "group's owners accept to lose", labels=GROUP)
    rto_target = GaugeMetricFamily(
        "protector_group_rto_target_seconds", "The longest the group's owners accept its "
        "recovery to take, from request to running", labels=GROUP)
    for group in groups:
        shown = "conflict" if group.divergence is not None else group.status
        for name in GROUP_STATUSES:
            status.add_metric([*labels[group.id], name], 1 if name == shown else 0)
        if group.rpo_target_seconds is not None:
            target.add_metric(labels[group.id], group.rpo_target_seconds)
        if group.rto_target_seconds is not None:
            rto_target.add_metric(labels[group.id], group.rto_target_seconds)
    yield from (status, target, rto_target)
    yield from _recovery_point_figures(session, labels, now)
    yield from _replication_figures(session, labels)
    yield from _readiness_figures(session, labels)
    yield from _drill_figures(session, [g for g in groups if g.secondary_site == here],
                              labels, now)
    yield from _scheduled_drill_figures(session, labels)


def _recovery_point_figures(session: Session, labels: dict[str, list[str]], now: datetime
                            ) -> Iterator[GaugeMetricFamily]:
    """From the newest recovery point an operation of each group recorded (a drill's or a
    failover's, as the array timestamped it): the database holds no other, as the arrays
    are not asked between operations."""
    newest = select(newest_recovery_points().c.id)
    age = GaugeMetricFamily(
        "protector_group_recovery_point_age_seconds", "Age of the newest recovery point "
        "an operation of the group recorded (its drill's or failover's)", labels=GROUP)
    lag = GaugeMetricFamily(
        "protector_group_rpo_achieved_seconds", "The replication lag the group's last "
        "drill or failover found: the writes its recovery point lacked, in seconds",
        labels=GROUP)
    for group_id, rpo_achieved, details in session.execute(select(
            OperationResult.group_id, OperationResult.rpo_achieved_seconds,
            OperationResult.details).where(OperationResult.id.in_(newest))):
        if group_id not in labels:
            continue                                   # the group was deleted since
        created = _moment(details.get("point_created"))
        if created is not None:
            age.add_metric(labels[group_id], (now - created).total_seconds())
        if rpo_achieved is not None:
            lag.add_metric(labels[group_id], rpo_achieved)
    yield from (age, lag)


def _replication_figures(session: Session, labels: dict[str, list[str]]
                         ) -> Iterator[GaugeMetricFamily]:
    """What the DR site's array said at the engine's last check (its replication watch,
    every ``engine.replication_check_interval``): the lag, and whether it is over the
    group's RPO target."""
    lag = GaugeMetricFamily(
        "protector_group_replication_lag_seconds", "Age of the newest recovery point the "
        "DR site's array held at the engine's last check: the writes a failover then would "
        "have lost (DR site only)", labels=GROUP)
    violated = GaugeMetricFamily(
        "protector_group_rpo_violated", "1 while the replication lag is over the group's "
        "RPO target, 0 within it (DR site only; absent without a target or a reading)",
        labels=GROUP)
    for state in session.scalars(select(ReplicationState)):
        if state.group_id not in labels:
            continue
        if state.lag_seconds is not None:
            lag.add_metric(labels[state.group_id], state.lag_seconds)
        if state.violated is not None:
            violated.add_metric(labels[state.group_id], 1 if state.violated else 0)
    yield from (lag, violated)


def _readiness_figures(session: Session, labels: dict[str, list[str]]
                       ) -> Iterator[GaugeMetricFamily]:
    ready = GaugeMetricFamily(
        "protector_group_ready", "1 when the group's last readiness check found it would "
        "recover, 0 when a check failed (DR site only, once checked)", labels=GROUP)
    for group_id, is_ready in session.execute(select(ReadinessRecord.group_id,
                                                     ReadinessRecord.ready)):
        if group_id in labels:
            ready.add_metric(labels[group_id], 1 if is_ready else 0)
    yield ready


def _drill_figures(session: Session, drilled_here: list, labels: dict[str, list[str]],
                   now: datetime) -> Iterator[GaugeMetricFamily]:
    """For the groups whose drills run on this site (their secondary): how the last one
    ended and how long ago. A group never drilled counts from its creation, so a drill
    policy (every N days) holds for new groups too."""
    last = select(last_drills().c.id)
    drills = {group_id: (status, finished_at, timings) for group_id, status, finished_at,
              timings in session.execute(select(
                  OperationResult.group_id, OperationResult.status,
                  OperationResult.finished_at, OperationResult.timings)
                  .where(OperationResult.id.in_(last)))}
    success = GaugeMetricFamily(
        "protector_group_last_drill_success", "1 if the group's last drill (test "
        "failover) completed, 0 if it failed", labels=GROUP)
    age = GaugeMetricFamily(
        "protector_group_last_drill_age_seconds", "Seconds since the group's last drill "
        "ended, or since the group was created if it was never drilled", labels=GROUP)
    took = GaugeMetricFamily(
        "protector_group_last_drill_rto_seconds", "How long the group's last drill took "
        "from request to running, if it completed: its RTO, estimated", labels=GROUP)
    for group in drilled_here:
        status, finished_at, timings = drills.get(group.id, (None, None, {}))
        if status is not None:
            success.add_metric(labels[group.id], 1 if status == Status.COMPLETED else 0)
        if status == Status.COMPLETED and timings.get(TOTAL) is not None:
            took.add_metric(labels[group.id], timings[TOTAL])
        age.add_metric(labels[group.id],
                       (now - (finished_at or group.created_at)).total_seconds())
    yield from (success, age, took)


def _scheduled_drill_figures(session: Session, labels: dict[str, list[str]]
                             ) -> Iterator[GaugeMetricFamily]:
    """Each scheduled group's last run that drilled (a skipped one leaves them as they
    were): whether it passed, and when it ended."""
    newest = (select(ScheduledDrill.group_id,
                     func.max(ScheduledDrill.finished_at).label("finished_at"))
              .where(ScheduledDrill.result.in_(("passed", "failed")))
              .group_by(ScheduledDrill.group_id).subquery())
    passed = GaugeMetricFamily(
        "protector_group_last_scheduled_drill_passed", "1 if the group's last scheduled "
        "drill passed (recovered, checked, cleaned up), 0 if it failed (its audit entry "
        "drill.scheduled says why)", labels=GROUP)
    ended = GaugeMetricFamily(
        "protector_group_last_scheduled_drill_timestamp_seconds", "When the group's last "
        "scheduled drill ended (Unix time)", labels=GROUP)
    for group_id, result, finished_at in session.execute(
            select(ScheduledDrill.group_id, ScheduledDrill.result, ScheduledDrill.finished_at)
            .join(newest, (newest.c.group_id == ScheduledDrill.group_id)
                  & (newest.c.finished_at == ScheduledDrill.finished_at))):
        if group_id in labels:
            passed.add_metric(labels[group_id], 1 if result == "passed" else 0)
            ended.add_metric(labels[group_id], finished_at.timestamp())
    yield from (passed, ended)


def _peer_figures(session: Session, now: datetime) -> Iterator[GaugeMetricFamily]:
    """The peer as this site's probes judged it; nothing while it was never probed."""
    reachable = GaugeMetricFamily(
        "protector_peer_reachable", "1 while the peer site's service answers this site's "
        "probes, 0 once it is judged unreachable", labels=["peer"])
    last_seen = GaugeMetricFamily(
        "protector_peer_last_seen_age_seconds", "Seconds since the peer site last "
        "answered a probe well: the data an unplanned failover would lose grows from then",
        labels=["peer"])
    for peer in session.scalars(select(Site).where(Site.role == "peer")):
        if peer.reachable is not None:
            reachable.add_metric([peer.name], 1 if peer.reachable else 0)
        if peer.last_seen_at is not None:
            last_seen.add_metric([peer.name], (now - peer.last_seen_at).total_seconds())
    yield from (reachable, last_seen)


def _operation_figures(session: Session) -> Iterator[GaugeMetricFamily]:
    unfinished = defaultdict(int, {(kind, status): count for kind, status, count in
                                   session.execute(select(
                                       Operation.type, Operation.status, func.count())
                                       .where(Operation.status.in_(UNFINISHED))
                                       .group_by(Operation.type, Operation.status))})
    running = GaugeMetricFamily(
        "protector_operations_unfinished", "Operations accepted (pending) or under way "
        "(running) on this site, by kind", labels=["kind", "status"])
    for kind in OperationKind:
        for status in (Status.PENDING, Status.RUNNING):
            running.add_metric([kind.value, status.value],
                               unfinished[kind.value, status.value])
    yield running
    yield from _last_completed_figures(session)


def _last_completed_figures(session: Session) -> Iterator[GaugeMetricFamily]:
    """Per kind, the last operation that completed: how long it took from its request to
    its end, and each phase (a workflow's timed step) as its slowest group took it (a site
    failover's groups run side by side). What a recovery takes, for people to expect."""
    latest = (select(Operation.type, func.max(Operation.finished_at).label("finished_at"))
              .where(Operation.status == Status.COMPLETED).group_by(Operation.type)
              .subquery())
    rows = session.execute(
        select(Operation.id, Operation.type, Operation.created_at, Operation.finished_at,
               OperationResult.timings)
        .join(latest, and_(Operation.type == latest.c.type,
                           Operation.finished_at == latest.c.finished_at))
        .outerjoin(OperationResult, OperationResult.operation_id == Operation.id)
        .order_by(Operation.id))
    chosen: dict[str, str] = {}                      # kind -> its operation's id
    took: dict[str, float] = {}
    phases: dict[str, dict[str, float]] = defaultdict(dict)
    for op_id, kind, created_at, finished_at, timings in rows:
        if chosen.setdefault(kind, op_id) != op_id:
            continue                                 # two ended at once: one is enough
        took[kind] = (finished_at - created_at).total_seconds()
        for phase, seconds in (timings or {}).items():
            phases[kind][phase] = max(seconds, phases[kind].get(phase, 0.0))
    duration = GaugeMetricFamily(
        "protector_last_completed_operation_seconds", "How long the last operation of "
        "this kind that completed took, from its request to its end", labels=["kind"])
    phase_duration = GaugeMetricFamily(
        "protector_last_completed_operation_phase_seconds", "Each phase of the last "
        "operation of this kind that completed, as its slowest group took it",
        labels=["kind", "phase"])
    for kind, seconds in sorted(took.items()):
        duration.add_metric([kind], seconds)
        for phase, phase_seconds in sorted(phases[kind].items()):
            phase_duration.add_metric([kind, phase], phase_seconds)
    yield from (duration, phase_duration)


def _moment(text) -> datetime | None:
    """A recorded ISO 8601 moment (UTC when it names no zone); None when it is not one."""
    try:
        # Python 3.10 reads no "Z", which pydantic writes for UTC
        moment = datetime.fromisoformat(text.removesuffix("Z") + (
            "+00:00" if text.endswith("Z") else ""))
    except (AttributeError, TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
