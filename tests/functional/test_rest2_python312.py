"""The REST 2.x backend on Python 3.12, which removed distutils.

The ``purestorage`` SDK (REST 1.x) imports distutils, so on 3.12 it needs setuptools'
shim; the REST 2.x path must need none. A Python 3.12 venv holds py-pure-client and the
product's storage package from its wheel; with setuptools' shim switched off
(``SETUPTOOLS_USE_DISTUTILS=stdlib``), it protects a group, replicates it and
materialises a drill over the lab's simulator, which this process serves.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from site_recovery.lab.flasharray_sim import SimulatorServer
from site_recovery.lab.layout import lab_home
from site_recovery.lab.services import venvs
from tests.conftest import make_volumes
from tests.functional import interpreters

REQUIREMENT = "py-pure-client>=1.71,<2"
RUN = """
import json, sys
try:
    import distutils  # noqa: F401
    shim = True
except ModuleNotFoundError:
    shim = False
from site_recovery.storage.base import ArrayEndpoint, ProtectionSpec, Purpose
from site_recovery.storage.flasharray_rest2 import flasharray_rest2_driver

arrays = json.loads(sys.argv[1])
driver = flasharray_rest2_driver([ArrayEndpoint(*array) for array in arrays],
                                 connect_timeout=2.0, read_timeout=10.0, poll_interval=0.02)
spec = ProtectionSpec("py312", "async", "fa-a", "fa-b")
driver.protect(spec, ["app-data", "app-logs"])
point = driver.replicate_now(spec, timeout=30)
copies = driver.materialise(spec, point, Purpose.DRILL)
print(json.dumps({"python": list(sys.version_info[:2]), "distutils": shim,
                  "purestorage": "purestorage" in sys.modules,
                  "copies": sorted(copy.name for copy in copies)}))
"""


@pytest.fixture(scope="module")
def python312(tmp_path_factory) -> tuple[str, str]:
    """A Python 3.12 venv with py-pure-client (in the lab's venv cache), and a folder
    holding the product's packages from its wheel, without their dependencies."""
    python = interpreters.find("3.12")
    if python is None:
        pytest.skip("no Python 3.12 here: install one, or name it in SITE_RECOVERY_PYTHON312")
    home = lab_home() / "venvs"
    venv = venvs.cached(home, "rest2-python312", [REQUIREMENT], python=python)
    packages = tmp_path_factory.mktemp("product")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "--no-deps", "--target", str(packages),
                    str(venvs.product_wheel(home))], check=True, timeout=300)
    return str(venv / "bin" / "python"), str(packages)


def test_the_rest2_backend_runs_on_python_312_without_distutils(python312, fabric):
    python, packages = python312
    make_volumes(fabric, "fa-a", ["app-data", "app-logs"])
    servers = [SimulatorServer(fabric, name).start() for name in ("fa-a", "fa-b")]
    try:
        arrays = [[s.array, s.address, fabric.api_token(s.array), str(s.cert_file)]
                  for s in servers]
        ran = subprocess.run([python, "-c", RUN, json.dumps(arrays)], capture_output=True,
                             text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": packages,
                                  "SETUPTOOLS_USE_DISTUTILS": "stdlib"})
    finally:
        for server in servers:
            server.stop()
    assert ran.returncode == 0, ran.stderr[-2000:]
    result = json.loads(ran.stdout.splitlines()[-1])
    assert result["python"] == [3, 12]
    assert not result["distutils"], "a distutils shim was active: the test proves nothing"
    assert not result["purestorage"]
    copies = result["copies"]
    assert len(copies) == 2
    on_target = {volume["name"] for volume in fabric.array("fa-b").list_volumes()}
    assert set(copies) <= on_target
