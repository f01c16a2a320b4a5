"""Other Python interpreters the machine offers, for tests that must run the product on
them (Mistral's older releases on 3.10, the REST 2.x backend on 3.12)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def find(version: str) -> str | None:
    """A Python ``version`` ("3.10"): ``$SITE_RECOVERY_PYTHON310`` (the version's digits),
    ``python3.10`` on the PATH, or one pyenv installed (pyenv's shim answers only while
    that version is selected)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    named = os.environ.get(f"SITE_RECOVERY_PYTHON{version.replace('.', '')}")
    candidates = [named, shutil.which(f"python{version}"),
                  *map(str, sorted(pyenv.glob(f"versions/{version}.*/bin/python{version}")))]
    wanted = str(tuple(int(part) for part in version.split(".")))
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if probe.stdout.strip() == wanted:
            return candidate
    return None
