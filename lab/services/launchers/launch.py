"""How a one-process service launcher ends (run with the service venv's python).

The launchers import this sibling module: a script's own directory is first on sys.path.
"""

import logging
import os
import sys
import traceback


def run_then_exit(main):
    """Run ``main`` and end the process with its status, whatever threads remain."""
    try:
        code = main()
    except BaseException:  # a failed start must not leave service threads running
        traceback.print_exc()
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Non-daemon futurist and oslo.messaging worker threads would keep the process alive.
    os._exit(code)
