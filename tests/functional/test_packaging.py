"""``pip install .`` gives one clean namespace, with the workbooks and templates inside,
and nothing of the lab, which is a distribution of its own (``lab/``).

Mistral loads this package from its own site-packages, so nothing generic such as
``actions`` or ``webhook`` may be installed there, and no simulated cloud, array simulator
or supervisor. The wheel is built from a copy of the source tree with one probe file added
to each data folder, which proves the data globs ship files without depending on what the
folders hold today.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = {"workbooks": "*.yaml", "heat_templates": "*.j2"}
ROOMS = ["actions", "cli", "core", "dashboard", "heat_templates", "storage", "webhook",
         "workbooks"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("src") / "site-recovery"
    ignore = shutil.ignore_patterns(".venv", ".tox", ".git", "*.egg-info", "__pycache__",
                                    "build", "dist", "var")
    shutil.copytree(ROOT, tree, ignore=ignore)
    (tree / "workbooks" / "packaging_probe.yaml").write_text("version: '2.0'\n")
    (tree / "heat_templates" / "packaging_probe.j2").write_text("heat_template_version: x\n")
    return tree


@pytest.fixture(scope="module")
def wheels(source, tmp_path_factory) -> Path:
    """The product's wheel and the lab's, in one folder."""
    out = tmp_path_factory.mktemp("wheels")
    for tree in (source, source / "lab"):
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                        str(out), str(tree)], check=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def wheel(wheels) -> Path:
    (built,) = wheels.glob("site_recovery-*.whl")
    return built


@pytest.fixture(scope="module")
def lab_wheel(wheels) -> Path:
    (built,) = wheels.glob("site_recovery_lab-*.whl")
    return built


def test_the_wheel_holds_only_the_site_recovery_namespace_and_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/", 1)[0] for n in names} == {
        "site_recovery", f"{wheel.name.split('-py3')[0]}.dist-info"}
    packages = {n.split("/")[1] for n in names if n.startswith("site_recovery/")}
    assert packages == set(ROOMS)
    assert "site_recovery/__init__.py" not in names          # a namespace, owned by no one
    for room, pattern in DATA.items():
        expected = {f"site_recovery/{room}/{p.name}" for p in (ROOT / room).glob(pattern)}
        expected.add(f"site_recovery/{room}/packaging_probe{pattern[1:]}")
        assert expected <= set(names)
    assert not any(n.startswith("site_recovery/tests") or "/lab/var" in n for n in names)
    assert not any(n.startswith("site_recovery/lab/") for n in names)
    for room in ROOMS:                   # every package of the source ships, subpackages too
        for init in (ROOT / room).rglob("__init__.py"):
            assert f"site_recovery/{init.relative_to(ROOT)}" in names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "site-recovery-protector" in scripts and "site-recovery-lab" not in scripts


def test_the_lab_wheel_holds_the_lab_alone_and_needs_the_product(lab_wheel):
    archive = zipfile.ZipFile(lab_wheel)
    names = archive.namelist()
    packages = {n.split("/")[1] for n in names if n.startswith("site_recovery/")}
    assert packages == {"lab"}
    assert {"site_recovery/lab/flasharray_sim.py", "site_recovery/lab/supervisor.py",
            "site_recovery/lab/cloud/app.py"} <= set(names)
    metadata = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
    # the lab runs the service and the demo drives the CLI
    assert "Requires-Dist: site-recovery[cli,service]\n" in metadata
    scripts = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "site-recovery-lab = site_recovery.lab.cli:main" in scripts


@pytest.fixture(scope="module")
def product_venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the product's wheel as a service host installs it (the service
    extra), and nothing of the lab."""
    env = tmp_path_factory.mktemp("product") / "venv"
    venv.create(env, with_pip=True)
    subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q",
                    f"{wheel}[service]"], check=True, timeout=600)
    return env


def test_pip_install_in_a_fresh_venv_imports_and_reads_the_data(product_venv, tmp_path):
    env = product_venv
    python = env / "bin" / "python"
    probe = (
        "import importlib.resources as r\n"
        "from site_recovery.storage.driver import StorageDriver\n"
        "print(StorageDriver.__name__)\n"
        "for package, name in [('workbooks', 'packaging_probe.yaml'),\n"
        "                      ('heat_templates', 'packaging_probe.j2')]:\n"
        "    data = r.files('site_recovery.' + package).joinpath(name)\n"
        "    print(data.read_text().strip())\n"
    )
    result = subprocess.run([str(python), "-c", probe], check=True, capture_output=True,
                            text=True, timeout=120, cwd=tmp_path)
    assert result.stdout.split("\n")[:3] == ["StorageDriver", "version: '2.0'",
                                             "heat_template_version: x"]
    site = next((env / "lib").glob("python3*/site-packages"))
    for generic in ("actions", "webhook", "core", "storage", "cli", "lab", "workbooks"):
        assert not (site / generic).exists()


def test_the_product_alone_runs_the_service_the_actions_and_the_mock_storage(product_venv,
                                                                             tmp_path):
    python = product_venv / "bin" / "python"
    probe = ("import site_recovery.actions.dr, site_recovery.webhook.app\n"
             "from site_recovery.storage.mock import mock_driver\n"
             "try:\n"
             "    import site_recovery.lab\n"
             "except ImportError:\n"
             "    print('no lab')\n")
    result = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.stdout.strip() == "no lab", result.stderr[-2000:]
    protector = subprocess.run([str(product_venv / "bin" / "site-recovery-protector"),
                                "--help"], capture_output=True, text=True, timeout=120)
    assert protector.returncode == 0 and "install-workbooks" in protector.stdout
    assert not (product_venv / "bin" / "site-recovery-lab").exists()


def test_the_lab_command_comes_from_the_lab_wheel(product_venv, lab_wheel, wheels):
    subprocess.run([str(product_venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--find-links", str(wheels), str(lab_wheel)], check=True, timeout=600)
    lab = subprocess.run([str(product_venv / "bin" / "site-recovery-lab"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert lab.returncode == 0 and "start both sites" in lab.stdout
