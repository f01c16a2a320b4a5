"""The dashboard's view tests (``tests/horizon_unit/``, in Horizon's own style:
``openstack_dashboard.test.helpers.TestCase`` with the dashboard's API mocked), run by
Django's test runner inside the Horizon venv the lab's Horizon runs in: the product's venv
has no Horizon. No lab is started; the venv is built on first use, as the lab builds it."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from site_recovery.lab.layout import SiteLayout
from site_recovery.lab.services import horizon

ROOT = Path(__file__).resolve().parents[3]
WITHIN = 120          # seconds: they take a few


def test_the_dashboards_views_pass_their_horizon_tests():
    venv = horizon.ensure_venv(SiteLayout.for_site("site-a").venvs)   # every site's venv
    env = {name: value for name, value in os.environ.items()
           if name not in ("DJANGO_SETTINGS_MODULE", horizon.SETTINGS_ENV)}
    run = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "django", "test", "tests.horizon_unit",
         "--settings=tests.horizon_unit.settings", "--noinput"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=WITHIN)
    output = f"{run.stdout}\n{run.stderr}"
    assert run.returncode == 0, output
    assert re.search(r"^Ran [1-9]\d* tests? in ", run.stderr, re.M), output
