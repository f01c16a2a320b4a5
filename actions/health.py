"""``site_recovery.health``: proves the pack is loaded where Mistral runs actions."""

from __future__ import annotations

import platform
from importlib import metadata

from mistral_lib import actions


class HealthAction(actions.Action):
    """Report this package's version and the executor's host; echo ``echo`` back.

    A workflow that calls it succeeds only if Mistral found our ``mistral.actions`` entry
    points, which is the first thing to check after installing the pack.
    """

    def __init__(self, echo: str | None = None):
        super().__init__()
        self.echo = echo

    def run(self, context):
        return {"package": "site-recovery", "version": metadata.version("site-recovery"),
                "host": platform.node(), "echo": self.echo}

    def test(self, context):
        return {"package": "site-recovery", "version": "test", "host": "test", "echo": self.echo}
