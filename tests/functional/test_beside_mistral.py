"""What Mistral's executor loads (actions, core, storage) installs into Mistral's own venv
and changes nothing of Mistral's.

For the Mistral release the lab runs and the major release before it (on Python 3.10,
which it still supports), each from PyPI in a venv of its own: the product's base wheel is
installed as docs/guides/01-deploy.md says, constrained to what Mistral's venv holds
(``pip install --constraint <(pip freeze)``). The install must succeed with no package of
Mistral's venv changing version and ``pip check`` clean, nothing of the service may come
along, and Mistral's own action provider must load every ``mistral.actions`` entry point
of ours and run one of the actions. Mistral's venvs are made once, in the lab's venv cache;
each run installs into a copy.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from site_recovery.lab.layout import lab_home
from site_recovery.lab.services import venvs
from tests.functional import interpreters

ROOT = Path(__file__).resolve().parents[2]
LAB_MISTRAL = next(r for r in venvs.REQUIREMENTS["mistral"] if r.startswith("mistral=="))
PREVIOUS_MISTRAL = "mistral==22.0.0"
INSTALL_TIMEOUT = 600
# Import names of libraries only the service uses (mistral-lib loads oslo.log, and
# openstacksdk prometheus_client where it is installed).
SERVICE_IMPORTS = {"flask", "werkzeug", "sqlalchemy", "alembic", "gunicorn", "tooz",
                   "mistralclient", "keystonemiddleware", "oslo_policy", "oslo_middleware"}

# Run in Mistral's venv: its legacy action provider loads the ``mistral.actions`` entry
# points as its executor does; then the health action runs, as a workflow would run it.
LOAD_AND_RUN = """
import json
from mistral import config  # registers Mistral's options
from mistral.actions.legacy import LegacyActionProvider
from mistral_lib.actions.context import ActionContext
from oslo_config import cfg

cfg.CONF([], project="mistral")
ours = {d.name: d for d in LegacyActionProvider().find_all()
        if d.name.startswith("site_recovery.")}
health = ours["site_recovery.health"].instantiate({"echo": "beside mistral"}, {})
print(json.dumps({"actions": sorted(ours), "health": health.run(ActionContext())}))
"""


def major(requirement: str) -> int:
    return int(requirement.split("==")[1].split(".")[0])


def freeze(python: Path) -> str:
    return subprocess.run([str(python), "-m", "pip", "freeze"], check=True,
                          capture_output=True, text=True, timeout=120).stdout


def versions(listing: str) -> dict[str, str]:
    """``pip freeze`` by canonical name: a version, or where the package came from."""
    found = (re.match(r"([A-Za-z0-9._-]+)\s*(?:==|@)\s*(.+)", line) for line in
             listing.splitlines())
    return {canonical(m[1]): m[2] for m in found if m}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The product's wheel, built from a copy of the source (a build writes into it)."""
    tree = tmp_path_factory.mktemp("src") / "site-recovery"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".venv", ".tox", ".git", "*.egg-info", "__pycache__", "build", "dist", "var"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(tree)], check=True, timeout=300)
    (built,) = out.glob("site_recovery-*.whl")
    return built


@pytest.fixture(scope="session", params=[LAB_MISTRAL, PREVIOUS_MISTRAL])
def mistral_venv(request) -> Path:
    """Mistral from PyPI alone, in the lab's venv cache: built on the first run, reused by
    every session after (the release before the lab's on Python 3.10)."""
    release = request.param
    python = sys.executable if release == LAB_MISTRAL else interpreters.find("3.10")
    if python is None:
        pytest.skip(f"{release} is tested on Python 3.10 and none is here: install one, or "
                    "name it in SITE_RECOVERY_PYTHON310")
    name = "beside-" + release.replace("==", "-")
    return venvs.cached(lab_home() / "venvs", name, [release], python=python)


@dataclass(frozen=True)
class Beside:
    python: Path              # the venv's interpreter
    mistral: dict[str, str]   # what Mistral's venv held: name -> version
    now: dict[str, str]       # what it holds with the product installed


@pytest.fixture(scope="module")
def beside(mistral_venv, wheel, tmp_path_factory) -> Beside:
    """A copy of Mistral's venv with the product's base wheel installed the documented
    way: constrained to the venv's own versions."""
    env = tmp_path_factory.mktemp("beside") / "venv"
    shutil.copytree(mistral_venv, env, symlinks=True)
    python = env / "bin" / "python"
    held = freeze(python)
    constraints = env.parent / "constraints.txt"
    constraints.write_text(held)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check",
         "--constraint", str(constraints), str(wheel)],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return Beside(python, versions(held), versions(freeze(python)))


def test_the_previous_release_is_the_major_before_the_labs():
    assert major(PREVIOUS_MISTRAL) == major(LAB_MISTRAL) - 1


def test_the_install_changes_no_version_in_mistrals_venv(beside):
    changed = {name: (version, beside.now.get(name)) for name, version in
               beside.mistral.items() if beside.now.get(name) != version}
    assert changed == {}
    check = subprocess.run([str(beside.python), "-m", "pip", "check"], capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout


def test_nothing_of_the_service_comes_along(beside, wheel):
    metadata = zipfile.ZipFile(wheel).read(
        f"{wheel.name.split('-py3')[0]}.dist-info/METADATA").decode()
    service = {canonical(m[1]) for m in re.finditer(
        r"^Requires-Dist: ([A-Za-z0-9._-]+).*extra == \"service\"$", metadata, re.M)}
    assert {"flask", "gunicorn", "tooz"} <= service
    added = set(beside.now) - set(beside.mistral)
    assert added & service == set()


def test_the_actions_import_nothing_of_the_service_or_the_cli(beside):
    """Mistral's venv happens to hold some of what the service uses (SQLAlchemy, for one):
    an import of it by the executor's code would pass here and fail beside another
    Mistral."""
    probe = ("import sys, site_recovery.actions.dr, site_recovery.actions.health\n"
             f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVICE_IMPORTS!r}"
             " or m.startswith(('site_recovery.webhook', 'site_recovery.cli'))))")
    run = subprocess.run([str(beside.python), "-W", "ignore", "-c", probe],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "[]"


def test_mistral_loads_every_action_of_ours_and_runs_one(beside, wheel):
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    declared = sorted(line.split("=")[0].strip() for line in
                      setup["options.entry_points"]["mistral.actions"].split("\n") if line)
    run = subprocess.run([str(beside.python), "-W", "ignore", "-c", LOAD_AND_RUN],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.splitlines()[-1])
    assert loaded["actions"] == declared
    health = loaded["health"]
    assert (health["package"], health["version"], health["echo"]) == (
        "site-recovery", wheel.name.split("-")[1], "beside mistral")
