"""A stand-in for the DR engine's workbook, for tests and benchmarks of the service alone.

It replaces the DR runbooks (``site_recovery.dr.v<N>``) with a workbook of the same
name whose workflows have the same names and inputs and do nothing: tests of the
protection service (roles, sync, launching) and its benchmark see exactly which
executions it started in the site's real Mistral, without the DR steps acting on the
clouds. The DR engine's own tests use the real workbook (``workbooks/``).
"""

from __future__ import annotations

import yaml
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from mistralclient.api import client as mistral_client

from site_recovery import workbooks
from site_recovery.core.model import OperationInput, OperationKind

from .layout import SiteLayout

INPUTS = list(OperationInput.model_fields)       # what the protection service passes


def workbook() -> str:
    # Mistral's workbook parser wants sequences indented under their key.
    return yaml.dump({
        "version": "2.0", "name": workbooks.dr().name,
        "description": "stands in for the DR engine's workbook",
        "workflows": {kind.value: {"input": list(INPUTS),
                                   "tasks": {"noted": {"action": "std.noop"}}}
                      for kind in OperationKind}}, Dumper=_Indented, sort_keys=False)


class _Indented(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def mistral(site: SiteLayout, timeout: float = 30):
    """The site's Mistral as the DR service account, the one the protection service uses."""
    auth = site.auth("site-recovery")
    session = ks_session.Session(auth=v3.Password(**auth), timeout=timeout)
    return mistral_client.client(mistral_url=site.url("mistral", "/v2"), session=session)


def install(site: SiteLayout):
    """Create or replace the stand-in workbook in the site's Mistral."""
    client = mistral(site)
    # The real workbook's capture trigger would hold on to a workflow the stand-in lacks.
    if any(t.name == "site_recovery.capture" for t in client.cron_triggers.list()):
        client.cron_triggers.delete("site_recovery.capture")
    names = {w.name for w in client.workbooks.list()}
    if workbooks.dr().name in names:
        client.workbooks.update(workbook())
    else:
        client.workbooks.create(workbook())
