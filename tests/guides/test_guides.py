"""The operator guides in ``docs/guides`` are run, so they cannot rot.

Each guide's ``sh`` blocks run in order, as one bash script with ``set -euo pipefail``,
against one fresh two-site lab, guide after guide as an operator would follow them; its
``python`` blocks run in the product's own interpreter (below); every ``yaml`` block that
shows the service's configuration must be accepted by the service's own configuration
code. ``sh-host`` blocks (packages and init systems) are the lab's launcher's job: it
installs the product as the deploy guide does, its wheel into Mistral's venv and into a
venv of its own without the lab, whose commands and interpreter the blocks use. The
commands after them check their effect. Values a deployment chooses are shell variables
with a default in the guides; the lab's values are given here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from site_recovery.core.config import ServiceConfig
from tests.conftest import fresh_lab

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "guides"
# site-b: PORT_BASE + 1000; below the ephemeral ports (32768..); another base lets a
# second run share the machine
PORT_BASE = int(os.environ.get("GUIDES_PORT_BASE", "19000"))
BLOCK = re.compile(r"^```([\w-]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
RUN = {"sh", "python"}
SHOWN = {"sh-host", "text", "ini", "yaml"}


def blocks(guide: Path) -> list[tuple[str, str]]:
    return [(kind, body) for kind, body in BLOCK.findall(guide.read_text())]


def guides() -> list[Path]:
    return sorted(GUIDES.glob("[0-9][0-9]-*.md"))


@pytest.fixture(scope="module")
def lab():
    # The product as the deploy guide installs it: its wheel in Mistral's venv and a venv
    # of its own for the service and the CLI, without the lab. Its arrays speak REST 1.x,
    # as older Purity does (the scenarios run on REST 2.x, the default).
    yield from fresh_lab(PORT_BASE, "guides", install="wheel", array_rest_version=1)


@pytest.fixture(scope="module")
def environment(lab) -> dict[str, str]:
    site_a, site_b = lab.sites["site-a"], lab.sites["site-b"]
    return {**os.environ,
            # the product-only install's commands first, then the lab's
            "PATH": os.pathsep.join([str(lab.protector_bin()), str(Path(sys.executable).parent),
                                     os.environ["PATH"]]),
            "OS_CLIENT_CONFIG_FILE": str(lab.clouds_yaml()),
            "SITE_RECOVERY_CONFIG": str(site_a.run_dir / "webhook" / "protector.yaml"),
            "PROTECTOR_URL_SITE_A": site_a.url("webhook", "/v1"),
            "PROTECTOR_URL_SITE_B": site_b.url("webhook", "/v1"),
            "SITE_RECOVERY_LAB_PORT_BASE": str(PORT_BASE),
            "SITE_RECOVERY_LAB_RUN": lab.options.run_name,
            "PYTHONWARNINGS": "ignore"}


def test_every_guide_is_listed_in_the_index_and_every_block_is_run_or_shown():
    index = (GUIDES / "README.md").read_text()
    assert guides(), f"no guides in {GUIDES}"
    for guide in guides():
        assert f"]({guide.name})" in index, f"{guide.name} is not in docs/guides/README.md"
        kinds = [kind for kind, _ in blocks(guide)]
        assert any(kind in RUN for kind in kinds), f"{guide.name} runs nothing"
        unknown = set(kinds) - RUN - SHOWN
        assert not unknown, f"{guide.name}: blocks of unknown kind {sorted(unknown)}"


def test_the_configuration_shown_is_one_the_service_accepts():
    shown = [yaml.safe_load(body) for guide in guides() for kind, body in blocks(guide)
             if kind == "yaml"]
    configurations = [doc for doc in shown if isinstance(doc, dict) and "site" in doc]
    assert configurations, "no guide shows the service's configuration"
    for document in configurations:
        ServiceConfig.model_validate(document)
    # A part of it shown alone (its settings under their section) fits the whole; a
    # clouds.yaml is no part of it.
    parts = [doc for doc in shown if isinstance(doc, dict) and "site" not in doc
             and set(doc) <= set(ServiceConfig.model_fields) and set(doc) != {"clouds"}]
    for part in parts:
        ServiceConfig.model_validate({**configurations[0], **part})


@pytest.mark.parametrize("guide", guides(), ids=lambda path: path.stem)
def test_the_guide_runs_on_the_lab(guide, environment, tmp_path):
    for number, (kind, body) in enumerate(blocks(guide)):
        if kind == "python":
            # the product-only install's interpreter, as an operator's
            python = shutil.which("python", path=environment["PATH"])
            run([python, "-c", body], environment, guide, number, body)
    script = "\n".join(body for kind, body in blocks(guide) if kind == "sh")
    run(["bash", "-c", f"set -euo pipefail -x\n{script}"], environment, guide, None, script)


def run(command: list[str], environment: dict, guide: Path, number: int | None, body: str):
    done = subprocess.run(command, env=environment, capture_output=True, text=True,
                          timeout=1800, cwd=guide.parent)
    where = f"{guide.name}" + (f", block {number}" if number is not None else "")
    assert done.returncode == 0, (
        f"{where} failed (exit {done.returncode}); the last commands and their output:\n"
        f"{done.stderr[-6000:]}\n--- stdout ---\n{done.stdout[-3000:]}")
