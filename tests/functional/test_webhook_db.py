"""The service database on SQLite, PostgreSQL and MariaDB: migrations and the model.

PostgreSQL and MariaDB are opportunistic, as in oslo.db: used when they answer on
127.0.0.1 (trust auth / root without password), skipped with the reason otherwise.
Each test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError, OperationalError

from site_recovery.webhook import db
from site_recovery.webhook.models import (
    Base,
    Member,
    Operation,
    OperationResult,
    ProtectionGroup,
    ResourceMapping,
)

SERVERS = {
    "postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}",
    "mysql": "mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4",
}


def _server_database(kind: str):
    name = f"sr_test_{uuid.uuid4().hex[:10]}"
    admin_url = SERVERS[kind].format(name="postgres" if kind == "postgresql" else "")
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT",
                              connect_args={"connect_timeout": 3})
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except OperationalError as exc:
        pytest.skip(f"{kind} does not answer on 127.0.0.1: {exc.orig}")
    return SERVERS[kind].format(name=name), lambda: _drop(admin, name)


def _drop(admin, name):
    with admin.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name}"))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url, drop = f"sqlite:///{tmp_path / 'protector.db'}", lambda: None
    else:
        url, drop = _server_database(request.param)
    engine = db.make_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()
        drop()


def test_migrations_build_exactly_the_model_and_run_twice(engine):
    db.upgrade(engine)
    db.upgrade(engine)                                   # every start runs it: a no-op
    with engine.connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert drift == []
    assert set(inspect(engine).get_table_names()) >= {
        "sites", "protection_groups", "members", "resource_mappings", "operations",
        "operation_results", "audit_log", "alert_deliveries", "alembic_version"}


def test_downgrade_to_base_removes_every_table(engine):
    db.upgrade(engine)
    db.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}


def test_a_group_round_trips_with_members_mappings_and_operations(engine):
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    with db.transaction(sessions) as session:
        group = ProtectionGroup(name="prod-ecommerce-web", project_name="ecommerce",
                                replication_type="async", primary_site="site-a",
                                secondary_site="site-b", volume_type="replicated-ssd")
        group.members = [Member(server_id=str(uuid.uuid4()), server_name=f"web-{i}",
                                position=i, spec={"flavor": "m1.small", "ports": [i]})
                         for i in range(2)]
        group.mappings = [ResourceMapping(project_name="ecommerce", kind="network",
                                          source="net-a", target="net-b")]
        operation = Operation(type="test_failover", scope="protection_group", total=1,
                              completed_count=1, status="completed")
        operation.results = [OperationResult(group_id="g", group_name="prod-ecommerce-web",
                                             status="completed", timings={"import": 1.5})]
        session.add_all([group, operation])
    with sessions() as session:
        loaded = session.query(ProtectionGroup).one()
        assert [m.server_name for m in loaded.members] == ["web-0", "web-1"]
        assert loaded.members[1].spec == {"flavor": "m1.small", "ports": [1]}
        assert loaded.created_at.tzinfo is UTC
        assert abs((datetime.now(UTC) - loaded.created_at).total_seconds()) < 60
        done = session.query(Operation).one()
        assert done.progress == 100 and done.results[0].timings == {"import": 1.5}


def test_a_group_name_is_unique_within_a_project(engine):
    db.upgrade(engine)
    sessions = db.session_factory(engine)

    def group(project):
        return ProtectionGroup(name="web", project_name=project, replication_type="async",
                               primary_site="site-a", secondary_site="site-b",
                               volume_type="replicated-ssd")

    with db.transaction(sessions) as session:
        session.add_all([group("ecommerce"), group("analytics")])
    with pytest.raises(IntegrityError), db.transaction(sessions) as session:
        session.add(group("ecommerce"))
    with sessions() as session:
        assert session.query(ProtectionGroup).count() == 2


def test_upgrading_moves_this_sites_project_ids_to_its_record_of_projects(engine):
    """0004: the per-group ``project_ids`` column goes; the entry for this site (the
    ``local`` row of ``sites``) becomes the project's record, the peer's is not ours."""
    db.upgrade(engine, "0003")
    now = datetime.now(UTC).replace(tzinfo=None)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO sites (name, role, url, consecutive_failures, "
            "consecutive_successes) VALUES ('site-b', 'local', 'https://b', 0, 0)"))
        for name, ids in (("web", '{"site-a": "id-a", "site-b": "id-b"}'),
                          ("db", '{"site-a": "id-a"}')):
            connection.execute(text(
                "INSERT INTO protection_groups (id, name, description, project_domain, "
                "project_name, project_ids, replication_type, primary_site, "
                "secondary_site, volume_type, status, version, created_at, updated_at) "
                "VALUES (:id, :name, '', 'Default', :project, :ids, 'async', 'site-a', "
                "'site-b', 'ssd', 'unprotected', 1, :now, :now)"),
                {"id": str(uuid.uuid4()), "name": name, "project": f"p-{name}", "ids": ids,
                 "now": now})
    db.upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text(
            "SELECT project_domain, project_name, project_id, recorded_from FROM projects"
        )).all() == [("Default", "p-web", "id-b", "caller")]
    assert "project_ids" not in {c["name"] for c in inspect(engine).get_columns(
        "protection_groups")}


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_a_connection_the_server_dropped_while_it_sat_in_the_pool_is_replaced(
        kind, monkeypatch):
    """The pool pings a connection idle for a while before handing it out (a database
    restarted meanwhile dropped it), not one it handed out a moment ago."""
    url, drop = _server_database(kind)
    engine = db.make_engine(url)
    try:
        sessions = db.session_factory(engine)
        with sessions() as session:
            first = session.execute(text("SELECT connection_id()" if kind == "mysql"
                                         else "SELECT pg_backend_pid()")).scalar()
        kill = (f"KILL {first}" if kind == "mysql" else
                f"SELECT pg_terminate_backend({first})")
        killer = create_engine(url, isolation_level="AUTOCOMMIT")
        with killer.connect() as connection:
            connection.execute(text(kill))
        killer.dispose()
        monkeypatch.setattr(db, "PING_WHEN_IDLE", 0.0)
        with sessions() as session:                  # the dropped one is replaced
            again = session.execute(text("SELECT connection_id()" if kind == "mysql"
                                         else "SELECT pg_backend_pid()")).scalar()
        assert again != first
    finally:
        engine.dispose()
        drop()
