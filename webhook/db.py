"""The service database: engine, sessions and schema migrations (Alembic)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
# A pooled connection used this recently is taken as alive; one idle longer is pinged
# before use (a database restarted meanwhile dropped it).
PING_WHEN_IDLE = 5.0


def make_engine(url: str, threads: int = 5) -> Engine:
    """The engine for ``url``, pooling a connection for each of ``threads`` (a connection
    beyond the pool is opened and closed for one session)."""
    options: dict = {"pool_size": threads}
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif url.startswith("mysql"):
        options["pool_recycle"] = 3600
    engine = create_engine(url, **options)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    else:
        event.listen(engine, "checkout", partial(_ping_if_idle, engine.dialect))
        event.listen(engine, "checkin", _note_return)
    return engine


def _ping_if_idle(dialect, connection, record, _proxy):
    """Ping a pooled connection that sat idle (``pool_pre_ping`` would ping on every
    checkout: one round trip more for each of a request's sessions); a dead one makes
    the pool connect again."""
    returned = record.info.get("returned_at")
    if returned is None or time.monotonic() - returned < PING_WHEN_IDLE:
        return
    try:
        dialect.do_ping(connection)
    except Exception as error:
        raise exc.DisconnectionError(
            f"a pooled connection was lost ({type(error).__name__})") from error


def _note_return(_connection, record):
    record.info["returned_at"] = time.monotonic()


def _sqlite_pragmas(connection, _record):
    # pysqlite begins transactions lazily, at the first write: a read-then-write would
    # act on a stale read. SQLAlchemy emits BEGIN itself instead (see _sqlite_begin).
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")        # several gunicorn workers, one file
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head"):
    """Bring the schema to ``revision``; run again, it changes nothing."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


class SchemaNotCurrent(RuntimeError):
    """The database is not at this release's schema: the services do not start on it."""


def head() -> str:
    """This release's schema revision."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revision(engine: Engine) -> str | None:
    """The database's schema revision (None: no schema yet)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def require_current(database: Engine | str):
    """Refuse a database that ``db upgrade`` has not brought to this release's schema
    (migrations are a step of the upgrade, never a side effect of a start)."""
    engine = make_engine(database) if isinstance(database, str) else database
    try:
        found, wanted = revision(engine), head()
    finally:
        if isinstance(database, str):
            engine.dispose()
    if found != wanted:
        raise SchemaNotCurrent(
            f"the database is at schema revision {found or 'none'}, this release needs "
            f"{wanted}: run 'site-recovery-protector db upgrade' first")


def downgrade(engine: Engine, revision: str):
    """Step the schema back to ``revision`` ("base" removes every table)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _sqlite_begin(connection):
    """Writers take SQLite's write lock up front (``BEGIN IMMEDIATE``), so what they read
    stays true until they commit, as a row lock would keep it on the other databases."""
    immediate = connection.get_execution_options().get("write", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]):
    """A session for writing that commits when the block ends and rolls back on any
    error. Rows it means to change are read with ``with_for_update``."""
    with factory() as session, session.begin():
        session.connection(execution_options={"write": True})
        yield session
