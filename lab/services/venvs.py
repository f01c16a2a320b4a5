"""Virtual environments for the lab's real OpenStack services.

Keystone, Heat and Mistral pin conflicting libraries, so each gets its own venv, made on
first use and reused after (keyed by what is installed in it). Mistral's venv also holds
this project, editable, so its ``mistral.actions`` entry points load our actions: its base
install only (what the executor loads), constrained to what Mistral's venv already holds,
as an operator installs it (docs/guides/01-deploy.md). Horizon's venv holds it the same
way, so Horizon imports the dashboard plugin.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REQUIREMENTS: dict[str, tuple[str, ...]] = {
    "keystone": ("keystone==30.0.0", "gunicorn==27.0.1"),
    "heat": ("openstack-heat==27.0.1", "psycopg2-binary==2.9.13"),
    # Django pinned too: Horizon asks only for >=4.2, and 6.x is not one it was released for.
    # WhiteNoise serves its static files, as a web server in front would.
    "horizon": ("horizon==27.0.0", "Django==5.2.20", "gunicorn==27.0.1", "whitenoise==6.12.0"),
    "mistral": ("mistral==23.0.0", "python-mistralclient==6.3.0", "psycopg2-binary==2.9.13",
                "PyMySQL==1.1.2"),
    # The openstack CLI, and the legacy clients real Heat uses (tests drive them directly).
    "clients": ("python-openstackclient==10.5.0", "python-heatclient==5.3.0",
                "python-mistralclient==6.3.0", "python-novaclient==18.13.1",
                "python-neutronclient==14.0.0", "python-cinderclient==9.10.0",
                "python-glanceclient==4.13.0"),
}
INSTALL_TIMEOUT = 1800


def project_root() -> Path:
    """The source checkout this lab runs from (the lab is a development tool)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "setup.cfg").exists():
        raise RuntimeError(f"the lab needs a source checkout of site-recovery; {root} is not one")
    return root


def ensure(venvs: Path, name: str, *, with_project: bool = False) -> Path:
    """The venv for ``name``, created if missing; returns its directory."""
    return cached(venvs, name, REQUIREMENTS[name],
                  project=project_root() if with_project else None)


def interpreter_version(python: str) -> str:
    """Part of a venv's key: a venv belongs to one interpreter."""
    if python == sys.executable:
        return sys.version
    return subprocess.run([python, "-c", "import sys; print(sys.version)"], check=True,
                          capture_output=True, text=True, timeout=60).stdout.strip()


def cached(venvs: Path, name: str, requirements: Sequence[str], *,
           python: str = sys.executable, project: Path | None = None,
           wheel: Path | None = None) -> Path:
    """A venv of ``python`` holding ``requirements`` and then ``project`` (editable) or
    the product's ``wheel`` (see :func:`product_wheel`), constrained to the versions
    ``requirements`` installed, made on first use and reused after; returns its
    directory."""
    requirements = list(requirements)
    key_parts = [interpreter_version(python), *requirements]
    if project:
        # The project's requirements and entry points are installed with it: a change to
        # either needs a new venv.
        key_parts += [str(project), (project / "setup.cfg").read_text()]
    if wheel:
        key_parts += [str(wheel)]                # its folder names the source's digest
    key = hashlib.sha1("\n".join(key_parts).encode()).hexdigest()[:10]
    path = venvs / f"{name}-{key}"
    done = path / ".complete"
    if done.exists():
        return path
    venvs.mkdir(parents=True, exist_ok=True)
    with open(venvs / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # one creator; the others wait, then reuse
        if done.exists():
            return path
        log = venvs / f"{path.name}.log"
        with open(log, "w") as out:
            def run(args, stdout=out):
                try:
                    subprocess.run(args, check=True, timeout=INSTALL_TIMEOUT, stdout=stdout,
                                   stderr=out)
                except subprocess.CalledProcessError:
                    raise RuntimeError(f"creating the {name} venv failed; see {log}") from None

            run([python, "-m", "venv", "--clear", str(path)])
            pip = [str(path / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
            run([*pip, "install", "--upgrade", "pip", "setuptools", "wheel"])
            run([*pip, "install", *requirements])
            if project or wheel:
                constraints = path / "constraints.txt"
                with open(constraints, "w") as frozen:
                    run([*pip, "freeze"], stdout=frozen)
                run([*pip, "install", "--constraint", str(constraints),
                     *(["-e", str(project)] if project else [str(wheel)])])
        done.write_text("\n".join(requirements) + "\n")
    return path


# What the product's wheel is built of: its rooms and its packaging.
PRODUCT_SOURCES = ("actions", "cli", "core", "dashboard", "heat_templates", "storage", "webhook",
                   "workbooks", "setup.cfg", "pyproject.toml", "README.md")


def source_digest(root: Path) -> str:
    """A digest of the product's source files: the same source, the same wheel's venvs."""
    digest = hashlib.sha1()
    for name in PRODUCT_SOURCES:
        top = root / name
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def product_wheel(venvs: Path) -> Path:
    """The product's wheel, as an operator installs it (no lab inside), built once per
    source state and kept beside the venvs."""
    root = project_root()
    folder = venvs / "wheels" / source_digest(root)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        built = sorted(folder.glob("site_recovery-*.whl"))
        if not built:
            subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                            str(folder), str(root)], check=True, timeout=INSTALL_TIMEOUT,
                           capture_output=True)
            built = sorted(folder.glob("site_recovery-*.whl"))
    return built[0]


def product_only(venvs: Path, wheel: Path) -> Path:
    """A venv with the product alone, as a service host has it: the wheel with its
    service, cli and database extras, and nothing of the lab (the wheel's path names the
    source digest, so the venv follows the source)."""
    return cached(venvs, "product", [f"{wheel}[service,cli,postgresql,mysql,redis]"])
