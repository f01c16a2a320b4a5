"""``protector-engine``: the site's background duties, apart from the API.

One engine of a site leads at a time; the others stand by. Leadership is a lock of the
coordination backend (tooz: Redis, or the service's own database as the fallback), held
while the engine lives: Redis expires it when its holder stops renewing it, PostgreSQL and
MySQL drop it with the holder's connection, a file lock dies with its process. A standby
engine takes the lock, and the duties, within one lock timeout of the leader's end.

The duties, every ``peer.probe_interval`` seconds: probe the peer, and catch up with it
when it answers again (then fence the original VMs of the groups that failed over to it
meanwhile); every ``FOLLOW_INTERVAL``: settle the starts that went unanswered, end the
operations whose workflow will report no more, fence what still waits for it, log
each operation that ended since the last look, under the request id that started it, and
keep the report of each recovery that ended (before a drill's cleanup removes its servers);
every ``engine.replication_check_interval``: ask this site's array how old each group's
newest recovery point is (:mod:`.replication`); every ``engine.readiness_interval``: check
that each group replicating here would recover (:mod:`.readiness`); every
``engine.drill_schedule_interval``: keep a Mistral cron trigger for each group that drills
here by its schedule (:mod:`.schedules`).
Each duty is safe to run twice (conditional updates, idempotency keys), so a leader that
lost its lock without knowing does no harm before it notices.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import make_url, select
from tooz import coordination

from site_recovery.core.config import ServiceConfig

from . import logs, prober
from .models import Operation, Site
from .replication import ReplicationWatch
from .services import Services

log = logging.getLogger(__name__)
# An operation whose execution Mistral still does not have this long after it was accepted
# lost its start (with the API process that started it): the start pool drains far faster
# even under a burst.
LOST_START = 300.0
FOLLOW_INTERVAL = 10.0        # seconds between looks at starts and Mistral's executions
LOOK_BACK = 60.0              # seconds of ended operations a new leader tells
JOIN_RETRY = 30.0             # seconds between tries to join a backend that did not answer


def coordination_url(config: ServiceConfig) -> str:
    """The tooz backend: the configured one, else the service's own database (PostgreSQL
    and MySQL advisory locks), else, for SQLite's one host, a file lock beside it."""
    if config.coordination.backend_url:
        return config.coordination.backend_url
    database = make_url(config.database_url)
    if database.get_backend_name() in ("postgresql", "mysql"):
        return database.set(drivername=database.get_backend_name()).render_as_string(
            hide_password=False)
    folder = Path(database.database or ".").resolve().parent
    return f"file://{folder / 'coordination'}"


class Leadership:
    """Whether this engine leads its site's engines, asked once a round: a lock that is
    taken when free and given up when the backend says another holds it now. While the
    backend does not answer, every engine acts: each duty is safe to run twice, and a
    site whose Redis went with the disaster must still probe and reconcile."""

    def __init__(self, url: str, site: str, member: str):
        self.member = member
        self._coordinator = coordination.get_coordinator(url, member.encode())
        self._name = f"site-recovery-engine-{site}".encode()
        self._lock = None
        self._leaving, self._joined = threading.Event(), threading.Event()

    def start(self, wait: float = 10.0):
        """Join the backend, waiting ``wait`` seconds at most: one that does not answer can
        keep a client waiting for a minute, so the engine goes on alone meanwhile while a
        thread keeps trying. Once joined, the lock is renewed in the background."""
        threading.Thread(target=self._join, name="coordination", daemon=True).start()
        self._joined.wait(wait)

    def _join(self):
        while not self._leaving.is_set():
            try:
                self._coordinator.start(start_heart=True)
                self._lock = self._coordinator.get_lock(self._name)
                self._joined.set()
                return
            except coordination.ToozError as exc:
                log.warning("the coordination backend did not answer (%s): this engine "
                            "acts until it does", exc)
            self._leaving.wait(JOIN_RETRY)

    def leading(self) -> bool:
        if self._lock is None:                 # not joined yet: acting alone meanwhile
            return True
        try:
            if self._lock.acquired:
                if self._still_owner():
                    return True
                log.warning("the engine lock expired and another engine holds it now")
                self._lock.release()
                self._lock = self._coordinator.get_lock(self._name)
            return self._lock.acquire(blocking=False)
        except coordination.ToozError as exc:
            log.warning("the coordination backend did not answer (%s): this engine acts "
                        "until it does", exc)
            return True

    def _still_owner(self) -> bool:
        """Whether the backend still gives us the lock we took: Redis's may have expired
        under a paused engine; a database's or a file's lasts as long as its holder."""
        try:
            return self._lock.is_still_owner()
        except NotImplementedError:
            return True

    def stop(self):
        self._leaving.set()
        try:
            if self._lock is not None and self._lock.acquired:
                self._lock.release()
            self._coordinator.stop()
        except coordination.ToozError as exc:
            log.warning("leaving the coordination backend failed: %s", exc)


class Engine:
    def __init__(self, site: Services, leadership: Leadership):
        self.sessions, self.registry, self.operations = (site.sessions, site.registry,
                                                         site.operations)
        self.config = site.config
        self.leadership = leadership
        self._stopped = threading.Event()
        self._caught_up = False
        self._leading = False
        self._ended_since = datetime.now(timezone.utc)
        self.replication = ReplicationWatch(site.sessions, site.config, site.clouds.storage)
        self.readiness = site.readiness
        self.reports, self.schedules = site.reports, site.schedules
        self._due: dict[str, float] = {}                 # sweep: when it is due again
        self._sweeps: dict[str, threading.Thread] = {}

    def run(self):
        """Run the duties until :meth:`stop`."""
        self.leadership.start()
        rounds = max(1, round(FOLLOW_INTERVAL / self.config.peer.probe_interval))
        round_ = 0
        try:
            while not self._stopped.is_set():
                if self._lead():
                    round_ += 1
                    self.run_round(follow=round_ % rounds == 1 or rounds == 1)
                self._stopped.wait(self.config.peer.probe_interval)
        finally:
            self.leadership.stop()

    def _lead(self) -> bool:
        leading = self.leadership.leading()
        if leading != self._leading:
            log.info("engine %s %s the duties of %s", self.leadership.member,
                     "takes" if leading else "hands over", self.config.site)
            self._leading, self._caught_up = leading, False
            if leading:       # what ended while the last leader went is told, not days of it
                self._ended_since = max(self._ended_since,
                                        datetime.now(timezone.utc) - timedelta(seconds=LOOK_BACK))
        return leading

    def run_round(self, follow: bool = True):
        duties = [lambda: prober.probe_once(self.sessions, self.config),
                  self.catch_up_once_reachable]
        if follow:
            duties += [lambda: self.operations.settle_starts(LOST_START),
                       self.operations.follow_executions,
                       self.operations.fence_returned,
                       self.log_ended, self.reports.keep_ended]
        for duty in duties:
            _guarded(duty)
        engine = self.config.engine
        for name, sweep, every in (
                ("replication", self.replication.check_once,
                 engine.replication_check_interval),
                ("readiness", self.readiness.check_all, engine.readiness_interval),
                ("drill_schedules", self.schedules.reconcile, engine.drill_schedule_interval)):
            self._sweep(name, sweep, every)

    def _sweep(self, name: str, sweep, every: float):
        """Start the periodic sweep ``name`` (every group: one array read, or a dozen cloud
        calls, each) on a thread of its own when it is due and not still running, so
        probing and following never wait for it."""
        running, due = self._sweeps.get(name), self._due.get(name, 0.0)
        if time.monotonic() < due or (running is not None and running.is_alive()):
            return
        self._due[name] = time.monotonic() + every
        self._sweeps[name] = threading.Thread(target=_guarded, args=(sweep,),
                                              name=f"engine-{name}", daemon=True)
        self._sweeps[name].start()

    def catch_up_once_reachable(self):
        """Whenever the peer answers again (and once after this engine takes the lead),
        adopt what it recorded alone meanwhile, so a failover made while this site was
        away is known here before anyone asks for a failback."""
        with self.sessions() as session:
            reachable = session.get(Site, self.config.peer.name).reachable
        if not reachable:
            self._caught_up = False
        elif not self._caught_up:
            changed = self.registry.sync()
            if changed:
                log.info("caught up with peer site %s: %d objects", self.config.peer.name,
                         changed)
            self._caught_up = changed is not None
            if self._caught_up:          # what failed over meanwhile is fenced first of all
                self.operations.fence_returned()

    def log_ended(self):
        """One line per operation that ended since the last look, under its request id,
        so the engine's log tells each operation's outcome beside the API's request."""
        since, self._ended_since = self._ended_since, datetime.now(timezone.utc)
        with self.sessions() as session:
            ended = session.scalars(select(Operation).where(
                Operation.finished_at >= since, Operation.finished_at < self._ended_since)
                .order_by(Operation.finished_at)).all()
        for op in ended:
            logs.with_request(op.request_id, __name__).info(
                "operation %s (%s) ended %s: %d completed, %d failed%s", op.id, op.type,
                op.status, op.completed_count or 0, op.failed_count or 0,
                f" ({op.error})" if op.error else "")

    def stop(self):
        self._stopped.set()


def _guarded(duty):
    try:
        duty()
    except Exception:                      # the engine must outlive a bad round
        log.exception("engine duty failed")
