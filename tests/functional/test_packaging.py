"""``pip install .`` gives one clean namespace, with the workbooks and templates inside.

Mistral loads this package from its own site-packages, so nothing generic such as
``actions`` or ``webhook`` may be installed there. The wheel is built from a copy of the
source tree with one probe file added to each data folder, which proves the data globs
ship files without depending on what the folders hold today.
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
ROOMS = ["actions", "cli", "core", "heat_templates", "lab", "storage", "webhook", "workbooks"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tree = tmp_path_factory.mktemp("src") / "site-recovery"
    ignore = shutil.ignore_patterns(".venv", ".tox", ".git", "*.egg-info", "__pycache__",
                                    "build", "dist", "var")
    shutil.copytree(ROOT, tree, ignore=ignore)
    (tree / "workbooks" / "packaging_probe.yaml").write_text("version: '2.0'\n")
    (tree / "heat_templates" / "packaging_probe.j2").write_text("heat_template_version: x\n")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(tree)], check=True, timeout=300)
    (built,) = out.glob("site_recovery-*.whl")
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


def test_pip_install_in_a_fresh_venv_imports_and_reads_the_data(wheel, tmp_path):
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   timeout=600)
    probe = (
        "import importlib.resources as r, site_recovery.storage as s\n"
        "print(s.StorageDriver.__name__)\n"
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
