"""Create or drop a lab database on the local PostgreSQL (run with a service venv's python).

    python pgdb.py ensure|drop NAME [--host H] [--port P] [--user U]

The lab's PostgreSQL trusts local connections (user ``postgres``, no password), as CI and
this machine kind run it. psycopg2 comes with the Heat and Mistral venvs, so this runs there
rather than in the project's own environment.
"""

from __future__ import annotations

import argparse
import re
import sys

import psycopg2
from psycopg2 import errors, sql


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=("ensure", "drop"))
    parser.add_argument("name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5432)
    parser.add_argument("--user", default="postgres")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[a-z0-9_]{1,63}", args.name):
        parser.error(f"not a lab database name: {args.name!r}")
    conn = psycopg2.connect(host=args.host, port=args.port, user=args.user, dbname="postgres",
                            connect_timeout=5)
    conn.autocommit = True                  # CREATE/DROP DATABASE cannot run in a transaction
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.name,))
        exists = cur.fetchone() is not None
        if args.action == "ensure" and not exists:
            try:
                cur.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0")
                            .format(sql.Identifier(args.name)))
                print(f"created {args.name}")
            # Another ensure of the same name created it between the look and the create
            # (PostgreSQL says so either way, by the catalog's unique index or by name).
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                print(f"{args.name} exists")
        elif args.action == "drop" and exists:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(args.name)))
            print(f"dropped {args.name}")
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
