"""Create Mistral's schema on SQLite (run with the Mistral venv's python).

    python mistral_schema.py --config-file mistral.conf

Mistral's alembic migrations cannot run on SQLite (they ALTER constraints), so the tables
come from Mistral's own SQLAlchemy models with ``metadata.create_all``, plus the
maintenance-status row that migration 044 would insert. Afterwards, run
``mistral-db-manage stamp head`` (so the schema counts as current) and ``populate``.
Running it again is harmless: create_all skips existing tables, the row is added once.
"""

from __future__ import annotations

import sys


def main() -> int:
    from mistral import config
    from mistral.db.sqlalchemy import base as db_base
    from mistral.db.v2 import api as db_api  # first: it loads the backend below
    from mistral.db.v2.sqlalchemy import api as sqlalchemy_api
    from mistral.db.v2.sqlalchemy import models
    from oslo_config import cfg
    from oslo_log import log as oslo_logging

    config.parse_args(sys.argv[1:])
    oslo_logging.setup(cfg.CONF, "mistral-schema")
    connection = cfg.CONF.database.connection
    if not connection.startswith("sqlite"):
        sys.exit(f"only for SQLite; use mistral-db-manage upgrade head for {connection}")

    engine = db_base.get_engine()
    models.Workbook.metadata.create_all(engine)
    with db_api.transaction():
        sqlalchemy_api.fill_metrics_table()
    tables = sorted(models.Workbook.metadata.tables)
    print(f"{len(tables)} tables in {connection}: {', '.join(tables)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
