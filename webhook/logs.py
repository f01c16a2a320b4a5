"""Logs as OpenStack services write them (oslo.log), with the request id in each line.

A request's id comes from oslo.middleware's ``RequestId`` (``x-openstack-request-id`` in
the answer); :func:`request_context` makes it the thread's oslo.context, so every line
logged while the request runs carries ``[req-… user project]``. The operation a request
starts keeps the id: the Mistral execution's description names it, and the engine logs
the operation's end under it (:func:`with_request`).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from oslo_config import cfg
from oslo_context import context
from oslo_log import log as oslo_log

from site_recovery.core.config import LoggingConfig

PRODUCT = "site-recovery"
# Chatty libraries stay at WARNING unless debugging (oslo.log's own list, plus ours).
QUIET = ("urllib3=WARNING", "keystoneauth=WARNING", "stevedore=WARNING",
         "oslo_policy=WARNING", "alembic=WARNING", "keystonemiddleware=WARNING", "tooz=WARNING",
         "gunicorn.access=INFO", "werkzeug=WARNING")


def setup(settings: LoggingConfig, service: str):
    """Configure the process's logging once, before anything logs."""
    conf = cfg.ConfigOpts()
    oslo_log.register_options(conf)
    conf([], project=PRODUCT, prog=service, default_config_files=[],
         default_config_dirs=[])
    conf.set_override("debug", settings.debug)
    conf.set_override("use_stderr", settings.file is None)     # stdout stays the command's
    conf.set_override("use_json", settings.format == "json")
    conf.set_override("default_log_levels",
                      [*oslo_log.get_default_log_levels(), *QUIET])
    if settings.file:
        conf.set_override("log_file", str(settings.file))
    if settings.config_file:
        conf.set_override("log_config_append", str(settings.config_file))
    oslo_log.setup(conf, PRODUCT, fix_eventlet=False)


@contextmanager
def request_context(request_id: str, global_request_id: str | None = None, *,
                    user_id: str | None = None, project_id: str | None = None):
    """The request as the current thread's context (what log lines are tagged with) while
    the block runs; the one before it comes back after (a request served within another,
    as a peer's in a test)."""
    before = context.get_current()
    context.RequestContext(request_id=request_id, global_request_id=global_request_id,
                           user_id=user_id, project_id=project_id, overwrite=True)
    try:
        yield
    finally:
        if before is not None:
            before.update_store()
        else:
            vars(context._request_store).pop("context", None)


def current_request_id() -> str | None:
    """The id of the request this thread serves (the one its answer carries), if any."""
    current = context.get_current()
    return current.request_id if current else None


class _WithRequest(logging.LoggerAdapter):
    def process(self, msg, kwargs):
        kwargs.setdefault("extra", {})["context"] = self.extra["context"]
        return msg, kwargs


def with_request(request_id: str | None, name: str) -> logging.LoggerAdapter:
    """Logger ``name`` with its lines carrying ``request_id`` (an operation's, outside its
    request), leaving the thread's own context as it was."""
    before = context.get_current()
    tagged = context.RequestContext(request_id=request_id or "-", overwrite=False)
    if before is None:                   # the constructor made itself the thread's context
        vars(context._request_store).pop("context", None)
    return _WithRequest(logging.getLogger(name), {"context": tagged})
