"""After the stories (this file runs last): no password, array token or alert secret of
the lab appears in any lab log, nor in any Mistral execution's or action's input and
output, on either site. Secrets live in files the configuration names, nowhere else."""

from __future__ import annotations

import json
from pathlib import Path

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from mistralclient.api import client as mistral_client

from site_recovery.lab.layout import ACCOUNTS, HEAT_DOMAIN_ADMIN, SITES


def secrets(lab) -> dict[str, str]:
    """Every secret the lab configured, by what it is."""
    found = {f"password of {a.user}": a.password for a in (*ACCOUNTS, HEAT_DOMAIN_ADMIN)}
    for site in SITES:
        layout = lab.sites[site]
        found[f"API token of {layout.array_name}"] = lab.fabric.api_token(layout.array_name)
        secret = layout.service_dir("webhook") / "alert.secret"
        if secret.exists():
            found[f"alert secret of {site}"] = secret.read_text().strip()
        for kept in layout.service_dir("keystone").glob("*.application-credential.json"):
            found[f"application credential secret of {kept.name.split('.')[0]} on "
                  f"{site}"] = json.loads(kept.read_text())["secret"]
    return found


def logs(lab) -> list[Path]:
    return sorted(p for site in SITES for p in lab.sites[site].run_dir.rglob("*.log")
                  if p.is_file())


def mistral_records(lab, site: str) -> list[tuple[str, str]]:
    """(what, text) of every execution and action execution of ``site``'s Mistral, every
    project's, as the cloud admin sees them."""
    layout = lab.sites[site]
    session = ks_session.Session(auth=v3.Password(**layout.auth("admin")), timeout=60)
    mistral = mistral_client.client(mistral_url=layout.url("mistral", "/v2"), session=session)
    records = []
    for execution in mistral.executions.list(limit=-1, all_projects=True):
        full = mistral.executions.get(execution.id)
        records.append((f"{site} execution {full.id} ({full.workflow_name})",
                        f"{full.input} {full.output} {full.state_info}"))
    for action in mistral.action_executions.list(limit=-1, include_output=True):
        records.append((f"{site} action execution {action.id} ({action.name})",
                       f"{action.input} {getattr(action, 'output', '')} {action.state_info}"))
    return records


def test_no_secret_is_in_a_log_or_a_mistral_record(lab):
    wanted = secrets(lab)
    files = logs(lab)
    assert len(files) > 10, "the lab's logs were not found"
    leaks = [f"{what} in {path}" for path in files
             for text in [path.read_text(errors="replace")]
             for what, secret in wanted.items() if secret in text]
    records = [r for site in SITES for r in mistral_records(lab, site)]
    assert records, "no Mistral execution to look at"
    leaks += [f"{what} in {where}" for where, text in records
              for what, secret in wanted.items() if secret in text]
    assert leaks == []
