"""One gunicorn worker's part, in a process of its own, for ``test_webhook_metrics``: the
service's app on the test's configuration and database serves ``--requests`` health
checks, tells :func:`worker_exited` of the ``--dead`` workers as gunicorn's master would,
then ``--scrape``s ``/metrics``. Prints its pid and what it scraped, as JSON.

``PROMETHEUS_MULTIPROC_DIR`` comes from the environment, or with ``--late DIR`` is set
only after the app is imported, as a launcher that imports the app first sets it.
"""

from __future__ import annotations

import argparse
import json
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument("--dead", type=int, action="append", default=[])
    parser.add_argument("--scrape", action="store_true")
    parser.add_argument("--late")
    args = parser.parse_args()

    from site_recovery.core.config import load
    from site_recovery.webhook import metrics
    from site_recovery.webhook.app import create_app

    if args.late:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = args.late
    client = create_app(load(args.config), keystone=False).test_client()
    for _ in range(args.requests):
        assert client.get("/healthz").status_code == 200
    for pid in args.dead:
        metrics.worker_exited(pid)
    scraped = client.get("/metrics").get_data(as_text=True) if args.scrape else None
    print(json.dumps({"pid": os.getpid(), "scraped": scraped}))


if __name__ == "__main__":
    main()
